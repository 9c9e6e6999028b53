//! Published ports: podman's `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`
//! (ranges too), and their reservation. The berth process that keeps the
//! container (its monitor, or a foreground `run`) binds each host port for
//! the container's lifetime, so a port in use is refused before the
//! container starts, naming what holds it, and no two containers get one.

use super::error::{io, NetworkError};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

/// One published port.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    /// Only this host address (None: every address).
    pub host_ip: Option<Ipv4Addr>,
    /// 0 until a free port is picked (`-p 80`, `-P`).
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
}

impl std::fmt::Display for PortMapping {
    /// podman's PORTS column form: 0.0.0.0:8080->80/tcp
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.container_port,
            self.protocol
        )
    }
}

fn range(s: &str, what: &str, spec: &str) -> Result<(u16, u16), NetworkError> {
    let bad = || {
        NetworkError::BadPort(format!("invalid -p {spec:?}: bad {what} {s:?}; use [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], e.g. 8080:80"))
    };
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses one `-p` value into mappings (a range gives one per port).
pub fn parse(spec: &str) -> Result<Vec<PortMapping>, NetworkError> {
    let (addr, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    if proto != "tcp" && proto != "udp" {
        return Err(NetworkError::BadPort(format!(
            "invalid -p {spec:?}: unsupported protocol {proto:?}; use tcp or udp"
        )));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [i, h, c] => (Some(*i), Some(*h).filter(|h| !h.is_empty()), *c),
        _ => {
            return Err(NetworkError::BadPort(format!(
                "invalid -p {spec:?}: use [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]"
            )))
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(i) => Some(i.parse::<Ipv4Addr>().map_err(|_| {
            NetworkError::BadPort(format!("invalid -p {spec:?}: {i:?} is not an IPv4 address"))
        })?)
        .filter(|a| !a.is_unspecified()),
    };
    let (c0, c1) = range(ctr, "container port", spec)?;
    let (h0, h1) = match host {
        Some(h) => range(h, "host port", spec)?,
        None => (0, 0),
    };
    if host.is_some() && h1 - h0 != c1 - c0 {
        return Err(NetworkError::BadPort(format!(
            "invalid -p {spec:?}: the host and container ranges differ in length"
        )));
    }
    Ok((0..=(c1 - c0))
        .map(|i| PortMapping {
            host_ip,
            host_port: if host.is_some() { h0 + i } else { 0 },
            container_port: c0 + i,
            protocol: proto.into(),
        })
        .collect())
}

/// Who holds a host port, from /proc/net and the processes' fds:
/// "pid 123 (nginx)", or None when it cannot be told.
pub fn holder(port: u16, protocol: &str) -> Option<String> {
    let mut inodes = Vec::new();
    for f in [
        format!("/proc/net/{protocol}"),
        format!("/proc/net/{protocol}6"),
    ] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let c: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = c.get(1) else { continue };
            let p = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if p == Some(port) {
                if let Some(inode) = c.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| t.as_os_str() == i.as_str()) {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    return Some(format!("pid {pid} ({})", comm.trim()));
                }
            }
        }
    }
    None
}

/// Binds every host port (picking free ones for port 0) and returns the
/// sockets that keep them reserved; refuses a port in use, naming its holder.
pub fn reserve(ports: &mut [PortMapping]) -> Result<Vec<OwnedFd>, NetworkError> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let mut held = Vec::new();
    for p in ports.iter_mut() {
        let ty = if p.protocol == "udp" {
            SockType::Datagram
        } else {
            SockType::Stream
        };
        let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|e| io(format!("reserving port {}", p.host_port))(e.into()))?;
        // TCP: SO_REUSEADDR (connections of an earlier container left in
        // TIME_WAIT must not block the port) and listen, which keeps every
        // other socket off the port whatever its options. The DNAT rules
        // take all traffic before it could reach this socket. UDP: no
        // SO_REUSEADDR, which alone keeps others off.
        if ty == SockType::Stream {
            let _ = nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReuseAddr, &true);
        }
        let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let addr = SockaddrIn::from(SocketAddrV4::new(ip, p.host_port));
        if let Err(e) = bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            let who = holder(p.host_port, &p.protocol)
                .map(|h| format!(" by {h}"))
                .unwrap_or_default();
            return Err(match e {
                nix::Error::EADDRINUSE => NetworkError::PortInUse {
                    port: p.host_port,
                    protocol: p.protocol.clone(),
                    holder: who,
                    container_port: p.container_port,
                },
                nix::Error::EADDRNOTAVAIL => NetworkError::NotHostAddress {
                    ip,
                    port: p.host_port,
                },
                e => io(format!("reserving port {}/{}", p.host_port, p.protocol))(e.into()),
            });
        }
        if ty == SockType::Stream {
            nix::sys::socket::listen(
                &fd,
                nix::sys::socket::Backlog::new(1).expect("valid backlog"),
            )
            .map_err(|e| io(format!("reserving port {}/{}", p.host_port, p.protocol))(e.into()))?;
        }
        if p.host_port == 0 {
            let local: SockaddrIn =
                nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))
                    .map_err(|e| io("reading the picked port")(e.into()))?;
            p.host_port = local.port();
        }
        held.push(fd);
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_podman_forms() {
        let m = &parse("8080:80").unwrap()[0];
        assert_eq!(
            (m.host_port, m.container_port, m.protocol.as_str()),
            (8080, 80, "tcp")
        );
        let m = &parse("127.0.0.1:5353:53/udp").unwrap()[0];
        assert_eq!(m.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(m.to_string(), "127.0.0.1:5353->53/udp");
        assert_eq!(parse("80").unwrap()[0].host_port, 0);
        assert_eq!(parse("127.0.0.1::80").unwrap()[0].host_port, 0);
        let r = parse("8000-8002:9000-9002").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (8002, 9002));
        assert!(parse("8000-8002:90").is_err());
        assert!(parse("x:80").is_err() && parse("80/sctp").is_err() && parse("0").is_err());
    }

    #[test]
    fn a_port_in_use_is_refused_with_its_holder() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut m = parse(&format!("127.0.0.1:{port}:80")).unwrap();
        let e = reserve(&mut m).unwrap_err();
        assert!(
            matches!(&e, NetworkError::PortInUse { port: p, holder, .. }
                if *p == port && holder.starts_with(" by pid")),
            "{e}"
        );
        assert!(e.to_string().contains("-p OTHER:80"), "{e}");
        let mut free = parse("127.0.0.1::80").unwrap();
        let held = reserve(&mut free).unwrap();
        assert!(free[0].host_port > 0 && held.len() == 1);
    }
}

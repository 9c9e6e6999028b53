//! Published TCP ports of rootless containers on bridge networks: the
//! host port's socket (reserved in the host's network namespace by the
//! process that keeps the container) accepts connections, and each one is
//! relayed to the container's address through a socket made inside the
//! rootless network namespace (podman's rootlessport does the same). The
//! container sees the bridge's gateway as the client: the source address
//! cannot be kept in this mode.

use super::error::{io, NetworkError};
use super::ports::PortMapping;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Relays while alive; dropping it stops accepting (open connections run
/// on until either side closes).
pub struct Forwarder {
    listeners: Vec<OwnedFd>,
}

/// Starts relaying each TCP port of `ports` (whose reserved sockets are
/// `reserved`, in the same order) to `target` inside namespace `ns`.
pub fn start(
    reserved: &[OwnedFd],
    ports: &[PortMapping],
    target: Ipv4Addr,
    ns: &OwnedFd,
) -> Result<Forwarder, NetworkError> {
    let mut listeners = Vec::new();
    for (fd, p) in reserved.iter().zip(ports) {
        if p.protocol != "tcp" {
            continue;
        }
        let own = fd
            .try_clone()
            .map_err(io(format!("forwarding port {}", p.host_port)))?;
        // SAFETY: listen on a socket we own, to deepen the backlog.
        unsafe { libc::listen(own.as_raw_fd(), 128) };
        let ns = ns
            .try_clone()
            .map_err(io(format!("forwarding port {}", p.host_port)))?;
        let listener = TcpListener::from(
            own.try_clone()
                .map_err(io(format!("forwarding port {}", p.host_port)))?,
        );
        let to = SocketAddrV4::new(target, p.container_port);
        std::thread::Builder::new()
            .name("forward".into())
            .stack_size(64 * 1024)
            .spawn(move || accept_loop(listener, ns, to))
            .map_err(io(format!("forwarding port {}", p.host_port)))?;
        listeners.push(own);
    }
    Ok(Forwarder { listeners })
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for l in &self.listeners {
            // SAFETY: wakes the accepting thread (accept fails from now on).
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

fn accept_loop(listener: TcpListener, ns: OwnedFd, to: SocketAddrV4) {
    // This thread connects from inside the rootless namespace.
    if nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    loop {
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
                Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM) => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
                _ => return, // shut down: the container ended
            },
        };
        let Ok(upstream) = TcpStream::connect(to) else {
            continue; // the client sees the connection close
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        spawn_pump(client, upstream);
        spawn_pump(u2, c2);
    }
}

/// Copies one direction until end of stream, then half-closes the other side.
fn spawn_pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::thread::Builder::new()
        .name("pump".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = to.shutdown(Shutdown::Write);
            let _ = from.shutdown(Shutdown::Read);
        });
}

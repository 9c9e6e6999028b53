//! A container's networking around each start: what `--network`, `-p`,
//! `-P`, `--network-alias`, `--ip`, `--dns*` and `--add-host` asked for
//! (kept in its record), and a session that reserves its ports, wires it
//! up once its namespace exists (the runtime's prestart hook: bridge and
//! veth as root, pasta rootless) and undoes that when it ends.

use super::container::{ContainerError, Containers};
use super::record::{ContainerRecord, NetConfig, NetworkRequest};
use crate::network::bridge::{self, Join};
use crate::network::config::{Networks, DEFAULT_NETWORK};
use crate::network::ports::{self, PortMapping};
use crate::network::{pasta, rootless_netns, slirp, state::Attachment, NetworkError};
use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Why a container's networking could not be planned or set up.
#[derive(Debug, thiserror::Error)]
pub enum NetSetupError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("invalid --ip {0:?}: use an IPv4 address")]
    BadIp(String),
    #[error("--network {0}: slirp4netns options are not supported; use --network slirp4netns")]
    SlirpOptions(String),
    #[error("--network {0}: rootless containers on bridge networks publish TCP ports only; use --network pasta for UDP")]
    RootlessUdp(String),
    #[error("--ip and --network-alias need a bridge network, not --network {0}")]
    NeedsBridge(String),
    #[error("-p/-P need a network the host can reach: not --network {0}")]
    Unreachable(String),
    #[error("port {port}/{protocol} is already published by container {by}: publish another host port, or remove {by}")]
    PublishedBy {
        port: u16,
        protocol: String,
        by: String,
    },
    #[error("--network ns:{0}: no such network namespace file")]
    NoNamespaceFile(String),
    #[error("--network container:{0}: {1} is not running; start it first")]
    OtherNotRunning(String, String),
    #[error("{0} has no process: it is not running")]
    NoProcess(String),
    #[error("{0} uses --network {1}: only containers on bridge networks can join more")]
    NotOnBridge(String, String),
    #[error("{0} is already connected to {1}")]
    AlreadyConnected(String, String),
    #[error("{0} is not connected to network {1}")]
    NotConnected(String, String),
}

/// What the user typed, for `parse`.
#[derive(Default)]
pub struct NetFlags<'a> {
    pub network: Option<&'a str>,
    pub aliases: &'a [String],
    pub ip: Option<&'a str>,
    pub publish: &'a [String],
    /// `-P`: the image's exposed ports ("80/tcp") on free host ports.
    pub publish_all: bool,
    pub exposed: Vec<String>,
}

/// Network modes in which -p/-P are dropped with a warning, as podman does.
pub fn ports_discarded(mode: &str) -> bool {
    mode == "host" || mode == "none" || mode.starts_with("container:") || mode.starts_with("ns:")
}

/// Turns flags into a NetConfig; `rootless` picks pasta as the default.
pub fn parse(f: &NetFlags<'_>, rootless: bool) -> Result<NetConfig, NetSetupError> {
    let mut ports = Vec::new();
    for p in f.publish {
        ports.extend(ports::parse(p)?);
    }
    if f.publish_all {
        for e in &f.exposed {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            if !ports
                .iter()
                .any(|m: &PortMapping| m.container_port.to_string() == port && m.protocol == proto)
            {
                ports.extend(ports::parse(&format!("{port}/{proto}"))?);
            }
        }
    }
    let ip =
        f.ip.map(|i| {
            i.parse::<Ipv4Addr>()
                .map_err(|_| NetSetupError::BadIp(i.to_string()))
        })
        .transpose()?;
    let default = if rootless {
        if pasta::available() {
            "pasta"
        } else if slirp::available() {
            "slirp4netns"
        } else {
            "private"
        }
    } else {
        "bridge"
    };
    // containers.conf's [containers] netns sets the default, as in podman.
    let configured = crate::network::config::containers_conf("containers", "netns");
    let asked = f.network.or(configured.as_deref()).unwrap_or("").trim();
    let mode = match asked {
        "" | "default" => default.to_string(),
        "private" | "none" | "host" | "pasta" => asked.to_string(),
        "bridge" => "bridge".to_string(),
        "slirp4netns" => asked.to_string(),
        m if m.starts_with("slirp4netns:") => {
            return Err(NetSetupError::SlirpOptions(m.to_string()))
        }
        m if m.starts_with("container:") || m.starts_with("ns:") => m.to_string(),
        _ => "bridge".to_string(),
    };
    let mut networks = Vec::new();
    if mode == "bridge" {
        if rootless && ports.iter().any(|p| p.protocol != "tcp") {
            return Err(NetSetupError::RootlessUdp(asked.to_string()));
        }
        let names: Vec<&str> = if asked.is_empty() || asked == "bridge" || asked == "default" {
            vec![DEFAULT_NETWORK]
        } else {
            asked
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        };
        for (i, n) in names.iter().enumerate() {
            networks.push(NetworkRequest {
                name: n.to_string(),
                aliases: if *n == DEFAULT_NETWORK {
                    Vec::new()
                } else {
                    f.aliases.to_vec()
                },
                ip: if i == 0 { ip } else { None },
            });
        }
    } else if ip.is_some() || !f.aliases.is_empty() {
        return Err(NetSetupError::NeedsBridge(mode));
    }
    // The host's, another container's or no network: podman drops the
    // ports (`run` says so), as there is nothing of the container's own
    // to forward to.
    if ports_discarded(&mode) {
        ports.clear();
    }
    if !ports.is_empty() && !matches!(mode.as_str(), "bridge" | "pasta" | "slirp4netns") {
        return Err(NetSetupError::Unreachable(mode));
    }
    Ok(NetConfig {
        mode,
        networks,
        ports,
        ..Default::default()
    })
}

/// A started container's networking, held by the berth process that
/// keeps the container (its port reservations live as long as it does).
pub struct NetSession {
    cfg: NetConfig,
    nets: Networks,
    container_id: String,
    name: String,
    hosts_file: PathBuf,
    own_hosts: String,
    pasta_pidfile: PathBuf,
    /// Sockets that keep the host ports (bridge networks; rootless, the
    /// forwarder accepts on them).
    reservations: Vec<OwnedFd>,
    attached: RefCell<Vec<Attachment>>,
    pasta: RefCell<Option<i32>>,
    slirp: RefCell<Option<std::process::Child>>,
    /// Rootless bridge: relays published ports into the rootless namespace.
    forwarder: RefCell<Option<crate::network::forward::Forwarder>>,
    notes: RefCell<Vec<String>>,
}

impl NetSession {
    /// Checks and reserves what the container needs before it starts.
    pub fn prepare(
        store_root: &std::path::Path,
        record: &ContainerRecord,
        userdata: &std::path::Path,
    ) -> Result<NetSession, NetSetupError> {
        let mut cfg = record.net.clone();
        let mut reservations = Vec::new();
        if !cfg.ports.is_empty() {
            // Ports another container publishes, named by that container.
            for other in Containers::new(store_root).list() {
                if other.id == record.id || !other.is_running() {
                    continue;
                }
                for p in &other.net.published {
                    let clash = cfg.ports.iter().any(|m| {
                        m.host_port == p.host_port
                            && m.protocol == p.protocol
                            && (m.host_ip.is_none()
                                || p.host_ip.is_none()
                                || m.host_ip == p.host_ip)
                    });
                    if clash {
                        return Err(NetSetupError::PublishedBy {
                            port: p.host_port,
                            protocol: p.protocol.clone(),
                            by: other.name,
                        });
                    }
                }
            }
            let mut ports = cfg.ports.clone();
            let held = ports::reserve(&mut ports)?;
            if cfg.mode == "bridge" {
                reservations = held; // kept: DNAT never reaches the socket
            } // pasta and slirp4netns bind them themselves: the check was enough
            cfg.published = ports;
        }
        let hosts_file = userdata.join("hosts");
        let own_hosts = std::fs::read_to_string(&hosts_file)
            .unwrap_or_default()
            .split(crate::network::hosts::MARKER)
            .next()
            .unwrap_or("")
            .to_string();
        Ok(NetSession {
            cfg,
            nets: Networks::new(store_root),
            container_id: record.id.clone(),
            name: record.name.clone(),
            hosts_file,
            own_hosts,
            pasta_pidfile: userdata.join("pasta.pid"),
            reservations,
            attached: RefCell::new(Vec::new()),
            pasta: RefCell::new(None),
            slirp: RefCell::new(None),
            forwarder: RefCell::new(None),
            notes: RefCell::new(Vec::new()),
        })
    }

    /// The runtime's prestart hook: wires the new namespace of `pid`.
    pub fn hook(&self, pid: nix::unistd::Pid) -> Result<(), NetworkError> {
        match self.cfg.mode.as_str() {
            "bridge" => {
                let joins: Vec<Join> = self
                    .cfg
                    .networks
                    .iter()
                    .map(|n| Join {
                        network: n.name.clone(),
                        aliases: n.aliases.clone(),
                        ip: n.ip,
                    })
                    .collect();
                let made = bridge::connect(
                    &self.nets,
                    &bridge::Request {
                        container_id: &self.container_id,
                        name: &self.name,
                        joins: &joins,
                        ports: &self.cfg.published,
                        hosts_file: Some(self.hosts_file.clone()),
                        holder: None,
                        first_interface: 0,
                    },
                    pid.as_raw(),
                )?;
                // The container's own name resolves to its address.
                if let Some(first) = made.first() {
                    let own = self
                        .own_hosts
                        .replace("127.0.1.1\t", &format!("{}\t", first.ip));
                    let _ = crate::network::hosts::set_own(&self.hosts_file, &own);
                }
                // Kept before anything else can fail, so teardown undoes it.
                let first_ip = made.first().map(|a| a.ip);
                *self.attached.borrow_mut() = made;
                if let (Some(ip), true) = (first_ip, rootless_netns::rootless()) {
                    if !self.cfg.published.is_empty() {
                        let _lock = crate::network::state::lock(&self.nets)?;
                        let ns = rootless_netns::existing(&self.nets)
                            .ok_or(NetworkError::Gone("the rootless network namespace is gone"))?;
                        *self.forwarder.borrow_mut() = Some(crate::network::forward::start(
                            &self.reservations,
                            &self.cfg.published,
                            ip,
                            &ns,
                        )?);
                    }
                }
                Ok(())
            }
            "pasta" => {
                match pasta::start(pid.as_raw(), &self.cfg.published, &self.pasta_pidfile) {
                    Ok(p) => {
                        *self.pasta.borrow_mut() = Some(p);
                        Ok(())
                    }
                    // A machine with no route out (an offline laptop):
                    // pasta refuses, slirp4netns works with loopback only.
                    Err(e) if pasta::no_external_interface(&e) && slirp::available() => {
                        let note = "pasta needs a network interface with a route out and this host has none: using slirp4netns for this container".to_string();
                        tracing::warn!("{note}");
                        self.notes.borrow_mut().push(note);
                        self.start_slirp(pid)
                    }
                    Err(e) => Err(e),
                }
            }
            "slirp4netns" => self.start_slirp(pid),
            _ => Ok(()),
        }
    }

    fn start_slirp(&self, pid: nix::unistd::Pid) -> Result<(), NetworkError> {
        let api = self.pasta_pidfile.with_file_name("slirp.sock");
        let c = slirp::start(pid.as_raw(), &self.cfg.published, &api)?;
        *self.slirp.borrow_mut() = Some(c);
        Ok(())
    }

    /// What the user should hear about how the container was wired (a
    /// fallback taken), one line each.
    pub fn notes(&self) -> Vec<String> {
        self.notes.borrow().clone()
    }

    /// The networks the next start joins: those of the record now, with
    /// any `network connect` made while the container ran.
    pub fn set_networks(&mut self, networks: Vec<NetworkRequest>) {
        self.cfg.networks = networks;
    }

    /// Published ports and addresses, for the record while it runs.
    pub fn given(&self) -> (Vec<PortMapping>, Vec<(String, Ipv4Addr)>) {
        let addrs = self
            .attached
            .borrow()
            .iter()
            .zip(&self.cfg.networks)
            .map(|(a, n)| (n.name.clone(), a.ip))
            .collect();
        (self.cfg.published.clone(), addrs)
    }

    /// Undoes `hook` after the container ended (before a restart too).
    pub fn teardown(&self) {
        self.forwarder.borrow_mut().take();
        let made = std::mem::take(&mut *self.attached.borrow_mut());
        if !made.is_empty() {
            let ifs: Vec<String> = made.iter().map(|a| a.host_interface.clone()).collect();
            bridge::disconnect(&self.nets, &self.container_id, &ifs);
        }
        if self.pasta.borrow_mut().take().is_some() {
            pasta::stop(&self.pasta_pidfile);
        }
        if let Some(mut c) = self.slirp.borrow_mut().take() {
            slirp::stop(&mut c);
        }
    }
}

impl Drop for NetSession {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The namespace path a `container:NAME` / `ns:PATH` mode joins now
/// (the other container's current first process).
pub fn joined_netns(containers: &Containers, mode: &str) -> Result<Option<String>, NetSetupError> {
    if let Some(path) = mode.strip_prefix("ns:") {
        if !std::path::Path::new(path).exists() {
            return Err(NetSetupError::NoNamespaceFile(path.to_string()));
        }
        return Ok(Some(path.to_string()));
    }
    let Some(other) = mode.strip_prefix("container:") else {
        return Ok(None);
    };
    let c = containers.find(other)?;
    match c.pid.filter(|_| c.is_running()) {
        Some(pid) => Ok(Some(format!("/proc/{pid}/ns/net"))),
        None => Err(NetSetupError::OtherNotRunning(other.to_string(), c.name)),
    }
}

/// Sets the spec's network namespace path for `container:`/`ns:` modes
/// (resolved at each start: the other container may have restarted).
pub fn point_spec_at(spec: &mut oci_spec::runtime::Spec, path: &str) {
    if let Some(linux) = spec.linux_mut() {
        if let Some(nss) = linux.namespaces_mut() {
            for ns in nss.iter_mut() {
                if ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                    ns.set_path(Some(PathBuf::from(path)));
                }
            }
        }
    }
}

/// `network connect`: adds a network to a container's record, and joins it
/// now if it runs. Under the container's lock, so its monitor records an
/// exit or a restart after this, never over it.
pub fn connect(
    store_root: &std::path::Path,
    containers: &Containers,
    id: &str,
    req: NetworkRequest,
) -> Result<(), NetSetupError> {
    containers.try_update(id, |c| {
        if c.net.mode != "bridge" {
            return Err(NetSetupError::NotOnBridge(
                c.name.clone(),
                c.net.mode.clone(),
            ));
        }
        if c.net.networks.iter().any(|n| n.name == req.name) {
            return Err(NetSetupError::AlreadyConnected(
                c.name.clone(),
                req.name.clone(),
            ));
        }
        if c.is_running() {
            let ip = connect_running(store_root, containers, c, &req)?;
            c.net.addresses.push((req.name.clone(), ip));
        }
        c.net.networks.push(req);
        Ok(())
    })
}

/// `network disconnect`: the other way, under the same lock.
pub fn disconnect(
    store_root: &std::path::Path,
    containers: &Containers,
    id: &str,
    network: &str,
) -> Result<(), NetSetupError> {
    containers.try_update(id, |c| {
        if !c.net.networks.iter().any(|n| n.name == network) {
            return Err(NetSetupError::NotConnected(
                c.name.clone(),
                network.to_string(),
            ));
        }
        if c.is_running() {
            disconnect_running(store_root, c, network)?;
        }
        c.net.networks.retain(|n| n.name != network);
        c.net.addresses.retain(|(n, _)| n != network);
        Ok(())
    })
}

/// Joins a running container to one more network, with its monitor as
/// the holder (the attachment lives as long as it does).
fn connect_running(
    store_root: &std::path::Path,
    containers: &Containers,
    record: &ContainerRecord,
    req: &NetworkRequest,
) -> Result<Ipv4Addr, NetSetupError> {
    let pid = record
        .pid
        .ok_or_else(|| NetSetupError::NoProcess(record.name.clone()))?;
    let nets = Networks::new(store_root);
    let made = bridge::connect(
        &nets,
        &bridge::Request {
            container_id: &record.id,
            name: &record.name,
            joins: &[Join {
                network: req.name.clone(),
                aliases: req.aliases.clone(),
                ip: req.ip,
            }],
            ports: &[],
            hosts_file: Some(containers.dir(&record.id).join("userdata/hosts")),
            holder: record.monitor,
            first_interface: record.net.networks.len(),
        },
        pid,
    )?;
    Ok(made.first().map(|a| a.ip).unwrap_or(Ipv4Addr::UNSPECIFIED))
}

/// Leaves a network while the container runs.
fn disconnect_running(
    store_root: &std::path::Path,
    record: &ContainerRecord,
    network: &str,
) -> Result<(), NetworkError> {
    bridge::disconnect_one(&Networks::new(store_root), &record.id, network)
}

/// podman's PORTS column: "0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp".
pub fn ports_column(ports: &[PortMapping]) -> String {
    ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// After a berth was killed: frees what its container held on networks.
pub fn cleanup(store_root: &std::path::Path, record: &ContainerRecord) {
    match record.net.mode.as_str() {
        "pasta" => {
            let userdata = Containers::new(store_root).dir(&record.id).join("userdata");
            pasta::stop(&userdata.join("pasta.pid"));
        }
        "bridge" => {
            let ifs: Vec<String> = (0..record.net.networks.len())
                .map(|i| bridge::host_end(&record.id, i))
                .collect();
            bridge::disconnect(&Networks::new(store_root), &record.id, &ifs);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_defaults() {
        let f = NetFlags::default();
        assert_eq!(parse(&f, false).unwrap().networks[0].name, "berth");
        let aliases = vec!["db".to_string()];
        let f = NetFlags {
            network: Some("front,back"),
            aliases: &aliases,
            ip: Some("10.89.1.9"),
            ..Default::default()
        };
        let c = parse(&f, false).unwrap();
        assert_eq!(c.networks.len(), 2);
        assert_eq!(c.networks[0].ip, Some("10.89.1.9".parse().unwrap()));
        assert_eq!(c.networks[1].aliases, aliases);
        let p = vec!["8080:80".to_string()];
        let none = NetFlags {
            network: Some("none"),
            publish: &p,
            ..Default::default()
        };
        assert!(parse(&none, false).unwrap().ports.is_empty());
        let private = NetFlags {
            network: Some("private"),
            publish: &p,
            ..Default::default()
        };
        assert!(matches!(
            parse(&private, false),
            Err(NetSetupError::Unreachable(m)) if m == "private"
        ));
        let udp = vec!["53:53/udp".to_string()];
        let rootless = NetFlags {
            network: Some("front"),
            publish: &udp,
            ..Default::default()
        };
        assert!(parse(&rootless, true)
            .unwrap_err()
            .to_string()
            .contains("TCP ports only"));
        let all = NetFlags {
            publish_all: true,
            exposed: vec!["80/tcp".into(), "53/udp".into()],
            ..Default::default()
        };
        let c = parse(&all, false).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert!(c.ports.iter().all(|p| p.host_port == 0));
    }
}

//! Who is on each network now: `ROOT/networks/NAME.state.json` lists the
//! attachments (container, address, aliases, published ports, the berth
//! process that holds them). Changed only under the network lock; an
//! attachment whose holder died (kill -9) is dropped by the next change,
//! so addresses and ports are never lost for good.

use super::config::{Network, Networks, Subnet};
use super::ports::PortMapping;
use crate::util::fsutil::atomic_write;
use crate::util::lock::FileLock;
use crate::util::process::ProcessId;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// One container on one network.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    /// The berth process (monitor or foreground run) the container lives with.
    pub holder: ProcessId,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The container's /etc/hosts, kept current as peers come and go.
    #[serde(default)]
    pub hosts_file: Option<PathBuf>,
    /// The host end of its veth pair.
    #[serde(default)]
    pub host_interface: String,
}

pub use super::error::StateError;

/// The lock that serialises every change to networks' state.
pub fn lock(nets: &Networks) -> Result<FileLock, StateError> {
    std::fs::create_dir_all(nets.dir())
        .map_err(|e| StateError::Io("creating the network store".into(), e))?;
    FileLock::exclusive(&nets.dir().join("networks.lock"))
        .map_err(|e| StateError::Io("locking the network store".into(), e))
}

fn path(nets: &Networks, network: &str) -> PathBuf {
    nets.dir().join(format!("{network}.state.json"))
}

/// The live attachments of a network (dead holders left out).
pub fn load(nets: &Networks, network: &str) -> Vec<Attachment> {
    let all: Vec<Attachment> = std::fs::read(path(nets, network))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    all.into_iter().filter(|a| a.holder.alive()).collect()
}

/// Writes a network's attachments (call with the lock held).
pub fn save(nets: &Networks, network: &str, list: &[Attachment]) -> Result<(), StateError> {
    let json = serde_json::to_vec_pretty(list).expect("attachments serialise");
    atomic_write(&path(nets, network), &json, 0o644)
        .map_err(|e| StateError::Io(format!("writing the state of network {network}"), e))
}

/// Picks an address for a container (call with the lock held): `wanted`
/// if free, else the lowest free one after the gateway.
pub fn allocate(
    net: &Network,
    live: &[Attachment],
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, StateError> {
    let subnet: Subnet = net.subnet()?;
    let gw = net.gateway();
    if let Some(ip) = wanted {
        if !subnet.contains(ip) || ip == subnet.network || ip == gw {
            return Err(StateError::OutOfSubnet(
                ip,
                net.name.clone(),
                net.subnet.clone(),
            ));
        }
        if let Some(a) = live.iter().find(|a| a.ip == ip) {
            return Err(StateError::Taken(ip, a.name.clone(), net.name.clone()));
        }
        return Ok(ip);
    }
    (1..=subnet.hosts())
        .map(|n| subnet.nth(n))
        .find(|ip| *ip != gw && !live.iter().any(|a| a.ip == *ip))
        .ok_or_else(|| StateError::Full(net.name.clone()))
}

/// Networks that have live attachments, with them (for the NAT rules).
pub fn all_live(nets: &Networks) -> Vec<(Network, Vec<Attachment>)> {
    nets.list()
        .into_iter()
        .map(|n| {
            let a = load(nets, &n.name);
            (n, a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network {
            name: "n".into(),
            id: String::new(),
            driver: "bridge".into(),
            network_interface: "b".into(),
            created: String::new(),
            subnet: "10.0.0.0/29".into(),
            gateway: "10.0.0.1".into(),
            internal: false,
            labels: Default::default(),
            dns_enabled: true,
        }
    }

    fn att(ip: &str) -> Attachment {
        Attachment {
            container_id: "c".into(),
            name: "c".into(),
            aliases: vec![],
            ip: ip.parse().unwrap(),
            holder: ProcessId::current().unwrap(),
            ports: vec![],
            hosts_file: None,
            host_interface: String::new(),
        }
    }

    #[test]
    fn allocation_skips_used_and_gateway() {
        let n = net();
        assert_eq!(allocate(&n, &[], None).unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        let used = vec![att("10.0.0.2"), att("10.0.0.3")];
        assert_eq!(
            allocate(&n, &used, None).unwrap(),
            Ipv4Addr::new(10, 0, 0, 4)
        );
        assert!(matches!(
            allocate(&n, &used, Some("10.0.0.3".parse().unwrap())),
            Err(StateError::Taken(..))
        ));
        assert!(matches!(
            allocate(&n, &[], Some("10.0.1.3".parse().unwrap())),
            Err(StateError::OutOfSubnet(..))
        ));
        let full: Vec<Attachment> = (2..=6).map(|i| att(&format!("10.0.0.{i}"))).collect();
        assert!(matches!(
            allocate(&n, &full, None),
            Err(StateError::Full(_))
        ));
    }
}

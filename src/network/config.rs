//! Network definitions: `ROOT/networks/NAME.json`, one per network, with
//! podman's fields. The default network (`berth`, 10.88.0.0/16 unless
//! containers.conf's `default_subnet` says otherwise) is written on first use.

use crate::util::fsutil::atomic_write;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "berth";

/// Why a network definition is refused or missing.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no such network {0:?}: create it with `berth network create {0}`, or list them with `berth network ls`")]
    NotFound(String),
    #[error("network {0:?} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: use letters, digits and _ . - (starting with a letter or digit)")]
    BadName(String),
    #[error("invalid subnet {0:?}: use an IPv4 CIDR such as 10.89.1.0/24 (prefix 8 to 30)")]
    BadSubnet(String),
    #[error("invalid gateway {0}: it must be a host address inside {1}")]
    BadGateway(String, String),
    #[error("subnet {0} overlaps network {1:?}: choose another --subnet")]
    Overlap(String, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// An IPv4 subnet in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, ConfigError> {
        let bad = || ConfigError::BadSubnet(s.into());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & Self::mask_of(prefix)),
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        u32::MAX << (32 - u32::from(prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, o: &Subnet) -> bool {
        self.contains(o.network) || o.contains(self.network)
    }

    /// The n-th address (1 is the usual gateway).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// Host addresses in the subnet (network and broadcast excluded).
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))) - 2
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One network, as `network inspect` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    /// The bridge on the host (root) or in the rootless network namespace.
    pub network_interface: String,
    pub created: String,
    pub subnet: String,
    pub gateway: String,
    /// No route out (and no NAT).
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Containers find each other by name on it (user-defined networks).
    #[serde(default)]
    pub dns_enabled: bool,
}

impl Network {
    pub fn subnet(&self) -> Result<Subnet, ConfigError> {
        Subnet::parse(&self.subnet)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// The network definitions of one berth root.
pub struct Networks {
    dir: PathBuf,
}

/// podman's rule for names.
pub fn valid_name(n: &str) -> bool {
    crate::util::names::valid(n)
}

/// A setting from containers.conf, as podman reads it: the file named by
/// CONTAINERS_CONF if set, else the user's (rootless), then the system's.
pub fn containers_conf(table: &str, key: &str) -> Option<String> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("CONTAINERS_CONF") {
        files.push(PathBuf::from(f));
    } else {
        if !nix::unistd::geteuid().is_root() {
            if let Some(h) = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            {
                files.push(h.join("containers/containers.conf"));
            }
        }
        files.push(PathBuf::from("/etc/containers/containers.conf"));
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(v) = text.parse::<toml::Table>() else {
            tracing::warn!("ignoring {}: not valid TOML", f.display());
            continue;
        };
        if let Some(s) = v
            .get(table)
            .and_then(|n| n.get(key))
            .and_then(|s| s.as_str())
        {
            return Some(s.to_string());
        }
    }
    None
}

fn configured_default_subnet() -> Option<String> {
    containers_conf("network", "default_subnet")
}

impl Networks {
    pub fn new(store_root: &Path) -> Networks {
        Networks {
            dir: store_root.join("networks"),
        }
    }

    /// Where per-network state (allocations) and the lock live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// One network; the default one is created on first use.
    pub fn get(&self, name: &str) -> Result<Network, ConfigError> {
        if !valid_name(name) {
            return Err(ConfigError::NotFound(name.into()));
        }
        match std::fs::read(self.path(name)) {
            Ok(d) => serde_json::from_slice(&d).map_err(|_| ConfigError::NotFound(name.into())),
            Err(_) if name == DEFAULT_NETWORK => {
                let subnet = configured_default_subnet().unwrap_or_else(|| "10.88.0.0/16".into());
                match self.create(name, Some(&subnet), None, false, BTreeMap::new()) {
                    Err(ConfigError::Exists(_)) => self.get(name),
                    r => r,
                }
            }
            Err(_) => Err(ConfigError::NotFound(name.into())),
        }
    }

    /// Every network, by name (the default one included).
    pub fn list(&self) -> Vec<Network> {
        let _ = self.get(DEFAULT_NETWORK);
        let mut v: Vec<Network> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                        if n.contains(".state") {
                            return None;
                        }
                        self.get(&n).ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a network: a free 10.89.N.0/24 and the next free bridge
    /// name unless given.
    pub fn create(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        internal: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<Network, ConfigError> {
        if !valid_name(name) {
            return Err(ConfigError::BadName(name.into()));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| ConfigError::Io("creating the network store".into(), e))?;
        let _lock = crate::util::lock::FileLock::exclusive(&self.dir.join("config.lock"))
            .map_err(|e| ConfigError::Io("locking the network store".into(), e))?;
        if self.path(name).exists() {
            return Err(ConfigError::Exists(name.into()));
        }
        let existing: Vec<Network> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                        serde_json::from_slice(&std::fs::read(self.path(&n)).ok()?).ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let taken: Vec<Subnet> = existing.iter().filter_map(|n| n.subnet().ok()).collect();
        let subnet = match subnet {
            Some(s) => {
                let s = Subnet::parse(s)?;
                if let Some(o) = existing
                    .iter()
                    .find(|n| n.subnet().is_ok_and(|x| x.overlaps(&s)))
                {
                    return Err(ConfigError::Overlap(s.to_string(), o.name.clone()));
                }
                s
            }
            None => (1..=255)
                .map(|i| Subnet {
                    network: Ipv4Addr::new(10, 89, i, 0),
                    prefix: 24,
                })
                .find(|s| !taken.iter().any(|t| t.overlaps(s)))
                .ok_or_else(|| ConfigError::BadSubnet("no free 10.89.N.0/24 left".into()))?,
        };
        let gateway = match gateway {
            Some(g) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| ConfigError::BadGateway(g.into(), subnet.to_string()))?;
                if !subnet.contains(ip) || ip == subnet.network {
                    return Err(ConfigError::BadGateway(g.into(), subnet.to_string()));
                }
                ip
            }
            None => subnet.nth(1),
        };
        let interface = if name == DEFAULT_NETWORK {
            "berth0".to_string()
        } else {
            (1..)
                .map(|i| format!("berth{i}"))
                .find(|b| !existing.iter().any(|n| &n.network_interface == b))
                .expect("an unused bridge name")
        };
        let n = Network {
            name: name.into(),
            id: crate::util::names::random_hex(),
            driver: "bridge".into(),
            network_interface: interface,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal,
            labels,
            dns_enabled: name != DEFAULT_NETWORK,
        };
        let json = serde_json::to_vec_pretty(&n).expect("network serialises");
        atomic_write(&self.path(name), &json, 0o644)
            .map_err(|e| ConfigError::Io("writing the network".into(), e))?;
        Ok(n)
    }

    /// Removes a definition (the caller checks it is unused).
    pub fn remove(&self, name: &str) -> Result<(), ConfigError> {
        self.get(name)?;
        std::fs::remove_file(self.path(name))
            .map_err(|e| ConfigError::Io(format!("removing network {name}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.88.3.7/16").unwrap();
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert!(s.contains("10.88.255.1".parse().unwrap()));
        assert!(!s.contains("10.89.0.1".parse().unwrap()));
        assert_eq!(s.nth(1), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(Subnet::parse("10.0.0.0/24").unwrap().hosts(), 254);
        assert!(Subnet::parse("10.0.0.0/33").is_err() && Subnet::parse("x/8").is_err());
        assert!(s.overlaps(&Subnet::parse("10.88.1.0/24").unwrap()));
    }

    #[test]
    fn create_picks_free_subnets_and_bridges() {
        let root = std::env::temp_dir().join(format!("berth-net-{}", std::process::id()));
        let nets = Networks::new(&root);
        let d = nets.get(DEFAULT_NETWORK).unwrap();
        assert_eq!(
            (d.network_interface.as_str(), d.dns_enabled),
            ("berth0", false)
        );
        let a = nets
            .create("a", None, None, false, BTreeMap::new())
            .unwrap();
        let b = nets.create("b", None, None, true, BTreeMap::new()).unwrap();
        assert_eq!(
            (a.subnet.as_str(), a.gateway.as_str()),
            ("10.89.1.0/24", "10.89.1.1")
        );
        assert_eq!(
            (b.subnet.as_str(), b.network_interface.as_str()),
            ("10.89.2.0/24", "berth2")
        );
        assert!(matches!(
            nets.create("c", Some("10.89.1.128/25"), None, false, BTreeMap::new()),
            Err(ConfigError::Overlap(..))
        ));
        assert!(matches!(
            nets.create(
                "c",
                Some("10.90.0.0/24"),
                Some("10.91.0.1"),
                false,
                BTreeMap::new()
            ),
            Err(ConfigError::BadGateway(..))
        ));
        assert_eq!(nets.list().len(), 3);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

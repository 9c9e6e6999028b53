//! The network layer's one error type: what failed while wiring a
//! container (bridges, namespaces, helpers, ports), phrased for the user.

use super::config::ConfigError;
use super::netlink::NetlinkError;
use std::net::Ipv4Addr;

/// Why an address could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("network {0:?} has no free address left")]
    Full(String),
    #[error("--ip {0} is not in network {1:?} ({2})")]
    OutOfSubnet(Ipv4Addr, String, String),
    #[error("--ip {0} is already used by container {1} on network {2:?}")]
    Taken(Ipv4Addr, String, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why networking could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A `-p`/`--publish` value that cannot be used.
    #[error("{0}")]
    BadPort(String),
    /// A host port another process holds.
    #[error("port {port}/{protocol} is already in use{holder}: publish another host port (-p OTHER:{container_port})")]
    PortInUse {
        port: u16,
        protocol: String,
        /// " by NAME (pid N)" when known.
        holder: String,
        container_port: u16,
    },
    /// `-p IP:...` with an address this host does not have.
    #[error("cannot publish on {ip}:{port}: {ip} is not an address of this host")]
    NotHostAddress { ip: std::net::Ipv4Addr, port: u16 },
    /// A helper program (pasta, slirp4netns, nft) is not installed.
    #[error("{0}")]
    Missing(&'static str),
    /// A helper program ran and said no.
    #[error("{tool} failed: {detail}")]
    Helper { tool: &'static str, detail: String },
    /// A link named like berth's bridge exists and is not a bridge.
    #[error("a network interface {0:?} exists and is not a bridge: remove it or give the network another interface name")]
    NotABridge(String),
    /// A process berth started or relies on went away.
    #[error("{0}")]
    Gone(&'static str),
}

/// Wraps an I/O error with what was being done, for `map_err`.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Io { what, source }
}

impl From<nix::Error> for NetworkError {
    fn from(e: nix::Error) -> Self {
        NetworkError::Io {
            what: "a system call".into(),
            source: e.into(),
        }
    }
}

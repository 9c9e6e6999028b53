//! Container networking: network definitions and address allocation, the
//! bridge and veth wiring (netlink), NAT and published ports (nftables, in
//! a table of berth's own), name resolution files, and pasta for rootless
//! containers. Knows nothing of images; the engine calls it around a
//! container's start and end.

pub mod bridge;
pub mod config;
pub mod error;
pub mod forward;
pub mod hosts;
pub mod netlink;
pub mod nft;
pub mod pasta;
pub mod ports;
pub mod rootless_netns;
pub mod slirp;
pub mod state;

pub use error::NetworkError;

//! berth: a daemonless container runner. The modules follow the layering in
//! DESIGN.md: `cli` on top, then `engine`, `image`, `runtime`, and the
//! low-level `namespaces`, `cgroups`, `network` and `monitor` pieces.

pub mod build;
pub mod cgroups;
pub mod cli;
pub mod engine;
pub mod image;
pub mod monitor;
pub mod namespaces;
pub mod network;
pub mod runtime;
pub mod util;

//! Small helpers shared by every layer: atomic files, digests, locks and
//! human-readable sizes and times. Nothing here knows about containers.

pub mod digest;
pub mod events;
pub mod fdtree;
pub mod fsutil;
pub mod human;
pub mod lock;
pub mod names;
pub mod process;
pub mod secure_path;

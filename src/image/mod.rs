//! Images: references, registries, the content store and layer unpacking.
//! Knows nothing of containers; `engine` builds on it.

pub mod auth;
pub mod manifest;
pub mod reference;
pub mod registries_conf;
pub mod registry;
pub mod store;
pub mod unpack;

//! Images: references, registries, the content store and layer unpacking.
//! Knows nothing of containers; `engine` builds on it.

pub mod apply;
pub mod archive;
pub mod auth;
pub mod changes;
pub mod commit;
pub mod diff;
pub mod import;
pub mod ingest;
pub mod inspect;
pub mod layer_stack;
pub mod lists;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registries_conf;
pub mod registry;
pub mod store;
pub mod unpack;

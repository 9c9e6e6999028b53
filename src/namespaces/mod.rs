//! Linux namespaces: the user namespace a rootless berth works in, and a
//! container's own namespaces as its spec asks for them.

pub mod container;
pub mod idmap;
pub mod userns;

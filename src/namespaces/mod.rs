//! Linux namespaces: the user namespace a rootless berth works in, and
//! (with the run issue) the container's own namespaces and mounts.

pub mod idmap;
pub mod userns;

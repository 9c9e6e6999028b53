//! A container's namespaces, read from its runtime spec as data: which
//! ones `clone` makes, which ones named by path the child joins before its
//! setup, whether it gets a cgroup namespace (made after the cgroup is
//! joined) and the id maps of a user namespace of its own. Unit tests read
//! the plan with no privileges; the runtime carries it out.

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Why a spec's namespaces cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("joining an existing {0} namespace is not supported")]
    UnsupportedJoin(String),
    #[error("opening namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A namespace named by path, to join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    pub path: PathBuf,
    pub flag: CloneFlags,
}

/// What the container's first process does about namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Namespaces `clone` makes.
    pub clone_flags: CloneFlags,
    /// Namespaces named by path, joined in this order before the setup.
    pub joins: Vec<Join>,
    /// A cgroup namespace, made after the process is in its cgroup.
    pub cgroupns: bool,
    /// uid_map and gid_map texts when it has a user namespace of its own
    /// (`--userns keep-id`); else it runs in the caller's.
    pub id_maps: Option<(String, String)>,
}

impl NamespacePlan {
    /// Reads the spec's `linux.namespaces` and id mappings.
    pub fn from_spec(spec: &Spec) -> Result<NamespacePlan, NamespaceError> {
        let linux = spec.linux().as_ref();
        let nss = linux
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let id_maps = linux.and_then(|linux| {
            let text = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
                m.as_ref().filter(|v| !v.is_empty()).map(|v| {
                    v.iter()
                        .map(|l| format!("{} {} {}\n", l.container_id(), l.host_id(), l.size()))
                        .collect::<String>()
                })
            };
            Some((text(linux.uid_mappings())?, text(linux.gid_mappings())?))
        });
        let mut plan = NamespacePlan {
            clone_flags: CloneFlags::empty(),
            joins: Vec::new(),
            cgroupns: false,
            id_maps: None,
        };
        for ns in nss {
            if let Some(path) = ns.path() {
                let flag = match ns.typ() {
                    LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                    LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                    LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                    other => return Err(NamespaceError::UnsupportedJoin(format!("{other:?}"))),
                };
                plan.joins.push(Join {
                    path: path.clone(),
                    flag,
                });
                continue;
            }
            plan.clone_flags |= match ns.typ() {
                LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
                LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
                LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                // Its own user namespace only with id maps; else the
                // caller's (a rootless berth's store namespace).
                LinuxNamespaceType::User if id_maps.is_some() => CloneFlags::CLONE_NEWUSER,
                LinuxNamespaceType::Cgroup => {
                    plan.cgroupns = true;
                    CloneFlags::empty()
                }
                _ => CloneFlags::empty(),
            };
        }
        if plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
            plan.id_maps = id_maps;
        }
        Ok(plan)
    }

    /// Opens the namespaces to join (in the parent: the child only setns).
    pub fn open_joins(&self) -> Result<Vec<(OwnedFd, CloneFlags, String)>, NamespaceError> {
        self.joins
            .iter()
            .map(|j| {
                let f = std::fs::File::open(&j.path).map_err(|source| NamespaceError::Open {
                    path: j.path.clone(),
                    source,
                })?;
                Ok((
                    OwnedFd::from(f),
                    j.flag,
                    format!("namespace {}", j.path.display()),
                ))
            })
            .collect()
    }
}

/// In the child of a container with its own user namespace, once the
/// parent wrote the maps: become the namespace's root. False on failure.
pub fn become_root() -> bool {
    // SAFETY: plain id syscalls.
    unsafe {
        libc::setresgid(0, 0, 0) == 0
            && libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresuid(0, 0, 0) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": linux,
        }))
        .unwrap()
    }

    #[test]
    fn new_namespaces_and_the_cgroup_one_last() {
        let p = NamespacePlan::from_spec(&spec(serde_json::json!({"namespaces": [
            {"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"},
            {"type": "network"}, {"type": "cgroup"}, {"type": "user"}
        ]})))
        .unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNET
        );
        assert!(p.cgroupns && p.joins.is_empty() && p.id_maps.is_none());
    }

    #[test]
    fn a_network_named_by_path_is_joined_not_made() {
        let p = NamespacePlan::from_spec(&spec(serde_json::json!({"namespaces": [
            {"type": "pid"}, {"type": "network", "path": "/proc/42/ns/net"}
        ]})))
        .unwrap();
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWPID);
        assert_eq!(
            p.joins,
            [Join {
                path: "/proc/42/ns/net".into(),
                flag: CloneFlags::CLONE_NEWNET
            }]
        );
        let pid = NamespacePlan::from_spec(&spec(serde_json::json!({"namespaces": [
            {"type": "pid", "path": "/proc/42/ns/pid"}
        ]})));
        assert!(matches!(pid, Err(NamespaceError::UnsupportedJoin(_))));
    }

    #[test]
    fn a_user_namespace_of_its_own_only_with_maps() {
        let p = NamespacePlan::from_spec(&spec(serde_json::json!({
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1000}],
            "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1000}],
        })))
        .unwrap();
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWUSER);
        assert_eq!(
            p.id_maps,
            Some(("0 1 1000\n".to_string(), "0 1 1000\n".to_string()))
        );
    }
}

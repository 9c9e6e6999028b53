//! A cgroup per container: cgroup v2 when the host has a unified hierarchy
//! with controllers, cgroup v1 otherwise (hybrid hosts such as this
//! project's machines). One trait hides which.

pub mod devices;
mod v1;
mod v2;

pub use devices::DeviceRule;

use std::io;
use std::path::{Path, PathBuf};

/// Limits a container asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<i64>,
    pub cpu_period: u64,
    /// Maximum number of processes.
    pub pids: Option<i64>,
    /// The devices the container may use; None: no device cgroup
    /// (`--privileged`, rootless, which cannot have one).
    #[serde(default)]
    pub devices: Option<Vec<DeviceRule>>,
}

impl Resources {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu_quota.is_none() && self.pids.is_none()
    }
}

/// Why a cgroup could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A container's cgroup.
pub trait Cgroup: Send {
    /// Moves a process into the cgroup.
    fn add(&self, pid: i32) -> Result<(), CgroupError>;
    /// Whether the kernel killed a process here for lack of memory.
    fn oom_killed(&self) -> bool;
    /// Kills every process still inside (used on teardown).
    fn kill_all(&self);
    /// Removes the cgroup (after its processes are gone).
    fn destroy(&self);
    /// Where it lives, for `inspect` and messages.
    fn path(&self) -> String;
}

/// Which cgroup hierarchy the host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    V2,
    V1,
}

/// Detects the hierarchy: v2 if `/sys/fs/cgroup` is cgroup2, v1 otherwise.
pub fn detect() -> Mode {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Mode::V2
    } else {
        Mode::V1
    }
}

/// Rootless on cgroup v2: the parent for containers inside the subtree
/// the user was delegated (systemd's `user@UID.service`, owned by the
/// user), as `REL/berth`. It is the highest ancestor of this process's own
/// cgroup that the user may write to, so the container's process can be
/// moved there. None when there is no such subtree (then limits cannot be
/// set, as with podman).
pub fn delegated_parent() -> Option<String> {
    if detect() != Mode::V2 {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    delegated_root(Path::new("/sys/fs/cgroup"), own).map(|rel| {
        if rel.is_empty() {
            "berth".to_string()
        } else {
            format!("{rel}/berth")
        }
    })
}

fn writable(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access on a valid C string.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The highest ancestor of `own` (relative to `root`) whose processes and
/// controllers the caller may change, relative to `root`.
fn delegated_root(root: &Path, own: &str) -> Option<String> {
    let parts: Vec<&str> = own.split('/').filter(|p| !p.is_empty()).collect();
    (0..=parts.len()).map(|n| parts[..n].join("/")).find(|rel| {
        let dir = root.join(rel);
        !rel.is_empty()
            && writable(&dir.join("cgroup.procs"))
            && writable(&dir.join("cgroup.subtree_control"))
            && writable(&dir)
    })
}

/// Creates the cgroup `parent/name` with the limits; `parent` is relative
/// to the hierarchy root (e.g. `berth`).
pub fn create(parent: &str, name: &str, res: &Resources) -> Result<Box<dyn Cgroup>, CgroupError> {
    match detect() {
        Mode::V2 => Ok(Box::new(v2::V2Cgroup::create(
            Path::new("/sys/fs/cgroup"),
            parent,
            name,
            res,
        )?)),
        Mode::V1 => Ok(Box::new(v1::V1Cgroup::create(
            Path::new("/sys/fs/cgroup"),
            parent,
            name,
            res,
        )?)),
    }
}

/// The cgroup.procs files of an existing container cgroup (v2 dir, or one
/// per v1 controller), for processes that join it later (`exec`).
pub fn procs_files(parent: &str, name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(parent).join(name)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join(parent).join(name)));
    }
    dirs.into_iter()
        .map(|d| d.join("cgroup.procs"))
        .filter(|p| p.exists())
        .collect()
}

/// Freezes (or thaws) every process of a container: cgroup.freeze on v2,
/// freezer.state on v1.
pub fn freeze(parent: &str, name: &str, frozen: bool) -> Result<(), CgroupError> {
    let root = Path::new("/sys/fs/cgroup");
    let v2 = root.join(parent).join(name).join("cgroup.freeze");
    if v2.exists() {
        return write(&v2, if frozen { "1" } else { "0" });
    }
    let v1 = root
        .join("freezer")
        .join(parent)
        .join(name)
        .join("freezer.state");
    write(&v1, if frozen { "FROZEN" } else { "THAWED" })
}

/// Kills what is left in `parent/name` and removes it from every
/// hierarchy (after a berth that owned it was killed).
pub fn remove_leftover(parent: &str, name: &str) {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(parent).join(name)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join(parent).join(name)));
    }
    for d in dirs.iter().filter(|d| d.is_dir()) {
        kill_listed(&d.join("cgroup.procs"));
        remove_dir(d);
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_err(path))
}

pub(crate) fn pids_in(procs: &Path) -> Vec<i32> {
    std::fs::read_to_string(procs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Kills the processes listed in a cgroup.procs file until none are left.
pub(crate) fn kill_listed(procs: &Path) {
    for _ in 0..50 {
        let pids = pids_in(procs);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            // SAFETY: plain kill.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// rmdir with a few retries (the kernel frees a cgroup shortly after its
/// last process is reaped).
pub(crate) fn remove_dir(p: &PathBuf) {
    for _ in 0..50 {
        match std::fs::remove_dir(p) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

impl Resources {
    /// The limits a runtime spec's `linux.resources` asks for. Device
    /// rules: the allow entries after the spec's leading deny-all; no
    /// `devices` list means no device cgroup.
    pub fn from_oci(r: &oci_spec::runtime::LinuxResources) -> Resources {
        let devices = r.devices().as_ref().map(|list| {
            list.iter()
                .filter(|d| d.allow())
                .map(|d| DeviceRule {
                    kind: match d.typ() {
                        Some(oci_spec::runtime::LinuxDeviceType::B) => 'b',
                        Some(oci_spec::runtime::LinuxDeviceType::C)
                        | Some(oci_spec::runtime::LinuxDeviceType::U) => 'c',
                        _ => 'a',
                    },
                    major: d.major().map(|m| m as u32),
                    minor: d.minor().map(|m| m as u32),
                    access: d.access().clone().unwrap_or_else(|| "rwm".into()),
                })
                .collect()
        });
        Resources {
            memory: r.memory().as_ref().and_then(|m| m.limit()),
            cpu_quota: r.cpu().as_ref().and_then(|c| c.quota()),
            cpu_period: r.cpu().as_ref().and_then(|c| c.period()).unwrap_or(100_000),
            pids: r.pids().as_ref().map(|p| p.limit()),
            devices,
        }
    }
}

/// `linux.cgroupsPath` ("/berth/berth-ID") as (parent, name).
pub fn split_cgroups_path(path: &str) -> Option<(String, String)> {
    let path = path.trim_matches('/');
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    (!name.is_empty()).then(|| (parent.to_string(), name.to_string()))
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn limits_read_from_a_runtime_spec() {
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864},
            "cpu": {"quota": 50000, "period": 100000},
            "pids": {"limit": 64},
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"}
            ]
        }))
        .unwrap();
        let res = Resources::from_oci(&r);
        assert_eq!(res.memory, Some(64 << 20));
        assert_eq!(
            (res.cpu_quota, res.cpu_period, res.pids),
            (Some(50000), 100000, Some(64))
        );
        assert_eq!(
            res.devices.unwrap(),
            [
                DeviceRule::parse("c 1:3 rwm").unwrap(),
                DeviceRule::parse("c 136:* rwm").unwrap()
            ]
        );
        let none: oci_spec::runtime::LinuxResources = serde_json::from_str("{}").unwrap();
        assert!(Resources::from_oci(&none).devices.is_none());
        assert_eq!(
            split_cgroups_path("/berth/berth-1"),
            Some(("berth".into(), "berth-1".into()))
        );
        assert_eq!(split_cgroups_path("x"), Some(("".into(), "x".into())));
    }
}

//! Container records on disk: one directory per container under
//! `ROOT/containers/ID/` (record, overlay upper/work dirs, generated /etc
//! files), and a name index of symlinks `ROOT/containers/names/NAME -> ID`
//! whose atomic creation makes names unique even between racing commands.

use crate::image::store::{io_err, StoreError};
use crate::util::fsutil::{atomic_write, create_dir_all_mode, remove_any};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("the container name {0:?} is already in use by {1}: remove that container (berth rm {0}) or choose another name")]
    NameInUse(String, String),
    #[error("invalid container name {0:?}: names are [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    BadName(String),
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{0} matches more than one container; use more of the id")]
    Ambiguous(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What berth remembers about a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    pub created: String,
    /// created, running, exited
    pub state: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Unpacked layers the container's rootfs uses (kept by image gc).
    #[serde(default)]
    pub layers: Vec<String>,
    /// The berth process watching the container, and its start time (so a
    /// reused pid is not mistaken for it).
    #[serde(default)]
    pub monitor: Option<ProcessId>,
    /// The container's cgroup as (parent, name), to remove it if berth was
    /// killed before it could.
    #[serde(default)]
    pub cgroup: Option<(String, String)>,
    /// The limits its cgroup gets (the monitor creates it for detached runs).
    #[serde(default)]
    pub resources: Option<crate::cgroups::Resources>,
    /// The container's first process, while it runs.
    #[serde(default)]
    pub pid: Option<i32>,
    /// Remove the container when it exits (`--rm`).
    #[serde(default)]
    pub remove: bool,
    /// Where its root filesystem is mounted (inside its mount namespace).
    #[serde(default)]
    pub rootfs_mount: Option<String>,
    /// Signal `stop` sends first.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--restart` policy, carried out by the monitor.
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    /// Frozen by `pause`.
    #[serde(default)]
    pub paused: bool,
    /// k8s-file (default) or none.
    #[serde(default)]
    pub log_driver: Option<String>,
    /// Rotate the log past this many bytes.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// The image's labels with `--label` on top.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The container has a terminal (`-t`); its monitor holds the master.
    #[serde(default)]
    pub tty: bool,
    /// Its stdin stays open for attached clients (`-i`).
    #[serde(default)]
    pub interactive: bool,
    /// Named and anonymous volumes it mounts (a volume in use is kept).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The anonymous ones, removed with it by `rm -v` and `--rm`.
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// Its -v/--mount/--tmpfs mounts as resolved (for `--volumes-from`).
    #[serde(default)]
    pub mounts: Vec<super::spec::UserMount>,
    /// Its networking as asked, and while it runs, as given.
    #[serde(default)]
    pub net: super::netsetup::NetConfig,
}

pub use crate::util::process::ProcessId;

impl ContainerRecord {
    /// Running, with its berth process still alive (not a stale record left
    /// by a berth that was killed).
    pub fn is_running(&self) -> bool {
        self.state == "running" && self.monitor.is_some_and(|m| m.alive())
    }
}

/// The containers directory of a store.
pub struct Containers {
    dir: PathBuf,
}

const ADJECTIVES: [&str; 24] = [
    "brave", "calm", "clever", "eager", "fond", "gentle", "happy", "jolly", "keen", "kind",
    "lucid", "merry", "nimble", "proud", "quiet", "quick", "relaxed", "sharp", "steady", "sunny",
    "tender", "vivid", "wise", "zealous",
];
const NOUNS: [&str; 24] = [
    "albatross",
    "badger",
    "beacon",
    "buoy",
    "cormorant",
    "dolphin",
    "ferry",
    "gull",
    "harbor",
    "heron",
    "keel",
    "lighthouse",
    "mariner",
    "narwhal",
    "otter",
    "pelican",
    "pier",
    "puffin",
    "quay",
    "schooner",
    "seal",
    "tern",
    "walrus",
    "wharf",
];

/// A new container id.
pub fn random_id() -> String {
    crate::util::names::random_hex()
}

fn valid_name(n: &str) -> bool {
    crate::util::names::valid(n)
}

impl Containers {
    pub fn new(store_root: &Path) -> Containers {
        Containers {
            dir: store_root.join("containers"),
        }
    }

    fn names(&self) -> PathBuf {
        self.dir.join("names")
    }

    /// The directory of one container.
    /// The berth root this store lives in (for the volume store beside it).
    pub fn store_root(&self) -> PathBuf {
        self.dir.parent().map(PathBuf::from).unwrap_or_default()
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Reserves a name (given or generated) for a new id. Exactly one of
    /// two racing callers gets a given name.
    pub fn claim(&self, id: &str, name: Option<&str>) -> Result<String, ContainerError> {
        create_dir_all_mode(&self.names(), 0o700).map_err(io_err("creating the containers dir"))?;
        if let Some(n) = name {
            if !valid_name(n) {
                return Err(ContainerError::BadName(n.into()));
            }
            return match std::os::unix::fs::symlink(id, self.names().join(n)) {
                Ok(()) => {
                    create_dir_all_mode(&self.dir(id), 0o700)
                        .map_err(io_err("creating the container dir"))?;
                    Ok(n.to_string())
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let other = std::fs::read_link(self.names().join(n))
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    Err(ContainerError::NameInUse(n.into(), other))
                }
                Err(e) => Err(io_err("claiming the container name")(e).into()),
            };
        }
        let seed = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
        for attempt in 0..1000u64 {
            let x = seed.wrapping_add(attempt.wrapping_mul(7919));
            let mut n = format!(
                "{}_{}",
                ADJECTIVES[(x % 24) as usize],
                NOUNS[((x / 24) % 24) as usize]
            );
            if attempt >= 576 {
                n.push_str(&format!("{attempt}"));
            }
            if std::os::unix::fs::symlink(id, self.names().join(&n)).is_ok() {
                create_dir_all_mode(&self.dir(id), 0o700)
                    .map_err(io_err("creating the container dir"))?;
                return Ok(n);
            }
        }
        Err(ContainerError::NameInUse(
            "generated".into(),
            "other containers".into(),
        ))
    }

    /// Writes a record atomically.
    pub fn save(&self, r: &ContainerRecord) -> Result<(), ContainerError> {
        let data = serde_json::to_vec_pretty(r).expect("record serialises");
        atomic_write(&self.dir(&r.id).join("container.json"), &data, 0o600)
            .map_err(io_err("writing the container record"))?;
        Ok(())
    }

    /// Every container with a record.
    pub fn list(&self) -> Vec<ContainerRecord> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_name() != "names")
            .filter_map(|e| std::fs::read(e.path().join("container.json")).ok())
            .filter_map(|d| serde_json::from_slice(&d).ok())
            .collect()
    }

    /// Finds a container by name, id or unique id prefix.
    pub fn find(&self, q: &str) -> Result<ContainerRecord, ContainerError> {
        if let Ok(id) = std::fs::read_link(self.names().join(q)) {
            let id = id.display().to_string();
            if let Ok(d) = std::fs::read(self.dir(&id).join("container.json")) {
                if let Ok(r) = serde_json::from_slice(&d) {
                    return Ok(r);
                }
            }
        }
        let hits: Vec<ContainerRecord> = self
            .list()
            .into_iter()
            .filter(|r| r.id.starts_with(q))
            .collect();
        match hits.len() {
            0 => Err(ContainerError::NotFound(q.into())),
            1 => Ok(hits.into_iter().next().expect("one")),
            _ => Err(ContainerError::Ambiguous(q.into())),
        }
    }

    /// Moves a container to another (free) name.
    pub fn rename(&self, r: &ContainerRecord, new: &str) -> Result<(), ContainerError> {
        if !valid_name(new) {
            return Err(ContainerError::BadName(new.into()));
        }
        match std::os::unix::fs::symlink(&r.id, self.names().join(new)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other = std::fs::read_link(self.names().join(new))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(ContainerError::NameInUse(new.into(), other));
            }
            Err(e) => return Err(io_err("claiming the container name")(e).into()),
        }
        let mut updated = r.clone();
        updated.name = new.to_string();
        self.save(&updated)?;
        let _ = std::fs::remove_file(self.names().join(&r.name));
        Ok(())
    }

    /// Removes a container's directory and every name that points at it.
    pub fn remove(&self, id: &str, name: &str) -> Result<(), ContainerError> {
        let points_here = |link: &Path| {
            std::fs::read_link(link)
                .map(|t| t.display().to_string() == id)
                .unwrap_or(false)
        };
        // The caller's name, and the record's own in case a rename the
        // caller did not see changed it (one read, not a scan of every
        // name: removal must not grow with the number of containers).
        let current = std::fs::read(self.dir(id).join("container.json"))
            .ok()
            .and_then(|d| serde_json::from_slice::<ContainerRecord>(&d).ok())
            .map(|r| r.name);
        for n in std::iter::once(name).chain(current.as_deref()) {
            let link = self.names().join(n);
            if points_here(&link) {
                let _ = std::fs::remove_file(&link);
            }
        }
        remove_any(&self.dir(id)).map_err(io_err("removing the container dir"))?;
        Ok(())
    }
}

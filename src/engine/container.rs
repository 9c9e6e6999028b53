//! Container records on disk: one directory per container under
//! `ROOT/containers/ID/` (record, overlay upper/work dirs, generated /etc
//! files), and a name index of symlinks `ROOT/containers/names/NAME -> ID`
//! whose atomic creation makes names unique even between racing commands.
//! Every change to a record after it is made is a read-modify-write under
//! the container's own lock (`update`), so two berth processes (a monitor
//! recording an exit, `network connect`, `pause`) never lose each other's
//! changes.

use crate::util::events::Event;
use crate::util::fsutil::{atomic_write, create_dir_all_mode, remove_any};
use crate::util::lock::FileLock;
use std::path::{Path, PathBuf};

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("the container name {0:?} is already in use by {1}: remove that container (berth rm {0}) or choose another name")]
    NameInUse(String, String),
    #[error("invalid container name {0:?}: names are [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    BadName(String),
    #[error("no container with name or ID \"{0}\" found: no such container")]
    NotFound(String),
    #[error("{0} matches more than one container; use more of the id")]
    Ambiguous(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Wraps an I/O error with what berth was doing, for `map_err`.
fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

pub use super::record::{ContainerRecord, ProcessId, State};

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

    /// Where a container's log lives.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join("userdata/ctr.log")
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
                Err(e) => Err(io_err("claiming the container name")(e)),
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

    /// Writes a new container's first record (its name is claimed, nobody
    /// else knows its id yet). Later changes go through `update`.
    pub fn create(&self, r: &ContainerRecord) -> Result<(), ContainerError> {
        self.write(r)?;
        self.note(r, "create");
        Ok(())
    }

    /// Records a container event (`start`, `died`, `kill`, …) in the
    /// store's journal, with the image and labels podman puts there.
    pub fn note(&self, r: &ContainerRecord, status: &str) {
        let mut e = Event::now("container", status, &r.id, &r.name);
        e.image = r.image.clone();
        e.attributes = Some(r.labels.clone());
        crate::util::events::record(&self.store_root(), &e);
    }

    /// Changes a record under the container's lock: reads the newest one,
    /// lets `f` change it, writes it back. What `f` returns is passed on.
    /// A container removed meanwhile is `NotFound`.
    pub fn update<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord) -> T,
    ) -> Result<T, ContainerError> {
        self.try_update(id, |r| Ok(f(r)))
    }

    /// Like `update`, for changes that may refuse (nothing is written then).
    pub fn try_update<T, E: From<ContainerError>>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self.lock(id)?;
        let mut r = self
            .read(id)
            .ok_or_else(|| ContainerError::NotFound(id.into()))?;
        let out = f(&mut r)?;
        self.write(&r)?;
        Ok(out)
    }

    /// The container's lock (its directory's `lock` file; a removed
    /// container has none and is `NotFound`).
    pub fn lock(&self, id: &str) -> Result<FileLock, ContainerError> {
        if !self.dir(id).is_dir() {
            return Err(ContainerError::NotFound(id.into()));
        }
        FileLock::exclusive(&self.dir(id).join("lock")).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ContainerError::NotFound(id.into())
            } else {
                io_err("locking the container record")(e)
            }
        })
    }

    fn read(&self, id: &str) -> Option<ContainerRecord> {
        let d = std::fs::read(self.dir(id).join("container.json")).ok()?;
        serde_json::from_slice(&d).ok()
    }

    fn write(&self, r: &ContainerRecord) -> Result<(), ContainerError> {
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

    /// The container created last (podman's `--latest`).
    pub fn latest(&self) -> Option<ContainerRecord> {
        self.list()
            .into_iter()
            .max_by(|a, b| a.created.cmp(&b.created))
    }

    /// Finds a container by name, id or unique id prefix.
    pub fn find(&self, q: &str) -> Result<ContainerRecord, ContainerError> {
        if let Ok(id) = std::fs::read_link(self.names().join(q)) {
            if let Some(r) = self.read(&id.display().to_string()) {
                return Ok(r);
            }
        }
        // A full id is its directory's name: one read, not a scan (the
        // start path looks containers up by id).
        if q.len() == 64 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(r) = self.read(q) {
                return Ok(r);
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
            Err(e) => return Err(io_err("claiming the container name")(e)),
        }
        let old = match self.update(&r.id, |rec| std::mem::replace(&mut rec.name, new.into())) {
            Ok(old) => old,
            Err(e) => {
                let _ = std::fs::remove_file(self.names().join(new));
                return Err(e);
            }
        };
        let _ = std::fs::remove_file(self.names().join(old));
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
        let record = std::fs::read(self.dir(id).join("container.json"))
            .ok()
            .and_then(|d| serde_json::from_slice::<ContainerRecord>(&d).ok());
        let current = record.as_ref().map(|r| r.name.clone());
        for n in std::iter::once(name).chain(current.as_deref()) {
            let link = self.names().join(n);
            if points_here(&link) {
                let _ = std::fs::remove_file(&link);
            }
        }
        // Under its lock, so no update writes into a directory on its way out.
        let _lock = self.lock(id);
        remove_any(&self.dir(id)).map_err(io_err("removing the container dir"))?;
        if let Some(r) = &record {
            self.note(r, "remove");
        }
        Ok(())
    }
}

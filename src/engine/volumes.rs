//! Named volumes: directories under `ROOT/volumes/NAME/_data` that outlive
//! containers (podman's `local` driver). A volume's record sits beside its
//! data; which containers use it is read from the container records, so
//! there is no second index to fall out of step.

use super::container::Containers;
use crate::util::fsutil::atomic_write;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("no volume with name {0:?} found: no such volume: create it with `berth volume create {0}`, or list them with `berth volume ls`")]
    NotFound(String),
    #[error("volume {0:?} already exists")]
    Exists(String),
    #[error("invalid volume name {0:?}: use letters, digits and _ . - (starting with a letter or digit)")]
    BadName(String),
    #[error("volume {name} is being used by the following container(s): {users}: volume is being used: remove them first, or use -f")]
    InUse { name: String, users: String },
    #[error("unsupported volume option {0:?}: the local driver takes none (o=, type=, device= need mount privileges berth does not use)")]
    BadOption(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let what = what.into();
    move |e| VolumeError::Io(what, e)
}

/// What berth remembers about a volume (podman's inspect fields).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, image VOLUME): `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
}

/// The volume store of one berth root.
pub struct Volumes {
    dir: PathBuf,
}

/// Volume names follow podman's rule.
pub fn valid_name(n: &str) -> bool {
    crate::util::names::valid(n)
}

impl Volumes {
    pub fn new(store_root: &Path) -> Volumes {
        Volumes {
            dir: store_root.join("volumes"),
        }
    }

    fn lock(&self) -> Result<crate::util::lock::FileLock, VolumeError> {
        std::fs::create_dir_all(&self.dir).map_err(io("creating the volume store"))?;
        crate::util::lock::FileLock::exclusive(&self.dir.join("volumes.lock"))
            .map_err(io("locking the volume store"))
    }

    /// Where a volume's files are.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    /// Creates a volume; `exists_ok` makes it a no-op for an existing one
    /// (`-v NAME:/path` on first use).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
        exists_ok: bool,
    ) -> Result<VolumeRecord, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::BadName(name.into()));
        }
        if let Some(k) = options.keys().next() {
            return Err(VolumeError::BadOption(k.clone()));
        }
        let _l = self.lock()?;
        if let Ok(r) = self.get(name) {
            return if exists_ok {
                Ok(r)
            } else {
                Err(VolumeError::Exists(name.into()))
            };
        }
        // Built beside the store and renamed in, so a crash leaves no half volume.
        let tmp = self.dir.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("_data")).map_err(io("creating the volume"))?;
        let r = VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            labels,
            options,
            anonymous,
        };
        let json = serde_json::to_vec_pretty(&r).expect("volume record serialises");
        atomic_write(&tmp.join("volume.json"), &json, 0o644)
            .map_err(io("writing the volume record"))?;
        std::fs::rename(&tmp, self.dir.join(name)).map_err(io("creating the volume"))?;
        Ok(r)
    }

    /// One volume's record.
    pub fn get(&self, name: &str) -> Result<VolumeRecord, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::NotFound(name.into()));
        }
        let data = std::fs::read(self.record_path(name))
            .map_err(|_| VolumeError::NotFound(name.into()))?;
        serde_json::from_slice(&data).map_err(|_| VolumeError::NotFound(name.into()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<VolumeRecord> {
        let mut v: Vec<VolumeRecord> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| self.get(e.file_name().to_str()?).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Names of the containers that use a volume.
    pub fn users(&self, containers: &Containers, name: &str) -> Vec<String> {
        containers
            .list()
            .into_iter()
            .filter(|c| c.volumes.iter().any(|v| v == name))
            .map(|c| c.name)
            .collect()
    }

    /// Removes a volume that no container uses (the caller removes users
    /// first for `-f`).
    pub fn remove(&self, containers: &Containers, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let _l = self.lock()?;
        // podman's message names them by id.
        let users: Vec<String> = containers
            .list()
            .into_iter()
            .filter(|c| c.volumes.iter().any(|v| v == name))
            .map(|c| c.id)
            .collect();
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.into(),
                users: users.join(", "),
            });
        }
        // Renamed away first: a crash mid-delete leaves no half volume under its name.
        let doomed = self.dir.join(format!(".rm-{name}-{}", std::process::id()));
        std::fs::rename(self.dir.join(name), &doomed).map_err(io("removing the volume"))?;
        crate::util::fsutil::remove_any(&doomed).map_err(io("removing the volume"))
    }
}

/// Checks `--label`/`--opt` KEY=VALUE pairs into a map.
pub fn pairs(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The mounts of a new container with its volumes resolved.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Every mount as the spec takes it (volumes are binds of their dirs).
    pub mounts: Vec<super::record::UserMount>,
    /// Volumes the container uses, and which of them are its own anonymous ones.
    pub volumes: Vec<String>,
    pub anonymous: Vec<String>,
}

/// Resolves `-v`/`--mount` volumes (created on first use), `--volumes-from`
/// and the image's VOLUMEs (anonymous volumes where no mount covers them).
pub fn resolve(
    vols: &Volumes,
    containers: &Containers,
    requested: Vec<super::record::UserMount>,
    volumes_from: &[String],
    image_volumes: &[String],
    owner: (u32, u32),
) -> Result<Resolved, VolumeError> {
    let mut out = Resolved::default();
    let mut wanted = requested;
    for from in volumes_from {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
            _ => (from.as_str(), None),
        };
        let other = containers.find(name).map_err(|e| {
            VolumeError::Io(
                format!("--volumes-from {from}"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        for m in other.mounts.iter().filter(|m| m.kind == "bind") {
            if wanted.iter().any(|w| w.destination == m.destination) {
                continue;
            }
            let mut m = m.clone();
            if let Some(mode) = mode {
                m.options.retain(|o| o != "ro" && o != "rw");
                m.options.push(mode.into());
            }
            // Its volumes are in use by this container too.
            out.volumes.extend(
                other
                    .volumes
                    .iter()
                    .filter(|v| m.source == vols.data(v).display().to_string())
                    .cloned(),
            );
            wanted.push(m);
        }
    }
    for dest in image_volumes {
        let dest = dest.trim_end_matches('/');
        let dest = if dest.is_empty() { "/" } else { dest };
        if !wanted
            .iter()
            .any(|w| w.destination.trim_end_matches('/') == dest)
        {
            wanted.push(super::record::UserMount {
                destination: dest.into(),
                kind: "volume".into(),
                source: String::new(),
                options: vec!["rbind".into()],
            });
        }
    }
    for mut m in wanted {
        if m.kind == "volume" {
            let anonymous = m.source.is_empty();
            let name = if anonymous {
                super::container::random_id()
            } else {
                m.source.clone()
            };
            vols.create(&name, BTreeMap::new(), BTreeMap::new(), anonymous, true)?;
            let data = vols.data(&name);
            let nocopy = m.options.iter().any(|o| o == "nocopy");
            m.options.retain(|o| o != "nocopy" && o != "copy");
            if !nocopy {
                m.options.push(crate::runtime::plan::COPY_UP.into());
            }
            m.kind = "bind".into();
            m.source = data.display().to_string();
            if anonymous {
                out.anonymous.push(name.clone());
            }
            out.volumes.push(name);
        }
        if m.options.iter().any(|o| o == "U") {
            m.options.retain(|o| o != "U");
            m.options.push(format!(
                "{}={}:{}",
                crate::runtime::plan::CHOWN,
                owner.0,
                owner.1
            ));
        }
        out.mounts.push(m);
    }
    out.volumes.sort();
    out.volumes.dedup();
    Ok(out)
}

/// Removes a container's anonymous volumes that no other container uses
/// (`rm -v`, `--rm`).
pub fn remove_anonymous(vols: &Volumes, containers: &Containers, names: &[String]) {
    for n in names {
        if vols.get(n).is_ok_and(|v| v.anonymous) {
            let _ = vols.remove(containers, n);
        }
    }
}

/// `volume export`: the volume's files as a tar stream on `out`, walked
/// with directory fds and O_NOFOLLOW (a symlink a container left in the
/// volume is stored as a link, never followed).
pub fn export(vols: &Volumes, name: &str, out: impl std::io::Write) -> Result<(), VolumeError> {
    use std::os::fd::AsRawFd;
    let data = vols.data(name);
    let dir = crate::util::fdtree::open_dir_at(libc::AT_FDCWD, data.as_os_str().as_encoded_bytes())
        .map_err(io(format!("opening volume {name}")))?;
    let skip = std::collections::BTreeSet::new();
    let w = crate::util::fdtree::tar_contents(dir.as_raw_fd(), std::io::BufWriter::new(out), &skip)
        .map_err(io(format!("exporting volume {name}")))?;
    w.into_inner()
        .map_err(|e| VolumeError::Io(format!("exporting volume {name}"), e.into_error()))?
        .flush()
        .map_err(io(format!("exporting volume {name}")))
}

/// `volume import`: unpacks a tar (plain or compressed) into the volume,
/// with `cp`'s rules: every entry lands inside the volume's directory.
pub fn import(
    vols: &Volumes,
    name: &str,
    input: impl std::io::Read,
    rootless: bool,
) -> Result<(), VolumeError> {
    let tar = crate::image::manifest::Compression::decoding(std::io::BufReader::new(input))
        .map_err(io(format!("reading the tar for volume {name}")))?;
    let opts = crate::image::unpack::UnpackOptions {
        rootless,
        copy: Some(crate::image::unpack::CopyRules {
            overwrite: true,
            keep_owners: true,
            devices: false,
        }),
    };
    crate::image::unpack::unpack(tar, &vols.data(name), opts)
        .map(|_| ())
        .map_err(|e| {
            VolumeError::Io(
                format!("importing into volume {name}"),
                std::io::Error::other(e),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("dbdata") && valid_name("a.b-c_1"));
        assert!(!valid_name("-x") && !valid_name("") && !valid_name("a/b") && !valid_name(".."));
    }

    #[test]
    fn create_get_remove() {
        let root = std::env::temp_dir().join(format!("berth-vol-{}", std::process::id()));
        let vols = Volumes::new(&root);
        let cs = Containers::new(&root);
        vols.create("v1", pairs(&["a=b".into()]), BTreeMap::new(), false, false)
            .unwrap();
        assert!(matches!(
            vols.create("v1", BTreeMap::new(), BTreeMap::new(), false, false),
            Err(VolumeError::Exists(_))
        ));
        assert!(vols
            .create("v1", BTreeMap::new(), BTreeMap::new(), false, true)
            .is_ok());
        assert_eq!(vols.get("v1").unwrap().labels["a"], "b");
        assert!(vols.data("v1").is_dir());
        assert_eq!(vols.list().len(), 1);
        vols.remove(&cs, "v1").unwrap();
        assert!(matches!(vols.get("v1"), Err(VolumeError::NotFound(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

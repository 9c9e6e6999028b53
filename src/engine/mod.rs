//! The podman-level verbs over the stores: where state lives (root vs
//! rootless), image removal with garbage collection, and running containers.

pub mod changes;
pub mod container;
pub mod copy;
pub mod detached;
pub mod etc_files;
pub mod exec;
pub mod hooks_dir;
pub mod images;
pub mod info;
pub mod init;
pub mod inspect;
pub mod keep_id;
pub mod lifecycle;
pub mod mount;
pub mod netsetup;
pub mod record;
pub mod request;
pub mod rootfs;
pub mod run;
pub mod seccomp_profile;
pub mod spec;
pub mod supervisor;
pub mod top;
pub mod user;
pub mod volumes;

use crate::image::registries_conf::RegistriesConf;
use crate::image::store::{Store, StoreError};
use std::path::PathBuf;

/// Where berth keeps its state for this user.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub rootless: bool,
}

impl Paths {
    /// Root: /var/lib/berth and /run/berth. Rootless: XDG data and runtime
    /// dirs. `--root` / `--runroot` override either.
    pub fn resolve(root: Option<PathBuf>, runroot: Option<PathBuf>) -> Paths {
        // A berth re-executed inside its own user namespace (a detached
        // container's monitor) is rootless too, though its euid there is 0.
        let rootless = !nix::unistd::geteuid().is_root() || crate::runtime::in_user_namespace();
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let default_root = if rootless {
            env("XDG_DATA_HOME")
                .or_else(|| env("HOME").map(|h| h.join(".local/share")))
                .map(|d| d.join("berth"))
                .unwrap_or_else(|| {
                    PathBuf::from(format!("/tmp/berth-data-{}", nix::unistd::geteuid()))
                })
        } else {
            PathBuf::from("/var/lib/berth")
        };
        let default_runroot = if rootless {
            env("XDG_RUNTIME_DIR")
                .unwrap_or_else(|| {
                    PathBuf::from(format!("/tmp/berth-run-{}", nix::unistd::geteuid()))
                })
                .join("berth")
        } else {
            PathBuf::from("/run/berth")
        };
        Paths {
            root: root.unwrap_or(default_root),
            runroot: runroot.unwrap_or(default_runroot),
            rootless,
        }
    }

    /// Rootless state must be the user's own: a store or runtime dir that
    /// another user made first (e.g. under /tmp when XDG_RUNTIME_DIR or
    /// HOME is unset) could hold a planted seccomp program, container
    /// config or namespace record. Missing dirs are made 0700; existing
    /// ones must be directories (not links) owned by the user and not
    /// writable by others.
    pub fn check_owned(&self) -> Result<(), PathsError> {
        if !self.rootless {
            return Ok(());
        }
        for dir in [&self.root, &self.runroot] {
            if std::fs::symlink_metadata(dir).is_err() {
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = crate::util::fsutil::create_dir_all_mode(dir, 0o700);
            }
            owned_by_caller(dir)?;
        }
        Ok(())
    }
}

/// Why berth's own state dirs cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}: berth keeps its state only in directories of the user's own (set XDG_RUNTIME_DIR and HOME, or use --root/--runroot)")]
pub struct PathsError {
    pub path: String,
    pub why: String,
}

/// Checks that `dir` is a real directory owned by this user and not
/// writable by group or others.
pub fn owned_by_caller(dir: &std::path::Path) -> Result<(), PathsError> {
    use std::os::unix::fs::MetadataExt;
    let err = |why: String| PathsError {
        path: dir.display().to_string(),
        why,
    };
    let m = std::fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
    if !m.file_type().is_dir() {
        return Err(err("not a directory".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(err(format!("owned by uid {}, not by you ({me})", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(err(format!(
            "writable by others (mode {:o})",
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// How container root filesystems are made (`--storage-driver`,
/// `--storage-opt`), with podman's names.
#[derive(Clone, Debug, Default)]
pub struct StorageOptions {
    /// vfs: copy the layers instead of mounting an overlay.
    pub copy: bool,
    /// overlay.mount_program: a FUSE overlay program to use instead of the kernel's.
    pub mount_program: Option<PathBuf>,
}

/// Why storage options were refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageOptionError(String);

impl StorageOptions {
    /// Parses the driver name and options.
    pub fn parse(driver: &str, opts: &[String]) -> Result<StorageOptions, StorageOptionError> {
        let copy = match driver {
            "overlay" | "overlay2" => false,
            "vfs" => true,
            other => {
                return Err(StorageOptionError(format!(
                    "unsupported --storage-driver {other:?}: use overlay or vfs"
                )))
            }
        };
        let mut mount_program = None;
        for o in opts {
            match o.split_once('=') {
                Some(("overlay.mount_program", p)) | Some(("mount_program", p)) => {
                    if !std::path::Path::new(p).exists() {
                        return Err(StorageOptionError(format!(
                            "--storage-opt {o}: {p} does not exist"
                        )));
                    }
                    mount_program = Some(PathBuf::from(p));
                }
                _ => {
                    return Err(StorageOptionError(format!(
                        "unsupported --storage-opt {o:?}: berth knows overlay.mount_program=PATH"
                    )))
                }
            }
        }
        Ok(StorageOptions {
            copy,
            mount_program,
        })
    }
}

/// What every command works with.
pub struct Engine {
    pub paths: Paths,
    pub store: Store,
    pub conf: RegistriesConf,
    pub storage: StorageOptions,
    /// Where OCI hook files are read (`--hooks-dir`, or podman's defaults).
    pub hooks_dirs: Vec<PathBuf>,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Conf(#[from] crate::image::registries_conf::ConfError),
}

impl Engine {
    /// Opens the store and reads registries.conf.
    pub fn open(paths: Paths) -> Result<Engine, EngineError> {
        paths.check_owned()?;
        let store = Store::open(&paths.root, paths.rootless)?;
        let conf = RegistriesConf::load()?;
        Ok(Engine {
            paths,
            store,
            conf,
            storage: StorageOptions::default(),
            hooks_dirs: hooks_dir::dirs(&[]),
        })
    }

    /// How this store's containers get their root filesystem.
    pub fn rootfs_driver(&self) -> rootfs::RootfsDriver {
        rootfs::choose(
            &self.storage,
            &self.paths.runroot,
            &self.store.root().join("tmp"),
        )
    }
}

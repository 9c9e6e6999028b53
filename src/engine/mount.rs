//! `mount`/`umount` and `image mount`/`image umount`: a container's root
//! filesystem (or an image's, read-only) mounted where the user can reach
//! it, until they unmount it. As root the mount is on the host; rootless
//! it lives in the mount namespace of the store's keeper and is seen
//! through `berth unshare`, as podman's mounts are seen through
//! `podman unshare`.
//!
//! A marker file says what is mounted (`userdata/mountpoint` of a
//! container, `image-mounts/ID/mountpoint` of an image), so listing reads
//! no mount table, and `rm`/`rmi` unmount what they remove.

use super::container::{ContainerError, ContainerRecord, Containers};
use super::rootfs::RootfsDriver;
use super::Engine;
use crate::image::store::{ImageRecord, Store};
use std::path::{Path, PathBuf};

/// Why a mount or unmount failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("mounting {what}: {source}")]
    Mount {
        what: String,
        source: std::io::Error,
    },
    #[error("unmounting {what}: {source}")]
    Unmount {
        what: String,
        source: std::io::Error,
    },
    #[error("the configuration of {0} is missing or damaged")]
    NoSpec(String),
}

/// What a marker records: where the root is, and for a rootless store the
/// runroot whose keeper holds the mount.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    path: PathBuf,
    /// The root was mounted (not a plain directory that needs none).
    mounted: bool,
    runroot: Option<PathBuf>,
}

fn read_marker(p: &Path) -> Option<Marker> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn container_marker(containers: &Containers, id: &str) -> PathBuf {
    containers.dir(id).join("userdata/mountpoint")
}

fn image_dir(store: &Store, image: &ImageRecord) -> PathBuf {
    store.root().join("image-mounts").join(image.id.hex())
}

/// Runs `f` where the store's mounts live: a child process that, rootless,
/// joins the store's user and mount namespaces; as root, the host's.
fn in_store_mounts(
    engine: &Engine,
    f: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let rootless = engine.paths.rootless;
    let runroot = engine.paths.runroot.clone();
    crate::util::process::in_child(move || {
        if rootless {
            crate::namespaces::userns::enter_store_userns(&runroot)
                .and_then(|_| crate::namespaces::userns::enter_store_mountns(&runroot))
                .map_err(std::io::Error::other)?;
        }
        f()
    })
}

/// Mounts a container's root filesystem (its overlay as its start would
/// make it) and returns the path; an already mounted one just answers.
pub fn mount_container(engine: &Engine, query: &str) -> Result<PathBuf, MountError> {
    let containers = Containers::new(engine.store.root());
    let c = containers.find(query)?;
    let marker = container_marker(&containers, &c.id);
    if let Some(m) = read_marker(&marker) {
        return Ok(m.path);
    }
    let dir = containers.dir(&c.id);
    let spec: oci_spec::runtime::Spec = std::fs::read(dir.join("userdata/config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .ok_or_else(|| MountError::NoSpec(c.name.clone()))?;
    let target = dir.join("merged");
    let failed = |source| MountError::Mount {
        what: c.name.clone(),
        source,
    };
    std::fs::create_dir_all(&target).map_err(failed)?;
    let userns = engine.paths.rootless;
    let plain = spec.root().as_ref().map(|r| r.path().clone());
    let overlay = spec
        .mounts()
        .as_ref()
        .and_then(|m| m.first())
        .is_some_and(|m| m.destination() == Path::new("/"));
    let path = if overlay {
        let t = target.clone();
        in_store_mounts(engine, move || {
            crate::runtime::mount_root_at(&spec, &t, userns)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
        .map_err(failed)?;
        target
    } else {
        plain.unwrap_or(target)
    };
    write_marker(&marker, &path, overlay, engine).map_err(failed)?;
    Ok(path)
}

fn write_marker(marker: &Path, path: &Path, mounted: bool, engine: &Engine) -> std::io::Result<()> {
    let m = Marker {
        path: path.to_path_buf(),
        mounted,
        runroot: engine.paths.rootless.then(|| engine.paths.runroot.clone()),
    };
    crate::util::fsutil::atomic_write(
        marker,
        &serde_json::to_vec(&m).expect("a marker serialises"),
        0o600,
    )
}

/// Unmounts what `marker` records (lazily: a shell still inside it keeps
/// its view), then removes the marker. Nothing recorded: nothing to do.
fn release(marker: &Path, what: &str) -> Result<bool, MountError> {
    let Some(m) = read_marker(marker) else {
        return Ok(false);
    };
    let failed = |source| MountError::Unmount {
        what: what.to_string(),
        source,
    };
    if m.mounted {
        let path = m.path.clone();
        let runroot = m.runroot.clone();
        crate::util::process::in_child(move || {
            if let Some(r) = &runroot {
                crate::namespaces::userns::enter_store_userns(r)
                    .and_then(|_| crate::namespaces::userns::enter_store_mountns(r))
                    .map_err(std::io::Error::other)?;
            }
            match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
                // Not mounted any more (a reboot, a new keeper): done.
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .map_err(failed)?;
    }
    std::fs::remove_file(marker).map_err(failed)?;
    Ok(true)
}

/// Unmounts a container's root; false when it was not mounted.
pub fn unmount_container(containers: &Containers, c: &ContainerRecord) -> Result<bool, MountError> {
    release(&container_marker(containers, &c.id), &c.name)
}

/// The containers whose roots are mounted, with their paths.
pub fn mounted_containers(containers: &Containers) -> Vec<(ContainerRecord, PathBuf)> {
    containers
        .list()
        .into_iter()
        .filter_map(|c| {
            let m = read_marker(&container_marker(containers, &c.id))?;
            Some((c, m.path))
        })
        .collect()
}

/// Mounts an image's layers read-only and returns the path.
pub fn mount_image(engine: &Engine, image: &ImageRecord) -> Result<PathBuf, MountError> {
    let dir = image_dir(&engine.store, image);
    let marker = dir.join("mountpoint");
    if let Some(m) = read_marker(&marker) {
        return Ok(m.path);
    }
    let what = image
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| image.id.hex()[..12].to_string());
    let failed = |source| MountError::Mount {
        what: what.clone(),
        source,
    };
    let merged = dir.join("merged");
    let empty = dir.join("empty");
    for d in [&merged, &empty] {
        std::fs::create_dir_all(d).map_err(failed)?;
    }
    let mut lowers: Vec<PathBuf> = image
        .chain_ids()
        .iter()
        .rev()
        .map(|c| engine.store.layer_diff(c))
        .collect();
    let driver = engine.rootfs_driver();
    if driver == RootfsDriver::Copy {
        super::rootfs::copy_layers(&lowers, &merged)
            .map_err(|e| failed(std::io::Error::other(e)))?;
        write_marker(&marker, &merged, false, engine).map_err(failed)?;
        return Ok(merged);
    }
    // An overlay with no upper dir needs two lower dirs: an empty one is
    // the bottom. With no upper dir it is read-only.
    lowers.push(empty);
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut options = vec![format!("lowerdir={lower}")];
    if engine.paths.rootless {
        options.push("userxattr".into());
    }
    let mount = match &driver {
        RootfsDriver::Fuse(p) => {
            serde_json::json!({"destination": "/", "type": "fuse.fuse-overlayfs", "source": p, "options": options})
        }
        _ => {
            serde_json::json!({"destination": "/", "type": "overlay", "source": "overlay", "options": options})
        }
    };
    let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": merged, "readonly": true},
        "mounts": [mount],
    }))
    .map_err(|e| failed(std::io::Error::other(e)))?;
    let userns = engine.paths.rootless;
    let t = merged.clone();
    in_store_mounts(engine, move || {
        crate::runtime::mount_root_at(&spec, &t, userns)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(failed)?;
    write_marker(&marker, &merged, true, engine).map_err(failed)?;
    Ok(merged)
}

/// Unmounts an image; false when it was not mounted.
pub fn unmount_image(store: &Store, image: &ImageRecord) -> Result<bool, MountError> {
    let dir = image_dir(store, image);
    let what = image
        .names
        .first()
        .cloned()
        .unwrap_or(image.id.hex().to_string());
    let done = release(&dir.join("mountpoint"), &what)?;
    if done {
        let _ = crate::util::fsutil::remove_dir_all_robust(&dir);
    }
    Ok(done)
}

/// The images that are mounted, with their paths.
pub fn mounted_images(engine: &Engine) -> Vec<(ImageRecord, PathBuf)> {
    let Ok(images) = engine.store.images() else {
        return Vec::new();
    };
    images
        .into_iter()
        .filter_map(|i| {
            let m = read_marker(&image_dir(&engine.store, &i).join("mountpoint"))?;
            Some((i, m.path))
        })
        .collect()
}

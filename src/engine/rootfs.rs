//! How a container's root filesystem is made from its image's layers,
//! decided here once so the runtime only carries it out: the kernel's
//! overlayfs, a FUSE overlay program (fuse-overlayfs, podman's
//! `overlay.mount_program`), or a plain copy of the layers (podman's vfs
//! driver) when neither can mount.
//!
//! The choice reaches the runtime through the OCI spec alone: an overlay
//! is the spec's first mount, with destination `/` (type `overlay`, or
//! `fuse.NAME` with the program as its source); a copy is simply the
//! spec's `root.path`.

use super::StorageOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How the root filesystem is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootfsDriver {
    /// The kernel's overlayfs.
    Kernel,
    /// A FUSE overlay program, run in the container's mount namespace.
    Fuse(PathBuf),
    /// The layers copied once into the container's own directory.
    Copy,
}

/// Where fuse-overlayfs is, if installed.
pub fn find_fuse_overlayfs() -> Option<PathBuf> {
    ["/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The driver for this store: what the user configured, else the kernel's
/// overlay when it mounts here (probed once per boot and remembered in
/// `runroot`), else fuse-overlayfs when installed, else a copy.
pub fn choose(storage: &StorageOptions, runroot: &Path, store_tmp: &Path) -> RootfsDriver {
    if storage.copy {
        return RootfsDriver::Copy;
    }
    if let Some(p) = &storage.mount_program {
        return RootfsDriver::Fuse(p.clone());
    }
    if kernel_overlay_works(runroot, store_tmp) {
        return RootfsDriver::Kernel;
    }
    match find_fuse_overlayfs() {
        Some(p) => RootfsDriver::Fuse(p),
        None => RootfsDriver::Copy,
    }
}

const PROBE_CACHE: &str = "overlay-native";

/// Whether this process can mount an overlay whose dirs are in the store
/// (`store_tmp` is on the store's filesystem). The answer is cached in
/// `runroot`, which does not outlive a boot (a new kernel may answer
/// otherwise).
fn kernel_overlay_works(runroot: &Path, store_tmp: &Path) -> bool {
    let cache = runroot.join(PROBE_CACHE);
    if let Ok(v) = std::fs::read_to_string(&cache) {
        return v.trim() == "yes";
    }
    let works = probe(runroot, store_tmp);
    let answer: &[u8] = if works { b"yes" } else { b"no" };
    let _ = crate::util::fsutil::atomic_write(&cache, answer, 0o644);
    tracing::debug!("kernel overlay mounts here: {works}");
    works
}

/// Mounts a tiny overlay in a forked child's own mount namespace. A
/// rootless child first joins the store's user namespace, where
/// containers mount their roots: the answer must not depend on whether
/// the asking command had joined it.
fn probe(runroot: &Path, store_tmp: &Path) -> bool {
    let Ok(dir) = tempfile_dir(store_tmp) else {
        return false;
    };
    let sub = |n: &str| dir.join(n);
    for n in ["lower", "upper", "work", "merged"] {
        if std::fs::create_dir(sub(n)).is_err() {
            let _ = std::fs::remove_dir_all(&dir);
            return false;
        }
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        sub("lower").display(),
        sub("upper").display(),
        sub("work").display()
    );
    let rootless = !nix::unistd::geteuid().is_root() || crate::runtime::in_user_namespace();
    let opts = if rootless {
        format!("{opts},userxattr")
    } else {
        opts
    };
    let cstr = |s: &str| crate::util::secure_path::cstr(s.as_bytes());
    let (overlay, target, data) = (
        cstr("overlay"),
        cstr(&sub("merged").display().to_string()),
        cstr(&opts),
    );
    // SAFETY: called while berth is single-threaded (the driver is chosen
    // before any thread starts); the child joins the user namespace, makes
    // raw system calls with the strings prepared above, then _exits.
    let works = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            if rootless && crate::namespaces::userns::enter_store_userns(runroot).is_err() {
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(1) }
            }
            // SAFETY: raw system calls on valid C strings; the child only exits after.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                    && libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0
                    && libc::mount(
                        overlay.as_ptr(),
                        target.as_ptr(),
                        overlay.as_ptr(),
                        0,
                        data.as_ptr().cast(),
                    ) == 0;
                libc::_exit(if ok { 0 } else { 1 })
            }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => matches!(
            nix::sys::wait::waitpid(child, None),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
        ),
        Err(_) => false,
    };
    let _ = std::fs::remove_dir_all(&dir);
    works
}

fn tempfile_dir(parent: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    let dir = parent.join(format!("overlay-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// Why the layers could not be copied.
#[derive(Debug, thiserror::Error)]
#[error("copying layer {layer} into the container's root: {source}")]
pub struct CopyLayersError {
    layer: String,
    source: std::io::Error,
}

/// The file in a copied root that says the copy is complete.
pub const COPIED_MARKER: &str = ".berth-copied";

/// The vfs driver: copies `lowers` (top first, as overlay's lowerdir
/// lists them) into `root`, bottom first, applying whiteouts and opaque
/// dirs. Done once; a marker says it is done, so a restart keeps the
/// container's changes.
pub fn copy_layers(lowers: &[PathBuf], root: &Path) -> Result<(), CopyLayersError> {
    let marker = root.join(COPIED_MARKER);
    if marker.exists() {
        return Ok(());
    }
    let open = |p: &Path| std::fs::File::open(p);
    for lower in lowers.iter().rev() {
        open(lower)
            .and_then(|from| {
                let to = open(root)?;
                crate::image::apply::apply_layer(from.as_raw_fd(), to.as_raw_fd())
            })
            .map_err(|source| CopyLayersError {
                layer: lower.display().to_string(),
                source,
            })?;
    }
    std::fs::write(&marker, b"").map_err(|source| CopyLayersError {
        layer: "(marker)".into(),
        source,
    })
}

/// Gives a container whose image has no /etc/mtab the symlink to
/// /proc/mounts that podman adds (tools such as `df` read it). It goes into
/// the container's own upper dir, whose new /etc takes the mode and owner
/// of the image's, so the merged /etc looks as it did. Nothing is written
/// when an image's /etc is not a plain directory.
pub fn add_mtab(lowers: &[PathBuf], upper: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Top layer first; a layer's etc is only looked into when it is a real
    // directory, so no path here leaves the layers.
    let mut etc_meta = None;
    for l in lowers {
        let Ok(m) = std::fs::symlink_metadata(l.join("etc")) else {
            if std::fs::symlink_metadata(l.join(".wh.etc")).is_ok() {
                break;
            }
            continue;
        };
        if !m.is_dir() {
            if etc_meta.is_none() {
                return Ok(()); // an /etc that is not a directory
            }
            break;
        }
        if let Ok(m) = std::fs::symlink_metadata(l.join("etc/mtab")) {
            use std::os::unix::fs::FileTypeExt;
            // A 0:0 character device is an overlay whiteout: it was removed.
            if m.file_type().is_char_device() && m.rdev() == 0 {
                break;
            }
            return Ok(());
        }
        let opaque = std::fs::symlink_metadata(l.join("etc/.wh..wh..opq")).is_ok();
        etc_meta.get_or_insert(m);
        if opaque || std::fs::symlink_metadata(l.join("etc/.wh.mtab")).is_ok() {
            break;
        }
    }
    let etc = upper.join("etc");
    match std::fs::symlink_metadata(&etc) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(()),
        Err(_) => {
            std::fs::create_dir(&etc)?;
            if let Some(m) = &etc_meta {
                std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
                let _ = std::os::unix::fs::lchown(&etc, Some(m.uid()), Some(m.gid()));
            }
        }
    }
    match std::os::unix::fs::symlink("/proc/mounts", etc.join("mtab")) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_drivers_win_over_the_probe() {
        let dir = std::env::temp_dir().join(format!("berth-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A cached "no" must not be consulted when the user chose.
        std::fs::write(dir.join(PROBE_CACHE), "no").unwrap();
        let copy = StorageOptions {
            copy: true,
            mount_program: None,
        };
        assert_eq!(choose(&copy, &dir, &dir), RootfsDriver::Copy);
        let fuse = StorageOptions {
            copy: false,
            mount_program: Some("/x/fuse".into()),
        };
        assert_eq!(
            choose(&fuse, &dir, &dir),
            RootfsDriver::Fuse("/x/fuse".into())
        );
        // The cached answer is used without probing again.
        let auto = StorageOptions::default();
        let want = find_fuse_overlayfs().map_or(RootfsDriver::Copy, RootfsDriver::Fuse);
        assert_eq!(choose(&auto, &dir, &dir), want);
        std::fs::write(dir.join(PROBE_CACHE), "yes").unwrap();
        assert_eq!(choose(&auto, &dir, &dir), RootfsDriver::Kernel);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

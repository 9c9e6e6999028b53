//! When the kernel cannot mount the overlay rootfs (an old kernel, a
//! rootless user on a kernel without unprivileged overlayfs): mount it with
//! fuse-overlayfs if installed, or as the last resort copy the layers into
//! the container's upper dir and use that (podman's vfs driver).

use super::step_error::{ctx, Cause, StepError};
use nix::mount::{mount, MsFlags};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where fuse-overlayfs is, if installed.
pub fn find_fuse_overlayfs() -> Option<PathBuf> {
    ["/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn option<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// Mounts the overlay with a FUSE program. It runs inside the container's
/// PID namespace, so it ends with the container.
pub fn fuse(prog: &Path, options: &str, target: &Path) -> Result<(), StepError> {
    let opts: Vec<&str> = options.split(',').filter(|o| *o != "userxattr").collect();
    let status = std::process::Command::new(prog)
        .arg("-o")
        .arg(opts.join(","))
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(ctx(format!("running {}", prog.display())))?;
    if !status.success() {
        return Err(ctx(format!("mounting the rootfs with {}", prog.display()))(
            Cause::Helper(status.to_string()),
        ));
    }
    Ok(())
}

fn bad_options(missing: &str) -> StepError {
    ctx("copying the layers")(Cause::Helper(format!(
        "the overlay options name no {missing}"
    )))
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| {
            let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
            let n = std::ffi::CString::new(*k).unwrap_or_default();
            let mut v = [0u8; 2];
            // SAFETY: valid pointers and buffer.
            let r =
                unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
            r == 1 && v[0] == b'y'
        })
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        if is_whiteout(&m) {
            crate::util::fsutil::remove_any(&to)?;
            continue;
        }
        if m.is_dir() {
            let existing = std::fs::symlink_metadata(&to).ok();
            if existing.as_ref().is_some_and(|x| !x.is_dir())
                || (existing.is_some() && is_opaque(&from))
            {
                crate::util::fsutil::remove_any(&to)?;
            }
            if !to.exists() {
                std::fs::create_dir(&to)?;
            }
            copy_tree(&from, &to)?;
        } else {
            crate::util::fsutil::remove_any(&to)?;
            if m.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else if m.is_file() {
                std::fs::copy(&from, &to)?;
            } else {
                continue; // device nodes and fifos of layers: /dev is mounted anyway
            }
        }
        let _ = std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()));
        if !m.file_type().is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Copies the lower dirs (bottom first, applying whiteouts and opaque dirs)
/// into the upper dir once, then binds it at `target`.
pub fn copy_layers(options: &str, target: &Path) -> Result<(), StepError> {
    let upper = PathBuf::from(option(options, "upperdir").ok_or_else(|| bad_options("upperdir"))?);
    let lowers: Vec<PathBuf> = option(options, "lowerdir")
        .ok_or_else(|| bad_options("lowerdir"))?
        .split(':')
        .map(PathBuf::from)
        .collect();
    let marker = upper.join(".berth-copied");
    if !marker.exists() {
        for lower in lowers.iter().rev() {
            copy_tree(lower, &upper).map_err(ctx(format!("copying layer {}", lower.display())))?;
        }
        std::fs::write(&marker, b"").map_err(ctx("marking the copied rootfs"))?;
    }
    mount(
        Some(&upper),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ctx("binding the copied rootfs"))
}

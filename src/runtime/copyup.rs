//! Copy-up: an empty volume mounted over a directory of the image first
//! receives that directory's content, as docker and podman do, so
//! `-v dbdata:/var/lib/mysql` starts with what the image put there. Runs
//! in the container's setup, after its root is mounted and before the
//! volume covers the path; the source is resolved inside the root, and
//! symlinks in the image are copied as links, never followed.

use crate::util::secure_path::{fd_path, open_in_root};
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

/// Copies `root`/`dest` into the host directory `volume` if the volume is
/// empty and the image has that directory.
pub fn copy_up(root: i32, dest: &str, volume: &Path) -> Result<(), String> {
    let empty = std::fs::read_dir(volume)
        .map_err(|e| format!("reading volume {}: {e}", volume.display()))?
        .next()
        .is_none();
    if !empty {
        return Ok(());
    }
    let Ok(src) = open_in_root(
        root,
        dest.trim_start_matches('/').as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
    ) else {
        return Ok(()); // nothing in the image there
    };
    let from = fd_path(&src);
    copy_tree(Path::new(&from), volume)
        .map_err(|e| format!("copying {dest} into its volume: {e}"))?;
    // The volume's root takes the directory's owner and mode too.
    let m = std::fs::metadata(&from).map_err(|e| e.to_string())?;
    let _ = lchown(volume, Some(m.uid()), Some(m.gid()));
    let _ = std::fs::set_permissions(volume, std::fs::Permissions::from_mode(m.mode() & 0o7777));
    Ok(())
}

/// Gives a tree to the container's user (`:U`): lchown every entry.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = std::fs::symlink_metadata(&src)?;
        let ft = m.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue; // devices, fifos, sockets: not volume content
        }
        lchown(&dst, Some(m.uid()), Some(m.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn copies_into_an_empty_volume_only() {
        let base = std::env::temp_dir().join(format!("berth-copyup-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("data/link")).unwrap();
        let vol = base.join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let rfd = crate::util::secure_path::open_at(
            libc::AT_FDCWD,
            root.as_os_str().as_encoded_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .unwrap();
        copy_up(rfd.as_raw_fd(), "/data", &vol).unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("sub/f")).unwrap(), "x");
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        std::fs::write(root.join("data/new"), "y").unwrap();
        copy_up(rfd.as_raw_fd(), "/data", &vol).unwrap();
        assert!(
            !vol.join("new").exists(),
            "a volume with content is left alone"
        );
        copy_up(rfd.as_raw_fd(), "/missing", &base.join("root/data/sub")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}

//! Copy-up: an empty volume mounted over a directory of the image first
//! receives that directory's content, as docker and podman do, so
//! `-v dbdata:/var/lib/mysql` starts with what the image put there. Runs
//! in the container's setup, after its root is mounted and before the
//! volume covers the path; the source is resolved inside the root, and
//! symlinks in the image are copied as links, never followed.

use super::step_error::{ctx, StepError};
use crate::util::fdtree;
use crate::util::secure_path::{open_at, open_in_root};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Copies `root`/`dest` into the host directory `volume` if the volume is
/// empty and the image has that directory. Both sides are walked with
/// directory fds (the volume may be shared with a running container).
pub fn copy_up(root: i32, dest: &str, volume: &Path) -> Result<(), StepError> {
    let vol = open_at(
        libc::AT_FDCWD,
        volume.as_os_str().as_encoded_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )
    .map_err(ctx(format!("opening volume {}", volume.display())))?;
    let empty = fdtree::names(vol.as_raw_fd())
        .map_err(ctx(format!("reading volume {}", volume.display())))?
        .is_empty();
    if !empty {
        return Ok(());
    }
    let Ok(src) = open_in_root(
        root,
        dest.trim_start_matches('/').as_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) else {
        return Ok(()); // nothing in the image there
    };
    fdtree::copy_tree(src.as_raw_fd(), vol.as_raw_fd())
        .map_err(ctx(format!("copying {dest} into its volume")))?;
    // The volume's root takes the directory's owner and mode too.
    let st = fdtree::fstat(src.as_raw_fd()).map_err(ctx(format!("reading {dest}")))?;
    // SAFETY: plain syscalls on an fd we hold.
    unsafe {
        libc::fchown(vol.as_raw_fd(), st.st_uid, st.st_gid);
        libc::fchmod(vol.as_raw_fd(), st.st_mode & 0o7777);
    }
    Ok(())
}

/// Gives a tree to the container's user (`:U`): every entry, links
/// themselves, walked with directory fds so nothing is followed.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let dir = open_at(
        libc::AT_FDCWD,
        path.as_os_str().as_encoded_bytes(),
        libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK,
        0,
    )?;
    if fdtree::kind(fdtree::fstat(dir.as_raw_fd())?.st_mode) == libc::S_IFDIR {
        fdtree::chown_tree(dir.as_raw_fd(), uid, gid)
    } else {
        // SAFETY: plain syscall on an fd we hold.
        crate::util::secure_path::check(unsafe { libc::fchown(dir.as_raw_fd(), uid, gid) })
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

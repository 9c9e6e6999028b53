//! A container's changes as a layer: its overlay upper directory written
//! as an OCI layer tar. overlayfs marks a deleted file with a 0:0 character
//! device and a directory whose lower contents are hidden with an "opaque"
//! xattr; a layer says both with whiteout files (`.wh.NAME`,
//! `.wh..wh..opq`). The tree is walked with directory fds and O_NOFOLLOW,
//! so a running container swapping in links cannot make berth read a host
//! file.

use crate::util::fdtree::{self, kind, Visit};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The xattrs overlayfs marks an opaque directory with (root, then
/// rootless `userxattr` mounts).
const OPAQUE: [&[u8]; 2] = [b"trusted.overlay.opaque\0", b"user.overlay.opaque\0"];

/// Writes the changes in `upper` (an overlay upper dir) to `out` as a tar
/// layer, leaving out the paths in `skip` (relative to the upper dir).
pub fn tar_upper<W: Write>(
    upper: &Path,
    out: W,
    skip: &std::collections::BTreeSet<std::path::PathBuf>,
) -> io::Result<W> {
    let root = fdtree::open_dir_at(libc::AT_FDCWD, upper.as_os_str().as_bytes())?;
    let mut tar = tar::Builder::new(out);
    fdtree::tar_tree(
        &mut tar,
        root.as_raw_fd(),
        Path::new(""),
        &mut |tar, visit| {
            match visit {
                // A directory that hides what the layers below have in it.
                Visit::Dir { fd, path } => {
                    if is_opaque(fd) {
                        whiteout(tar, &path.join(".wh..wh..opq"))?;
                    }
                    Ok(false)
                }
                Visit::Entry { path, .. } if skip.contains(path) => Ok(true),
                // overlayfs' whiteout: this name was deleted.
                Visit::Entry { path, st }
                    if kind(st.st_mode) == libc::S_IFCHR && st.st_rdev == 0 =>
                {
                    let mut wh = b".wh.".to_vec();
                    wh.extend_from_slice(path.file_name().unwrap_or_default().as_bytes());
                    let parent = path.parent().unwrap_or(Path::new(""));
                    whiteout(tar, &parent.join(std::ffi::OsStr::from_bytes(&wh)))?;
                    Ok(true)
                }
                Visit::Entry { .. } => Ok(false),
            }
        },
    )?;
    tar.into_inner()
}

/// One change, as `podman diff` lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// The path in the image, from `/`.
    pub path: String,
    /// 'A' added, 'C' changed, 'D' deleted.
    pub kind: char,
}

/// The changes an overlay upper dir (or an unpacked layer, which has the
/// same whiteouts) makes over `lowers`: a path that is in a lower is
/// changed, one that is not is added, a whiteout is a deletion. The dir
/// is walked with directory fds and O_NOFOLLOW, so a running container
/// that swaps a directory for a link cannot make berth list a host one.
pub fn changes(upper: &Path, lowers: &[std::path::PathBuf]) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    let root = fdtree::open_dir_at(libc::AT_FDCWD, upper.as_os_str().as_bytes())?;
    walk_changes(root.as_raw_fd(), Path::new(""), lowers, &mut out)?;
    out.sort();
    Ok(out)
}

/// Whether `rel` is in one of the layer dirs `lowers` (as a name, of
/// any type; whiteouts are not looked at).
pub fn in_lowers(lowers: &[std::path::PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk_changes(
    dir: RawFd,
    rel: &Path,
    lowers: &[std::path::PathBuf],
    out: &mut Vec<Change>,
) -> io::Result<()> {
    for name in fdtree::names(dir)? {
        let r = rel.join(std::ffi::OsStr::from_bytes(&name));
        let st = match fdtree::lstat_at(dir, &name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let path = format!("/{}", r.display());
        if kind(st.st_mode) == libc::S_IFCHR && st.st_rdev == 0 {
            out.push(Change { path, kind: 'D' });
            continue;
        }
        let kind_of = if in_lowers(lowers, &r) { 'C' } else { 'A' };
        out.push(Change {
            path,
            kind: kind_of,
        });
        if kind(st.st_mode) == libc::S_IFDIR {
            match fdtree::open_dir_at(dir, &name) {
                Ok(sub) => walk_changes(sub.as_raw_fd(), &r, lowers, out)?,
                // Swapped for a link or a file since the stat: not walked.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ELOOP | libc::ENOTDIR | libc::ENOENT)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn is_opaque(dir: RawFd) -> bool {
    OPAQUE.iter().any(|name| {
        let mut v = [0u8; 1];
        // SAFETY: a NUL-terminated name and a 1-byte buffer we own.
        let n =
            unsafe { libc::fgetxattr(dir, name.as_ptr().cast(), v.as_mut_ptr().cast(), v.len()) };
        n == 1 && v[0] == b'y'
    })
}

fn whiteout<W: Write>(tar: &mut tar::Builder<W>, path: &Path) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o600);
    h.set_size(0);
    tar.append_data(&mut h, path, io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_become_whiteouts() {
        let base = std::env::temp_dir().join(format!("berth-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/new"), b"hi").unwrap();
        let gone = std::ffi::CString::new(base.join("etc/old").as_os_str().as_bytes()).unwrap();
        // SAFETY: mknod of a 0:0 char device (needs CAP_MKNOD: root runs the tests).
        let made = unsafe { libc::mknod(gone.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let tar = tar_upper(&base, Vec::new(), &Default::default()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        let mut want = vec!["etc", "etc/new"];
        if made {
            want.push("etc/.wh.old");
            want.sort();
        }
        assert_eq!(names, want);
        let _ = std::fs::remove_dir_all(&base);
    }
}

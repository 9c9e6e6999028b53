//! Applies an unpacked layer directory (overlay's format: whiteouts are
//! 0:0 character devices, opaque directories carry an `overlay.opaque`
//! xattr) onto a root, as stacking it would: whiteouts delete, opaque
//! directories replace, everything else is copied over what is there.
//! Used by the vfs driver to flatten an image and by `--squash` to merge a
//! build's new layers onto a mounted overlay, whose upper dir then holds
//! their combined change.
//!
//! Every entry of both trees is reached relative to its parent's fd with
//! O_NOFOLLOW, so a symlink in the root (an image's) is replaced, never
//! followed out of it. Hard links in the layer become separate copies.

use crate::util::fdtree::{
    copy_data, copy_symlink_at, create_file_at, kind, lstat_at, names, open_dir_at, open_file_at,
    remove_at, set_owner_mode,
};
use crate::util::secure_path::{check, cstr};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Whether an open directory is marked opaque (root's or rootless xattr).
fn is_opaque(dir: RawFd) -> bool {
    [c"trusted.overlay.opaque", c"user.overlay.opaque"]
        .iter()
        .any(|k| {
            let mut v = [0u8; 2];
            // SAFETY: valid C string and buffer of the given length.
            let r = unsafe { libc::fgetxattr(dir, k.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
            r == 1 && v[0] == b'y'
        })
}

/// Applies the layer directory `from` onto the directory `to`.
pub fn apply_layer(from: RawFd, to: RawFd) -> io::Result<()> {
    for name in names(from)? {
        let st = lstat_at(from, &name)?;
        let n = cstr(&name);
        let existing = match lstat_at(to, &name) {
            Ok(e) => Some(e),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => return Err(e),
        };
        match kind(st.st_mode) {
            libc::S_IFCHR if st.st_rdev == 0 => remove_at(to, &name)?,
            libc::S_IFDIR => {
                let src = open_dir_at(from, &name)?;
                let keep = existing.is_some_and(|e| kind(e.st_mode) == libc::S_IFDIR)
                    && !is_opaque(src.as_raw_fd());
                if !keep {
                    remove_at(to, &name)?;
                    // SAFETY: valid C string.
                    check(unsafe { libc::mkdirat(to, n.as_ptr(), 0o700) })?;
                }
                let dst = open_dir_at(to, &name)?;
                apply_layer(src.as_raw_fd(), dst.as_raw_fd())?;
                set_owner_mode(dst.as_raw_fd(), &st)?;
            }
            libc::S_IFREG => {
                remove_at(to, &name)?;
                let src = open_file_at(from, &name)?;
                let dst = create_file_at(to, &name)?;
                copy_data(&src, &dst)?;
                set_owner_mode(dst.as_raw_fd(), &st)?;
            }
            libc::S_IFLNK => {
                remove_at(to, &name)?;
                copy_symlink_at(from, to, &name, &st)?;
            }
            _ => {
                // Fifos and device nodes a layer made: made again where the
                // caller may (a rootless one may not make devices).
                remove_at(to, &name)?;
                // SAFETY: valid C string; mknodat creates, never follows.
                let r = unsafe { libc::mknodat(to, n.as_ptr(), st.st_mode, st.st_rdev) };
                if r == 0 {
                    // SAFETY: as above.
                    check(unsafe {
                        libc::fchownat(
                            to,
                            n.as_ptr(),
                            st.st_uid,
                            st.st_gid,
                            libc::AT_SYMLINK_NOFOLLOW,
                        )
                    })?;
                }
            }
        }
    }
    Ok(())
}

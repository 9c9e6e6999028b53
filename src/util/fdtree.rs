//! Walks over directory trees that a container may be changing while berth
//! reads them (a volume shared with a running container, a container's
//! root during `cp`). Every entry is opened relative to its parent's
//! directory fd with O_NOFOLLOW and checked on the opened fd, so a file
//! swapped for a symlink mid-walk is never followed to a host path.

use super::secure_path::{check, cstr, open_at};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An entry's metadata, from fstatat(AT_SYMLINK_NOFOLLOW).
pub fn lstat_at(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    let n = cstr(name);
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the call.
    check(unsafe { libc::fstatat(dir, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// fstat of an open fd.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer for the call.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// The kind of an entry by its mode.
pub fn kind(mode: libc::mode_t) -> libc::mode_t {
    mode & libc::S_IFMT
}

/// Opens a subdirectory without following a symlink.
pub fn open_dir_at(dir: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Creates a new file (mode 0600 until its owner and mode are set) that
/// must not exist yet, so nothing already there, not even a symlink, is
/// written through.
pub fn create_file_at(dir: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    open_at(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
    )
}

/// Opens a regular file for reading without following a symlink and
/// without blocking on a fifo; anything but a regular file is refused.
pub fn open_file_at(dir: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    let fd = open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )?;
    if kind(fstat(fd.as_raw_fd())?.st_mode) != libc::S_IFREG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(fd)
}

/// The names in a directory, without `.` and `..`.
pub fn names(dir: RawFd) -> io::Result<Vec<Vec<u8>>> {
    let dup = open_at(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let rd = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(io::Error::from)?;
    let mut out = Vec::new();
    for e in rd.into_iter() {
        let e = e.map_err(io::Error::from)?;
        let b = e.file_name().to_bytes();
        if b != b"." && b != b".." {
            out.push(b.to_vec());
        }
    }
    Ok(out)
}

/// A symlink's target, read relative to its directory.
pub fn readlink_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let n = cstr(name);
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid pointers; the buffer length is passed.
    let r = unsafe { libc::readlinkat(dir, n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// Gives every entry of the directory `dir` (and `dir` itself) to
/// `uid:gid` (`-v SRC:DST:U`). Symlinks are changed themselves, never
/// followed.
pub fn chown_tree(dir: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we hold.
    check(unsafe { libc::fchown(dir, uid, gid) })?;
    for name in names(dir)? {
        let st = match lstat_at(dir, &name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if kind(st.st_mode) == libc::S_IFDIR {
            match open_dir_at(dir, &name) {
                Ok(sub) => chown_tree(sub.as_raw_fd(), uid, gid)?,
                // Swapped for something else since the stat: not followed.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {}
                Err(e) => return Err(e),
            }
        } else {
            let n = cstr(&name);
            // SAFETY: valid C string; AT_SYMLINK_NOFOLLOW changes a link itself.
            check(unsafe { libc::fchownat(dir, n.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })?;
        }
    }
    Ok(())
}

/// Copies the content of directory `from` into the directory `to`:
/// directories, regular files and symlinks (as links) with their owners
/// and modes; devices, fifos and sockets are left out. New entries are
/// created with O_EXCL/O_NOFOLLOW, so nothing already at `to` is followed.
pub fn copy_tree(from: RawFd, to: RawFd) -> io::Result<()> {
    for name in names(from)? {
        let st = match lstat_at(from, &name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let n = cstr(&name);
        match kind(st.st_mode) {
            libc::S_IFDIR => {
                let src = open_dir_at(from, &name)?;
                // SAFETY: valid C string.
                check(unsafe { libc::mkdirat(to, n.as_ptr(), 0o700) })?;
                let dst = open_dir_at(to, &name)?;
                copy_tree(src.as_raw_fd(), dst.as_raw_fd())?;
                set_owner_mode(dst.as_raw_fd(), &st)?;
            }
            libc::S_IFREG => {
                let src = open_file_at(from, &name)?;
                let dst = create_file_at(to, &name)?;
                copy_data(&src, &dst)?;
                set_owner_mode(dst.as_raw_fd(), &fstat(src.as_raw_fd())?)?;
            }
            libc::S_IFLNK => copy_symlink_at(from, to, &name, &st)?,
            _ => {} // devices, fifos, sockets: not copied
        }
    }
    Ok(())
}

/// Makes `name` in `to` a symlink with the target `name` has in `from`,
/// owned as `st` says (the link itself; nothing is followed).
pub fn copy_symlink_at(from: RawFd, to: RawFd, name: &[u8], st: &libc::stat) -> io::Result<()> {
    let n = cstr(name);
    let target = cstr(&readlink_at(from, name)?);
    // SAFETY: valid C strings; the target is stored, not followed.
    check(unsafe { libc::symlinkat(target.as_ptr(), to, n.as_ptr()) })?;
    // SAFETY: as above; AT_SYMLINK_NOFOLLOW changes the link itself.
    check(unsafe {
        libc::fchownat(
            to,
            n.as_ptr(),
            st.st_uid,
            st.st_gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// Gives an open entry the owner and mode `st` has.
pub fn set_owner_mode(fd: RawFd, st: &libc::stat) -> io::Result<()> {
    // SAFETY: plain syscalls on an fd we hold; chmod after chown keeps set-id bits.
    check(unsafe { libc::fchown(fd, st.st_uid, st.st_gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::fchmod(fd, st.st_mode & 0o7777) })?;
    Ok(())
}

/// Removes the entry `name` of `dir`, a directory with everything in it;
/// nothing is followed (a symlink goes, not what it points at). A missing
/// entry is not an error.
pub fn remove_at(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let n = cstr(name);
    if kind(st.st_mode) == libc::S_IFDIR {
        let sub = open_dir_at(dir, name)?;
        for child in names(sub.as_raw_fd())? {
            remove_at(sub.as_raw_fd(), &child)?;
        }
        // SAFETY: valid C string; removes the (now empty) directory entry.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), libc::AT_REMOVEDIR) })?;
    } else {
        // SAFETY: as above; unlinkat never follows the entry.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), 0) })?;
    }
    Ok(())
}

/// Copies all bytes of one open file into another.
pub fn copy_data(src: &OwnedFd, dst: &OwnedFd) -> io::Result<u64> {
    let mut r = std::fs::File::from(src.try_clone()?);
    let mut w = std::fs::File::from(dst.try_clone()?);
    io::copy(&mut r, &mut w)
}

/// Writes the tree at `dir` into `tar` under the name `name` (the
/// directory's own entry first). Entries are opened relative to their
/// parent with O_NOFOLLOW and their headers come from the opened fd, so
/// a tree that changes while it is read never leads outside it.
pub fn tar_dir<W: Write>(tar: &mut tar::Builder<W>, dir: RawFd, name: &Path) -> io::Result<()> {
    append_entry(tar, name, &fstat(dir)?, None, None)?;
    tar_tree(tar, dir, name, &mut |_, _| Ok(false))
}

/// The entries below `dir` as one whole tar stream (an image flattened to
/// one layer), leaving out `skip` (paths relative to `dir`).
pub fn tar_contents<W: Write>(
    dir: RawFd,
    out: W,
    skip: &std::collections::BTreeSet<std::path::PathBuf>,
) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    tar_tree(&mut b, dir, Path::new(""), &mut |_, v| {
        Ok(matches!(v, Visit::Entry { path, .. } if skip.contains(path)))
    })?;
    b.into_inner()
}

/// A point of the walk of `tar_tree`, for its caller's hook.
pub enum Visit<'a> {
    /// A directory whose entries come next (its own entry is written).
    Dir { fd: RawFd, path: &'a Path },
    /// An entry about to be written; the hook returns true when it wrote
    /// something in its place itself.
    Entry { path: &'a Path, st: &'a libc::stat },
}

/// The hook `tar_tree` calls at each directory and entry.
pub type TarHook<'h, W> = dyn FnMut(&mut tar::Builder<W>, Visit<'_>) -> io::Result<bool> + 'h;

/// Writes the entries below `dir` (not `dir` itself) into `tar` under
/// `name`, walked as `tar_dir` does, letting `hook` add or replace
/// entries (a layer's whiteouts).
pub fn tar_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: RawFd,
    name: &Path,
    hook: &mut TarHook<'_, W>,
) -> io::Result<()> {
    walk_tar(tar, dir, name, hook, &mut HashMap::new())
}

/// `tar_tree`'s walk; `links` remembers the first name of each file with
/// more than one link, so the next ones become hard-link entries (a layer
/// keeps one copy of the data, as podman and docker write it).
fn walk_tar<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: RawFd,
    name: &Path,
    hook: &mut TarHook<'_, W>,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    hook(
        tar,
        Visit::Dir {
            fd: dir,
            path: name,
        },
    )?;
    for child in names(dir)? {
        // Names are bytes: a name that is not UTF-8 is copied as it is.
        let path = name.join(std::ffi::OsStr::from_bytes(&child));
        let st = match lstat_at(dir, &child) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if hook(
            tar,
            Visit::Entry {
                path: &path,
                st: &st,
            },
        )? {
            continue;
        }
        match kind(st.st_mode) {
            libc::S_IFDIR => match open_dir_at(dir, &child) {
                Ok(sub) => {
                    append_entry(tar, &path, &fstat(sub.as_raw_fd())?, None, None)?;
                    walk_tar(tar, sub.as_raw_fd(), &path, hook, links)?
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {}
                Err(e) => return Err(e),
            },
            libc::S_IFREG if st.st_nlink > 1 && links.contains_key(&(st.st_dev, st.st_ino)) => {
                let first = &links[&(st.st_dev, st.st_ino)];
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(st.st_mode & 0o7777);
                h.set_uid(st.st_uid as u64);
                h.set_gid(st.st_gid as u64);
                h.set_mtime(st.st_mtime.max(0) as u64);
                h.set_size(0);
                tar.append_link(&mut h, &path, first)?;
            }
            libc::S_IFREG => match open_file_at(dir, &child) {
                Ok(f) => {
                    if st.st_nlink > 1 {
                        links.insert((st.st_dev, st.st_ino), path.clone());
                    }
                    tar_file(tar, &f, &path)?
                }
                // Swapped for a link or a device since the stat: left out.
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::ELOOP))
                        || e.kind() == io::ErrorKind::InvalidInput => {}
                Err(e) => return Err(e),
            },
            libc::S_IFLNK => {
                let target = readlink_at(dir, &child)?;
                append_entry(tar, &path, &st, Some(&target), None)?;
            }
            _ => append_entry(tar, &path, &st, None, None)?,
        }
    }
    Ok(())
}

/// Writes one open regular file into `tar` as `name`.
pub fn tar_file<W: Write>(
    tar: &mut tar::Builder<W>,
    file: &OwnedFd,
    name: &Path,
) -> io::Result<()> {
    let st = fstat(file.as_raw_fd())?;
    let f = std::fs::File::from(file.try_clone()?);
    // The size in the header is the size at fstat; a file that grows is cut
    // there, one that shrinks is padded (the tar stays well formed).
    let data = f.take(st.st_size as u64).chain(io::repeat(0));
    append_entry(tar, name, &st, None, Some(Box::new(data)))
}

/// Writes one entry whose header comes from `st` (with a link target or
/// the data, when it has one).
pub fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &Path,
    st: &libc::stat,
    link: Option<&[u8]>,
    data: Option<Box<dyn Read + '_>>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    let kind = match kind(st.st_mode) {
        libc::S_IFDIR => tar::EntryType::Directory,
        libc::S_IFREG => tar::EntryType::Regular,
        libc::S_IFLNK => tar::EntryType::Symlink,
        libc::S_IFCHR => tar::EntryType::Char,
        libc::S_IFBLK => tar::EntryType::Block,
        libc::S_IFIFO => tar::EntryType::Fifo,
        _ => return Ok(()), // sockets have no tar form
    };
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        h.set_device_major(libc::major(st.st_rdev))?;
        h.set_device_minor(libc::minor(st.st_rdev))?;
    }
    match (kind, link, data) {
        (tar::EntryType::Symlink, Some(target), _) => {
            h.set_size(0);
            // A target that fits the header is kept byte for byte
            // (append_link would write "/" as "//"); a longer one needs
            // the GNU long-link entry append_link writes.
            if target.len() <= 100 {
                h.set_link_name_literal(target)?;
                tar.append_data(&mut h, name, io::empty())
            } else {
                let target = Path::new(std::ffi::OsStr::from_bytes(target));
                tar.append_link(&mut h, name, target)
            }
        }
        (tar::EntryType::Regular, _, Some(d)) => {
            h.set_size(st.st_size as u64);
            tar.append_data(&mut h, name, d.take(st.st_size as u64))
        }
        _ => {
            h.set_size(0);
            tar.append_data(&mut h, name, io::empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_dir_keeps_names_that_are_not_utf8() {
        let base = std::env::temp_dir().join(format!("berth-fdtree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9");
        std::fs::write(base.join(odd), "x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", base.join("link")).unwrap();
        let dir = open_at(
            libc::AT_FDCWD,
            base.as_os_str().as_encoded_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        tar_dir(&mut b, dir.as_raw_fd(), Path::new("d")).unwrap();
        let bytes = b.into_inner().unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(Vec<u8>, tar::EntryType)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path_bytes().into_owned(), e.header().entry_type())
            })
            .collect();
        assert!(entries.contains(&(b"d/caf\xe9".to_vec(), tar::EntryType::Regular)));
        // A link is stored as a link, never followed.
        assert!(entries.contains(&(b"d/link".to_vec(), tar::EntryType::Symlink)));
        std::fs::remove_dir_all(&base).unwrap();
    }
}

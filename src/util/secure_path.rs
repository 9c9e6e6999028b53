//! Paths resolved inside a root directory with openat2(RESOLVE_IN_ROOT):
//! `..` and symlinks (absolute or relative) can never leave the root. Used
//! to unpack layers and to place mounts inside a container's rootfs, where
//! an image could otherwise aim a symlink at the host.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// A C string from bytes (NUL bytes, impossible in paths, become `_`).
pub fn cstr(b: &[u8]) -> CString {
    CString::new(b.to_vec()).unwrap_or_else(|_| CString::new("_").expect("no NUL"))
}

/// Turns a libc return value into an io::Result.
pub fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// openat2 confined to `root`: symlinks and `..` resolve inside it.
pub fn open_in_root(root: RawFd, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let p = if path.is_empty() {
        cstr(b".")
    } else {
        cstr(path)
    };
    // SAFETY: open_how is plain data; zero is a valid value for each field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: valid pointers for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                p.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

/// openat relative to a directory fd.
pub fn open_at(dir: RawFd, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let n = cstr(name);
    // SAFETY: valid C string; the result is checked.
    let fd = check(unsafe { libc::openat(dir, n.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Splits a path into clean components: no empty, `.` or `..` parts
/// (`..` pops, and cannot go above the root).
pub fn clean_components(raw: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Opens the directory at `comps` inside `root`, creating missing ones (mode 0755).
pub fn mkdir_all_in_root(root: RawFd, comps: &[&[u8]]) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let key = comps.join(&b'/');
    match open_in_root(root, &key, flags) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let mut cur = open_in_root(root, b"", flags)?;
    for (i, c) in comps.iter().enumerate() {
        let prefix = comps[..=i].join(&b'/');
        cur = match open_in_root(root, &prefix, flags) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let n = cstr(c);
                // SAFETY: valid C string.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), n.as_ptr(), 0o755) };
                if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(io::Error::last_os_error());
                }
                open_in_root(root, &prefix, flags)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Makes sure `path` exists inside `root` (as a dir, or as an empty file
/// when `file`) and returns an O_PATH fd to it, for mounting onto
/// `/proc/self/fd/N` without ever following a path outside the root.
pub fn ensure_in_root(root: RawFd, path: &[u8], file: bool) -> io::Result<OwnedFd> {
    let comps = clean_components(path);
    let Some((name, parent)) = comps.split_last() else {
        return open_in_root(root, b"", libc::O_PATH);
    };
    let dir = mkdir_all_in_root(root, parent)?;
    let full = comps.join(&b'/');
    match open_in_root(root, &full, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let n = cstr(name);
    if file {
        // SAFETY: valid C string.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                n.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            )
        };
        if fd >= 0 {
            // SAFETY: fd just opened.
            unsafe { libc::close(fd) };
        }
    } else {
        // SAFETY: valid C string.
        unsafe { libc::mkdirat(dir.as_raw_fd(), n.as_ptr(), 0o755) };
    }
    open_in_root(root, &full, libc::O_PATH)
}

/// `/proc/self/fd/N`, the path through which a mount lands exactly on an fd.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The parent directory of `path` inside `root` (created when missing) and
/// the last component, so that a node can be made or replaced with
/// `*at(dir, name)` calls: nothing on the way, not even a symlinked `/dev`,
/// can take the operation outside the root.
pub fn parent_in_root(root: RawFd, path: &[u8]) -> io::Result<(OwnedFd, CString)> {
    let comps = clean_components(path);
    let Some((name, parent)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the root itself has no parent",
        ));
    };
    Ok((mkdir_all_in_root(root, parent)?, cstr(name)))
}

/// Largest file berth reads from a container's root for itself (passwd,
/// group): such files are a few kilobytes; a bigger one is hostile.
pub const MAX_READ_IN_ROOT: u64 = 4 << 20;

/// Reads a regular file at `path` inside the directory `root` (a
/// container's root or an image layer) for berth's own use: resolved with
/// RESOLVE_IN_ROOT, the last component not followed when it is a symlink,
/// never a device or fifo, and at most `MAX_READ_IN_ROOT` bytes. None when
/// there is no such regular file.
pub fn read_file_in_root(root: &std::path::Path, path: &str) -> Option<Vec<u8>> {
    let dir = open_at(
        libc::AT_FDCWD,
        root.as_os_str().as_encoded_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .ok()?;
    read_file_at_root(dir.as_raw_fd(), path)
}

/// True when `path` exists inside `root` (symlinks resolved inside it,
/// never outside).
pub fn exists_in_root(root: &std::path::Path, path: &str) -> bool {
    let Ok(dir) = open_at(
        libc::AT_FDCWD,
        root.as_os_str().as_encoded_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    ) else {
        return false;
    };
    open_in_root(
        dir.as_raw_fd(),
        path.trim_start_matches('/').as_bytes(),
        libc::O_PATH,
    )
    .is_ok()
}

/// [`read_file_in_root`] for a root that is already open.
pub fn read_file_at_root(root: RawFd, path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let fd = open_in_root(
        root,
        path.trim_start_matches('/').as_bytes(),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )
    .ok()?;
    let f = std::fs::File::from(fd);
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_READ_IN_ROOT {
        return None;
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_READ_IN_ROOT).read_to_end(&mut out).ok()?;
    Some(out)
}

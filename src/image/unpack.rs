//! Unpacks one layer tar into its own directory, in overlayfs format
//! (whiteouts become 0/0 character devices, opaque dirs get the overlay
//! xattr), and never writes outside that directory: every path is resolved
//! with openat2(RESOLVE_IN_ROOT), so `..`, absolute symlinks and symlinked
//! parent dirs in a hostile layer all stay inside it.

use crate::util::fdtree;
use crate::util::secure_path::{check, cstr, mkdir_all_in_root, open_at, open_in_root};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer tar is malformed: {0}")]
    Tar(String),
    #[error("unpacking {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer tar has a hard link {path} to {target}, which is not in the layer")]
    BadLink { path: String, target: String },
    #[error("layer tar has a whiteout {0:?} that names no file in its directory")]
    BadWhiteout(String),
    #[error("{0}: file exists: a directory and a non-directory cannot replace each other (use --overwrite)")]
    Exists(String),
}

/// How to unpack: rootless stores cannot create device nodes and use the
/// `user.` xattr namespace for overlay metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnpackOptions {
    pub rootless: bool,
    /// Not a layer but a `cp` into an existing directory.
    pub copy: Option<CopyRules>,
}

/// How `cp` differs from a layer: `.wh.` names are plain files, an
/// existing directory and a non-directory never replace each other
/// unless asked to, and on the host, files are the caller's and device
/// nodes are not made.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyRules {
    /// `--overwrite`: a directory may replace a file and the other way.
    pub overwrite: bool,
    /// Keep the archive's owners (into a container); else the files are
    /// the caller's (onto the host, as docker and podman do).
    pub keep_owners: bool,
    /// Make device nodes (into a container; never onto the host).
    pub devices: bool,
}

impl UnpackOptions {
    /// The xattr overlayfs reads to mark a directory opaque.
    pub fn opaque_xattr(&self) -> &'static str {
        if self.rootless {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        }
    }
}

/// Counts worth telling the user about.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    /// Device nodes skipped because a rootless user cannot create them.
    pub skipped_devices: u64,
    /// Files whose owner is outside the user's id range (left owned by root).
    pub unmapped_owners: u64,
}

fn lstat_at(dir: RawFd, name: &[u8]) -> io::Result<Option<libc::stat>> {
    match fdtree::lstat_at(dir, name) {
        Ok(st) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `name` in `dir` (recursively for dirs) without following symlinks.
fn remove_at(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let n = cstr(name);
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let sub = fdtree::open_dir_at(dir, name)?;
        let entries = fdtree::names(sub.as_raw_fd())?;
        for e in entries {
            remove_at(sub.as_raw_fd(), &e)?;
        }
        // SAFETY: valid C string.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), libc::AT_REMOVEDIR) })?;
    } else {
        // SAFETY: valid C string.
        check(unsafe { libc::unlinkat(dir, n.as_ptr(), 0) })?;
    }
    Ok(())
}

/// atime and mtime, both set to a tar entry's mtime.
fn times(mtime: i64) -> [libc::timespec; 2] {
    let t = libc::timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    [t, t]
}

pub use crate::util::secure_path::clean_components;

struct Unpacker {
    root: OwnedFd,
    opts: UnpackOptions,
    stats: UnpackStats,
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    dir_times: Vec<(Vec<u8>, i64)>,
    buf: Vec<u8>,
}

impl Unpacker {
    /// Opens (creating missing dirs) the parent directory of an entry.
    fn parent(&mut self, comps: &[&[u8]]) -> io::Result<RawFd> {
        let key = comps.join(&b'/');
        if let Some((k, fd)) = &self.cached_parent {
            if *k == key {
                return Ok(fd.as_raw_fd());
            }
        }
        let fd = mkdir_all_in_root(self.root.as_raw_fd(), comps)?;
        let raw = fd.as_raw_fd();
        self.cached_parent = Some((key, fd));
        Ok(raw)
    }

    fn chown(&mut self, fd: RawFd, name: Option<&[u8]>, uid: u64, gid: u64) -> io::Result<()> {
        if self.opts.copy.is_some_and(|c| !c.keep_owners) {
            return Ok(());
        }
        let (uid, gid) = (uid as libc::uid_t, gid as libc::gid_t);
        let r = match name {
            // SAFETY: plain syscalls on fds we own.
            None => unsafe { libc::fchown(fd, uid, gid) },
            Some(n) => {
                let c = cstr(n);
                // SAFETY: valid C string.
                unsafe { libc::fchownat(fd, c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }
            }
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // An id outside the user's mapped range (EINVAL) or no range at
            // all (EPERM): the file stays owned by the user.
            if self.opts.rootless
                && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EPERM))
            {
                self.stats.unmapped_owners += 1;
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    fn set_xattrs(&self, fd: RawFd, xattrs: &[(String, Vec<u8>)]) {
        for (k, v) in xattrs {
            // Overlay metadata in a layer could forge whiteouts or redirects.
            if k.starts_with("trusted.overlay.") || k.starts_with("user.overlay.") {
                continue;
            }
            let name = cstr(k.as_bytes());
            // SAFETY: valid pointers; failure (e.g. trusted.* when rootless) is ignored.
            unsafe { libc::fsetxattr(fd, name.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
        }
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<R>) -> io::Result<()> {
        let raw_path = e.path_bytes().into_owned();
        let comps = clean_components(&raw_path);
        let Some((name, parent)) = comps.split_last() else {
            // The layer root itself: a layer's root takes the entry's mode
            // and owner (an image's `/` is often 0555), as containers/storage
            // does; `cp` leaves the destination as it is.
            let h = e.header();
            if self.opts.copy.is_none() && h.entry_type() == tar::EntryType::Directory {
                let mode = h.mode().unwrap_or(0o755) & 0o7777;
                let (uid, gid) = (h.uid().unwrap_or(0), h.gid().unwrap_or(0));
                let root = self.root.as_raw_fd();
                self.chown(root, None, uid, gid)?;
                // SAFETY: fd we own.
                check(unsafe { libc::fchmod(root, mode) })?;
            }
            return Ok(());
        };
        let (name, parent) = (name.to_vec(), parent.to_vec());
        let h = e.header().clone();
        let kind = h.entry_type();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let mtime = h.mtime().unwrap_or(0) as i64;
        let xattrs: Vec<(String, Vec<u8>)> = match e.pax_extensions() {
            Ok(Some(exts)) => exts
                .flatten()
                .filter_map(|x| {
                    let k = x.key().ok()?;
                    k.strip_prefix("SCHILY.xattr.")
                        .map(|n| (n.to_string(), x.value_bytes().to_vec()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let dir = self.parent(&parent)?;

        // Whiteouts, in overlayfs format (a layer's only; `cp` has none).
        if let Some(target) = name
            .strip_prefix(b".wh.")
            .filter(|_| self.opts.copy.is_none())
        {
            if matches!(target, b"" | b"." | b"..") {
                return Err(io::Error::other(UnpackError::BadWhiteout(
                    String::from_utf8_lossy(&raw_path).into(),
                )));
            }
            if target == b".wh..opq" {
                let v = b"y";
                let n = cstr(self.opts.opaque_xattr().as_bytes());
                // SAFETY: valid pointers.
                check(unsafe { libc::fsetxattr(dir, n.as_ptr(), v.as_ptr().cast(), 1, 0) })?;
            } else if !target.starts_with(b".wh.") && !target.is_empty() {
                remove_at(dir, target)?;
                let n = cstr(target);
                // SAFETY: valid C string.
                check(unsafe { libc::mknodat(dir, n.as_ptr(), libc::S_IFCHR, 0) })?;
            }
            return Ok(());
        }

        let existing = lstat_at(dir, &name)?;
        let is_dir = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let new_dir = kind == tar::EntryType::Directory;
        match (&existing, self.opts.copy) {
            (Some(st), _) if new_dir && is_dir(st) => {}
            (Some(st), Some(c)) if !c.overwrite && new_dir != is_dir(st) => {
                return Err(io::Error::other(UnpackError::Exists(
                    String::from_utf8_lossy(&raw_path).into(),
                )));
            }
            (Some(_), _) => remove_at(dir, &name)?,
            (None, _) => {}
        }
        let n = cstr(&name);
        match kind {
            tar::EntryType::Directory => {
                if existing.is_none() {
                    // SAFETY: valid C string.
                    check(unsafe { libc::mkdirat(dir, n.as_ptr(), 0o700) })?;
                }
                let fd = fdtree::open_dir_at(dir, &name)?;
                self.chown(fd.as_raw_fd(), None, uid, gid)?;
                // SAFETY: fd we own.
                check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })?;
                self.set_xattrs(fd.as_raw_fd(), &xattrs);
                let mut full = parent.join(&b'/');
                if !full.is_empty() {
                    full.push(b'/');
                }
                full.extend_from_slice(&name);
                self.dir_times.push((full, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = fdtree::create_file_at(dir, &name)?;
                let mut f = File::from(fd);
                loop {
                    let k = e.read(&mut self.buf)?;
                    if k == 0 {
                        break;
                    }
                    f.write_all(&self.buf[..k])?;
                }
                let raw = f.as_raw_fd();
                self.chown(raw, None, uid, gid)?;
                // SAFETY: fd we own; chmod after chown keeps setuid bits.
                check(unsafe { libc::fchmod(raw, mode) })?;
                self.set_xattrs(raw, &xattrs);
                let ts = times(mtime);
                // SAFETY: valid pointer to two timespecs.
                unsafe { libc::futimens(raw, ts.as_ptr()) };
            }
            tar::EntryType::Symlink => {
                let target = e.link_name_bytes().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "symlink without target")
                })?;
                let t = cstr(&target);
                // SAFETY: valid C strings. The target is stored, never followed here.
                check(unsafe { libc::symlinkat(t.as_ptr(), dir, n.as_ptr()) })?;
                self.chown(dir, Some(&name), uid, gid)?;
                let ts = times(mtime);
                // SAFETY: valid pointers.
                unsafe { libc::utimensat(dir, n.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let tcomps = clean_components(&target);
                let bad = || UnpackError::BadLink {
                    path: String::from_utf8_lossy(&raw_path).into(),
                    target: String::from_utf8_lossy(&target).into(),
                };
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(io::Error::other(bad()));
                };
                let tdir = open_in_root(
                    self.root.as_raw_fd(),
                    &tparent.join(&b'/'),
                    libc::O_RDONLY | libc::O_DIRECTORY,
                )
                .map_err(|_| io::Error::other(bad()))?;
                let tn = cstr(tname);
                // SAFETY: valid C strings; flags 0 links a symlink itself, never its target.
                let r = unsafe { libc::linkat(tdir.as_raw_fd(), tn.as_ptr(), dir, n.as_ptr(), 0) };
                if r < 0 {
                    return Err(io::Error::other(bad()));
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let fmt = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let no_nodes = self.opts.rootless || self.opts.copy.is_some_and(|c| !c.devices);
                if no_nodes && fmt != libc::S_IFIFO {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let dev = libc::makedev(major, minor);
                // SAFETY: valid C string.
                check(unsafe { libc::mknodat(dir, n.as_ptr(), fmt | mode, dev) })?;
                self.chown(dir, Some(&name), uid, gid)?;
            }
            _ => {} // pax globals and other metadata-only entries
        }
        Ok(())
    }
}

/// Unpacks a tar stream into `dest` (an existing, empty directory).
pub fn unpack<R: Read>(
    reader: R,
    dest: &Path,
    opts: UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let root = open_at(
        libc::AT_FDCWD,
        dest.as_os_str().as_encoded_bytes(),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )
    .map_err(|source| UnpackError::Io {
        path: dest.display().to_string(),
        source,
    })?;
    let mut u = Unpacker {
        root,
        opts,
        stats: UnpackStats::default(),
        cached_parent: None,
        dir_times: Vec::new(),
        buf: vec![0u8; 256 * 1024],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| UnpackError::Tar(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| UnpackError::Tar(e.to_string()))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        u.entry(entry).map_err(|source| {
            match source
                .get_ref()
                .and_then(|i| i.downcast_ref::<UnpackError>())
            {
                Some(UnpackError::BadLink { path, target }) => UnpackError::BadLink {
                    path: path.clone(),
                    target: target.clone(),
                },
                Some(UnpackError::BadWhiteout(p)) => UnpackError::BadWhiteout(p.clone()),
                Some(UnpackError::Exists(p)) => UnpackError::Exists(p.clone()),
                _ if source.kind() == io::ErrorKind::UnexpectedEof
                    || source.kind() == io::ErrorKind::InvalidData =>
                {
                    UnpackError::Tar(format!("{path}: {source}"))
                }
                _ => UnpackError::Io { path, source },
            }
        })?;
        u.stats.entries += 1;
    }
    // Directory times last: creating children would change them again.
    for (path, mtime) in u.dir_times.iter().rev() {
        if let Ok(fd) = open_in_root(u.root.as_raw_fd(), path, libc::O_RDONLY | libc::O_DIRECTORY) {
            let ts = times(*mtime);
            // SAFETY: valid pointer to two timespecs.
            unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) };
        }
    }
    Ok(u.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_never_climb_out() {
        let c = |s: &str| {
            clean_components(s.as_bytes())
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(c("../../etc/passwd"), "etc/passwd");
        assert_eq!(c("/abs/./x"), "abs/x");
        assert_eq!(c("a/../../b"), "b");
        assert_eq!(c("./"), "");
    }
}

//! `cp` between the host and a container, running or not. Paths inside the
//! container are resolved with openat2(RESOLVE_IN_ROOT) against its root
//! (/proc/PID/root), so a symlink in the container cannot aim a copy at the
//! host. The source is walked with directory fds and O_NOFOLLOW; the copy
//! is a tar stream unpacked in `cp` mode (no whiteouts, no directory and
//! file replacing each other unless `--overwrite`), which keeps every
//! write inside the destination directory.

use super::container::{ContainerRecord, Containers};
use crate::image::unpack::{unpack, CopyRules, UnpackOptions};
use crate::util::fdtree;
use crate::util::secure_path::{fd_path, open_in_root};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Host(PathBuf),
    Container { name: String, path: String },
}

impl Location {
    /// `NAME:PATH` is in a container; anything else is a host path.
    pub fn parse(s: &str) -> Location {
        match s.split_once(':') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => Location::Container {
                name: name.to_string(),
                path: path.to_string(),
            },
            _ => Location::Host(PathBuf::from(s)),
        }
    }
}

/// Why `cp` failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// What the user asked for cannot be done (a clash, a bad path).
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Failed {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Container(#[from] super::container::ContainerError),
}

fn usage(s: impl Into<String>) -> CopyError {
    CopyError::Refused(s.into())
}

/// Wraps what failed with what `cp` was doing, for `map_err`.
fn failed<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> CopyError {
    let what = what.into();
    move |e| CopyError::Failed {
        what,
        source: e.into(),
    }
}

/// The root directory of a running container, as its processes see it.
fn running_root(r: &ContainerRecord, pid: i32) -> Result<OwnedFd, CopyError> {
    crate::util::secure_path::open_at(
        libc::AT_FDCWD,
        format!("/proc/{pid}/root").as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(failed(format!("opening the root of {}", r.name)))
}

/// Runs `f` with the root of a container that is not running: in a child
/// process with a mount namespace of its own, where the container's root
/// filesystem is mounted as at its start; nothing stays mounted after.
fn with_stopped_root(
    containers: &Containers,
    r: &ContainerRecord,
    paths: &super::Paths,
    f: impl FnOnce(&OwnedFd) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    let spec: oci_spec::runtime::Spec =
        std::fs::read(containers.dir(&r.id).join("userdata/config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or_else(|| {
                usage(format!(
                    "the configuration of {} is missing or damaged",
                    r.name
                ))
            })?;
    let rootfs = PathBuf::from(r.rootfs_mount.clone().unwrap_or_default());
    with_spec_root(&spec, &rootfs, paths, &r.name, f)
}

/// Runs `f` with the root filesystem `spec` describes (its overlay, or its
/// plain root) mounted at `rootfs`, in a child process with a mount
/// namespace of its own (rootless: in the store's user namespace), so
/// nothing stays mounted after. `name` says whose root it is in errors.
pub fn with_spec_root(
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    paths: &super::Paths,
    name: &str,
    f: impl FnOnce(&OwnedFd) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    let rootless = paths.rootless;
    let (mut err_r, mut err_w) = std::io::pipe().map_err(failed("pipe"))?;
    // SAFETY: the child only mounts, copies and exits; it does not return.
    match unsafe { nix::unistd::fork() }.map_err(failed("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(err_r);
            // Rootless: mounting needs the store's user namespace (the
            // process that enters it only waits for the one that works).
            let entered = if rootless && !crate::namespaces::userns::in_berth_userns() {
                crate::namespaces::userns::enter_store_userns(&paths.runroot)
                    .map_err(failed("entering the user namespace"))
            } else {
                Ok(())
            };
            let result = entered
                .and_then(|_| {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                        .map_err(failed("a mount namespace for the copy"))
                })
                .and_then(|_| {
                    crate::runtime::mount_rootfs_here(spec, rootfs, rootless)
                        .map_err(failed(format!("mounting the root of {name}")))
                })
                .and_then(|_| {
                    let root = crate::util::secure_path::open_at(
                        libc::AT_FDCWD,
                        rootfs.as_os_str().as_encoded_bytes(),
                        libc::O_PATH | libc::O_DIRECTORY,
                        0,
                    )
                    .map_err(failed(format!("opening the root of {name}")))?;
                    f(&root)
                });
            let code = match result {
                Ok(()) => 0,
                Err(e) => {
                    let _ = std::io::Write::write_all(&mut err_w, e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(err_w);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut err_r, &mut msg);
            let status = nix::sys::wait::waitpid(child, None);
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                _ if !msg.is_empty() => Err(usage(msg)),
                other => Err(usage(format!("the copy process failed: {other:?}"))),
            }
        }
    }
}

/// Runs `f` with the root of container `name`, running or not.
fn with_container_root(
    containers: &Containers,
    name: &str,
    paths: &super::Paths,
    f: impl FnOnce(&OwnedFd) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    let mut r = containers.find(name)?;
    // A container whose process just ended has no /proc/PID/root but may
    // still be recorded as running for a moment: wait for the record.
    for _ in 0..40 {
        match r.pid.filter(|_| r.is_running()) {
            Some(pid) => match running_root(&r, pid) {
                Ok(root) => return f(&root),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            },
            None => return with_stopped_root(containers, &r, paths, f),
        }
        r = containers.find(name)?;
    }
    match r.pid.filter(|_| r.is_running()) {
        Some(pid) => f(&running_root(&r, pid)?),
        None => with_stopped_root(containers, &r, paths, f),
    }
}

/// Writes the file or directory open at `source` as a tar stream (under
/// the name `name`) into the directory `dest_dir`. The source is walked
/// with directory fds and O_NOFOLLOW, so a container that changes its
/// files during the copy cannot make berth read a host file.
fn tar_into(
    source: OwnedFd,
    name: &str,
    dest_dir: &Path,
    opts: UnpackOptions,
) -> Result<(), CopyError> {
    let (r, w) = std::io::pipe().map_err(failed("pipe"))?;
    let name = name.to_string();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = tar::Builder::new(w);
        match fdtree::kind(fdtree::fstat(source.as_raw_fd())?.st_mode) {
            libc::S_IFDIR => fdtree::tar_dir(&mut b, source.as_raw_fd(), Path::new(&name))?,
            _ => fdtree::tar_file(&mut b, &source, Path::new(&name))?,
        }
        b.finish()
    });
    let res = unpack(r, dest_dir, opts).map_err(failed("copying"));
    let wrote = writer.join().map_err(|_| usage("copy thread failed"))?;
    res?;
    wrote.map_err(failed("reading the source"))?;
    Ok(())
}

/// Opens what `cp` copies from: a directory or a regular file (O_PATH
/// first, so a device or fifo is never opened), reopened for reading.
fn open_source(path_fd: OwnedFd, what: &str) -> Result<OwnedFd, CopyError> {
    let st = fdtree::fstat(path_fd.as_raw_fd()).map_err(failed(what))?;
    let flags = match fdtree::kind(st.st_mode) {
        libc::S_IFDIR => libc::O_RDONLY | libc::O_DIRECTORY,
        libc::S_IFREG => libc::O_RDONLY,
        _ => {
            return Err(usage(format!(
                "{what}: not a regular file or directory: cannot copy it"
            )))
        }
    };
    // Reopening through the fd keeps the inode that was checked.
    crate::util::secure_path::open_at(libc::AT_FDCWD, fd_path(&path_fd).as_bytes(), flags, 0)
        .map_err(failed(what))
}

/// Where a copy onto the host lands, as podman decides: into an existing
/// directory under the source's name; over an existing regular file
/// (through a symlink to one); or as a new entry in an existing
/// directory. Anything else (a device such as /dev/stdout's terminal) is
/// an invalid destination.
fn host_destination(
    to: &Path,
    base: &str,
    source_is_dir: bool,
) -> Result<(PathBuf, String), CopyError> {
    let shown = to.display();
    match std::fs::metadata(to) {
        Ok(m) if m.is_dir() => Ok((to.to_path_buf(), base.to_string())),
        Ok(m) if m.is_file() => {
            if source_is_dir {
                return Err(usage(
                    "destination must be a directory when copying a directory",
                ));
            }
            let real = std::fs::canonicalize(to).map_err(failed(shown.to_string()))?;
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((real.parent().unwrap_or(Path::new("/")).to_path_buf(), name))
        }
        Ok(_) => Err(usage(format!(
            "invalid destination: {shown:?} must be a directory or a regular file"
        ))),
        Err(_) if to.as_os_str().as_encoded_bytes().ends_with(b"/") => Err(usage(format!(
            "{shown:?} could not be found on the host: no such directory"
        ))),
        Err(_) => {
            let parent = to
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(usage(format!(
                    "{shown:?} could not be found on the host: {} is not a directory",
                    parent.display()
                )));
            }
            let name = to
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| base.to_string());
            Ok((parent.to_path_buf(), name))
        }
    }
}

/// How `cp` copies (its flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyFlags {
    /// Let a directory and a non-directory replace each other.
    pub overwrite: bool,
    /// Keep the files' owners (`-a`, podman's default); without it, what
    /// goes into a container belongs to its root.
    pub archive: bool,
}

/// A path in container `r` as `cp` means it: relative paths start at its
/// working directory, as podman resolves them.
fn in_container(containers: &Containers, r: &ContainerRecord, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let cwd = std::fs::read(containers.dir(&r.id).join("userdata/config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|v| v["process"]["cwd"].as_str().map(String::from))
        .unwrap_or_else(|| "/".into());
    format!("{}/{path}", cwd.trim_end_matches('/'))
}

/// podman's words for a path that is not there (scripts match on them).
fn not_found_in(name: &str, path: &str) -> CopyError {
    usage(format!(
        "{path:?} could not be found on container {name}: no such file or directory"
    ))
}

/// Opens `path` in the container's root (O_PATH), or says it is not there.
/// (`shown` is the path as the user gave it, for the message.)
fn open_in_container(
    root: &OwnedFd,
    name: &str,
    path: &str,
    shown: &str,
    flags: i32,
) -> Result<OwnedFd, CopyError> {
    open_in_root(root.as_raw_fd(), path.as_bytes(), flags).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
            not_found_in(name, shown)
        } else {
            failed(format!("{name}:{path}"))(e)
        }
    })
}

/// Where a copy into a container lands: into an existing directory under
/// the source's name, or as `path`'s last name in its (existing) parent.
fn container_destination(
    root: &OwnedFd,
    name: &str,
    path: &str,
    source_name: &str,
    source_is_dir: bool,
) -> Result<(OwnedFd, String), CopyError> {
    if let Ok(d) = open_in_root(
        root.as_raw_fd(),
        path.as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
    ) {
        return Ok((d, source_name.to_string()));
    }
    if path.ends_with('/') {
        return Err(not_found_in(name, path));
    }
    if source_is_dir && open_in_root(root.as_raw_fd(), path.as_bytes(), libc::O_PATH).is_ok() {
        return Err(usage(
            "destination must be a directory when copying a directory",
        ));
    }
    let p = Path::new(path);
    let parent = p
        .parent()
        .map(|x| x.display().to_string())
        .unwrap_or_default();
    let d = open_in_root(
        root.as_raw_fd(),
        parent.as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(|_| not_found_in(name, path))?;
    let base = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((d, base))
}

/// Unpack rules for what goes into a container (owners kept with `-a`,
/// device nodes allowed) or onto the host (owners are the caller's, no
/// device nodes).
fn rules(into_container: bool, flags: CopyFlags, rootless: bool) -> UnpackOptions {
    UnpackOptions {
        rootless: rootless && into_container,
        copy: Some(CopyRules {
            overwrite: flags.overwrite,
            keep_owners: into_container && flags.archive,
            devices: into_container,
        }),
    }
}

/// Writes container `name`'s `path` as a tar stream to `out` (`cp CTR:PATH -`
/// and the first half of a copy between containers).
fn container_to_tar(
    containers: &Containers,
    name: &str,
    path: &str,
    paths: &super::Paths,
    out: std::fs::File,
    top_name: Option<&str>,
) -> Result<(), CopyError> {
    let r = containers.find(name)?;
    let given = path;
    let path = in_container(containers, &r, path);
    with_container_root(containers, name, paths, |root| {
        let src = open_in_container(root, name, &path, given, libc::O_PATH)?;
        let src = open_source(src, &format!("{name}:{path}"))?;
        let base = top_name.map(String::from).unwrap_or_else(|| {
            Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into())
        });
        let out = out.try_clone().map_err(failed("the output"))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(out));
        let written = match fdtree::kind(
            fdtree::fstat(src.as_raw_fd())
                .map_err(failed("stat"))?
                .st_mode,
        ) {
            libc::S_IFDIR => fdtree::tar_dir(&mut b, src.as_raw_fd(), Path::new(&base)),
            _ => fdtree::tar_file(&mut b, &src, Path::new(&base)),
        };
        written
            .and_then(|_| b.into_inner())
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(failed("writing the tar"))
    })
}

/// Unpacks the tar stream `input` into the directory `path` of container
/// `name` (`cp - CTR:DIR`, and the second half of a copy between containers).
fn tar_to_container(
    containers: &Containers,
    name: &str,
    path: &str,
    paths: &super::Paths,
    input: std::fs::File,
    flags: CopyFlags,
) -> Result<(), CopyError> {
    let r = containers.find(name)?;
    let given = path;
    let path = in_container(containers, &r, path);
    let opts = rules(true, flags, paths.rootless);
    with_container_root(containers, name, paths, |root| {
        let dir = open_in_container(root, name, &path, given, libc::O_PATH | libc::O_DIRECTORY)?;
        let input = input.try_clone().map_err(failed("the input"))?;
        let tar = crate::image::manifest::Compression::decoding(std::io::BufReader::new(input))
            .map_err(failed("reading the tar"))?;
        unpack(tar, Path::new(&fd_path(&dir)), opts).map_err(failed("copying"))?;
        Ok(())
    })
}

/// Copies between host and container, or between two containers, as
/// `podman cp SRC DST`; `-` as SRC is a tar on stdin, as DST a tar on stdout.
pub fn copy(
    containers: &Containers,
    src: &str,
    dst: &str,
    paths: &super::Paths,
    flags: CopyFlags,
) -> Result<(), CopyError> {
    let rootless = paths.rootless;
    let stdio = |fd: i32| -> Result<std::fs::File, CopyError> {
        // SAFETY: dup of our own stdin/stdout gives a descriptor we own.
        let d = unsafe { libc::dup(fd) };
        if d < 0 {
            return Err(failed("stdio")(std::io::Error::last_os_error()));
        }
        // SAFETY: `d` is a new descriptor nothing else owns.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(d) })
    };
    match (Location::parse(src), Location::parse(dst)) {
        (Location::Host(from), Location::Container { name, path })
            if from == Path::new("-") || from == Path::new("/dev/stdin") =>
        {
            tar_to_container(containers, &name, &path, paths, stdio(0)?, flags)
        }
        (Location::Container { name, path }, Location::Host(to)) if to == Path::new("-") => {
            container_to_tar(containers, &name, &path, paths, stdio(1)?, None)
        }
        (Location::Host(from), Location::Container { name, path }) => {
            let shown = from.display().to_string();
            let source = crate::util::secure_path::open_at(
                libc::AT_FDCWD,
                from.as_os_str().as_encoded_bytes(),
                libc::O_PATH,
                0,
            )
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => usage(format!(
                    "{shown:?} could not be found on the host: no such file or directory"
                )),
                _ => failed(shown.clone())(e),
            })?;
            let source = open_source(source, &shown)?;
            let is_dir = fdtree::kind(
                fdtree::fstat(source.as_raw_fd())
                    .map_err(failed(shown.clone()))?
                    .st_mode,
            ) == libc::S_IFDIR;
            // `DIR/.` copies what is in DIR, not DIR itself (docker's rule).
            let source_name = if is_dir && (src == "." || src.ends_with("/.")) {
                ".".to_string()
            } else {
                from.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let r = containers.find(&name)?;
            let path = in_container(containers, &r, &path);
            let opts = rules(true, flags, rootless);
            with_container_root(containers, &name, paths, |root| {
                let (dir, base) = container_destination(root, &name, &path, &source_name, is_dir)?;
                tar_into(source, &base, Path::new(&fd_path(&dir)), opts)
            })
        }
        (Location::Container { name, path }, Location::Host(to)) => {
            let r = containers.find(&name)?;
            let given = path.clone();
            let path = in_container(containers, &r, &path);
            let opts = rules(false, flags, rootless);
            with_container_root(containers, &name, paths, |root| {
                let what = format!("{name}:{path}");
                let src = open_in_container(root, &name, &path, &given, libc::O_PATH)?;
                let src = open_source(src, &what)?;
                let is_dir = fdtree::kind(
                    fdtree::fstat(src.as_raw_fd())
                        .map_err(failed(what.clone()))?
                        .st_mode,
                ) == libc::S_IFDIR;
                let base = if is_dir && (path.ends_with("/.") || path == ".") {
                    ".".to_string()
                } else {
                    Path::new(&path)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "root".into())
                };
                let (dir, base) = host_destination(&to, &base, is_dir)?;
                tar_into(src, &base, &dir, opts)
            })
        }
        (Location::Host(_), Location::Host(_)) => {
            Err(usage("one side of berth cp must be CONTAINER:PATH"))
        }
        (
            Location::Container {
                name: from,
                path: from_path,
            },
            Location::Container {
                name: to,
                path: to_path,
            },
        ) => {
            // Through a tar in the store's tmp dir: each side is read or
            // written with its own root, never both at once.
            let tmp = containers.store_root().join("tmp");
            std::fs::create_dir_all(&tmp).map_err(failed("the store's tmp dir"))?;
            let r = containers.find(&to)?;
            let given = to_path.clone();
            let to_path = in_container(containers, &r, &to_path);
            // Into DST when it is a directory; else as DST's name in its
            // parent directory.
            let (dir, top) =
                if !given.ends_with('/') && !is_dir_in(containers, &to, &to_path, paths) {
                    let p = Path::new(&to_path);
                    let parent = p
                        .parent()
                        .map(|x| x.display().to_string())
                        .unwrap_or_else(|| "/".into());
                    if !is_dir_in(containers, &to, &parent, paths) {
                        return Err(not_found_in(&to, &given));
                    }
                    (
                        parent,
                        p.file_name().map(|n| n.to_string_lossy().into_owned()),
                    )
                } else {
                    (to_path, None)
                };
            let mut file = tempfile_in(&tmp)?;
            let copy_of = file.try_clone().map_err(failed("tmp"))?;
            container_to_tar(
                containers,
                &from,
                &from_path,
                paths,
                copy_of,
                top.as_deref(),
            )?;
            std::io::Seek::rewind(&mut file).map_err(failed("tmp"))?;
            tar_to_container(containers, &to, &dir, paths, file, flags)
        }
    }
}

/// An unnamed temporary file in `dir` (O_TMPFILE: gone when closed).
fn tempfile_in(dir: &Path) -> Result<std::fs::File, CopyError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .map_err(failed(format!("a temporary file in {}", dir.display())))
}

/// Whether `path` is a directory in container `name`.
fn is_dir_in(containers: &Containers, name: &str, path: &str, paths: &super::Paths) -> bool {
    let r = with_container_root(containers, name, paths, |root| {
        if open_in_root(
            root.as_raw_fd(),
            path.as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .is_ok()
        {
            Ok(())
        } else {
            Err(usage("no dir"))
        }
    });
    r.is_ok()
}

/// `export`: the container's root filesystem as one flat tar on `out`,
/// running or not. Paths are walked with directory fds and O_NOFOLLOW;
/// filesystems mounted in a running container (/proc, /sys, /dev,
/// volumes) appear as empty directories, as in the image.
pub fn export(
    containers: &Containers,
    name: &str,
    paths: &super::Paths,
    out: &std::fs::File,
) -> Result<(), CopyError> {
    // The /etc/mtab `run` added (rootfs::add_mtab) is not the container's.
    let r = containers.find(name)?;
    let store = crate::image::store::Store::open(&containers.store_root(), paths.rootless)
        .map_err(failed("opening the store"))?;
    let lowers: Vec<PathBuf> = r
        .layers
        .iter()
        .rev()
        .filter_map(|l| crate::util::digest::Digest::parse_loose(l).ok())
        .map(|c| store.layer_diff(&c))
        .collect();
    let added = super::lifecycle::runtime_made(&containers.dir(&r.id), &lowers)
        .contains(Path::new("etc/mtab"));
    with_container_root(containers, name, paths, |root| {
        let dir =
            fdtree::open_dir_at(root.as_raw_fd(), b".").map_err(failed("opening the root"))?;
        let dev = fdtree::fstat(dir.as_raw_fd())
            .map_err(failed("reading the root"))?
            .st_dev;
        let w = out.try_clone().map_err(failed("the output"))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(w));
        fdtree::tar_tree(
            &mut b,
            dir.as_raw_fd(),
            Path::new(""),
            &mut |tar, visit| match visit {
                fdtree::Visit::Entry { path, .. } if added && path == Path::new("etc/mtab") => {
                    Ok(true)
                }
                fdtree::Visit::Entry { path, st }
                    if fdtree::kind(st.st_mode) == libc::S_IFDIR && st.st_dev != dev =>
                {
                    // Written from its stat, not walked into.
                    fdtree::append_entry(tar, path, st, None, None)?;
                    Ok(true)
                }
                _ => Ok(false),
            },
        )
        .map_err(failed("writing the export"))?;
        b.into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(failed("writing the export"))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("db:/etc/x"),
            Location::Container {
                name: "db".into(),
                path: "/etc/x".into()
            }
        );
        assert_eq!(
            Location::parse("/tmp/a:b"),
            Location::Host("/tmp/a:b".into())
        );
        assert_eq!(Location::parse("./f"), Location::Host("./f".into()));
    }
}

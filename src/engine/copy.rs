//! `cp` between the host and a container, running or not. Paths inside the
//! container are resolved with openat2(RESOLVE_IN_ROOT) against its root
//! (/proc/PID/root), so a symlink in the container cannot aim a copy at the
//! host; the copy itself is a tar stream unpacked by the layer unpacker,
//! which keeps every write inside the destination directory.

use super::container::{ContainerRecord, Containers};
use super::run::RunError;
use crate::image::unpack::{unpack, UnpackOptions};
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

fn usage(s: impl Into<String>) -> RunError {
    RunError::Usage(s.into())
}

/// The root directory of a running container, as its processes see it.
fn running_root(r: &ContainerRecord, pid: i32) -> Result<OwnedFd, RunError> {
    crate::util::secure_path::open_at(
        libc::AT_FDCWD,
        format!("/proc/{pid}/root").as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|e| usage(format!("opening the root of {}: {e}", r.name)))
}

/// Runs `f` with the root of a container that is not running: in a child
/// process with a mount namespace of its own, where the container's root
/// filesystem is mounted as at its start; nothing stays mounted after.
fn with_stopped_root(
    containers: &Containers,
    r: &ContainerRecord,
    paths: &super::Paths,
    f: impl FnOnce(&OwnedFd) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let rootless = paths.rootless;
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
    let (mut err_r, mut err_w) = std::io::pipe().map_err(|e| usage(format!("pipe: {e}")))?;
    // SAFETY: the child only mounts, copies and exits; it does not return.
    match unsafe { nix::unistd::fork() }.map_err(|e| usage(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            drop(err_r);
            // Rootless: mounting needs the store's user namespace (the
            // process that enters it only waits for the one that works).
            let entered = if rootless && !crate::namespaces::userns::in_berth_userns() {
                crate::namespaces::userns::enter_store_userns(&paths.runroot)
                    .map_err(|e| usage(format!("entering the user namespace: {e}")))
            } else {
                Ok(())
            };
            let result = entered
                .and_then(|_| {
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                        .map_err(|e| usage(format!("a mount namespace for the copy: {e}")))
                })
                .and_then(|_| {
                    crate::runtime::mount_rootfs_here(&spec, &rootfs, rootless)
                        .map_err(|e| usage(format!("mounting the root of {}: {e}", r.name)))
                })
                .and_then(|_| {
                    let root = crate::util::secure_path::open_at(
                        libc::AT_FDCWD,
                        rootfs.as_os_str().as_encoded_bytes(),
                        libc::O_PATH | libc::O_DIRECTORY,
                        0,
                    )
                    .map_err(|e| usage(format!("opening the root of {}: {e}", r.name)))?;
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
    f: impl FnOnce(&OwnedFd) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let r = containers.find(name)?;
    match r.pid.filter(|_| r.is_running()) {
        Some(pid) => f(&running_root(&r, pid)?),
        None => with_stopped_root(containers, &r, paths, f),
    }
}

/// Writes `source` (a file or directory tree) as a tar stream into `dest`.
fn tar_into(source: &Path, name: &str, dest_dir: &Path, rootless: bool) -> Result<(), RunError> {
    let (r, w) = std::io::pipe().map_err(|e| usage(format!("pipe: {e}")))?;
    let src = source.to_path_buf();
    let name = name.to_string();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        // `source` may be /proc/self/fd/N for a path resolved in a
        // container: follow that one link, never links inside the tree.
        let meta = std::fs::metadata(&src)?;
        if meta.is_dir() {
            b.append_dir_all(&name, &src)?;
        } else if meta.is_file() {
            b.append_file(&name, &mut std::fs::File::open(&src)?)?;
        } else {
            b.append_path_with_name(&src, &name)?;
        }
        b.finish()
    });
    let res =
        unpack(r, dest_dir, UnpackOptions { rootless }).map_err(|e| usage(format!("copying: {e}")));
    let wrote = writer.join().map_err(|_| usage("copy thread failed"))?;
    res?;
    wrote.map_err(|e| usage(format!("reading {}: {e}", source.display())))?;
    Ok(())
}

/// Copies between host and container, as `podman cp SRC DST`.
pub fn copy(
    containers: &Containers,
    src: &str,
    dst: &str,
    paths: &super::Paths,
) -> Result<(), RunError> {
    let rootless = paths.rootless;
    match (Location::parse(src), Location::parse(dst)) {
        (Location::Host(from), Location::Container { name, path }) => {
            if !from.exists() {
                return Err(usage(format!(
                    "{}: no such file or directory",
                    from.display()
                )));
            }
            with_container_root(containers, &name, paths, |root| {
                // An existing directory receives the source under its own name.
                let (dir, base) = match open_in_root(
                    root.as_raw_fd(),
                    path.as_bytes(),
                    libc::O_PATH | libc::O_DIRECTORY,
                ) {
                    Ok(d) => (
                        d,
                        from.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    Err(_) => {
                        let p = Path::new(&path);
                        let parent = p
                            .parent()
                            .map(|x| x.as_os_str().as_encoded_bytes().to_vec())
                            .unwrap_or_default();
                        let d = open_in_root(
                            root.as_raw_fd(),
                            &parent,
                            libc::O_PATH | libc::O_DIRECTORY,
                        )
                        .map_err(|e| usage(format!("{name}:{path}: {e}")))?;
                        (
                            d,
                            p.file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                        )
                    }
                };
                tar_into(&from, &base, Path::new(&fd_path(&dir)), rootless)
            })
        }
        (Location::Container { name, path }, Location::Host(to)) => {
            with_container_root(containers, &name, paths, |root| {
                let src = open_in_root(root.as_raw_fd(), path.as_bytes(), libc::O_PATH)
                    .map_err(|e| usage(format!("{name}:{path}: {e}")))?;
                let base = Path::new(&path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "root".into());
                let (dir, base) = if to.is_dir() {
                    (to.clone(), base)
                } else {
                    let parent = to
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .to_path_buf();
                    (
                        parent,
                        to.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or(base),
                    )
                };
                tar_into(Path::new(&fd_path(&src)), &base, &dir, false)
            })
        }
        (Location::Host(_), Location::Host(_)) => {
            Err(usage("one side of berth cp must be CONTAINER:PATH"))
        }
        _ => Err(usage(
            "copying between two containers is not supported: copy through the host",
        )),
    }
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

//! `cp` between the host and a running container. Paths inside the
//! container are resolved with openat2(RESOLVE_IN_ROOT) against its root
//! (/proc/PID/root), so a symlink in the container cannot aim a copy at the
//! host; the copy itself is a tar stream unpacked by the layer unpacker,
//! which keeps every write inside the destination directory.

use super::container::Containers;
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

fn container_root(containers: &Containers, name: &str) -> Result<OwnedFd, RunError> {
    let r = containers.find(name)?;
    let pid = r.pid.filter(|_| r.is_running()).ok_or_else(|| {
        usage(format!(
            "container {} is not running: berth cp works on running containers",
            r.name
        ))
    })?;
    crate::util::secure_path::open_at(
        libc::AT_FDCWD,
        format!("/proc/{pid}/root").as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|e| usage(format!("opening the root of {}: {e}", r.name)))
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
pub fn copy(containers: &Containers, src: &str, dst: &str, rootless: bool) -> Result<(), RunError> {
    match (Location::parse(src), Location::parse(dst)) {
        (Location::Host(from), Location::Container { name, path }) => {
            let root = container_root(containers, &name)?;
            if !from.exists() {
                return Err(usage(format!(
                    "{}: no such file or directory",
                    from.display()
                )));
            }
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
                    let d =
                        open_in_root(root.as_raw_fd(), &parent, libc::O_PATH | libc::O_DIRECTORY)
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
        }
        (Location::Container { name, path }, Location::Host(to)) => {
            let root = container_root(containers, &name)?;
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

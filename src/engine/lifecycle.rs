//! The container lifecycle API: start, stop, kill, pause, unpause, remove,
//! wait and restart. Each checks the container's state against the moves
//! it allows (`record::State::allows`), changes the record only under the
//! container's lock, and returns a typed error; the CLI, compose and
//! systemd units call these and print.

use super::container::{ContainerError, Containers};
use super::detached::{self, MonitorError};
use super::record::{Action, ContainerRecord, State, StateError};
use super::volumes::{self, Volumes};
use super::Engine;
use crate::cgroups::{self, CgroupError};
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a lifecycle command failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("container {0} has no cgroup (rootless on this host, or --cgroups=disabled): it cannot be paused")]
    NoCgroup(String),
    #[error("signalling {name}: {source}")]
    Signal {
        name: String,
        source: std::io::Error,
    },
    #[error("invalid signal: {0}: use a name such as TERM or KILL, or a number from 1 to 64")]
    BadSignal(String),
    #[error("valid signals are 1 through 64")]
    SignalRange,
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error("{0} runs on a directory given with --rootfs, not an image: there is nothing to commit it onto")]
    NoImage(String),
    #[error(transparent)]
    Store(#[from] crate::image::store::StoreError),
    #[error(transparent)]
    Commit(#[from] crate::image::import::ImportError),
    #[error("writing the changes of {name}: {source}")]
    Diff {
        name: String,
        source: std::io::Error,
    },
}

impl LifecycleError {
    /// The code the container's command could not run with (126, 127), if so.
    pub fn container_code(&self) -> Option<i32> {
        match self {
            LifecycleError::Monitor(e) => e.container_code(),
            _ => None,
        }
    }
}

/// How `remove` treats a container that still runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoveOptions {
    /// Kill it first (`rm -f`); without it a running container is refused.
    pub force: bool,
    /// With `force`: send the stop signal and wait this long before killing.
    pub stop_timeout: Option<u64>,
    /// Remove its anonymous volumes too (`rm -v`).
    pub volumes: bool,
}

/// Parses SIGTERM, TERM, 15, KILL...
pub fn parse_signal(s: &str) -> Result<i32, LifecycleError> {
    // podman takes `-9` and `-KILL` too.
    let t = s.strip_prefix('-').unwrap_or(s);
    if let Ok(n) = t.parse::<i64>() {
        return match n {
            1..=64 => Ok(n as i32),
            0 => Err(LifecycleError::BadSignal(t.to_string())),
            _ => Err(LifecycleError::SignalRange),
        };
    }
    let up = t.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    // Real-time signals by offset, as systemd names them (RTMIN+3).
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let n: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        Some(base + sign * n).filter(|v| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(v))
    };
    let realtime = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(libc::SIGRTMIN(), rest.trim_start_matches('+'), 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(libc::SIGRTMAX(), rest.trim_start_matches('-'), -1)
    } else {
        None
    };
    if let Some(v) = realtime {
        return Ok(v);
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| LifecycleError::BadSignal(t.to_string()))
}

/// Starts a created or exited container under its monitor and returns
/// once it runs. A running container is left as it is. With `attach`, also
/// returns a connection to it made before it started (`start -a`).
pub fn start(
    engine: &Engine,
    containers: &Containers,
    query: &str,
    attach: bool,
) -> Result<Option<OwnedFd>, LifecycleError> {
    let c = containers.find(query)?;
    // Running already: nothing to do (podman's `start` says its name).
    // Paused or being removed: refused below.
    if matches!(c.status(), State::Running | State::Stopping) && !attach {
        return Ok(None);
    }
    c.allows(Action::Start)?;
    Ok(detached::start(engine, &c.id, attach)?)
}

/// Sends `sig` to a container's first process (`kill`).
/// A killed container is not restarted by its policy, as in podman.
pub fn kill(containers: &Containers, query: &str, sig: i32) -> Result<(), LifecycleError> {
    let c = containers.find(query)?;
    containers.try_update(&c.id, |r| -> Result<(), LifecycleError> {
        r.allows(Action::Kill)?;
        r.stopped_by_user = true;
        Ok(())
    })?;
    signal(containers, &c, sig)?;
    containers.note(&c, "kill");
    Ok(())
}

/// The stop signal, then SIGKILL after `timeout` seconds; returns when the
/// monitor has recorded the exit. The record says `stopping` meanwhile,
/// so the restart policy leaves the container down. A container that
/// does not run is left as it is.
pub fn stop(containers: &Containers, query: &str, timeout: u64) -> Result<(), LifecycleError> {
    let c = containers.find(query)?;
    let stopping = containers.try_update(&c.id, |r| -> Result<bool, LifecycleError> {
        r.allows(Action::Stop)?;
        // Also when it is not running now: one waiting for its restart
        // stays down.
        r.stopped_by_user = true;
        if !r.is_running() {
            return Ok(false);
        }
        r.state = State::Stopping;
        Ok(true)
    })?;
    if !stopping {
        return Ok(());
    }
    containers.note(&c, "stop");
    let sig = c
        .stop_signal
        .as_deref()
        .map(parse_signal)
        .transpose()?
        .unwrap_or(libc::SIGTERM);
    if timeout > 0 {
        // The record is read again each time: a restart changes the pid.
        if let Ok(now) = containers.find(&c.id) {
            let _ = signal(containers, &now, sig);
        }
        match wait(containers, &c.id, Duration::from_secs(timeout)) {
            Some(r) if r.is_running() => {
                // podman's warning: the stop signal was not enough.
                tracing::warn!(
                    "StopSignal {} failed to stop container {} in {timeout} seconds, resorting to SIGKILL",
                    c.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
                    c.name
                );
            }
            _ => return Ok(()),
        }
    }
    kill_until_exited(containers, &c.id);
    Ok(())
}

/// Freezes (`pause`) or thaws (`unpause`) a running container's cgroup.
pub fn pause(containers: &Containers, query: &str, frozen: bool) -> Result<(), LifecycleError> {
    let c = containers.find(query)?;
    containers.try_update(&c.id, |r| -> Result<(), LifecycleError> {
        r.allows(if frozen {
            Action::Pause
        } else {
            Action::Unpause
        })?;
        let Some((parent, name)) = &r.cgroup else {
            return Err(LifecycleError::NoCgroup(r.name.clone()));
        };
        cgroups::freeze(parent, name, frozen)?;
        r.state = if frozen {
            State::Paused
        } else {
            State::Running
        };
        Ok(())
    })?;
    containers.note(&c, if frozen { "pause" } else { "unpause" });
    Ok(())
}

/// Removes a container with its files and whatever a killed berth left of
/// it (cgroup, addresses, ports). Returns the removed record.
pub fn remove(
    containers: &Containers,
    query: &str,
    o: RemoveOptions,
) -> Result<ContainerRecord, LifecycleError> {
    let c = containers.find(query)?;
    if c.is_running() {
        if !o.force {
            c.allows(Action::Remove)?;
        }
        if let Some(t) = o.stop_timeout.filter(|t| *t > 0) {
            if c.status() != State::Paused {
                stop(containers, &c.id, t)?;
            }
        }
        let _ = containers.update(&c.id, |r| {
            if r.state == State::Paused {
                if let Some((parent, name)) = &r.cgroup {
                    let _ = cgroups::freeze(parent, name, false);
                }
            }
            if r.state.has_process() {
                r.state = State::Removing;
            }
        });
        kill_until_exited(containers, &c.id);
    }
    // The monitor of a --rm container may have removed it already.
    if let Ok(left) = containers.find(&c.id) {
        remove_stopped(containers, &left)?;
    }
    if o.volumes {
        let vols = Volumes::new(&containers.store_root());
        volumes::remove_anonymous(&vols, containers, &c.anonymous_volumes);
    }
    Ok(c)
}

/// `rm -f` of one container: for `run --replace`, `network rm -f` and
/// `volume rm -f`.
pub fn remove_forced(
    containers: &Containers,
    query: &str,
) -> Result<ContainerRecord, LifecycleError> {
    let force = RemoveOptions {
        force: true,
        ..Default::default()
    };
    remove(containers, query, force)
}

/// `commit`: a new image from a container's image and its changes (its
/// overlay upper dir, as a layer). The container may be running; its
/// files are read as they are (podman's default, without `--pause`).
pub fn commit(
    engine: &Engine,
    containers: &Containers,
    query: &str,
    opts: crate::image::commit::CommitOptions,
) -> Result<crate::image::store::ImageRecord, LifecycleError> {
    let c = containers.find(query)?;
    if c.image_id.is_empty() {
        return Err(LifecycleError::NoImage(c.name));
    }
    let base = engine.store.find(&c.image_id)?;
    let failed = |source| LifecycleError::Diff {
        name: c.name.clone(),
        source,
    };
    // The whole layer is written first: a walk that fails half way must
    // not become an image.
    let tmp = engine
        .store
        .temp_path("commit")
        .map_err(LifecycleError::Store)?;
    let file = std::fs::File::create(tmp.path()).map_err(failed)?;
    let lowers: Vec<PathBuf> = base
        .chain_ids()
        .iter()
        .rev()
        .map(|ch| engine.store.layer_diff(ch))
        .collect();
    let dir = containers.dir(&c.id);
    let skip = runtime_made(&dir, &lowers);
    if opts.squash {
        flat_tar(engine, &dir.join("upper"), &lowers, &skip, file).map_err(failed)?;
    } else {
        crate::image::diff::tar_upper(&dir.join("upper"), file, &skip)
            .and_then(|f| f.sync_all())
            .map_err(failed)?;
    }
    let layer = std::fs::File::open(tmp.path()).map_err(failed)?;
    let opts = crate::image::commit::CommitOptions {
        created_by: if opts.created_by.is_empty() {
            c.command.join(" ")
        } else {
            opts.created_by
        },
        ..opts
    };
    Ok(crate::image::commit::commit(
        &engine.store,
        &base,
        layer,
        &opts,
    )?)
}

/// `commit --squash`: the container's whole tree (its image's layers with
/// its upper dir over them, copied into a temp dir, as the vfs driver
/// would) as one tar stream, without what the runtime made.
fn flat_tar(
    engine: &Engine,
    upper: &Path,
    lowers: &[PathBuf],
    skip: &BTreeSet<PathBuf>,
    out: std::fs::File,
) -> std::io::Result<()> {
    let flat = engine
        .store
        .temp_path("commit-flat")
        .map_err(std::io::Error::other)?;
    std::fs::create_dir(flat.path())?;
    let stack: Vec<PathBuf> = std::iter::once(upper.to_path_buf())
        .chain(lowers.iter().cloned())
        .collect();
    crate::engine::rootfs::copy_layers(&stack, flat.path()).map_err(std::io::Error::other)?;
    let mut skip = skip.clone();
    skip.insert(PathBuf::from(crate::engine::rootfs::COPIED_MARKER));
    let dir = std::fs::File::open(flat.path())?;
    crate::util::fdtree::tar_contents(dir.as_raw_fd(), std::io::BufWriter::new(out), &skip)?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// What the runtime made in a container's upper dir for its mounts (empty
/// files and directories for /etc/hosts, /proc, /dev, ... that the image
/// lacks): not the container's change, so `commit` and a build's RUN
/// leave them out. Paths are relative to the upper dir.
pub fn runtime_made(dir: &Path, lowers: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut made = BTreeSet::new();
    let spec: Option<oci_spec::runtime::Spec> = std::fs::read(dir.join("userdata/config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(spec) = spec else { return made };
    let upper = dir.join("upper");
    // The /etc/mtab that `run` adds (rootfs::add_mtab).
    let mtab = Path::new("etc/mtab");
    if std::fs::read_link(upper.join(mtab)).is_ok_and(|t| t == Path::new("/proc/mounts"))
        && !crate::image::diff::in_lowers(lowers, mtab)
    {
        made.insert(mtab.to_path_buf());
    }
    let mut dests: Vec<PathBuf> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            m.destination()
                .strip_prefix("/")
                .unwrap_or(m.destination())
                .to_path_buf()
        })
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    // Deepest first, so a parent holding only such targets goes too.
    dests.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dests {
        let mut rel = d;
        loop {
            if rel.as_os_str().is_empty() || crate::image::diff::in_lowers(lowers, &rel) {
                break;
            }
            let p = upper.join(&rel);
            let empty = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => std::fs::read_dir(&p)
                    .map(|r| r.flatten().all(|e| made.contains(&rel.join(e.file_name()))))
                    .unwrap_or(false),
                Ok(m) if m.is_file() => m.len() == 0,
                _ => false,
            };
            if !empty {
                break;
            }
            made.insert(rel.clone());
            rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        }
    }
    made
}

/// Waits until the container no longer runs and returns its record (None
/// once it is removed, by `--rm`), or the running record at the deadline.
pub fn wait(containers: &Containers, id: &str, timeout: Duration) -> Option<ContainerRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        match containers.find(id) {
            Ok(r) if !r.is_running() => return Some(r),
            Err(_) => return None,
            Ok(r) if Instant::now() >= deadline => return Some(r),
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Stops (if it runs) and starts a container again.
pub fn restart(
    engine: &Engine,
    containers: &Containers,
    query: &str,
    timeout: Option<u64>,
) -> Result<(), LifecycleError> {
    let c = containers.find(query)?;
    stop(containers, &c.id, timeout.or(c.stop_timeout).unwrap_or(10))?;
    start(engine, containers, &c.id, false)?;
    Ok(())
}

/// SIGKILL, again and again, until the monitor has recorded the exit (10 s
/// at most: a process in uninterruptible sleep may take a moment).
fn kill_until_exited(containers: &Containers, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match containers.find(id) {
            Ok(r) if r.is_running() && Instant::now() < deadline => {
                let _ = signal(containers, &r, libc::SIGKILL);
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => break,
        }
    }
}

/// Sends a signal to a container's first process: through its monitor
/// (the attach socket) when it has one. The monitor lives in the
/// container's user namespace and may signal a process that switched to
/// another id there (a database dropping to its own user), which a
/// rootless berth command, in a user namespace of its own, may not.
pub fn signal(
    containers: &Containers,
    record: &ContainerRecord,
    sig: i32,
) -> Result<(), LifecycleError> {
    let dir = containers.dir(&record.id).join("userdata");
    if let Ok(conn) = crate::monitor::attach::connect_to(&dir) {
        if crate::monitor::attach::send_msg(&conn, crate::monitor::attach::SIGNAL, &[sig as u8])
            .is_ok()
        {
            return Ok(());
        }
    }
    let failed = |source| LifecycleError::Signal {
        name: record.name.clone(),
        source,
    };
    let pid = record
        .pid
        .ok_or_else(|| failed(std::io::Error::other("it has no process")))?;
    // SAFETY: plain kill of the container's first process.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a container that no longer runs, with whatever a killed berth
/// left of it: its cgroup, its addresses, ports and pasta.
pub fn remove_stopped(
    containers: &Containers,
    record: &ContainerRecord,
) -> Result<(), ContainerError> {
    if let Some((parent, name)) = &record.cgroup {
        cgroups::remove_leftover(parent, name);
    }
    super::netsetup::cleanup(&containers.store_root(), record);
    // A root left mounted by `berth mount` goes with the container.
    if let Err(e) = super::mount::unmount_container(containers, record) {
        tracing::warn!("{e}");
    }
    containers.remove(&record.id, &record.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_podman_reads_them() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("-9").unwrap(), 9);
        assert_eq!(parse_signal("-HUP").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("RTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        let e = |s| parse_signal(s).unwrap_err().to_string();
        assert!(e("0").starts_with("invalid signal: 0"));
        assert!(e("65").starts_with("valid signals are 1 through 64"));
        assert!(e("BADSIG").starts_with("invalid signal: BADSIG"));
        assert!(e("-SIG").starts_with("invalid signal: SIG"));
    }
}

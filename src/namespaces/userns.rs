//! Rootless store access: an unprivileged user cannot chown files to the
//! ids an image uses, so berth moves itself into a user namespace where the
//! user is root and its /etc/subuid and /etc/subgid ranges are mapped (as
//! `podman unshare` does). Files then land on disk owned by those
//! subordinate ids. Without ranges, only the user's own id is mapped.
//!
//! One such namespace per user, kept by a sleeping "keeper" process (podman
//! calls it the pause process) whose pid is in `RUNROOT/userns.json`: every
//! rootless command joins it with setns, so all of a user's containers,
//! monitors and commands share one namespace (needed for a shared rootless
//! network namespace, and cheaper than mapping ids on every command). The
//! first command that finds no keeper makes one; `system migrate` stops it.

use super::idmap::{ranges_for, user_name, IdRange};
use crate::util::lock::FileLock;
use crate::util::process::ProcessId;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, getegid, geteuid, pipe2, read, write, ForkResult, Pid};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::Command;

/// Why the user namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot create a user namespace: {0} (are unprivileged user namespaces enabled? see `sysctl user.max_user_namespaces`)")]
    Unshare(nix::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{tool} {args} failed ({status}); check /etc/subuid and /etc/subgid")]
    Helper {
        tool: &'static str,
        args: String,
        status: std::process::ExitStatus,
    },
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("the user namespace keeper did not start")]
    KeeperGone,
    #[error("the user namespace keeper was started by an older berth and has no mount namespace: run `berth system migrate`, then try again")]
    OldKeeper,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UsernsError {
    let what = what.into();
    move |source| UsernsError::Io { what, source }
}

/// The id maps a rootless user gets: own id as 0, then the ranges.
fn map_args(pid: Pid, id: u32, ranges: &[IdRange]) -> Vec<String> {
    let mut args = vec![pid.to_string(), "0".into(), id.to_string(), "1".into()];
    let mut inside = 1u32;
    for r in ranges {
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside = inside.saturating_add(r.count);
    }
    args
}

fn write_maps(
    pid: Pid,
    uid: u32,
    gid: u32,
    uids: &[IdRange],
    gids: &[IdRange],
) -> Result<(), UsernsError> {
    let helper = |tool: &'static str, args: Vec<String>| -> Result<bool, UsernsError> {
        match Command::new(tool).args(&args).status() {
            Ok(s) if s.success() => Ok(true),
            Ok(status) => Err(UsernsError::Helper {
                tool,
                args: args.join(" "),
                status,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(format!("running {tool}"))(e)),
        }
    };
    let full = !uids.is_empty() && !gids.is_empty();
    if full
        && helper("newuidmap", map_args(pid, uid, uids))?
        && helper("newgidmap", map_args(pid, gid, gids))?
    {
        return Ok(());
    }
    if full {
        tracing::warn!(
            "newuidmap/newgidmap not installed (Debian package uidmap): using a single-id mapping"
        );
    }
    let proc = format!("/proc/{pid}");
    std::fs::write(format!("{proc}/uid_map"), format!("0 {uid} 1\n"))
        .map_err(io("writing uid_map"))?;
    std::fs::write(format!("{proc}/setgroups"), "deny").map_err(io("writing setgroups"))?;
    std::fs::write(format!("{proc}/gid_map"), format!("0 {gid} 1\n"))
        .map_err(io("writing gid_map"))?;
    Ok(())
}

/// The keeper's process name (checked before joining a recorded pid).
pub const KEEPER_NAME: &str = "berth-userns";

/// The hidden argument that turns a berth process into the keeper.
pub const KEEPER_ARG: &str = "userns-keeper";

/// True when this process already runs as root of a user namespace berth made.
pub fn in_berth_userns() -> bool {
    geteuid().is_root()
}

fn record_path(runroot: &Path) -> std::path::PathBuf {
    runroot.join("userns.json")
}

/// The recorded keeper, if it is alive and still a keeper.
fn live_keeper(runroot: &Path) -> Option<ProcessId> {
    let data = std::fs::read(record_path(runroot)).ok()?;
    let id: ProcessId = serde_json::from_slice(&data).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", id.pid)).ok()?;
    (id.alive() && comm.trim() == KEEPER_NAME).then_some(id)
}

fn join(pid: i32) -> Result<(), nix::Error> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::ESRCH)))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWUSER)
}

/// Moves this process into the user's namespace, making its keeper first
/// when there is none. Must be called while the process is single-threaded.
pub fn enter_store_userns(runroot: &Path) -> Result<(), UsernsError> {
    if in_berth_userns() {
        return Ok(());
    }
    if let Some(k) = live_keeper(runroot) {
        if join(k.pid).is_ok() {
            return Ok(());
        }
    }
    std::fs::create_dir_all(runroot).map_err(io(format!("creating {}", runroot.display())))?;
    let _lock = FileLock::exclusive(&runroot.join("userns.lock"))
        .map_err(io(format!("locking {}", runroot.display())))?;
    // Another command may have made it while we waited for the lock.
    if let Some(k) = live_keeper(runroot) {
        if join(k.pid).is_ok() {
            return Ok(());
        }
    }
    let keeper = spawn_keeper()?;
    // Recorded once it carries its name, so no command takes it for a stale pid.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let id = loop {
        let comm = std::fs::read_to_string(format!("/proc/{keeper}/comm")).unwrap_or_default();
        match ProcessId::of(keeper.as_raw()) {
            Some(id) if comm.trim() == KEEPER_NAME => break id,
            _ if std::time::Instant::now() > deadline => return Err(UsernsError::KeeperGone),
            _ => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    };
    crate::util::fsutil::atomic_write(
        &record_path(runroot),
        &serde_json::to_vec(&id).expect("a process id serialises"),
        0o600,
    )
    .map_err(io("recording the user namespace keeper"))?;
    join(keeper.as_raw()).map_err(|e| UsernsError::Sys("joining the new user namespace", e))
}

/// Forks the keeper: it unshares a user namespace, waits for its id maps,
/// then re-executes berth as the keeper (a clean, small process).
fn spawn_keeper() -> Result<Pid, UsernsError> {
    let uid = geteuid().as_raw();
    let gid = getegid().as_raw();
    let name = user_name(uid).unwrap_or_default();
    let uids = ranges_for(Path::new("/etc/subuid"), &name, uid);
    let gids = ranges_for(Path::new("/etc/subgid"), &name, uid);
    let flags = nix::fcntl::OFlag::O_CLOEXEC;
    let (ready_r, ready_w) = pipe2(flags).map_err(|e| UsernsError::Sys("pipe", e))?;
    let (go_r, go_w) = pipe2(flags).map_err(|e| UsernsError::Sys("pipe", e))?;
    let exe = std::ffi::CString::new("/proc/self/exe").expect("no NUL");
    let argv = [
        std::ffi::CString::new(KEEPER_NAME).expect("no NUL"),
        std::ffi::CString::new(KEEPER_ARG).expect("no NUL"),
    ];
    // SAFETY: single-threaded at this point (called before any thread starts);
    // the child only makes raw syscalls before exec.
    match unsafe { fork() }.map_err(|e| UsernsError::Sys("fork", e))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            let _ = nix::unistd::setsid();
            let status = match unshare(CloneFlags::CLONE_NEWUSER) {
                Ok(()) => b'1',
                Err(_) => b'0',
            };
            let _ = write(ready_w.as_fd(), &[status]);
            let mut buf = [0u8; 1];
            if status == b'1' && matches!(read(go_r.as_raw_fd(), &mut buf), Ok(1) if buf[0] == b'1')
            {
                let _ = nix::unistd::execv(&exe, &argv);
            }
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(125) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let mut buf = [0u8; 1];
            let ok = matches!(read(ready_r.as_raw_fd(), &mut buf), Ok(1) if buf[0] == b'1');
            if !ok {
                let _ = waitpid(child, None);
                return Err(UsernsError::Unshare(nix::Error::EPERM));
            }
            if let Err(e) = write_maps(child, uid, gid, &uids, &gids) {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(e);
            }
            let _ = write(go_w.as_fd(), b"1");
            Ok(child)
        }
    }
}

/// The keeper's life: it gives up the caller's other namespaces and
/// descriptors (so it pins nothing but the user namespace and a mount
/// namespace for `berth mount`) and sleeps until it is killed.
pub fn keeper_main() -> ! {
    let name = std::ffi::CString::new(KEEPER_NAME).expect("no NUL");
    // SAFETY: plain syscalls on valid arguments.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::close_range(3, u32::MAX, 0);
        libc::chdir(c"/".as_ptr());
        // A mount namespace of the user's own holds what `berth mount`
        // mounts (seen through `berth unshare`), as podman's pause process
        // does. Made before the name is set: the name says it is ready.
        libc::unshare(
            libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNS,
        );
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        loop {
            libc::pause();
        }
    }
}

/// Moves this process into the keeper's mount namespace, where rootless
/// `berth mount` leaves its mounts and `berth unshare` shows them. The
/// caller must already be in the store's user namespace and be
/// single-threaded; its working directory is kept (by path).
pub fn enter_store_mountns(runroot: &Path) -> Result<(), UsernsError> {
    let k = live_keeper(runroot).ok_or(UsernsError::KeeperGone)?;
    let theirs = std::fs::read_link(format!("/proc/{}/ns/mnt", k.pid))
        .map_err(io("reading the keeper's mount namespace"))?;
    let ours =
        std::fs::read_link("/proc/self/ns/mnt").map_err(io("reading the mount namespace"))?;
    if theirs == ours {
        return Err(UsernsError::OldKeeper);
    }
    let ns = std::fs::File::open(format!("/proc/{}/ns/mnt", k.pid))
        .map_err(io("opening the keeper's mount namespace"))?;
    let cwd = std::env::current_dir().ok();
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| UsernsError::Sys("joining the store's mount namespace", e))?;
    if let Some(d) = cwd {
        let _ = std::env::set_current_dir(d);
    }
    Ok(())
}

/// Stops the user's keeper (`system migrate`): the next command makes a
/// new namespace, with the current /etc/subuid and /etc/subgid ranges.
pub fn stop_keeper(runroot: &Path) -> bool {
    match live_keeper(runroot) {
        Some(k) => {
            let _ = kill(Pid::from_raw(k.pid), Signal::SIGKILL);
            let _ = std::fs::remove_file(record_path(runroot));
            true
        }
        None => false,
    }
}

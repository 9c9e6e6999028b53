//! Rootless store access: an unprivileged user cannot chown files to the
//! ids an image uses, so berth moves itself into a user namespace where the
//! user is root and its /etc/subuid and /etc/subgid ranges are mapped (as
//! `podman unshare` does). Files then land on disk owned by those
//! subordinate ids. Without ranges, only the user's own id is mapped.

use super::idmap::{ranges_for, user_name, IdRange};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getegid, geteuid, pipe, read, write, ForkResult, Pid};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// Why the user namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot create a user namespace: {0} (are unprivileged user namespaces enabled? see `sysctl user.max_user_namespaces`)")]
    Unshare(nix::Error),
    #[error("{0}")]
    Map(String),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
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
) -> Result<(), String> {
    let helper = |tool: &str, args: Vec<String>| -> Result<bool, String> {
        match Command::new(tool).args(&args).status() {
            Ok(s) if s.success() => Ok(true),
            Ok(s) => Err(format!(
                "{tool} {} failed ({s}); check /etc/subuid and /etc/subgid",
                args.join(" ")
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("running {tool}: {e}")),
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
        .map_err(|e| format!("writing uid_map: {e}"))?;
    std::fs::write(format!("{proc}/setgroups"), "deny")
        .map_err(|e| format!("writing setgroups: {e}"))?;
    std::fs::write(format!("{proc}/gid_map"), format!("0 {gid} 1\n"))
        .map_err(|e| format!("writing gid_map: {e}"))?;
    Ok(())
}

/// True when this process already runs as root of a user namespace berth made.
pub fn in_berth_userns() -> bool {
    geteuid().is_root()
}

/// Continues in a child process that is root in a new user namespace with
/// the user's subordinate ids mapped; the calling process only waits and
/// exits with the child's status (signals are forwarded, and the child dies
/// with it). Must be called while the process is single-threaded.
pub fn enter_store_userns() -> Result<(), UsernsError> {
    if in_berth_userns() {
        return Ok(());
    }
    let uid = geteuid().as_raw();
    let gid = getegid().as_raw();
    let name = user_name(uid).unwrap_or_default();
    let uids = ranges_for(std::path::Path::new("/etc/subuid"), &name, uid);
    let gids = ranges_for(std::path::Path::new("/etc/subgid"), &name, uid);
    let (ready_r, ready_w) = pipe().map_err(|e| UsernsError::Sys("pipe", e))?;
    let (go_r, go_w) = pipe().map_err(|e| UsernsError::Sys("pipe", e))?;
    // SAFETY: single-threaded at this point (called before any thread starts).
    match unsafe { fork() }.map_err(|e| UsernsError::Sys("fork", e))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let status = match unshare(CloneFlags::CLONE_NEWUSER) {
                Ok(()) => b'1',
                Err(_) => b'0',
            };
            let _ = write(ready_w.as_fd(), &[status]);
            if status == b'0' {
                std::process::exit(125);
            }
            let mut buf = [0u8; 1];
            match read(std::os::fd::AsRawFd::as_raw_fd(&go_r), &mut buf) {
                Ok(1) if buf[0] == b'1' => Ok(()),
                _ => std::process::exit(125),
            }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            let mut buf = [0u8; 1];
            let ok = matches!(read(std::os::fd::AsRawFd::as_raw_fd(&ready_r), &mut buf), Ok(1) if buf[0] == b'1');
            if !ok {
                let _ = waitpid(child, None);
                return Err(UsernsError::Unshare(nix::Error::EPERM));
            }
            if let Err(e) = write_maps(child, uid, gid, &uids, &gids) {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(UsernsError::Map(e));
            }
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            let act = SigAction::new(
                SigHandler::Handler(forward),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            for s in [
                Signal::SIGINT,
                Signal::SIGTERM,
                Signal::SIGHUP,
                Signal::SIGQUIT,
            ] {
                // SAFETY: the handler only calls kill.
                let _ = unsafe { sigaction(s, &act) };
            }
            let _ = write(go_w.as_fd(), b"1");
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => std::process::exit(128 + sig as i32),
                    Err(nix::Error::EINTR) => continue,
                    Ok(_) => continue,
                    Err(_) => std::process::exit(125),
                }
            }
        }
    }
}

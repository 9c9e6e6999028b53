//! What a new container process gets instead of its caller's session:
//! a session of its own (so it has no controlling terminal unless it was
//! given a pty of its own, and cannot open /dev/tty or push keystrokes
//! into the caller's terminal with TIOCSTI), a session keyring of its own
//! (the caller's keys stay out of reach, as runc and crun do), and its
//! stdio. Runs in the child between fork and exec; it allocates only to
//! word a failure it reports.

use std::os::fd::RawFd;

/// The descriptors that become the process's 0, 1 and 2.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFds {
    /// A pty slave: the controlling terminal and all of 0-2.
    pub console: Option<RawFd>,
    pub stdin: Option<RawFd>,
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
}

use super::step_error::{last_os, StepError};

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

fn dup_to(fd: RawFd, target: RawFd) -> Result<(), &'static str> {
    // SAFETY: dup2 on descriptors this process holds.
    if fd != target && unsafe { libc::dup2(fd, target) } < 0 {
        return Err(match target {
            0 => "redirecting stdin",
            1 => "redirecting stdout",
            _ => "redirecting stderr",
        });
    }
    Ok(())
}

fn failed(what: &str) -> StepError {
    last_os(what)
}

/// Starts a new session and a new session keyring, then connects stdio.
/// Every failure is reported: a process left in the caller's session
/// could reach the caller's terminal.
pub fn begin(fds: StdFds) -> Result<(), StepError> {
    // SAFETY: setsid has no arguments; it fails only for a group leader,
    // which a freshly forked child never is.
    if unsafe { libc::setsid() } < 0 {
        return Err(failed("starting a new session"));
    }
    // SAFETY: keyctl with a NULL name joins a new anonymous keyring.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0usize) };
    if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
        return Err(failed("joining a new session keyring"));
    }
    if let Some(tty) = fds.console {
        // SAFETY: makes the pty slave our controlling terminal.
        if unsafe { libc::ioctl(tty, libc::TIOCSCTTY, 0) } < 0 {
            return Err(failed("setting the controlling terminal"));
        }
        for t in 0..3 {
            dup_to(tty, t).map_err(failed)?;
        }
    }
    for (fd, target) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
        if let Some(fd) = fd {
            dup_to(fd, target).map_err(failed)?;
        }
    }
    Ok(())
}

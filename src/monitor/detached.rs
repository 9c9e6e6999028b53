//! The monitor of a detached container: a re-executed berth that owns the
//! container's output pipes, writes them to the log, forwards signals, and
//! returns the exit status for the engine to record.

use super::logfile::LogWriter;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Signals the monitor handles: SIGCHLD for itself, the rest forwarded.
pub fn signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks the monitor's signals and returns a signalfd for them (before the
/// container starts, so no SIGCHLD is missed).
pub fn signal_fd() -> nix::Result<SignalFd> {
    let set = signals();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// Copies output to the log until the container exits and its pipes close;
/// returns the exit code (128+N for signal N).
pub fn watch(pid: Pid, sfd: &SignalFd, out: OwnedFd, err: OwnedFd, log: &mut LogWriter) -> i32 {
    let mut status: Option<i32> = None;
    let mut open = [Some(out), Some(err)];
    let names = ["stdout", "stderr"];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if status.is_some() && open.iter().all(|o| o.is_none()) {
            break;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut which = Vec::new();
        for (i, o) in open.iter().enumerate() {
            if let Some(fd) = o {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        let timeout = if status.is_some() {
            PollTimeout::from(500u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break, // exited and its output went quiet (a grandchild may hold the pipe)
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Ok(s) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                        status = super::foreground::status_code(s).or(status);
                    }
                } else {
                    // SAFETY: forwarding to our child.
                    unsafe { libc::kill(pid.as_raw(), sig) };
                }
            }
        }
        for (k, i) in which.iter().enumerate() {
            if !ready[k + 1] {
                continue;
            }
            let fd = open[*i].as_ref().expect("polled").as_raw_fd();
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(_) => open[*i] = None,
                Ok(n) => {
                    let _ = log.write(names[*i], &buf[..n]);
                }
            }
        }
    }
    status.unwrap_or_else(|| {
        waitpid(pid, None)
            .ok()
            .and_then(super::foreground::status_code)
            .unwrap_or(255)
    })
}

/// Shrinks the monitor once the container runs: the setup code it will not
/// need again is dropped from its resident set (MADV_DONTNEED on code
/// mappings, which fault back in from the page cache if ever used) and
/// freed heap is returned. A monitor lives as long as its container.
pub fn shed_memory() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.next().unwrap_or("");
        // Only code: read-only data may hold relocations (RELRO) that a
        // re-read from the file would lose.
        if inode == "0" || !path.starts_with('/') || perms != "r-xp" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: a read-only file mapping of our own; its pages are re-read from the file on use.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
    // SAFETY: returns free heap to the kernel.
    unsafe { libc::malloc_trim(0) };
}

//! The monitor of a detached container: a re-executed berth that owns the
//! container's output pipes, writes them to the log, forwards signals, and
//! returns the exit status for the engine to record.

use super::attach::{self, AttachServer};
use super::logfile::LogWriter;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Signals the monitor handles: SIGCHLD for itself, the rest forwarded.
pub fn signals() -> SigSet {
    super::forwarded_and(&[Signal::SIGCHLD])
}

/// Blocks the monitor's signals and returns a signalfd for them (before the
/// container starts, so no SIGCHLD is missed).
pub fn signal_fd() -> nix::Result<SignalFd> {
    let set = signals();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

/// The container's side of a detached container's I/O, owned by the monitor.
pub struct ContainerIo {
    /// Read ends of stdout and stderr (with a terminal: the pty master, once).
    pub sources: [Option<OwnedFd>; 2],
    /// Where attached clients' input goes: the pty master (a copy) or the
    /// write end of the container's stdin pipe (`-i`); None without `-i`.
    pub input: Option<OwnedFd>,
    /// The container has a terminal (`-t`).
    pub tty: bool,
}

/// Copies output to the log and to attached clients, and clients' input,
/// resizes and signals to the container, until it exits and its output
/// closes; returns the exit code (128+N for signal N).
pub fn watch(
    pid: Pid,
    sfd: &SignalFd,
    mut io: ContainerIo,
    log: &mut LogWriter,
    mut attach: Option<&mut AttachServer>,
) -> i32 {
    let mut status: Option<i32> = None;
    let names = ["stdout", "stderr"];
    let kinds = [attach::STDOUT, attach::STDERR];
    let mut buf = vec![0u8; attach::MAX_PAYLOAD + 1];
    let mut shed_when_quiet = true;
    loop {
        if status.is_some() && io.sources.iter().all(|o| o.is_none()) {
            break;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut which = Vec::new();
        for (i, o) in io.sources.iter().enumerate() {
            if let Some(fd) = o {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        let listener;
        let mut clients = 0;
        if let Some(a) = attach.as_deref() {
            // SAFETY: the listener outlives this poll.
            listener = unsafe { BorrowedFd::borrow_raw(a.listener()) };
            fds.push(PollFd::new(listener, PollFlags::POLLIN));
            for c in &a.clients {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            clients = a.clients.len();
        }
        let timeout = if status.is_some() {
            PollTimeout::from(500u16)
        } else if shed_when_quiet {
            PollTimeout::from(1000u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) if status.is_none() => {
                // The first quiet second: what start-up touched again
                // since the last shedding goes too, so a monitor at rest
                // holds only what its loop needs.
                shed_memory();
                shed_when_quiet = false;
                continue;
            }
            Ok(0) => break, // exited and its output went quiet (a grandchild may hold the pipe)
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        let ready = super::ready(fds);
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
            let fd = io.sources[*i].as_ref().expect("polled").as_raw_fd();
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(_) => io.sources[*i] = None,
                Ok(n) => {
                    let _ = log.write(names[*i], &buf[..n]);
                    if let Some(a) = attach.as_deref_mut() {
                        a.broadcast(kinds[*i], &buf[..n]);
                    }
                }
            }
        }
        let Some(a) = attach.as_deref_mut() else {
            continue;
        };
        let base = 1 + which.len();
        let mut gone = Vec::new();
        for c in 0..clients {
            if !ready[base + 1 + c] {
                continue;
            }
            match attach::recv_msg(&a.clients[c], &mut buf) {
                None => gone.push(c),
                Some((kind, n)) => client_message(&mut io, pid, kind, &buf[1..1 + n]),
            }
        }
        for c in gone.into_iter().rev() {
            a.clients.remove(c);
        }
        if ready[base] {
            a.accept();
        }
    }
    status.unwrap_or_else(|| {
        waitpid(pid, None)
            .ok()
            .and_then(super::foreground::status_code)
            .unwrap_or(255)
    })
}

/// Carries out one message from an attached client.
fn client_message(io: &mut ContainerIo, pid: Pid, kind: u8, payload: &[u8]) {
    match kind {
        attach::STDIN => {
            if let Some(fd) = &io.input {
                let _ = write_all(fd, payload);
            }
        }
        attach::STDIN_EOF => {
            if io.tty {
                if let Some(fd) = &io.input {
                    // End of input is the terminal's EOF character.
                    let _ = write_all(fd, &[4u8]);
                }
            } else {
                io.input = None;
            }
        }
        attach::RESIZE if io.tty && payload.len() == 4 => {
            if let Some(fd) = &io.input {
                let ws = libc::winsize {
                    ws_row: u16::from_le_bytes([payload[0], payload[1]]),
                    ws_col: u16::from_le_bytes([payload[2], payload[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
                unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            }
        }
        attach::SIGNAL if payload.len() == 1 => {
            // SAFETY: forwarding a signal to our child.
            unsafe { libc::kill(pid.as_raw(), i32::from(payload[0])) };
        }
        _ => {}
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Shrinks the monitor once the container runs: read-only file mappings
/// (code, read-only data, of berth and its libraries) that hold no private
/// copy of a page are dropped from its resident set (MADV_DONTNEED; the
/// pages fault back in from the page cache if ever used), and freed heap is
/// returned. A mapping with a private (relocated) page is left alone, since
/// re-reading it from the file would lose the relocation. A monitor lives
/// as long as its container, so this is paid once and saved for hours.
pub fn shed_memory() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| line.contains(' ')) {
            current = None;
            let (Some(perms), Some(_off), Some(_dev), Some(inode)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let path = f.next().unwrap_or("");
            if inode == "0" || !path.starts_with('/') || !(perms == "r-xp" || perms == "r--p") {
                continue;
            }
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                current = Some((a, b));
            }
        } else if first == "Anonymous:" {
            if let Some((a, b)) = current.take() {
                if f.next() == Some("0") {
                    // SAFETY: a read-only private file mapping of our own
                    // with no private pages: its content is the file's.
                    unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
                }
            }
        }
    }
    // SAFETY: returns free heap to the kernel.
    unsafe { libc::malloc_trim(0) };
}

//! `run` in the foreground: start the container, then relay terminal I/O
//! and signals until it exits, and report how it ended.

use super::logfile::LogWriter;
use super::tty::{copy_winsize, RawMode};
use crate::cgroups::Cgroup;
use crate::runtime::{self, Launch, RuntimeError, Stdio};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// How the container ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The exit code berth passes on (128+N for signal N).
    pub exit_code: i32,
    /// The kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// `--timeout` ended it (podman then records exit code -1).
    pub timed_out: bool,
}

/// Terminal and stdin wishes of the user.
#[derive(Clone, Copy, Debug)]
pub struct IoMode {
    pub tty: bool,
    pub interactive: bool,
    /// Which of stdout and stderr reach berth's own (`--attach`); the
    /// others are only logged.
    pub attach_out: bool,
    pub attach_err: bool,
    /// Descriptors 3..3+N passed on (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Killed after this long (`run --timeout`); it then exits 255.
    pub timeout: Option<std::time::Duration>,
}

impl IoMode {
    /// Plain terminal wishes: both streams shown, nothing else.
    pub fn plain(tty: bool, interactive: bool) -> IoMode {
        IoMode {
            tty,
            interactive,
            attach_out: true,
            attach_err: true,
            preserve_fds: 0,
            timeout: None,
        }
    }
}

/// Opens a pty from the devpts instance whose ptmx is `ptmx` (an `exec -t`
/// into a running container takes its pty from the container's own
/// /dev/pts, so `tty` inside names a device that exists there).
fn pty_from(ptmx: &std::path::Path) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let master: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)?
        .into();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK and TIOCGPTPEER on a pty master we own.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER returned a new descriptor we now own.
    Ok((master, unsafe {
        std::os::fd::FromRawFd::from_raw_fd(slave)
    }))
}

/// Signals relayed to the container (and SIGCHLD/SIGWINCH for ourselves).
fn relay_set() -> SigSet {
    super::forwarded_and(&[Signal::SIGCHLD, Signal::SIGWINCH])
}

/// The exit code berth reports for a wait status (128+N for signal N).
pub(crate) fn status_code(s: WaitStatus) -> Option<i32> {
    match s {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// A container to run in the foreground: `Launch` without its stdio,
/// which `run` makes.
pub struct Foreground<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub id: &'a str,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub userns: bool,
    pub cache: Option<PathBuf>,
    pub prestart: Option<&'a dyn Fn(nix::unistd::Pid) -> Result<(), crate::runtime::HookError>>,
}

/// Starts the container and waits for it; its output also goes to `log`
/// when given (k8s-file for a foreground `run`).
pub fn run(
    c: Foreground<'_>,
    io: IoMode,
    cgroup: Option<&dyn Cgroup>,
    log: Option<&mut LogWriter>,
) -> Result<Outcome, RuntimeError> {
    let timeout = io.timeout;
    let started = std::time::Instant::now();
    let code = relay(io, None, log, |stdio| {
        let launch = Launch {
            spec: c.spec,
            id: c.id,
            bundle: c.bundle,
            rootfs: c.rootfs,
            stdio,
            userns: c.userns,
            cache: c.cache,
            prestart: c.prestart,
        };
        runtime::start(&launch, cgroup)
        // dropping `launch` closes our copy of the pty slave
    })?;
    let oom = cgroup.is_some_and(|c| c.oom_killed());
    let timed_out = code == 255 && timeout.is_some_and(|t| started.elapsed() >= t);
    Ok(Outcome {
        timed_out,
        exit_code: if oom && code == 128 + libc::SIGKILL {
            137
        } else {
            code
        },
        oom_killed: oom,
    })
}

/// Sets up signals and (with -t) a pty, lets `spawn` start a process with
/// that stdio, then relays terminal I/O and signals until it exits; returns
/// its exit code. With a `log`, output passes through berth (pipes, or the
/// pty) and is written to it as well. Shared by `run` and `exec`.
pub fn relay(
    io: IoMode,
    ptmx: Option<&std::path::Path>,
    mut log: Option<&mut LogWriter>,
    spawn: impl FnOnce(Stdio) -> Result<nix::unistd::Pid, RuntimeError>,
) -> Result<i32, RuntimeError> {
    let relay = relay_set();
    relay
        .thread_block()
        .map_err(|e| RuntimeError::Sys("blocking signals", e))?;
    let sfd = SignalFd::with_flags(&relay, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| RuntimeError::Sys("signalfd", e))?;
    let mut master: Option<OwnedFd> = None;
    let console = if io.tty {
        let (pty_master, pty_slave) = match ptmx.map(pty_from) {
            Some(Ok(p)) => p,
            // The container's devpts cannot be reached: a pty of berth's own.
            _ => {
                let pty = nix::pty::openpty(None, None)
                    .map_err(|e| RuntimeError::Sys("opening a pty", e))?;
                (pty.master, pty.slave)
            }
        };
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty_slave.as_raw_fd())).map_err(
            |source| RuntimeError::Io {
                what: "reading the pty's path".into(),
                source,
            },
        )?;
        copy_winsize(0, &pty_master);
        nix::fcntl::fcntl(
            pty_master.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| RuntimeError::Sys("pty", e))?;
        master = Some(pty_master);
        Some((pty_slave, path))
    } else {
        None
    };
    // Logged (or only partly shown) without a terminal: stdout and
    // stderr come through pipes.
    let mut pipes: [Option<OwnedFd>; 2] = [None, None];
    let shown = [io.attach_out, io.attach_err];
    let output = if (log.is_some() || shown.contains(&false)) && !io.tty {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| RuntimeError::Sys("output pipes", e))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        pipes = [Some(out_r), Some(err_r)];
        Some((out_w, err_w))
    } else {
        None
    };
    let result = spawn(Stdio {
        console,
        null_stdin: !io.interactive,
        output,
        input: None,
        preserve_fds: io.preserve_fds,
    });
    let pid = match result {
        Ok(p) => p,
        Err(e) => {
            let _ = relay.thread_unblock();
            return Err(e);
        }
    };
    let _raw = if io.tty && io.interactive {
        RawMode::enable(0)
    } else {
        None
    };
    let mut status: Option<i32> = None;
    let deadline = io.timeout.map(|t| std::time::Instant::now() + t);
    let mut timed_out = false;
    let mut stdin_open = io.tty && io.interactive;
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let streams = ["stdout", "stderr"];
    while status.is_none() || master_open || pipes.iter().any(|p| p.is_some()) {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut slots = Vec::new(); // what each poll entry after the signalfd is
        if let Some(m) = &master {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Master);
            }
        }
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Pipe(i));
            }
        }
        let stdin = std::io::stdin();
        if stdin_open && status.is_none() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Stdin);
        }
        let timeout = match (status, deadline) {
            (Some(_), _) => PollTimeout::from(200u16),
            (None, Some(d)) if !timed_out => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                PollTimeout::from(left.as_millis().min(60_000) as u16 + 1)
            }
            _ => PollTimeout::NONE,
        };
        if let (None, Some(d), false) = (status, deadline, timed_out) {
            if std::time::Instant::now() >= d {
                // --timeout: podman kills it and reports 255.
                timed_out = true;
                // SAFETY: plain kill of our child.
                unsafe { libc::kill(pid.as_raw(), libc::SIGKILL) };
            }
        }
        match poll(&mut fds, timeout) {
            Ok(0) if status.is_some() => break, // output drained after exit
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(RuntimeError::Sys("poll", e)),
        }
        let ready = super::ready(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Ok(s) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                        if let Some(code) = status_code(s) {
                            status = Some(code);
                        }
                    }
                } else if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(0, m);
                    }
                } else {
                    // SAFETY: plain kill of our child.
                    unsafe { libc::kill(pid.as_raw(), sig) };
                }
            }
        }
        for (k, slot) in slots.iter().enumerate() {
            if !ready[k + 1] {
                continue;
            }
            match slot {
                Slot::Master => {
                    let m = master.as_ref().expect("polled");
                    match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                        Ok(0) | Err(_) => master_open = false, // EIO: the container side closed
                        Ok(n) => {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(&buf[..n]);
                            let _ = out.flush();
                            if let Some(l) = log.as_deref_mut() {
                                let _ = l.write("stdout", &buf[..n]);
                            }
                        }
                    }
                }
                Slot::Pipe(i) => {
                    let fd = pipes[*i].as_ref().expect("polled").as_raw_fd();
                    match nix::unistd::read(fd, &mut buf) {
                        Ok(0) | Err(_) => pipes[*i] = None,
                        Ok(n) => {
                            if !shown[*i] {
                                // not attached (--attach): only logged
                            } else if *i == 0 {
                                let mut out = std::io::stdout().lock();
                                let _ = out.write_all(&buf[..n]);
                                let _ = out.flush();
                            } else {
                                let _ = std::io::stderr().lock().write_all(&buf[..n]);
                            }
                            if let Some(l) = log.as_deref_mut() {
                                let _ = l.write(streams[*i], &buf[..n]);
                            }
                        }
                    }
                }
                Slot::Stdin => match std::io::stdin().lock().read(&mut buf) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        if let Some(m) = &master {
                            // Pass end-of-file on as the terminal's EOF character.
                            let _ = nix::unistd::write(m, &[4u8]);
                        }
                    }
                    Ok(n) => {
                        if let Some(m) = &master {
                            let _ = nix::unistd::write(m, &buf[..n]);
                        }
                    }
                },
            }
        }
    }
    let _ = relay.thread_unblock();
    if timed_out {
        return Ok(255);
    }
    Ok(status.unwrap_or(125))
}

/// What a polled descriptor in `relay` is.
enum Slot {
    Master,
    Pipe(usize),
    Stdin,
}

//! Detached containers: `start` re-executes berth as the container's
//! monitor (podman's conmon, built in) in a session of its own and waits
//! only until the container runs. The monitor supervises the container
//! (`supervisor.rs`) with pipes or a pty, its log and attach socket, and
//! its restart policy.

use super::container::{ContainerError, Containers};
use super::supervisor::{record_exit, AfterExit, Supervisor};
use super::Engine;
use crate::monitor::attach::AttachServer;
use crate::monitor::detached::{signal_fd, watch, ContainerIo};
use crate::monitor::logfile::LogWriter;
use crate::runtime::{self, Launch, Stdio};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;

/// Why a container's monitor could not start it.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("starting the container monitor: {0}")]
    Spawn(std::io::Error),
    #[error("attaching to the container: {0}")]
    Attach(std::io::Error),
    #[error("creating the monitor log: {0}")]
    Log(std::io::Error),
    #[error("{0}: {1}")]
    Stdio(&'static str, std::io::Error),
    /// What the monitor reported: the container did not start (its
    /// runtime's error, with podman's exit code for it).
    #[error("{message}")]
    Reported { code: i32, message: String },
    #[error(transparent)]
    Container(#[from] ContainerError),
}

impl MonitorError {
    /// The code the container's command could not run with (126, 127), if so.
    pub fn container_code(&self) -> Option<i32> {
        match self {
            MonitorError::Reported { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The environment variable that tells the monitor where to report.
const READY_FD: &str = "BERTH_READY_FD";

/// Asks the monitor to wait for the starter to attach before the container
/// starts, so `start -a` sees all of its output.
const ATTACH_FIRST: &str = "BERTH_ATTACH_FIRST";

/// Starts the monitor for a created container and waits until the
/// container runs (or failed to start). With `attach`, returns a
/// connection to the container's attach socket made before it started.
pub fn start(
    engine: &Engine,
    id: &str,
    attach: bool,
) -> Result<Option<std::os::fd::OwnedFd>, MonitorError> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| MonitorError::Spawn(e.into()))?;
    let containers = Containers::new(engine.store.root());
    let err_log = std::fs::File::create(containers.dir(id).join("userdata/monitor.log"))
        .map_err(MonitorError::Log)?;
    let wfd = ready_w.as_raw_fd();
    let mut cmd = std::process::Command::new("/proc/self/exe");
    // `ps` shows `berth-monitor ... container-monitor ID`, not /proc/self/exe.
    cmd.arg0(MONITOR_NAME)
        .arg("--root")
        .arg(engine.store.root())
        .arg("--runroot")
        .arg(&engine.paths.runroot)
        .args(["container-monitor", id])
        .env(READY_FD, wfd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err_log);
    if attach {
        cmd.env(ATTACH_FIRST, "1");
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::fcntl(wfd, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(MonitorError::Spawn)?;
    drop(ready_w);
    let mut lines = std::io::BufReader::new(std::fs::File::from(ready_r)).lines();
    let mut conn = None;
    let report = loop {
        let line = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        if line == LISTENING {
            let c = crate::monitor::attach::connect_to(&containers.dir(id).join("userdata"))
                .map_err(MonitorError::Attach)?;
            conn = Some(c);
        } else if let Some(note) = line.strip_prefix(NOTE) {
            tracing::warn!("{note}");
        } else {
            break line;
        }
    };
    // The monitor keeps running; reap it later only if it already failed.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let report = report.trim();
    if report == "ok" {
        return Ok(conn);
    }
    let (code, message) = report
        .strip_prefix("err ")
        .and_then(|r| r.split_once(' '))
        .unwrap_or(("125", report));
    let message = if message.is_empty() {
        "the container monitor died before the container started".to_string()
    } else {
        message.to_string()
    };
    Err(MonitorError::Reported {
        code: code.parse().unwrap_or(125),
        message,
    })
}

/// What the monitor's lines to the starter begin with when they are for
/// the user (a fallback it took), before it reports.
const NOTE: &str = "note ";

/// What the monitor says when its attach socket is ready for the starter.
const LISTENING: &str = "listening";

/// The monitor process: starts the container, reports, watches, records.
/// Returns its own exit code.
/// The monitor's process name, as `ps` and `top` show it.
pub const MONITOR_NAME: &str = "berth-monitor";

pub fn monitor_main(engine: &Engine, id: &str) -> i32 {
    // SAFETY: prctl with a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-monitor".as_ptr()) };
    let mut ready: Option<std::fs::File> = std::env::var(READY_FD)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        // SAFETY: the fd was passed to us by the starter for this purpose.
        .map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    let report = |ready: Option<std::fs::File>, msg: &str| {
        if let Some(mut f) = ready {
            let _ = writeln!(f, "{}", msg.replace('\n', " "));
        }
    };
    let containers = Containers::new(engine.store.root());
    let mut sup = match Supervisor::prepare(engine, id) {
        Ok(s) => s,
        Err(e) => {
            // Recorded before the starter hears of it, so what it reads
            // next is final (and a --rm container is already gone).
            let code = e.exit_code();
            if let Ok(r) = containers.find(id) {
                record_exit(&containers, &r, code, false);
            }
            report(ready, &format!("err {code} {e}"));
            return code;
        }
    };
    let fail = |sup: Supervisor, ready: Option<std::fs::File>, code: i32, msg: String| {
        sup.finish(code, false);
        report(ready, &format!("err {code} {msg}"));
        code
    };
    let sfd = match signal_fd() {
        Ok(s) => s,
        Err(e) => return fail(sup, ready, 125, format!("signalfd: {e}")),
    };
    let opened = if sup.record.log_driver.as_deref() == Some("none") {
        Ok(LogWriter::discard())
    } else {
        LogWriter::with_limit(&containers.log_path(id), sup.record.log_max_size)
    };
    let mut log = match opened {
        Ok(l) => l,
        Err(e) => return fail(sup, ready, 125, format!("opening the log: {e}")),
    };
    let mut attach = match AttachServer::bind(&containers.dir(id).join("userdata")) {
        Ok(a) => a,
        Err(e) => return fail(sup, ready, 125, format!("creating the attach socket: {e}")),
    };
    if std::env::var_os(ATTACH_FIRST).is_some() {
        if let Some(f) = ready.as_mut() {
            let _ = writeln!(f, "{LISTENING}");
        }
        if !attach.accept_first(10_000) {
            return fail(sup, ready, 125, "the attaching berth went away".into());
        }
    }
    loop {
        let (stdio, io) = match container_stdio(sup.record.tty, sup.record.interactive) {
            Ok(x) => x,
            Err(e) => return fail(sup, ready.take(), 125, e.to_string()),
        };
        // `container:NAME` follows that container's current process.
        if let Err(e) = sup.follow_joined_netns() {
            return fail(sup, ready.take(), 125, e.to_string());
        }
        let hook = |pid| sup.prestart(pid);
        let launch = Launch {
            spec: &sup.spec,
            id: &sup.record.id,
            bundle: sup.bundle(),
            rootfs: sup.rootfs(),
            stdio,
            userns: engine.paths.rootless,
            cache: Some(engine.paths.runroot.join("seccomp")),
            prestart: Some(&hook),
        };
        let started = runtime::start(&launch, sup.cgroup());
        drop(launch);
        let pid = match started {
            Ok(p) => p,
            Err(e) => {
                let code = e.container_code().unwrap_or(125);
                return fail(sup, ready.take(), code, e.to_string());
            }
        };
        if let Some(f) = ready.as_mut() {
            for note in sup.notes() {
                let _ = writeln!(f, "{NOTE}{}", note.replace('\n', " "));
            }
        }
        report(ready.take(), "ok");
        crate::monitor::detached::shed_memory();
        let code = watch(pid, &sfd, io, &mut log, Some(&mut attach));
        // Restart unless `stop` or `rm` asked for the end; the record
        // keeps saying it runs meanwhile, so a `stop` now is heard.
        let (after, code, oom) = sup.exited(code, true);
        if let AfterExit::Restart = after {
            attach.exited(code);
            // Back off a little, as podman does, so a crash loop does not spin.
            std::thread::sleep(std::time::Duration::from_millis(
                100 * u64::from(sup.restarts().min(10)),
            ));
            if sup.still_wanted() {
                continue;
            }
        }
        sup.finish(code, oom);
        attach.exited(code);
        return 0;
    }
}

/// The container's stdio for one start, and the monitor's ends of it:
/// a pty with `-t`, else pipes for stdout and stderr (and stdin with `-i`).
fn container_stdio(tty: bool, interactive: bool) -> Result<(Stdio, ContainerIo), MonitorError> {
    let failed = |what: &'static str| move |e: nix::Error| MonitorError::Stdio(what, e.into());
    let cloexec = |fd: &std::os::fd::OwnedFd| {
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
    };
    if tty {
        let pty = nix::pty::openpty(None, None).map_err(failed("opening a pty"))?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .map_err(|e| MonitorError::Stdio("reading the pty's path", e))?;
        cloexec(&pty.master).map_err(failed("preparing the pty"))?;
        cloexec(&pty.slave).map_err(failed("preparing the pty"))?;
        let input = pty
            .master
            .try_clone()
            .map_err(|e| MonitorError::Stdio("preparing the pty", e))?;
        let stdio = Stdio {
            console: Some((pty.slave, path)),
            null_stdin: !interactive,
            output: None,
            input: None,
            preserve_fds: 0,
        };
        let io = ContainerIo {
            sources: [Some(pty.master), None],
            input: Some(input),
            tty: true,
        };
        return Ok((stdio, io));
    }
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(failed("creating the container's pipes"))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (input, stdin) = if interactive {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let stdio = Stdio {
        console: None,
        null_stdin: !interactive,
        output: Some((out_w, err_w)),
        input,
        preserve_fds: 0,
    };
    let io = ContainerIo {
        sources: [Some(out_r), Some(err_r)],
        input: stdin,
        tty: false,
    };
    Ok((stdio, io))
}

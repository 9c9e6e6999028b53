//! Runs another process inside a running container (`exec`): joins the
//! container's namespaces (user too, when rootless) and cgroup, then applies
//! the same user, capabilities and seccomp filter before exec.

use super::child_error::{ChildError, Step};
use super::process::ExecPlan;
use super::{RuntimeError, Stdio};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

/// What to run where.
pub struct ExecInto<'a> {
    /// The container's first process (its namespaces are joined).
    pub pid: i32,
    pub process: &'a oci_spec::runtime::Process,
    pub seccomp: Option<Vec<u8>>,
    /// cgroup.procs files of the container's cgroup(s).
    pub cgroup_procs: Vec<PathBuf>,
    /// Keep running after berth exits (`exec -d`).
    pub detach: bool,
}

fn same_ns(pid: i32, ns: &str) -> bool {
    let a = std::fs::metadata(format!("/proc/self/ns/{ns}"));
    let b = std::fs::metadata(format!("/proc/{pid}/ns/{ns}"));
    use std::os::unix::fs::MetadataExt;
    matches!((a, b), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

/// Starts the process in the container; returns its pid (our child).
pub fn spawn(x: &ExecInto<'_>, stdio: Stdio) -> Result<Pid, RuntimeError> {
    let exec = ExecPlan::from_process(x.process)?;
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{}/ns/{ns}", x.pid)).map_err(super::io(format!(
            "container process {} is gone ({ns})",
            x.pid
        )))
    };
    // Joined by this process: the user namespace (rootless) and the PID
    // namespace our children are born into.
    if !same_ns(x.pid, "user") {
        setns(open("user")?.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| RuntimeError::Sys("joining the container's user namespace", e))?;
    }
    if !same_ns(x.pid, "pid") {
        setns(open("pid")?.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| RuntimeError::Sys("joining the container's PID namespace", e))?;
    }
    // Joined by the child; the mount namespace last (it changes the root).
    let mut later = Vec::new();
    for (ns, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        if !same_ns(x.pid, ns) {
            later.push((open(ns)?, flag, ns));
        }
    }
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::Sys("pipe", e))?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::Sys("pipe", e))?;
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(super::io("/dev/null"))?;
    // SAFETY: berth is single-threaded here; the child only runs setup and exec.
    match unsafe { nix::unistd::fork() }.map_err(|e| RuntimeError::Sys("fork", e))? {
        nix::unistd::ForkResult::Child => {
            drop(sync_w);
            drop(err_r);
            let efd = err_w.as_raw_fd();
            // Until exec, this process holds berth's memory and
            // descriptors while it is already visible in the container:
            // no container process may ptrace it or open its /proc files.
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            if !x.detach {
                // SAFETY: prctl with constant arguments.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            }
            super::reset_signals();
            let mut b = [0u8; 1];
            if nix::unistd::read(sync_r.as_raw_fd(), &mut b) != Ok(1) {
                super::die(
                    efd,
                    ChildError::new(Step::Sync, "berth went away before exec"),
                );
            }
            for (f, flag, ns) in &later {
                if let Err(e) = setns(f.as_fd(), *flag) {
                    super::die(
                        efd,
                        ChildError::new(
                            Step::JoinNamespace,
                            format!("joining the container's {ns} namespace: {e}"),
                        ),
                    );
                }
            }
            let _ = nix::unistd::chdir("/");
            let null = Some(devnull.as_raw_fd());
            let fds = match (&stdio.console, x.detach) {
                (Some((fd, _)), _) => super::session::StdFds {
                    console: Some(fd.as_raw_fd()),
                    ..Default::default()
                },
                // Detached: no terminal, none of berth's stdio.
                (None, true) => super::session::StdFds {
                    console: None,
                    stdin: null,
                    stdout: null,
                    stderr: null,
                },
                (None, false) => super::session::StdFds {
                    stdin: null.filter(|_| stdio.null_stdin),
                    ..Default::default()
                },
            };
            if let Err(msg) = super::session::begin(fds) {
                super::die(efd, ChildError::new(Step::Session, msg.to_string()));
            }
            // Only the inherited --preserve-fds ones stay open (berth's
            // own are all close-on-exec).
            let first = 3u32.saturating_add(stdio.preserve_fds);
            // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
            unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) };
            let failure = exec.exec(x.seccomp.as_deref());
            super::die(efd, failure)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(sync_r);
            drop(err_w);
            drop(stdio);
            for procs in &x.cgroup_procs {
                let _ = std::fs::write(procs, child.as_raw().to_string());
            }
            let _ = nix::unistd::write(&sync_w, b"1");
            drop(sync_w);
            if let Some(e) = super::child_report(err_r) {
                let _ = nix::sys::wait::waitpid(child, None);
                return Err(e.into());
            }
            Ok(child)
        }
    }
}

//! The container's first process, from clone to exec, as one linear
//! sequence (crun's `container_init_setup`): wait for the parent, become
//! root of its own user namespace, join named namespaces, make the cgroup
//! namespace, start a session with its stdio, run the mount plan, report "created", wait for start, then exec. The
//! parent prepares everything in a `ChildPlan`; each step that fails
//! reports a typed `ChildError` to the parent and the process exits.

use super::child_error::{ChildError, Step};
use super::hooks::{self, Stage};
use super::mounts::{self, MountCtx};
use super::process::ExecPlan;
use super::session::{self, StdFds};
use nix::sched::CloneFlags;
use oci_spec::runtime::Hook;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::PathBuf;

/// What the container says on its error pipe when its setup is done and
/// it waits for `start` (no step is 0).
pub(crate) const CREATED: u8 = 0;

/// The pipes between parent and child, as the child holds them.
pub(crate) struct ChildPipes {
    /// The parent's ends, closed first.
    pub parent_ends: [RawFd; 3],
    /// From the parent once cgroup, id maps and its hooks are done: the
    /// container's state for this process's own hooks (or one byte when
    /// it has none), then end of file.
    pub sync: RawFd,
    /// Reports to the parent: CREATED, or a ChildError.
    pub report: RawFd,
    /// One byte from the parent: exec now (`start`).
    pub start: RawFd,
}

/// Everything the container's first process does, decided in the parent.
pub(crate) struct ChildPlan {
    /// Become root of a user namespace of its own (the parent wrote maps).
    pub own_userns: bool,
    /// Namespaces named by path: (fd opened by the parent, kind, what).
    pub joins: Vec<(RawFd, CloneFlags, String)>,
    /// Make a cgroup namespace (after the parent put it in its cgroup).
    pub cgroupns: bool,
    /// Its stdio (and pty).
    pub stdio: StdFds,
    /// The pty slave's path, for /dev/console.
    pub console_path: Option<PathBuf>,
    /// Descriptors 3..3+N that stay open (`--preserve-fds`).
    pub preserve_fds: u32,
    /// The mount plan and what it runs on.
    pub rootfs: PathBuf,
    pub userns: bool,
    pub mounts: Vec<super::plan::Step>,
    /// Identity, capabilities, limits and the command.
    pub exec: ExecPlan,
    /// The compiled seccomp filter.
    pub seccomp: Option<Vec<u8>>,
    /// The spec's createContainer hooks (run before pivot_root) and
    /// startContainer hooks (run just before the command).
    pub create_hooks: Vec<Hook>,
    pub start_hooks: Vec<Hook>,
}

impl ChildPlan {
    /// Runs the setup and execs the command; never returns. A failure is
    /// reported to the parent, and the process exits with its code.
    pub(crate) fn run(&self, pipes: &ChildPipes) -> ! {
        let err = match self.setup(pipes) {
            Ok(()) => self.exec.exec(self.seccomp.as_deref()),
            Err(e) => e,
        };
        super::die(pipes.report, err)
    }

    /// The setup, in order, up to the wait for `start`.
    fn setup(&self, pipes: &ChildPipes) -> Result<(), ChildError> {
        for fd in pipes.parent_ends {
            // SAFETY: closing the parent's ends of the pipes in the child.
            unsafe { libc::close(fd) };
        }
        // The container dies with the berth process that watches it.
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // Undo what the parent set up for itself: blocked signals, SIGPIPE ignored.
        super::reset_signals();
        let state = read_all(pipes.sync);
        if state.is_empty() {
            return Err(ChildError::new(
                Step::Sync,
                "the parent went away before setup",
            ));
        }
        if self.own_userns && !crate::namespaces::container::become_root() {
            return Err(ChildError::new(
                Step::UserNamespace,
                "becoming root in the container's user namespace failed",
            ));
        }
        for (fd, flag, what) in &self.joins {
            // SAFETY: the fd is an open namespace file inherited from the parent.
            nix::sched::setns(unsafe { BorrowedFd::borrow_raw(*fd) }, *flag).map_err(|e| {
                ChildError::new(Step::JoinNamespace, format!("joining {what}: {e}"))
            })?;
        }
        if self.cgroupns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| {
                ChildError::new(
                    Step::CgroupNamespace,
                    format!("creating the cgroup namespace: {e}"),
                )
            })?;
        }
        session::begin(self.stdio).map_err(|e| ChildError::new(Step::Session, e.to_string()))?;
        let mut ctx = MountCtx {
            rootfs: self.rootfs.clone(),
            rootfs_fd: None,
            userns: self.userns,
            console: self.console_path.clone(),
        };
        for step in &self.mounts {
            if *step == super::plan::Step::PivotRoot {
                self.hooks(Stage::CreateContainer, &self.create_hooks, &state)?;
            }
            mounts::run_step(step, &mut ctx)
                .map_err(|e| ChildError::new(Step::Mount, e.to_string()))?;
        }
        if let Some(fd) = self.stdio.console.filter(|fd| *fd > 2) {
            // SAFETY: the pty slave is now 0-2.
            unsafe { libc::close(fd) };
        }
        // Nothing of berth's leaks into the container: every fd above
        // stderr (and the --preserve-fds ones) closes on exec (the error
        // pipe stays usable until then). berth opens all of its own
        // descriptors close-on-exec, so among 3..3+N only the inherited
        // ones the user asked for stay open.
        let first = 3u32.saturating_add(self.preserve_fds);
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
        unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) };
        // Created: the setup is done. Say so, and wait for `start`.
        let b = [CREATED];
        // SAFETY: one byte to a pipe we own.
        let told = unsafe { libc::write(pipes.report, b.as_ptr().cast(), 1) } == 1;
        if !told || !byte_from(pipes.start) {
            return Err(ChildError::new(
                Step::Sync,
                "the parent went away before start",
            ));
        }
        self.hooks(Stage::StartContainer, &self.start_hooks, &state)
    }

    fn hooks(&self, stage: Stage, list: &[Hook], state: &[u8]) -> Result<(), ChildError> {
        if list.is_empty() {
            return Ok(());
        }
        hooks::run(stage, list, &String::from_utf8_lossy(state))
            .map_err(|e| ChildError::new(Step::Hook, e.to_string()))
    }
}

/// Reads what the parent sends until it closes its end.
fn read_all(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a buffer we own from a pipe we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

/// Reads the one byte the parent sends; false when it went away.
fn byte_from(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading one byte from a pipe we own.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

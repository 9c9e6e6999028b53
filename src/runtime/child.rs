//! The container's first process, from clone to exec, as one linear
//! sequence (crun's `container_init_setup`): wait for the parent, become
//! root of its own user namespace, join named namespaces, make the cgroup
//! namespace, start a session with its stdio, open the `--init` binary,
//! run the mount plan, report "created", wait for start, then exec. The
//! parent prepares everything in a `ChildPlan`; each step that fails
//! reports a typed `ChildError` to the parent and the process exits.

use super::child_error::{ChildError, Step};
use super::mounts::{self, MountCtx};
use super::process::ExecPlan;
use super::session::{self, StdFds};
use nix::sched::CloneFlags;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

/// What the container says on its error pipe when its setup is done and
/// it waits for `start` (no step is 0).
pub(crate) const CREATED: u8 = 0;

/// The pipes between parent and child, as the child holds them.
pub(crate) struct ChildPipes {
    /// The parent's ends, closed first.
    pub parent_ends: [RawFd; 3],
    /// One byte from the parent: cgroup, id maps and hooks are done.
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
    /// The init binary on the host (`--init`).
    pub init: Option<PathBuf>,
    /// The mount plan and what it runs on.
    pub rootfs: PathBuf,
    pub userns: bool,
    pub mounts: Vec<super::plan::Step>,
    /// Identity, capabilities, limits and the command.
    pub exec: ExecPlan,
    /// The compiled seccomp filter.
    pub seccomp: Option<Vec<u8>>,
}

impl ChildPlan {
    /// Runs the setup and execs the command; never returns. A failure is
    /// reported to the parent, and the process exits with its code.
    pub(crate) fn run(&self, pipes: &ChildPipes) -> ! {
        let err = match self.setup(pipes) {
            Ok(init) => self.exec.exec(self.seccomp.as_deref(), init),
            Err(e) => e,
        };
        super::die(pipes.report, err)
    }

    /// The setup, in order; returns the init binary's fd for exec.
    fn setup(&self, pipes: &ChildPipes) -> Result<Option<RawFd>, ChildError> {
        for fd in pipes.parent_ends {
            // SAFETY: closing the parent's ends of the pipes in the child.
            unsafe { libc::close(fd) };
        }
        // The container dies with the berth process that watches it.
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // Undo what the parent set up for itself: blocked signals, SIGPIPE ignored.
        super::reset_signals();
        if !byte_from(pipes.sync) {
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
        // --init: the init binary, opened read-only while the host's
        // mounts are still in this mount namespace.
        let init = self
            .init
            .as_deref()
            .map(super::init::sealed_exe)
            .transpose()
            .map_err(|e| ChildError::new(Step::Init, format!("preparing the init: {e}")))?;
        let mut ctx = MountCtx {
            rootfs: self.rootfs.clone(),
            rootfs_fd: None,
            userns: self.userns,
            console: self.console_path.clone(),
        };
        for step in &self.mounts {
            mounts::run_step(step, &mut ctx)
                .map_err(|e| ChildError::new(Step::Mount, e.to_string()))?;
        }
        if let Some(fd) = self.stdio.console.filter(|fd| *fd > 2) {
            // SAFETY: the pty slave is now 0-2.
            unsafe { libc::close(fd) };
        }
        // Nothing of berth's leaks into the container: every fd above
        // stderr closes on exec (the error pipe stays usable until then).
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32) };
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
        // The fd stays open (CLOEXEC) for execveat; leaked on purpose.
        Ok(init.map(|fd| {
            let raw = fd.as_raw_fd();
            std::mem::forget(fd);
            raw
        }))
    }
}

/// Reads the one byte the parent sends; false when it went away.
fn byte_from(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading one byte from a pipe we own.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

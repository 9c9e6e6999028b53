//! Independent stages built at the same time (`--jobs`). Each runs in a
//! forked copy of the builder: its steps fill the layer cache, its output
//! (plain lines and RUN output alike) goes to a file the parent shows when
//! it ends, and the parent then replays the stage from the cache to get
//! its state. Processes, not threads: a RUN step redirects this process's
//! stdout and forks containers, which threads could not share.

use super::BuildError;
use crate::image::store::TempPath;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::path::{Path, PathBuf};

/// A stage being built by a child process.
pub struct Job {
    /// The stage's index.
    pub stage: usize,
    pid: Pid,
    dir: TempPath,
}

/// Whether this process has one thread, so that forking it is sound.
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() == 1)
        .unwrap_or(false)
}

/// Starts `work` for `stage` in a child whose stdout and stderr go to the
/// job's log. `work` gets the job's directory (for its stat cache) and
/// returns the error the stage failed with, if any.
pub fn spawn(
    dir: TempPath,
    stage: usize,
    work: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<Job, BuildError> {
    std::fs::create_dir_all(dir.path())
        .map_err(BuildError::io("making a build job's directory"))?;
    let log = std::fs::File::create(dir.path().join("log"))
        .map_err(BuildError::io("making a build job's log"))?;
    // SAFETY: the caller checked that this process is single-threaded;
    // the child does its work and _exits without returning.
    match unsafe { nix::unistd::fork() }.map_err(|e| BuildError::io("fork")(e.into()))? {
        ForkResult::Child => {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 onto this process's own stdout and stderr.
            unsafe {
                libc::dup2(log.as_raw_fd(), 1);
                libc::dup2(log.as_raw_fd(), 2);
            }
            // A panic must not unwind into the parent's code (its drops
            // would remove what the parent still uses).
            let run = std::panic::AssertUnwindSafe(|| work(dir.path()));
            let code = match std::panic::catch_unwind(run) {
                Ok(Ok(())) => 0,
                Err(_) => 101,
                Ok(Err(e)) => {
                    let text = format!("{}\n{e}", e.exit_code());
                    let _ = std::fs::write(dir.path().join("error"), text);
                    1
                }
            };
            // SAFETY: leave without running the parent's exit handlers or
            // destructors (the job directory belongs to the parent).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(Job {
            stage,
            pid: child,
            dir,
        }),
    }
}

/// Waits for one of `running` to end and takes it out of the list.
pub fn wait_any(running: &mut Vec<Job>) -> Result<Job, BuildError> {
    loop {
        let status =
            waitpid(None, None).map_err(|e| BuildError::io("waiting for a build job")(e.into()))?;
        let pid = match status {
            WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _) => p,
            _ => continue,
        };
        if let Some(at) = running.iter().position(|j| j.pid == pid) {
            return Ok(running.remove(at));
        }
    }
}

impl Job {
    /// What the stage printed.
    pub fn log(&self) -> String {
        let bytes = std::fs::read(self.dir.path().join("log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The error the stage failed with, if it failed (with its exit code).
    pub fn failure(&self) -> Option<BuildError> {
        let text = std::fs::read_to_string(self.dir.path().join("error")).ok()?;
        let (code, message) = text.split_once('\n')?;
        Some(BuildError::Job {
            code: code.parse().unwrap_or(125),
            message: message.to_string(),
        })
    }

    /// Where the child left the digests it learned of context files.
    pub fn stats_path(&self) -> PathBuf {
        stats_path(self.dir.path())
    }
}

/// The stat cache file in a job's directory.
pub fn stats_path(dir: &Path) -> PathBuf {
    dir.join("stat-cache.json")
}

//! Process identity that survives pid reuse: a pid and its start time.

use serde::{Deserialize, Serialize};

/// A process identified by pid and start time (/proc/PID/stat field 22).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<ProcessId> {
        let pid = std::process::id() as i32;
        Some(ProcessId {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Another process, by pid (None when it is gone).
    pub fn of(pid: i32) -> Option<ProcessId> {
        Some(ProcessId {
            pid,
            start: start_time(pid)?,
        })
    }

    /// True while the very same process is alive (a zombie is not: this
    /// machine's init reaps orphans late).
    pub fn alive(&self) -> bool {
        match stat_fields(self.pid) {
            Some((state, start)) => start == self.start && state != "Z" && state != "X",
            None => false,
        }
    }
}

/// State letter and start time of a process, from /proc/PID/stat.
fn stat_fields(pid: i32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields count from after its ')'.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((rest.first()?.to_string(), rest.get(19)?.parse().ok()?))
}

fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid).map(|(_, start)| start)
}

/// Runs `f` in a forked child and waits for it: for work that must change
/// the process's namespaces (joining the rootless store's mount namespace)
/// without changing the caller's. The child's error comes back over a pipe
/// as its message.
pub fn in_child(f: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    let (mut err_r, mut err_w) = std::io::pipe()?;
    // SAFETY: the child runs `f`, reports, and _exits without returning.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(err_r);
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = std::io::Write::write_all(&mut err_w, e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(err_w);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut err_r, &mut msg);
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                _ if !msg.is_empty() => Err(std::io::Error::other(msg)),
                other => Err(std::io::Error::other(format!(
                    "the helper process failed: {other:?}"
                ))),
            }
        }
    }
}

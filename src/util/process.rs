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

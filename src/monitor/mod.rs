//! The process that watches a running container: owns its terminal or
//! stdio, forwards signals, and collects the exit status. For `run` in the
//! foreground this is berth itself.

pub mod attach;
pub mod detached;
pub mod foreground;
pub mod logfile;
pub mod tty;

use nix::sys::signal::{SigSet, Signal};

/// Signals berth passes on to a container (as podman's sig-proxy).
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The forwarded signals plus those a watcher handles itself.
pub fn forwarded_and(extra: &[Signal]) -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED.iter().chain(extra) {
        s.add(*sig);
    }
    s
}

/// Which of the polled descriptors have an event (the poll set is
/// consumed: it borrows the descriptors the loop then reads).
pub fn ready(fds: Vec<nix::poll::PollFd<'_>>) -> Vec<bool> {
    fds.iter()
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect()
}

//! The built-in init (`--init`): PID 1 stays this small loop, which
//! forwards signals to the command, reaps every zombie, and exits with the
//! command's status (128+N when a signal killed it), like tini or catatonit.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Runs as PID 1 until `child` exits; never returns.
pub fn run(child: Pid) -> ! {
    let mut set = SigSet::all();
    for s in [Signal::SIGKILL, Signal::SIGSTOP] {
        set.remove(s);
    }
    let _ = set.thread_block();
    loop {
        let sig = set.wait();
        match sig {
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p == child => std::process::exit(code),
                    Ok(WaitStatus::Signaled(p, s, _)) if p == child => {
                        std::process::exit(128 + s as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            },
            Ok(s) => {
                let _ = nix::sys::signal::kill(child, s);
            }
            Err(_) => {}
        }
    }
}

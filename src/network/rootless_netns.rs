//! Rootless bridge networks: an ordinary user cannot add interfaces to the
//! host, so a store's bridges, veth host ends and NAT rules live in one
//! network namespace of the user's own (podman's "rootless netns"), owned
//! by the user namespace every rootless berth command shares. pasta gives
//! that namespace the host's addresses and outbound traffic; containers on
//! the same network reach each other over the bridge inside it.
//!
//! The namespace is held by a small holder process (recorded in
//! `ROOT/networks/rootless-netns.json`): a child of it sits in the
//! namespace, and pasta is its other child; both die with it (parent-death
//! signal). It is started with the first container that joins a bridge
//! network and stopped when the last one leaves, which takes the
//! namespace, its bridges and rules with it: nothing is left behind.

use super::config::Networks;
use super::error::{io, NetworkError};
use crate::util::process::ProcessId;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The hidden argument that turns a berth process into the holder.
pub const HOLDER_ARG: &str = "rootless-netns-holder";

/// The holder's process name.
const HOLDER_NAME: &str = "berth-netns";

#[derive(Serialize, Deserialize)]
struct Record {
    holder: ProcessId,
    /// The process that sits in the namespace.
    inner: ProcessId,
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("rootless-netns.json")
}

/// True when network operations must go to the rootless namespace.
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || crate::runtime::in_user_namespace()
}

fn live(dir: &Path) -> Option<Record> {
    let r: Record = serde_json::from_slice(&std::fs::read(record_path(dir)).ok()?).ok()?;
    (r.holder.alive() && r.inner.alive()).then_some(r)
}

fn open(r: &Record) -> Option<OwnedFd> {
    std::fs::File::open(format!("/proc/{}/ns/net", r.inner.pid))
        .ok()
        .map(OwnedFd::from)
}

/// The namespace if it exists (call with the network lock held).
pub fn existing(nets: &Networks) -> Option<OwnedFd> {
    live(nets.dir()).as_ref().and_then(open)
}

/// The namespace, started if needed (call with the network lock held).
pub fn ensure(nets: &Networks) -> Result<OwnedFd, NetworkError> {
    if let Some(fd) = existing(nets) {
        return Ok(fd);
    }
    let _ = std::fs::remove_file(record_path(nets.dir()));
    let out = std::process::Command::new("/proc/self/exe")
        .arg(HOLDER_ARG)
        .arg(nets.dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(io("starting the rootless network namespace"))?;
    if !out.status.success() {
        return Err(NetworkError::Helper {
            tool: "the rootless network namespace",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    existing(nets).ok_or(NetworkError::Gone(
        "the rootless network namespace vanished after its start",
    ))
}

/// Stops the namespace when no container is attached to any network any
/// more (call with the network lock held, after the change was saved).
pub fn stop_if_unused(nets: &Networks) {
    if super::state::all_live(nets)
        .iter()
        .any(|(_, atts)| !atts.is_empty())
    {
        return;
    }
    let Some(r) = live(nets.dir()) else {
        let _ = std::fs::remove_file(record_path(nets.dir()));
        return;
    };
    // SAFETY: signalling the holder we recorded (checked alive just now).
    unsafe { libc::kill(r.holder.pid, libc::SIGKILL) };
    let _ = std::fs::remove_file(record_path(nets.dir()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while (r.holder.alive() || r.inner.alive()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `f` on a thread inside network namespace `ns` (the caller's own
/// namespace is left as it was).
pub fn inside<T: Send>(
    ns: &OwnedFd,
    f: impl FnOnce() -> Result<T, NetworkError> + Send,
) -> Result<T, NetworkError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io("entering a network namespace")(e.into()))?;
            f()
        })
        .join()
        .unwrap_or(Err(NetworkError::Gone("the network set-up thread failed")))
    })
}

/// The holder's life (`berth rootless-netns-holder DIR`): the first process
/// waits until the holder (its child) is ready and reports, so the caller
/// gets a plain exit status and the holder is nobody's child.
pub fn holder_main(dir: &Path) -> i32 {
    let (mut ready_r, ready_w) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe: {e}");
            return 1;
        }
    };
    // SAFETY: single-threaded (called first thing in main).
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("fork: {e}");
            1
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(ready_w);
            // One line: the holder's children keep the pipe open, so no EOF.
            let mut msg = String::new();
            let _ =
                std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut ready_r), &mut msg);
            let msg = msg.trim_end();
            if msg == "ready" {
                0
            } else {
                eprintln!(
                    "{}",
                    if msg.is_empty() {
                        "the holder died"
                    } else {
                        msg
                    }
                );
                1
            }
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(ready_r);
            let mut ready_w = ready_w;
            let (code, msg) = match hold(dir) {
                Ok(()) => (0, "ready".to_string()),
                Err(e) => (1, e.to_string()),
            };
            let line = format!("{}\n", msg.replace('\n', " "));
            let _ = std::io::Write::write_all(&mut ready_w, line.as_bytes());
            drop(ready_w);
            if code != 0 {
                return code;
            }
            // Wait until killed; if a child dies, go (and take the other along).
            loop {
                match nix::sys::wait::wait() {
                    Err(nix::Error::EINTR) => continue,
                    _ => return 1,
                }
            }
        }
    }
}

/// Makes the namespace and starts pasta for it; records both.
fn hold(dir: &Path) -> Result<(), NetworkError> {
    let name = std::ffi::CString::new(HOLDER_NAME).expect("no NUL");
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
    }
    let me = ProcessId::current().ok_or(NetworkError::Gone("reading the holder's process id"))?;
    let (mut in_r, in_w) = std::io::pipe().map_err(io("pipe"))?;
    // SAFETY: single-threaded; the child only sets up its namespace and sleeps.
    let inner = match unsafe { nix::unistd::fork() }.map_err(|e| io("fork")(e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(in_r);
            let mut in_w = in_w;
            // SAFETY: prctl/unshare with constant arguments.
            let ok = unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0
                    && nix::unistd::getppid().as_raw() == me.pid
                    && libc::unshare(libc::CLONE_NEWNET) == 0
            } && loopback_up().is_ok();
            let _ = std::io::Write::write_all(&mut in_w, if ok { b"1" } else { b"0" });
            drop(in_w);
            if !ok {
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(1) };
            }
            loop {
                // SAFETY: sleeps until killed.
                unsafe { libc::pause() };
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(in_w);
    let mut ok = [0u8; 1];
    if in_r.read_exact(&mut ok).is_err() || ok[0] != b'1' {
        return Err(NetworkError::Gone(
            "cannot create a network namespace in the user namespace",
        ));
    }
    let inner =
        ProcessId::of(inner.as_raw()).ok_or(NetworkError::Gone("the namespace's process died"))?;
    if super::pasta::available() {
        match super::pasta::start(inner.pid, &[], &dir.join("rootless-netns.pasta.pid")) {
            Ok(_) => {}
            // An offline host: there is nowhere to reach; containers on
            // its networks still reach each other and published ports.
            Err(e) if super::pasta::no_external_interface(&e) => {}
            Err(e) => return Err(e),
        }
    } // without pasta: containers reach each other, not the outside
    let record = Record { holder: me, inner };
    crate::util::fsutil::atomic_write(
        &record_path(dir),
        &serde_json::to_vec(&record).expect("a record serialises"),
        0o644,
    )
    .map_err(io("recording the rootless network namespace"))
}

fn loopback_up() -> Result<(), NetworkError> {
    let mut nl = super::netlink::Netlink::open()?;
    let lo = nl.link_index("lo")?.ok_or(NetworkError::Gone(
        "the namespace has no loopback interface",
    ))?;
    Ok(nl.set_up(lo, None)?)
}

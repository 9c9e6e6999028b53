//! Rootless networking: pasta (Debian `passt`) attached to the container's
//! network namespace gives it the host's addresses and routes, outbound
//! traffic through host sockets, and forwards published ports from the
//! host into the container (keeping the client's source address). It runs
//! until the namespace goes away; berth also stops it when the container ends.

use super::error::{io, NetworkError};
use super::ports::PortMapping;
use std::process::Command;

/// Whether pasta is installed.
pub fn available() -> bool {
    find().is_some()
}

fn find() -> Option<std::path::PathBuf> {
    crate::util::fsutil::which("pasta")
}

/// The arguments for one container: its namespace, ports, no automatic
/// forwarding either way (podman's choices).
pub fn args(netns: &str, ports: &[PortMapping], pidfile: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "--config-net",
        "--foreground",
        "--quiet",
        "--netns",
        netns,
        "--pid",
        pidfile,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for proto in ["tcp", "udp"] {
        let flag = if proto == "tcp" { "-t" } else { "-u" };
        let mine: Vec<&PortMapping> = ports.iter().filter(|p| p.protocol == proto).collect();
        if mine.is_empty() {
            a.extend([flag.to_string(), "none".into()]);
        }
        for p in mine {
            let host = match p.host_ip {
                Some(ip) => format!("{ip}/{}", p.host_port),
                None => p.host_port.to_string(),
            };
            a.extend([flag.to_string(), format!("{host}:{}", p.container_port)]);
        }
    }
    a.extend(["-T", "none", "-U", "none"].map(String::from));
    a
}

/// Starts pasta for the namespace of `pid` and waits until it is
/// configured (it writes its pid file then); returns its pid. pasta stays
/// a child of the calling berth process (monitor or foreground `run`) and
/// dies with it, so a killed berth leaves no pasta behind.
pub fn start(
    pid: i32,
    ports: &[PortMapping],
    pidfile: &std::path::Path,
) -> Result<i32, NetworkError> {
    let prog = find().ok_or(NetworkError::Missing(
        "rootless networking needs pasta: apt-get install passt (or use --network none)",
    ))?;
    let _ = std::fs::remove_file(pidfile);
    // pasta drops its capabilities before it opens the namespace, and so
    // may not open /proc/PID/ns/net; it gets the namespace bound onto a
    // plain file instead, in a mount namespace of its own (nothing is
    // mounted where anyone else sees it).
    let target = pidfile.with_extension("netns");
    std::fs::write(&target, b"").map_err(io(format!("creating {}", target.display())))?;
    let cstr = |s: &str| std::ffi::CString::new(s).expect("no NUL in paths");
    let (src, dst, root) = (
        cstr(&format!("/proc/{pid}/ns/net")),
        cstr(&target.display().to_string()),
        cstr("/"),
    );
    let mut cmd = Command::new(prog);
    cmd.args(args(
        &target.display().to_string(),
        ports,
        &pidfile.display().to_string(),
    ))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null());
    let log = pidfile.with_extension("log");
    if let Ok(f) = std::fs::File::create(&log) {
        cmd.stderr(f);
    }
    // SAFETY: only raw syscalls on prepared C strings between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                || libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io(
        "starting pasta (binding the container's network namespace)",
    ))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(p) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            return Ok(p);
        }
        let failed = match child.try_wait() {
            Ok(Some(_)) => true,
            _ => std::time::Instant::now() > deadline,
        };
        if failed {
            let _ = child.kill();
            let _ = child.wait();
            let msg = std::fs::read_to_string(&log).unwrap_or_default();
            let msg: Vec<&str> = msg
                .lines()
                .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
                .collect();
            return Err(NetworkError::Helper {
                tool: "pasta",
                detail: msg.join("; "),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether `start` failed because the host has no interface with a route
/// out (pasta copies its addresses and routes from one).
pub fn no_external_interface(error: &NetworkError) -> bool {
    matches!(error, NetworkError::Helper { tool: "pasta", detail }
        if detail.contains("No external routable interface")
            || detail.contains("External interface not usable"))
}

/// Stops the pasta of a container: removing its namespace file makes it
/// quit, and it is signalled too (only if that pid still is a pasta).
pub fn stop(pidfile: &std::path::Path) {
    let _ = std::fs::remove_file(pidfile.with_extension("netns"));
    let pid: i32 = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // pasta is passt under another name (comm: passt or passt.avx2).
    if pid > 0 && (comm.starts_with("pasta") || comm.starts_with("passt")) {
        // SIGKILL: pasta keeps SIGTERM blocked; it has nothing to save.
        // SAFETY: plain kill of the helper we started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Reap it when it is our child (nothing to do when it is not).
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    let _ = std::fs::remove_file(pidfile);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let p = crate::network::ports::parse("127.0.0.1:8080:80").unwrap();
        let a = args("/proc/1/ns/net", &p, "/tmp/p").join(" ");
        assert!(a.contains("-t 127.0.0.1/8080:80"), "{a}");
        assert!(a.contains("-u none") && a.contains("-T none") && !a.contains("-t none"));
    }
}

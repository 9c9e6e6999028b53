//! Rootless networking without pasta: slirp4netns attached to the
//! container's network namespace (a tap device with 10.0.2.100, the host
//! reachable through user-mode TCP/IP), as podman's older default. Published
//! ports are added through its API socket (`add_hostfwd`); the container
//! sees connections from slirp's gateway. Like pasta, it is a child of the
//! berth process that keeps the container and dies with it.

use super::error::{io, NetworkError};
use super::ports::PortMapping;
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

/// Whether slirp4netns is installed.
pub fn available() -> bool {
    find().is_some()
}

fn find() -> Option<std::path::PathBuf> {
    crate::util::fsutil::which("slirp4netns")
}

/// Starts slirp4netns for the namespace of `pid`, waits until the tap is
/// configured, then publishes `ports`. Returns the running child.
pub fn start(
    pid: i32,
    ports: &[PortMapping],
    api: &std::path::Path,
) -> Result<Child, NetworkError> {
    let prog = find().ok_or(NetworkError::Missing(
        "--network slirp4netns needs slirp4netns: apt-get install slirp4netns (or use pasta)",
    ))?;
    let _ = std::fs::remove_file(api);
    // Socket paths are short (108 bytes) and store paths long: the socket
    // is named through a descriptor of its directory, here and in slirp4netns.
    let dir = std::fs::File::open(api.parent().unwrap_or(std::path::Path::new(".")))
        .map_err(io(format!("opening {}", api.display())))?;
    let dir_fd = dir.as_raw_fd();
    let name = api.file_name().unwrap_or_default().to_string_lossy();
    let short = std::path::PathBuf::from(format!("/proc/self/fd/{dir_fd}/{name}"));
    let (mut ready_r, ready_w) = std::io::pipe().map_err(io("pipe"))?;
    let ready_fd = ready_w.as_raw_fd();
    let mut cmd = Command::new(prog);
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={ready_fd}"))
        .arg(format!("--api-socket={}", short.display()))
        .arg(pid.to_string())
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // The ready pipe's write end and the socket's directory must
            // survive exec; it dies with us.
            if libc::fcntl(ready_fd, libc::F_SETFD, 0) < 0
                || libc::fcntl(dir_fd, libc::F_SETFD, 0) < 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io("starting slirp4netns"))?;
    drop(ready_w);
    let mut b = [0u8; 1];
    if ready_r.read_exact(&mut b).is_err() {
        let _ = child.kill();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        return Err(NetworkError::Helper {
            tool: "slirp4netns",
            detail: err.trim().replace('\n', "; "),
        });
    }
    for p in ports {
        if let Err(e) = add_hostfwd(&short, p) {
            stop(&mut child);
            return Err(e);
        }
    }
    Ok(child)
}

/// One published port through the API socket.
fn add_hostfwd(api: &std::path::Path, p: &PortMapping) -> Result<(), NetworkError> {
    let mut s = std::os::unix::net::UnixStream::connect(api)
        .map_err(io(format!("slirp4netns API {}", api.display())))?;
    let req = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.protocol,
            "host_addr": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
            "host_port": p.host_port,
            "guest_port": p.container_port,
        }
    });
    s.write_all(req.to_string().as_bytes())
        .and_then(|_| s.shutdown(std::net::Shutdown::Write))
        .map_err(io("slirp4netns API"))?;
    let mut reply = String::new();
    let _ = std::io::BufReader::new(s).read_line(&mut reply);
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
    match v.get("error") {
        None if v.get("return").is_some() => Ok(()),
        _ => Err(NetworkError::Helper {
            tool: "slirp4netns",
            detail: format!(
                "publishing port {}/{}: {}",
                p.host_port,
                p.protocol,
                v.get("error")
                    .and_then(|e| e.get("desc"))
                    .and_then(|d| d.as_str())
                    .unwrap_or(reply.trim())
            ),
        }),
    }
}

/// Stops it (it keeps nothing worth a graceful end).
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

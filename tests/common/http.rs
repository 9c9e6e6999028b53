//! HTTP from the test's network namespace ("the host"), for containers
//! that publish ports.

use super::Env;
use std::time::{Duration, Instant};

/// An HTTP GET as a shell line: the body's last line. (busybox's nc;
/// its wget crashes in Debian 12's busybox-static.)
pub fn get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1")
}

/// Fetches a page from inside the test's network namespace ("the host").
pub fn fetch(env: &Env, url: &str) -> Option<String> {
    let hostport = url.trim_start_matches("http://").trim_end_matches('/');
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "80"));
    let out = env
        .in_netns(&[
            "/bin/busybox",
            "sh",
            "-c",
            &get(host, port.parse().unwrap()),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !body.is_empty()).then_some(body)
}

/// Retries `f` until it gives a value, for at most `secs`.
pub fn eventually<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn fetch_eventually(env: &Env, url: &str) -> String {
    eventually(&format!("no answer from {url}"), 15, || {
        fetch(env, url).ok_or_else(String::new)
    })
}

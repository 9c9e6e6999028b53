//! Shared harness for berth's end-to-end tests: real registries on
//! 127.0.0.1 (plain, htpasswd, and bearer tokens from a small issuer),
//! fixture images built here and cached under target/, a pusher, temp
//! stores, and an unprivileged user for rootless runs.
#![allow(dead_code)]

pub mod fixtures;
pub mod http;
pub mod podman;
pub mod pty;
pub mod push;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// Polls `f` every 50 ms until it holds; fails the test after `secs`.
#[track_caller]
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Where fixtures are cached between runs.
pub fn cache_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Prints the line the Makefile counts as a skipped test.
pub fn skip(test: &str, why: &str) {
    println!("BERTH-SKIP {test}: {why}");
    eprintln!("BERTH-SKIP {test}: {why}");
}

static N: AtomicU32 = AtomicU32::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "berth-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Layer dirs may hold read-only dirs and subordinate-id files: rm -rf as root.
        let _ = Command::new("rm").arg("-rf").arg(&self.0).status();
    }
}

/// What a berth invocation did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "berth failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with `code` and a message containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("Error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line:\n{}",
            self.stderr
        );
    }
}

/// Who runs berth: root, or the unprivileged test user.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum As {
    Root,
    User,
}

/// A private store plus the environment berth runs in for one test.
pub struct Env {
    pub dir: TempDir,
    pub who: As,
    /// The test's own network namespace (tests of networks): every berth
    /// command runs in it, so bridges and NAT rules never touch the host.
    pub netns: Option<String>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(ns) = &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// Address of the test namespace's own interface (pasta's template, and
/// an address of "the host" that is not loopback).
pub const NETNS_HOST_IP: &str = "192.168.77.1";

/// Runs `ip ARGS...` and asserts that it worked (test network set-up).
pub fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip runs");
    assert!(st.success(), "ip {args:?} failed");
}

/// Makes a network namespace with loopback and a veth pair whose end
/// holds NETNS_HOST_IP and a default route (no traffic can leave it).
fn make_netns() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "berth-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let run = ip;
    run(&["netns", "add", &name]);
    run(&["-n", &name, "link", "set", "lo", "up"]);
    run(&[
        "-n", &name, "link", "add", "h0", "type", "veth", "peer", "name", "h1",
    ]);
    run(&[
        "-n",
        &name,
        "addr",
        "add",
        &format!("{NETNS_HOST_IP}/24"),
        "dev",
        "h0",
    ]);
    run(&["-n", &name, "link", "set", "h0", "up"]);
    run(&["-n", &name, "link", "set", "h1", "up"]);
    run(&[
        "-n",
        &name,
        "route",
        "add",
        "default",
        "via",
        "192.168.77.254",
        "dev",
        "h0",
    ]);
    name
}

impl Env {
    /// A fresh store for root.
    pub fn root() -> Env {
        Env::new(As::Root)
    }

    /// A fresh store for the unprivileged test user, or None (with the
    /// reason printed as a skip) when one cannot be set up.
    pub fn user(test: &str) -> Option<Env> {
        match rootless_user() {
            Ok(_) => Some(Env::new(As::User)),
            Err(why) => {
                skip(test, &why);
                None
            }
        }
    }

    fn new(who: As) -> Env {
        let dir = TempDir::new(if who == As::Root { "root" } else { "user" });
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(
            dir.path().join("registries.conf"),
            registry::registries_conf(),
        )
        .unwrap();
        if who == As::User {
            let u = rootless_user().unwrap();
            let st = Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", u.uid, u.gid))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
            let st = Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
        }
        // Containers get a private network namespace with loopback unless a
        // test asks for networks (then: berth's defaults, in a test netns).
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\nnetns = \"private\"\n",
        )
        .unwrap();
        Env {
            dir,
            who,
            netns: None,
        }
    }

    /// Like `root()`/`user()`, but with berth's default networking, inside
    /// a network namespace of the test's own.
    pub fn networked(who: As, test: &str) -> Option<Env> {
        let mut env = match who {
            As::Root => Env::root(),
            As::User => {
                // Rootless networking (slirp4netns, pasta) opens the tun device.
                if let Err(why) = tun_usable_by_users() {
                    skip(test, &why);
                    return None;
                }
                Env::user(test)?
            }
        };
        std::fs::write(env.dir.path().join("containers.conf"), "").unwrap();
        env.netns = Some(make_netns());
        Some(env)
    }

    /// A command run inside the test's network namespace (as root; with
    /// the test user's ids when `who` is User).
    pub fn in_netns(&self, args: &[&str]) -> Command {
        let ns = self.netns.as_ref().expect("a networked env");
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{ns}"));
        if self.who == As::User {
            let u = rootless_user().unwrap();
            c.args(["-S", &u.uid.to_string(), "-G", &u.gid.to_string()]);
        }
        c.arg("--").args(args);
        c
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// A berth command with this env's store, registries.conf and auth file.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            None => Command::new(berth_bin()),
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"));
                if self.who == As::User {
                    let u = rootless_user().unwrap();
                    c.args(["-S", &u.uid.to_string(), "-G", &u.gid.to_string()]);
                }
                c.arg("--").arg(berth_bin());
                c
            }
        };
        c.arg("--root").arg(self.store()).args(args);
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.dir.path().join("home"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.path().join("registries.conf"),
            )
            .env("REGISTRY_AUTH_FILE", self.auth_file())
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .stdin(Stdio::null());
        if self.who == As::User && self.netns.is_none() {
            use std::os::unix::process::CommandExt;
            let u = rootless_user().unwrap();
            c.uid(u.uid).gid(u.gid);
        }
        if self.who == As::User {
            let u = rootless_user().unwrap();
            c.env("XDG_RUNTIME_DIR", format!("/run/user/{}", u.uid));
        }
        c
    }

    /// Runs berth to completion.
    pub fn berth(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("berth runs"))
    }

    /// `system check` must find nothing wrong.
    #[track_caller]
    pub fn assert_consistent(&self) {
        let r = self.berth(&["system", "check"]);
        assert_eq!(r.code, 0, "store check failed:\n{}{}", r.stdout, r.stderr);
    }

    /// Nothing left in tmp/ of the store.
    #[track_caller]
    pub fn assert_no_temp(&self) {
        let tmp = self.store().join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "leftover temp files: {left:?}");
    }
}

/// The unprivileged test user.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub subuid: u32,
}

/// Subordinate id range start given to the test user.
pub const SUBID_START: u32 = 400000;
pub const SUBID_COUNT: u32 = 65536;

/// Creates (once, idempotently, under a lock) the user `berthtest` with
/// subordinate id ranges and a runtime dir.
pub fn rootless_user() -> Result<User, String> {
    static USER: std::sync::OnceLock<Result<User, String>> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        if !nix_is_root() {
            return Err("the test harness must run as root to create the test user".into());
        }
        let lockf = std::fs::File::create("/tmp/.berth-test-user.lock").map_err(|e| e.to_string())?;
        flock(&lockf);
        let name = "berthtest";
        let exists = Command::new("id").arg("-u").arg(name).stdout(Stdio::null()).stderr(Stdio::null()).status().map_err(|e| e.to_string())?.success();
        if !exists {
            let st = Command::new("useradd").args(["-m", "-s", "/bin/sh", name]).status().map_err(|e| format!("useradd: {e}"))?;
            if !st.success() {
                return Err("useradd failed".into());
            }
        }
        let id = |flag: &str| -> Result<u32, String> {
            let o = Command::new("id").arg(flag).arg(name).output().map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&o.stdout).trim().parse().map_err(|_| "id failed".to_string())
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{name}:"))) {
                let mut t = text;
                if !t.is_empty() && !t.ends_with('\n') {
                    t.push('\n');
                }
                t.push_str(&format!("{name}:{SUBID_START}:{SUBID_COUNT}\n"));
                std::fs::write(f, t).map_err(|e| format!("{f}: {e}"))?;
            }
        }
        let run = format!("/run/user/{uid}");
        std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        Command::new("chown").arg(format!("{uid}:{gid}")).arg(&run).status().map_err(|e| e.to_string())?;
        Command::new("chmod").arg("700").arg(&run).status().map_err(|e| e.to_string())?;
        if Command::new("newuidmap").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            return Err("newuidmap is not installed (Debian package uidmap; `make test-deps` installs it)".into());
        }
        // The binary must be reachable by the user.
        let st = Command::new("setpriv")
            .args(["--reuid", &uid.to_string(), "--regid", &gid.to_string(), "--clear-groups", "test", "-x"])
            .arg(berth_bin())
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            return Err(format!("{} is not executable by an unprivileged user (a parent dir is not world-searchable)", berth_bin().display()));
        }
        let subuid = std::fs::read_to_string("/etc/subuid")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")).and_then(|r| r.split(':').next()).and_then(|s| s.parse().ok()))
            .ok_or("no /etc/subuid range for the test user")?;
        Ok(User { name: name.into(), uid, gid, subuid })
    })
    .clone()
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid never fails.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
    #[link_name = "flock"]
    fn libc_flock(fd: i32, op: i32) -> i32;
}

/// Blocks until an exclusive flock on `f` is held (released when it closes).
pub fn flock_file(f: &std::fs::File) {
    flock(f)
}

fn flock(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd; LOCK_EX = 2. The lock is released when the file closes.
    unsafe { libc_flock(f.as_raw_fd(), 2) };
}

/// Lists mounts under `prefix` (to assert nothing leaked).
pub fn mounts_under(prefix: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
        .filter(|m| m.starts_with(&*prefix.to_string_lossy()))
        .collect()
}

/// Imports the busybox fixture into `env` as `localhost/busybox` (no registry needed).
pub fn busybox_image(env: &Env) -> &'static str {
    let tarball = env.dir.path().join("home/busybox.tar");
    std::fs::write(&tarball, fixtures::busybox_rootfs()).unwrap();
    if env.who == As::User {
        let u = rootless_user().unwrap();
        Command::new("chown")
            .arg(format!("{}:{}", u.uid, u.gid))
            .arg(&tarball)
            .status()
            .unwrap();
    }
    env.berth(&[
        "import",
        "-q",
        "-c",
        "CMD [\"/bin/sh\"]",
        tarball.to_str().unwrap(),
        "busybox",
    ])
    .ok();
    "busybox"
}

/// Cgroup directories (v1 memory controller, or v2) left under `parent`.
pub fn cgroups_left(parent: &str) -> Vec<String> {
    let mut left = Vec::new();
    for base in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup",
    ] {
        if let Ok(rd) = std::fs::read_dir(Path::new(base).join(parent)) {
            left.extend(
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path().display().to_string()),
            );
        }
    }
    left
}

/// No cgroup under `parent` and no mount under the store is left; then the
/// test's own cgroup parent dirs are removed.
#[track_caller]
pub fn assert_clean(env: &Env, parent: &str) {
    assert!(
        cgroups_left(parent).is_empty(),
        "cgroups left behind: {:?}",
        cgroups_left(parent)
    );
    assert!(
        mounts_under(&env.store()).is_empty(),
        "mounts left behind: {:?}",
        mounts_under(&env.store())
    );
    for base in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup",
    ] {
        let _ = std::fs::remove_dir(std::path::Path::new(base).join(parent));
    }
}

/// pasta (rootless networking) opens /dev/net/tun as the user, as podman's
/// rootless networking does. Debian creates it 0666; some machines ship
/// it 0600, which makes rootless networking impossible there, so the
/// harness (root) restores Debian's mode.
pub fn tun_usable_by_users() -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let p = Path::new("/dev/net/tun");
    let mode = std::fs::metadata(p)
        .map_err(|e| format!("/dev/net/tun: {e} (the tun module is needed for pasta)"))?
        .permissions()
        .mode();
    if mode & 0o006 != 0o006 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o20666))
            .map_err(|e| format!("making /dev/net/tun usable by users: {e}"))?;
    }
    Ok(())
}

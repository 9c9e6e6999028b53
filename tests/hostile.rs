//! Hostile images and containers: each test plays an attacker who wrote
//! the image or controls the container, and asserts that the host is
//! untouched: no file outside the store written, changed or deleted, no
//! device reached, no keystroke injected, no privilege left in PID 1.

mod common;

use common::fixtures::Layer;
use common::{busybox_image, Env, TempDir};
use std::path::Path;
use std::process::Command;

/// Imports the busybox rootfs plus `extra` entries as image `name`.
fn image_with(env: &Env, name: &str, extra: impl FnOnce(&mut Layer)) -> String {
    let mut l = Layer::new();
    l.append_tar(&common::fixtures::busybox_rootfs());
    extra(&mut l);
    let tarball = env.dir.path().join(format!("home/{name}.tar"));
    std::fs::write(&tarball, l.finish()).unwrap();
    if env.who == common::As::User {
        let u = common::rootless_user().unwrap();
        Command::new("chown")
            .arg(format!("{}:{}", u.uid, u.gid))
            .arg(&tarball)
            .status()
            .unwrap();
    }
    env.berth(&["import", "-q", tarball.to_str().unwrap(), name])
        .ok();
    name.to_string()
}

/// `berth run --rm FLAGS... IMAGE sh -c SCRIPT`.
fn run_sh(env: &Env, flags: &[&str], img: &str, script: &str) -> common::Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[img, "sh", "-c", script]);
    env.berth(&args)
}

fn dmesg_has(tag: &str) -> bool {
    let o = Command::new("dmesg").output().expect("dmesg runs");
    String::from_utf8_lossy(&o.stdout).contains(tag)
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32)
}

#[test]
fn an_image_device_node_gives_no_host_device() {
    let env = Env::root();
    let name = image_with(&env, "kmsg", |l| {
        l.chardev("kmsg", 1, 11);
    });
    let img = name.as_str();
    let tag = unique("BERTH-HOSTILE-KMSG");
    // podman refuses this write through the devices cgroup: so must berth,
    // even for root in the container and even with every capability dropped.
    let r = run_sh(
        &env,
        &["--cap-drop", "all"],
        img,
        &format!("echo {tag} > /kmsg; echo rc=$?"),
    );
    assert!(r.stdout.contains("rc=1"), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    assert!(!dmesg_has(&tag), "the container wrote into the host's kmsg");
    // A node made with mknod is refused the same way.
    let tag2 = unique("BERTH-HOSTILE-MKNOD");
    run_sh(
        &env,
        &["--cap-add", "MKNOD"],
        img,
        &format!("mknod /k2 c 1 11 && echo {tag2} > /k2"),
    );
    assert!(!dmesg_has(&tag2), "a node made with mknod reached the host");
    // The default nodes still work, and --device gives the node it names.
    let out = run_sh(
        &env,
        &[],
        img,
        "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
    );
    assert_eq!(out.ok().trim(), "3");
    let tag3 = unique("BERTH-DEVICE-FLAG");
    run_sh(
        &env,
        &["--device", "/dev/kmsg:/dev/hostkmsg:w"],
        img,
        &format!("echo {tag3} > /dev/hostkmsg"),
    )
    .ok();
    assert!(dmesg_has(&tag3), "--device did not give the node");
    env.berth(&["run", "--rm", "--device", "/etc/passwd", img, "true"])
        .fails(125, "not a character or block device");
    env.berth(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "x 1:1 r",
        img,
        "true",
    ])
    .fails(125, "invalid device type in device-access-add: x");
}

#[test]
fn rootless_containers_keep_working_without_a_device_cgroup() {
    let Some(env) = Env::user("rootless_containers_keep_working_without_a_device_cgroup") else {
        return;
    };
    let img = busybox_image(&env);
    let out = run_sh(
        &env,
        &[],
        img,
        "echo x > /dev/null && head -c 2 /dev/urandom | wc -c",
    );
    assert_eq!(out.ok().trim(), "2");
    let out = run_sh(
        &env,
        &["--device", "/dev/null:/dev/extra"],
        img,
        "echo y > /dev/extra && echo ok",
    );
    assert_eq!(out.ok().trim(), "ok");
}

#[test]
fn a_symlinked_dev_in_an_image_writes_nothing_on_the_host() {
    let env = Env::root();
    let host_dir = TempDir::new("hostile-dev-target");
    std::fs::write(host_dir.path().join("tty"), "host file\n").unwrap();
    let target = host_dir.path().display().to_string();
    // The image's /dev is an absolute link to a host directory.
    let mut l = Layer::new();
    let base = common::fixtures::busybox_rootfs();
    let mut a = tar::Archive::new(base.as_slice());
    let mut kept = Layer::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if !p.starts_with("dev") {
            let mut one = tar::Builder::new(Vec::new());
            let h = e.header().clone();
            let data: Vec<u8> = std::io::Read::bytes(e).map(|b| b.unwrap()).collect();
            one.append(&h, data.as_slice()).unwrap();
            kept.append_tar(&one.into_inner().unwrap());
        }
    }
    l.append_tar(&kept.finish());
    // The link's target exists in the image too, so resolving /dev inside
    // the root succeeds; only a node made through the link reaches out.
    l.dir(&format!("{}/", target.trim_start_matches('/')), 0o755);
    l.symlink("dev", &target);
    let tarball = env.dir.path().join("home/devlink.tar");
    std::fs::write(&tarball, l.finish()).unwrap();
    env.berth(&["import", "-q", tarball.to_str().unwrap(), "devlink"])
        .ok();
    let _ = env.berth(&["run", "--rm", "devlink", "sh", "-c", "ls /dev >/dev/null"]);
    let _ = env.berth(&["run", "--rm", "-t", "devlink", "true"]);
    let left: Vec<String> = std::fs::read_dir(host_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["tty"], "berth made entries in the host directory");
    let tty = std::fs::symlink_metadata(host_dir.path().join("tty")).unwrap();
    assert!(tty.is_file(), "the host's file was replaced by a node");
    assert_eq!(
        std::fs::read_to_string(host_dir.path().join("tty")).unwrap(),
        "host file\n"
    );
    assert!(common::mounts_under(&env.store()).is_empty());
}

#[test]
fn cp_out_never_deletes_or_replaces_host_files() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["run", "-d", "--name", "src", img, "sleep", "600"])
        .ok();
    env.berth(&[
        "exec", "src", "sh", "-c",
        "mkdir -p /d && echo hi > /d/f && echo x > '/d/.wh...' && echo y > /d/.wh.f && echo data > /file",
    ])
    .ok();
    let host = TempDir::new("hostile-cp");
    let out = host.path().join("out");
    std::fs::create_dir_all(out.join("d")).unwrap();
    std::fs::write(out.join("precious"), "keep").unwrap();
    std::fs::write(out.join("d/f"), "old").unwrap();
    // A '.wh...' file is a file: copying it must not empty the destination.
    env.berth(&["cp", "src:/d", out.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("precious")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_to_string(out.join("d/f")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_to_string(out.join("d/.wh...")).unwrap(),
        "x\n"
    );
    assert_eq!(std::fs::read_to_string(out.join("d/.wh.f")).unwrap(), "y\n");
    // A directory is not replaced by a file unless --overwrite.
    std::fs::create_dir_all(out.join("file")).unwrap();
    std::fs::write(out.join("file/inside"), "kept").unwrap();
    env.berth(&["cp", "src:/file", out.to_str().unwrap()])
        .fails(125, "file exists");
    assert_eq!(
        std::fs::read_to_string(out.join("file/inside")).unwrap(),
        "kept"
    );
    env.berth(&["cp", "--overwrite", "src:/file", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(out.join("file")).unwrap(), "data\n");
    // A destination that is a link to a device is invalid, and stays a link.
    let link = host.path().join("stdout");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    env.berth(&["cp", "src:/file", link.to_str().unwrap()])
        .fails(125, "invalid destination");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Files from the container land as the caller's, no device nodes.
    env.berth(&["exec", "src", "sh", "-c", "chown 1234:1234 /file"])
        .ok();
    env.berth(&[
        "cp",
        "src:/file",
        host.path().join("owned").to_str().unwrap(),
    ])
    .ok();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(host.path().join("owned")).unwrap().uid(),
        0
    );
    env.berth(&["cp", "src:/dev/null", host.path().to_str().unwrap()])
        .fails(125, "not a regular file or directory");
    // Into the container, a '.wh.' file from the host is a file too.
    std::fs::write(host.path().join(".wh.file"), "plain").unwrap();
    env.berth(&[
        "cp",
        host.path().join(".wh.file").to_str().unwrap(),
        "src:/",
    ])
    .ok();
    let r = env.berth(&["exec", "src", "cat", "/file", "/.wh.file"]);
    assert_eq!(r.ok(), "data\nplain");
    env.berth(&["rm", "-f", "src"]).ok();
}

#[test]
fn cp_out_never_follows_a_symlink_swapped_in_by_the_container() {
    let env = Env::root();
    let img = busybox_image(&env);
    let secret_dir = TempDir::new("hostile-secret");
    let secret = secret_dir.path().join("secret");
    let token = unique("HOST-SECRET");
    std::fs::write(&secret, &token).unwrap();
    // Four swappers each turn 50 files into links to the host's secret and
    // back, as fast as a shell can, while the host copies the directory.
    let swap = format!(
        "mkdir -p /d; for s in 1 2 3 4; do (while true; do for i in $(seq 50); do f=/d/f$s-$i; rm -f $f; ln -s {} $f; rm -f $f; echo safe > $f; done; done) & done; wait",
        secret.display()
    );
    env.berth(&["run", "-d", "--name", "swap", img, "sh", "-c", &swap])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let host = TempDir::new("hostile-cp-race");
    for i in 0..30 {
        let out = host.path().join(format!("o{i}"));
        let _ = env.berth(&["cp", "swap:/d", out.to_str().unwrap()]);
        for e in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_file() {
                let text = std::fs::read_to_string(e.path()).unwrap();
                assert!(!text.contains(&token), "a host file was copied out");
            }
        }
    }
    env.berth(&["rm", "-f", "swap"]).ok();
}

#[test]
fn a_whiteout_naming_the_parent_is_refused_in_a_layer() {
    let env = Env::root();
    let mut l = Layer::new();
    l.dir("keep/", 0o755)
        .file("keep/a", b"a")
        .dir("keep/sub/", 0o755)
        .file("keep/sub/.wh...", b"");
    let tarball = env.dir.path().join("home/wh.tar");
    std::fs::write(&tarball, l.finish()).unwrap();
    env.berth(&["import", "-q", tarball.to_str().unwrap(), "wh"])
        .fails(125, "whiteout");
    env.assert_consistent();
    env.assert_no_temp();
}

#[test]
fn a_process_without_a_tty_cannot_reach_the_callers_terminal() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["run", "-d", "--name", "t", img, "sleep", "600"])
        .ok();
    // Field 7 of /proc/self/stat is the controlling terminal: 0 for none.
    let probe = "set -- $(cat /proc/self/stat); echo ctty=$7; echo x > /dev/tty || echo notty";
    for args in [
        vec!["exec", "t", "sh", "-c", probe],
        vec!["exec", "-i", "t", "sh", "-c", probe],
        vec![
            "run",
            "--rm",
            "--log-driver",
            "passthrough",
            img,
            "sh",
            "-c",
            probe,
        ],
        vec![
            "run",
            "--rm",
            "--log-driver",
            "none",
            img,
            "sh",
            "-c",
            probe,
        ],
    ] {
        let mut s = common::pty::PtySession::spawn(env.cmd(&args), 24, 80);
        s.expect("ctty=0", 30);
        s.expect("notty", 30);
        s.wait(30);
    }
    // With -t the process has its own terminal, not the caller's.
    let mut s =
        common::pty::PtySession::spawn(env.cmd(&["exec", "-t", "t", "sh", "-c", "tty"]), 24, 80);
    s.expect("/dev/pts/", 30);
    s.wait(30);
    env.berth(&["rm", "-f", "t"]).ok();
}

/// /proc/1/status fields as "Name:\tvalue" lines.
fn status_field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .trim()
}

#[test]
fn the_init_has_no_more_privilege_than_the_command() {
    let env = Env::root();
    let img = busybox_image(&env);
    let r = run_sh(&env, &["--init", "--cap-add", "SYS_PTRACE", "--security-opt", "no-new-privileges"], img, "cat /proc/1/status; echo ===; cat /proc/self/status; echo ===; ls -l /proc/1/fd; echo ===; readlink /proc/1/exe; echo x >> /proc/1/exe && echo WROTE; true");
    let out = r.ok().to_string();
    let parts: Vec<&str> = out.split("===\n").collect();
    let (init, cmd, fds, exe) = (parts[0], parts[1], parts[2], parts[3]);
    for f in ["CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"] {
        assert_eq!(
            status_field(init, f),
            status_field(cmd, f),
            "PID 1's {f} differs from the command's"
        );
    }
    assert_eq!(status_field(init, "NoNewPrivs"), "1");
    assert_eq!(status_field(init, "Seccomp"), "2");
    // Only stdio and the init's own signalfd: nothing of berth's.
    for line in fds.lines().filter(|l| l.contains("->")) {
        let target = line.rsplit("-> ").next().unwrap();
        assert!(
            target.starts_with("/dev/null")
                || target.starts_with("pipe:")
                || target.starts_with("anon_inode:"),
            "PID 1 holds {target}"
        );
    }
    assert!(
        fds.lines().filter(|l| l.contains("->")).count() <= 4,
        "{fds}"
    );
    // The binary is bound read-only where podman puts its own, and
    // cannot be written through.
    assert_eq!(exe.lines().next(), Some("/run/berth-init"), "{exe}");
    assert!(!exe.contains("WROTE"), "{exe}");
    let host = std::fs::read("/usr/bin/catatonit").unwrap();
    assert!(!host.ends_with(b"x\n"));
    // Nor by remounting it: the command has no CAP_SYS_ADMIN.
    let r = run_sh(&env, &["--init"], img, "mount -o remount,rw,bind /run/berth-init 2>&1; echo x >> /run/berth-init && echo WROTE; true");
    assert!(!r.ok().contains("WROTE"));
    // Exit codes still pass through the init; a missing command is the
    // init's own failure, 1, as with podman 4.3.1's --init.
    let r = run_sh(&env, &["--init"], img, "exit 7");
    assert_eq!(r.code, 7);
    let r = env.berth(&["run", "--rm", "--init", img, "no-such-command"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("No such file or directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn load_reads_nothing_outside_the_archive() {
    let env = Env::root();
    let dir = TempDir::new("hostile-load");
    // A valid config inside the archive, layers outside it.
    let manifest = r#"[{"Config":"config.json","RepoTags":["evil:latest"],"Layers":["/dev/zero","../../../../etc/shadow"]}]"#;
    let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000","sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"config":{}}"#;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [("manifest.json", manifest), ("config.json", config)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    let archive = dir.path().join("evil.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    // Without confinement this reads /dev/zero until the disk is full.
    let mut child = env
        .cmd(&["load", "-i", archive.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("load kept reading: it followed a path out of the archive");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = common::Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 125, "{}{}", r.stdout, r.stderr);
    assert!(env.berth(&["images", "-q"]).ok().trim().is_empty());
    env.assert_no_temp();
}

#[test]
fn rootless_state_in_a_directory_of_another_user_is_refused() {
    let Some(env) = Env::user("rootless_state_in_a_directory_of_another_user_is_refused") else {
        return;
    };
    let u = common::rootless_user().unwrap();
    // Another user (root here) made the fallback runtime dir first.
    let planted = format!("/tmp/berth-run-{}", u.uid);
    let _ = std::fs::remove_dir_all(&planted);
    std::fs::create_dir_all(format!("{planted}/berth")).unwrap();
    Command::new("chmod")
        .args(["-R", "777", &planted])
        .status()
        .unwrap();
    let mut c = env.cmd(&["images"]);
    c.env_remove("XDG_RUNTIME_DIR");
    let r = common::Run::from(c.output().unwrap());
    let _ = std::fs::remove_dir_all(&planted);
    r.fails(125, "not by you");
}

#[test]
fn seccomp_blocks_namespaces_and_mounts_unless_unconfined() {
    let env = Env::root();
    let img = busybox_image(&env);
    let r = run_sh(
        &env,
        &[],
        img,
        "unshare -U true && echo USERNS; mount -t tmpfs t /mnt && echo MOUNTED; echo done",
    );
    assert_eq!(r.ok().trim(), "done");
    let r = run_sh(
        &env,
        &["--security-opt", "seccomp=unconfined"],
        img,
        "unshare -U true && echo USERNS",
    );
    assert_eq!(r.ok().trim(), "USERNS");
    // The keyring is refused too, and an ignored LSM option says so.
    let r = env.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "apparmor=unconfined",
        img,
        "true",
    ]);
    r.ok();
    assert!(r.stderr.contains("ignored"), "{}", r.stderr);
}

#[test]
fn podman_5_masked_paths() {
    let env = Env::root();
    let img = busybox_image(&env);
    // The spec carries podman 5's whole list (this host may lack some paths).
    let id = env.berth(&["create", img, "true"]).ok().trim().to_string();
    let spec = std::fs::read_to_string(
        env.store()
            .join(format!("containers/{id}/userdata/config.json")),
    )
    .unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let masked: Vec<&str> = spec["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for p in [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/dev/block",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
        "/sys/fs/selinux",
    ] {
        assert!(masked.contains(&p), "{p} is not masked: {masked:?}");
    }
    env.berth(&["rm", &id]).ok();
    let powercap = Path::new("/sys/devices/virtual/powercap");
    let r = run_sh(
        &env,
        &[],
        img,
        "ls /sys/devices/virtual/powercap 2>/dev/null | wc -l; cat /proc/keys | wc -c",
    );
    let out: Vec<String> = r.ok().lines().map(|l| l.trim().to_string()).collect();
    if powercap.exists() {
        assert_eq!(out[0], "0", "powercap is not masked");
    }
    assert_eq!(out[1], "0", "/proc/keys is not masked");
}

#[test]
fn a_compression_bomb_fails_cleanly_before_the_disk_is_full() {
    let env = Env::root();
    // A small file system for the store: 48 MiB.
    let mnt = env.store();
    std::fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _u = Unmount(&mnt);
    // An ordinary image fits.
    busybox_image(&env);
    // 256 MiB of zeros: a few hundred kilobytes of gzip.
    let mut l = Layer::new();
    l.file("zeros", &vec![0u8; 256 << 20]);
    let gz = common::fixtures::gzip(&l.finish());
    let tarball = env.dir.path().join("home/bomb.tar.gz");
    std::fs::write(&tarball, gz).unwrap();
    env.berth(&["import", "-q", tarball.to_str().unwrap(), "bomb"])
        .fails(125, "compression bomb");
    env.assert_no_temp();
    env.assert_consistent();
}

/// A hostile HTTP endpoint: answers every request with 401 and
/// `challenge` (which may name `{PORT}` of `realm_port`), and records the
/// Authorization headers it was sent.
struct Recorder {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    fn start(addr: &str, challenge: String) -> Recorder {
        use std::io::{BufRead, Write};
        let l = std::net::TcpListener::bind(format!("{addr}:0")).unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h2 = hits.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                h2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut r = std::io::BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    if line.to_ascii_lowercase().starts_with("authorization:") {
                        s2.lock().unwrap().push(line.trim().to_string());
                    }
                    line.clear();
                }
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#;
                let _ = write!(
                    &c,
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Recorder { port, seen, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn write_auth(env: &Env, registry: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        env.auth_file(),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn registry_credentials_go_only_to_their_host() {
    let env = Env::root();
    // A token realm on another host over plain http gets no password.
    let realm = Recorder::start("127.0.0.2", r#"Basic realm="x""#.into());
    let registry = Recorder::start(
        "127.0.0.1",
        format!(
            r#"Bearer realm="http://127.0.0.2:{}/token",service="evil""#,
            realm.port
        ),
    );
    let host = format!("127.0.0.1:{}", registry.port);
    write_auth(&env, &host);
    let r = env.berth(&["pull", "--tls-verify=false", &format!("{host}/a/b:1")]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("credentials are not sent"),
        "{}",
        r.stderr
    );
    assert_eq!(registry.seen(), Vec::<String>::new());
    assert!(realm.hits() > 0, "the realm was not asked: {}", r.stderr);
    assert!(
        realm.seen().is_empty(),
        "credentials sent to the realm: {:?}",
        realm.seen()
    );
    // The same realm on the registry's own host does get them.
    let own_realm = Recorder::start("127.0.0.1", r#"Basic realm="x""#.into());
    let registry2 = Recorder::start(
        "127.0.0.1",
        format!(
            r#"Bearer realm="http://127.0.0.1:{}/token",service="ok""#,
            own_realm.port
        ),
    );
    let host2 = format!("127.0.0.1:{}", registry2.port);
    write_auth(&env, &host2);
    let r = env.berth(&["pull", "--tls-verify=false", &format!("{host2}/a/b:1")]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert_eq!(own_realm.seen().len(), 1, "{}", r.stderr);
    write_auth(&env, &host);
    // A mirror with no credentials of its own gets none of the registry's.
    let mirror = Recorder::start("127.0.0.2", r#"Basic realm="mirror""#.into());
    std::fs::write(
        env.dir.path().join("registries.conf"),
        format!(
            "unqualified-search-registries = []\n[[registry]]\nlocation = \"{host}\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"127.0.0.2:{}\"\ninsecure = true\n",
            mirror.port
        ),
    )
    .unwrap();
    let r = env.berth(&["pull", &format!("{host}/a/b:1")]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains(&host),
        "the registry itself was tried: {}",
        r.stderr
    );
    assert!(mirror.hits() > 0, "the mirror was not tried: {}", r.stderr);
    assert!(
        mirror.seen().is_empty(),
        "credentials sent to the mirror: {:?}",
        mirror.seen()
    );
}

#[test]
fn user_lookups_never_read_host_files_through_the_image() {
    let env = Env::root();
    // A host file berth must not read for the image: passwd-shaped, so a
    // lookup through the link would find the user in it.
    let host_dir = TempDir::new("hostile-passwd");
    let host_file = host_dir.path().join("passwd");
    std::fs::write(&host_file, "intruder:x:4242:4242::/:/bin/sh\n").unwrap();
    let mut base = Layer::new();
    for e in tar::Archive::new(common::fixtures::busybox_rootfs().as_slice())
        .entries()
        .unwrap()
    {
        let e = e.unwrap();
        if e.path().unwrap().to_str() != Some("etc/passwd") {
            let mut one = tar::Builder::new(Vec::new());
            let h = e.header().clone();
            let data: Vec<u8> = std::io::Read::bytes(e).map(|b| b.unwrap()).collect();
            one.append(&h, data.as_slice()).unwrap();
            base.append_tar(&one.into_inner().unwrap());
        }
    }
    base.symlink("etc/passwd", host_file.to_str().unwrap());
    let tarball = env.dir.path().join("home/pw.tar");
    std::fs::write(&tarball, base.finish()).unwrap();
    env.berth(&["import", "-q", tarball.to_str().unwrap(), "pw"])
        .ok();
    env.berth(&["run", "--rm", "-u", "intruder", "pw", "id", "-u"])
        .fails(125, "unable to find user intruder");
    env.berth(&["run", "-d", "--name", "p", "pw", "sleep", "600"])
        .ok();
    env.berth(&["exec", "-u", "intruder", "p", "id", "-u"])
        .fails(125, "unable to find user intruder");
    env.berth(&["rm", "-f", "p"]).ok();
}

/// `commit` reads a container's changes from the host side of its overlay:
/// a link the container made to a host path stays a link in the layer,
/// and the host file's content never enters the image.
#[test]
fn commit_keeps_the_containers_links_as_links() {
    let env = Env::root();
    let img = busybox_image(&env);
    assert!(std::path::Path::new("/etc/shadow").exists());
    env.berth(&[
        "run",
        "--name",
        "linker",
        img,
        "sh",
        "-c",
        "ln -s /etc/shadow /s && mkdir /d && ln -s / /d/root",
    ])
    .ok();
    env.berth(&["commit", "linker", "linked"]).ok();
    let out = run_sh(
        &env,
        &[],
        "linked",
        "readlink /s; readlink /d/root; cat /s 2>/dev/null || echo none",
    );
    assert_eq!(out.ok(), "/etc/shadow\n/\nnone\n");
    env.berth(&["rm", "linker"]).ok();
    env.assert_consistent();
}

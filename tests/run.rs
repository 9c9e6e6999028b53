//! End-to-end tests of `berth run`: real namespaces, overlay mounts, cgroups
//! (v1 on this host), a real pty, as root and as an unprivileged user.

mod common;

use common::pty::PtySession;
use common::registry::{shared, Auth};
use common::{assert_clean, busybox_image, Env};

/// A cgroup parent of the test's own, so leak checks see only its containers.
fn cg_parent(test: &str) -> String {
    format!("berth-test-{test}-{}", std::process::id())
}

#[test]
fn run_prints_and_cleans_up() {
    let env = Env::root();
    let img = busybox_image(&env);
    let cg = cg_parent("echo");
    let r = env.berth(&["run", "--rm", "--cgroup-parent", &cg, img, "echo", "hello"]);
    assert_eq!(r.ok(), "hello\n");
    assert!(
        env.berth(&["ps", "-a", "-q"]).ok().trim().is_empty(),
        "--rm leaves no container"
    );
    assert_clean(&env, &cg);
    let containers = std::fs::read_dir(env.store().join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "names")
        .count();
    assert_eq!(containers, 0);
}

#[test]
fn pid_uts_and_mount_isolation() {
    let env = Env::root();
    let img = busybox_image(&env);
    let out = env.berth(&[
        "run",
        "--rm",
        "--hostname",
        "boxy",
        img,
        "sh",
        "-c",
        "echo pid=$$; hostname; ps -o pid,comm | tail -n +2 | wc -l; ls /proc | grep -c '^[0-9]'",
    ]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "pid=1", "the command is PID 1");
    assert_eq!(lines[1], "boxy");
    let procs: usize = lines[2].trim().parse().unwrap();
    assert!(
        procs <= 5,
        "only the container's processes are visible: {text}"
    );
    let default_host = env.berth(&["run", "--rm", img, "hostname"]);
    assert_eq!(
        default_host.ok().trim().len(),
        12,
        "hostname defaults to the short id"
    );
}

#[test]
fn image_config_and_flags_take_effect() {
    let env = Env::root();
    let img = busybox_image(&env);
    let r = env.berth(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-e",
        "B",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        img,
        "sh",
        "-c",
        "echo $A:$B; pwd; id -u; id -g",
    ]);
    assert_eq!(r.ok(), "1:\n/tmp\n1000\n1000\n");
    let named = env.berth(&["run", "--rm", "-u", "user", img, "id", "-un"]);
    assert_eq!(
        named.ok().trim(),
        "user",
        "user names resolve in the image's /etc/passwd"
    );
    let ep = env.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        img,
        "via",
        "entrypoint",
    ]);
    assert_eq!(ep.ok(), "via entrypoint\n");
    let envfile = env.dir.path().join("env.list");
    std::fs::write(&envfile, "# comment\nFROMFILE=yes\n").unwrap();
    let r = env.berth(&[
        "run",
        "--rm",
        "--env-file",
        envfile.to_str().unwrap(),
        img,
        "sh",
        "-c",
        "echo $FROMFILE $container",
    ]);
    assert_eq!(r.ok(), "yes berth\n");
    env.berth(&["run", "--rm", "-u", "nosuchuser", img, "true"])
        .fails(125, "unable to find user nosuchuser");
}

#[test]
fn containers_do_not_share_writes_and_rm_removes_them() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "--name",
        "first",
        img,
        "sh",
        "-c",
        "echo x > /tmp/mark",
    ])
    .ok();
    let other = env.berth(&[
        "run",
        "--rm",
        img,
        "sh",
        "-c",
        "test -e /tmp/mark && echo seen || echo absent",
    ]);
    assert_eq!(other.ok().trim(), "absent");
    let ps = env.berth(&["ps", "-a"]);
    assert!(
        ps.ok().contains("first") && ps.stdout.contains("Exited (0)"),
        "{}",
        ps.stdout
    );
    env.berth(&["run", "--name", "first", img, "true"])
        .fails(125, "already in use");
    env.berth(&["rmi", img]).fails(2, "in use by a container");
    env.berth(&["rm", "first"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    env.berth(&["rm", "first"]).fails(1, "no such container");
    env.assert_consistent();
}

#[test]
fn bind_mounts_read_only_and_read_write() {
    let env = Env::root();
    let img = busybox_image(&env);
    let host = env.dir.path().join("share");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let ro = format!("{}:/data:ro", host.display());
    let r = env.berth(&[
        "run",
        "--rm",
        "-v",
        &ro,
        img,
        "sh",
        "-c",
        "cat /data/in; echo x > /data/new 2>/dev/null; echo write=$?",
    ]);
    assert_eq!(r.ok(), "from host\nwrite=1\n");
    assert!(!host.join("new").exists());
    let rw = format!("type=bind,source={},target=/data", host.display());
    env.berth(&[
        "run",
        "--rm",
        "--mount",
        &rw,
        img,
        "sh",
        "-c",
        "echo out > /data/new",
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "out\n");
    let t = env.berth(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch:size=1m",
        "--read-only",
        img,
        "sh",
        "-c",
        "echo a > /scratch/f && cat /scratch/f; touch /etc/x 2>/dev/null; echo root=$?",
    ]);
    assert_eq!(t.ok(), "a\nroot=1\n");
    env.berth(&["run", "--rm", "-v", "./relative:/x", img, "true"])
        .fails(125, "absolute");
}

#[test]
fn hardened_by_default() {
    let env = Env::root();
    let img = busybox_image(&env);
    let caps = env.berth(&[
        "run",
        "--rm",
        img,
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_eq!(
        caps.ok().trim(),
        "CapEff:\t00000000800405fb",
        "podman's default capability set"
    );
    let r = env.berth(&["run", "--rm", img, "sh", "-c", "head -c1 /proc/kcore >/dev/null 2>&1; echo kcore=$?; mount -o remount,rw / 2>/dev/null; echo remount=$?; touch /sys/x 2>/dev/null; echo sys=$?; echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo procsys=$?; kill -0 1; echo"]);
    let out = r.ok();
    assert!(
        out.contains("remount=1") || out.contains("remount=255"),
        "{out}"
    );
    assert!(out.contains("sys=1"), "{out}");
    assert!(out.contains("procsys=1"), "{out}");
    let kcore = env.berth(&["run", "--rm", img, "sh", "-c", "wc -c < /proc/kcore"]);
    assert!(
        kcore.stdout.trim() == "0" || kcore.code != 0,
        "kcore is masked: {}",
        kcore.stdout
    );
    let add = env.berth(&[
        "run",
        "--rm",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "chown",
        img,
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_eq!(
        add.ok().trim(),
        "CapEff:\t00000000800415fa",
        "CHOWN dropped, NET_ADMIN added"
    );
    // The default seccomp policy refuses what the capabilities do not allow.
    let sec = env.berth(&[
        "run",
        "--rm",
        "--cap-add",
        "sys_admin",
        img,
        "sh",
        "-c",
        "unshare -r true 2>&1; echo rc=$?",
    ]);
    assert!(
        sec.ok().contains("rc=0"),
        "unshare allowed with CAP_SYS_ADMIN: {}",
        sec.stdout
    );
    let nnp = env.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        img,
        "sh",
        "-c",
        "grep NoNewPrivs /proc/self/status",
    ]);
    assert_eq!(nnp.ok().trim(), "NoNewPrivs:\t1");
    let profile = env.dir.path().join("deny-mkdir.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let custom = env.berth(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        img,
        "sh",
        "-c",
        "mkdir /tmp/d 2>/dev/null; echo mkdir=$?",
    ]);
    assert_eq!(
        custom.ok().trim(),
        "mkdir=1",
        "a seccomp=FILE profile applies"
    );
    let unconfined = env.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        img,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(unconfined.ok().trim(), "Seccomp:\t0");
    let filtered = env.berth(&[
        "run",
        "--rm",
        img,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(filtered.ok().trim(), "Seccomp:\t2");
}

#[test]
fn memory_limit_kills_with_137() {
    let env = Env::root();
    let img = busybox_image(&env);
    let cg = cg_parent("oom");
    let r = env.berth(&[
        "run",
        "--name",
        "hog",
        "--cgroup-parent",
        &cg,
        "--memory",
        "32m",
        img,
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(r.code, 137, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("survived"));
    let rec = std::fs::read_to_string(
        std::fs::read_dir(env.store().join("containers"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name() != "names")
            .unwrap()
            .path()
            .join("container.json"),
    )
    .unwrap();
    assert!(
        rec.contains("\"oom_killed\": true"),
        "OOM kill recorded: {rec}"
    );
    env.berth(&["rm", "hog"]).ok();
    assert_clean(&env, &cg);
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    let env = Env::root();
    let img = busybox_image(&env);
    let cg = cg_parent("pids");
    let bomb = "for i in $(seq 40); do sleep 2 & done; wait; echo all-forked";
    let limited = env.berth(&[
        "run",
        "--rm",
        "--cgroup-parent",
        &cg,
        "--pids-limit",
        "16",
        img,
        "sh",
        "-c",
        bomb,
    ]);
    assert_ne!(
        limited.code, 0,
        "the limit stops the forks: {}",
        limited.stdout
    );
    assert!(limited.stderr.contains("can't fork"), "{}", limited.stderr);
    assert!(!limited.stdout.contains("all-forked"));
    let free = env.berth(&["run", "--rm", "--cgroup-parent", &cg, img, "sh", "-c", bomb]);
    assert_eq!(
        free.ok().trim(),
        "all-forked",
        "the same command works without the limit"
    );
    assert_clean(&env, &cg);
}

#[test]
fn exit_codes_follow_podman() {
    let env = Env::root();
    let img = busybox_image(&env);
    for code in [0, 1, 42] {
        let r = env.berth(&["run", "--rm", img, "sh", "-c", &format!("exit {code}")]);
        assert_eq!(r.code, code);
    }
    env.berth(&["run", "--rm", "--memory", "lots", img, "true"])
        .fails(125, "invalid size");
    env.berth(&["run", "--rm", "--bogus-flag", img])
        .code
        .eq(&125)
        .then_some(())
        .expect("unknown flag is 125");
    env.berth(&["run", "--rm", img, "/etc/passwd"])
        .fails(126, "permission denied");
    env.berth(&["run", "--rm", img, "no-such-command"])
        .fails(127, "not found");
    env.berth(&["run", "--rm", img, "/etc"])
        .fails(126, "/etc: permission denied");
    // Failures of the container process's own setup reach the user with
    // the step that failed, and 125.
    env.berth(&["run", "--rm", "-w", "/etc/passwd", img, "true"])
        .fails(125, "cannot change to working directory /etc/passwd");
    env.berth(&["run", "--rm", "-v", "/etc/hostname:/etc", img, "true"])
        .fails(125, "binding /etc/hostname to /etc");
    env.berth(&["run", "--rm", "--network", "ns:/etc/hostname", img, "true"])
        .fails(125, "joining namespace /etc/hostname");
    // A namespaced kernel parameter is set in the container's own network
    // namespace, and /proc/sys stays read-only for the container itself.
    let host_value =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let set = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=80",
        img,
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; echo 9 > /proc/sys/net/ipv4/ip_unprivileged_port_start || echo refused",
    ]);
    assert_eq!(set.ok(), "80\nrefused\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host_value
    );
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    let missing = format!("{}/no-such-image-here", shared(Auth::None).host());
    env.berth(&["run", "--rm", &missing])
        .fails(125, "image not known");
    env.berth(&["run", "--rm", "no-such-image-here"])
        .fails(125, "unqualified-search registries");
    let r = env.berth(&["run", "--rm", "--init", img, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code, 143);
    let r = env.berth(&["run", "--rm", "--init", img, "sh", "-c", "kill -KILL $$"]);
    assert_eq!(r.code, 137);
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    let env = Env::root();
    let img = busybox_image(&env);
    let r = env.berth(&[
        "run",
        "--rm",
        "--init",
        img,
        "sh",
        "-c",
        "(sleep 0.2 &) ; sleep 1; ps -o stat,comm | grep -c '^Z' || true",
    ]);
    assert_eq!(r.ok().trim(), "0", "no zombies under --init");
    // SIGTERM to berth reaches the command through the init.
    let mut child = env
        .cmd(&[
            "run",
            "--rm",
            "--init",
            img,
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(7));
}

#[test]
fn tty_echo_window_size_and_ctrl_c() {
    let env = Env::root();
    let img = busybox_image(&env);
    let mut s = PtySession::spawn(env.cmd(&["run", "--rm", "-it", img, "sh"]), 33, 91);
    let before = s.local_flags();
    s.expect("#", 20);
    assert!(
        !s.local_flags()
            .contains(nix::sys::termios::LocalFlags::ECHO),
        "raw mode while running"
    );
    s.send("stty size\r");
    s.expect("33 91", 10);
    s.send("echo $((6*7))\r");
    s.expect("42", 10);
    // Ctrl-C must stop the sleep: "interrupted" then shows long before 30 s.
    s.send("sleep 30\r");
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.send("\x03");
    std::thread::sleep(std::time::Duration::from_millis(200));
    s.send("echo interrupted\r");
    s.expect("interrupted\r\n", 10);
    s.send("exit 3\r");
    assert_eq!(s.wait(10), 3);
    assert_eq!(s.local_flags(), before, "terminal settings restored");
}

#[test]
fn run_pulls_a_missing_image() {
    let env = Env::root();
    let image = format!("{}/library/busybox", shared(Auth::None).host());
    let r = env.berth(&["run", "--rm", &image, "echo", "pulled"]);
    assert_eq!(r.ok(), "pulled\n");
    assert!(r.stderr.contains("Trying to pull"), "{}", r.stderr);
}

#[test]
fn rootfs_directory() {
    let env = Env::root();
    let dir = env.dir.path().join("rootfs");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = env.dir.path().join("bb.tar");
    std::fs::write(&tar, common::fixtures::busybox_rootfs()).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-xf")
        .arg(&tar)
        .status()
        .unwrap();
    assert!(st.success());
    let r = env.berth(&[
        "run",
        "--rm",
        "--rootfs",
        dir.to_str().unwrap(),
        "sh",
        "-c",
        "echo from-dir > /tmp/written; cat /tmp/written",
    ]);
    assert_eq!(r.ok(), "from-dir\n");
    assert!(
        dir.join("tmp/written").exists(),
        "--rootfs writes go to the directory, as in podman"
    );
}

#[test]
fn network_modes() {
    let env = Env::root();
    let img = busybox_image(&env);
    let none = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(none.ok().trim(), "lo");
    let up = env.berth(&[
        "run",
        "--rm",
        img,
        "sh",
        "-c",
        "ip link show lo | grep -c UP",
    ]);
    assert_eq!(up.ok().trim(), "1", "loopback is up");
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    let host = env.berth(&[
        "run",
        "--rm",
        "--network",
        "host",
        img,
        "sh",
        "-c",
        "ls /sys/class/net | wc -l",
    ]);
    assert_eq!(host.ok().trim().parse::<usize>().unwrap(), host_ifaces);
    // slirp4netns works for root too (user-mode networking, no host interface).
    let slirp = env.berth(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns",
        img,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(slirp.ok(), "lo\ntap0\n");
    env.berth(&["run", "--rm", "--network", "slirp4netns:x=1", img, "true"])
        .fails(125, "not supported");
}

#[test]
fn rootless_run() {
    let Some(env) = Env::user("rootless_run") else {
        return;
    };
    let user = common::rootless_user().unwrap();
    let img = busybox_image(&env);
    let r = env.berth(&["run", "--rm", img, "sh", "-c", "id -u; cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'; echo pid=$$; grep CapEff /proc/self/status"]);
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "the caller is root in the container");
    assert_eq!(lines[1], format!("0 {} 1", user.uid));
    assert_eq!(lines[2], format!("1 {} 65536", user.subuid));
    assert!(out.contains("pid=1"));
    assert!(out.contains("CapEff:\t00000000800405fb"));
    let own = env.berth(&[
        "run",
        "--rm",
        "-u",
        "1000",
        img,
        "sh",
        "-c",
        "id -u; touch /tmp/f && stat -c %u /tmp/f",
    ]);
    assert_eq!(own.ok(), "1000\n1000\n");
    let limits = env.berth(&["run", "--rm", "--memory", "32m", img, "true"]);
    limits.ok();
    assert!(
        limits.stderr.contains("ignored"),
        "rootless limits warn: {}",
        limits.stderr
    );
    env.berth(&["run", "--name", "kept", img, "sh", "-c", "echo hi > /tmp/x"])
        .ok();
    env.berth(&["rm", "kept"]).ok();
    env.assert_consistent();
}

#[test]
fn rootless_tty() {
    let Some(env) = Env::user("rootless_tty") else {
        return;
    };
    let img = busybox_image(&env);
    let mut s = PtySession::spawn(env.cmd(&["run", "--rm", "-it", img, "sh"]), 24, 80);
    s.expect("#", 20);
    s.send("echo $((6*7)); id -u\r");
    s.expect("42", 10);
    s.send("exit 3\r");
    assert_eq!(s.wait(10), 3);
}

/// registries.conf that sends docker.io to the test registry, as a user
/// with a mirror set-up would have it.
fn docker_io_to(env: &Env, host: &str) {
    let conf = format!("unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{host}\"\ninsecure = true\n");
    std::fs::write(env.dir.path().join("registries.conf"), conf).unwrap();
}

#[test]
fn debian_image_runs() {
    let reg = match common::registry::with_debian() {
        Ok(r) => r,
        Err(why) => return common::skip("debian_image_runs", &why),
    };
    let env = Env::root();
    docker_io_to(&env, &reg.host());
    let r = env.berth(&["run", "--rm", "debian", "cat", "/etc/os-release"]);
    assert!(r.ok().contains("Debian GNU/Linux"), "{}", r.stdout);
}

/// The headline: an ordinary user with an empty store types
/// `berth run -it ubuntu bash` at a terminal.
#[test]
fn rootless_run_it_ubuntu_bash() {
    let reg = match common::registry::with_debian() {
        Ok(r) => r,
        Err(why) => return common::skip("rootless_run_it_ubuntu_bash", &why),
    };
    let Some(env) = Env::user("rootless_run_it_ubuntu_bash") else {
        return;
    };
    docker_io_to(&env, &reg.host());
    let mut s = PtySession::spawn(env.cmd(&["run", "-it", "ubuntu", "bash"]), 40, 120);
    let before = s.local_flags();
    s.expect("Trying to pull docker.io/library/ubuntu:latest", 60);
    s.expect("Copying blob", 60);
    s.expect("root@", 180);
    s.expect("# ", 10);
    s.send("echo $((6*7))\r");
    s.expect("42", 10);
    s.send("echo uid=$(id -u)\r");
    s.expect("uid=0", 10);
    s.send("exit 3\r");
    assert_eq!(s.wait(20), 3);
    assert_eq!(s.local_flags(), before, "terminal settings restored");
}

/// Root filesystem without the kernel's overlayfs: fuse-overlayfs (podman's
/// overlay.mount_program) and plain copies (the vfs driver, the last
/// resort); whiteouts and opaque dirs must apply in both.
#[test]
fn rootfs_with_fuse_overlayfs_and_by_copy() {
    let env = Env::root();
    let image = format!("{}/multi", shared(Auth::None).host());
    env.berth(&["pull", "-q", &image]).ok();
    let script = "grep ' / ' /proc/mounts | cut -d' ' -f3; echo $(ls /data) $(ls /olddir); echo w > /data/new && cat /data/new";
    let mut modes: Vec<(Vec<&str>, &str)> =
        vec![(vec![], "overlay"), (vec!["--storage-driver", "vfs"], "")];
    let fuse = std::path::Path::new("/usr/bin/fuse-overlayfs");
    if fuse.exists() && std::path::Path::new("/dev/fuse").exists() {
        modes.push((
            vec![
                "--storage-opt",
                "overlay.mount_program=/usr/bin/fuse-overlayfs",
            ],
            "fuse.fuse-overlayfs",
        ));
    } else {
        common::skip(
            "rootfs_with_fuse_overlayfs_and_by_copy (fuse part)",
            "fuse-overlayfs or /dev/fuse missing",
        );
    }
    for (flags, fstype) in modes {
        let mut args: Vec<&str> = flags.clone();
        args.extend(["run", "--rm", &image, "sh", "-c", script]);
        let r = env.berth(&args);
        let out = r.ok();
        let lines: Vec<&str> = out.lines().collect();
        if !fstype.is_empty() {
            assert_eq!(lines[0], fstype, "{flags:?}: {out}");
        } else {
            assert_ne!(
                lines[0], "overlay",
                "vfs copies instead of mounting an overlay: {out}"
            );
        }
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["keep", "b"],
            "{flags:?}: whiteouts and opaque dirs apply: {out}"
        );
        assert_eq!(lines[2], "w");
    }
    env.berth(&["--storage-driver", "zfs", "run", "--rm", &image, "true"])
        .fails(125, "unsupported --storage-driver");
    env.assert_consistent();
}

/// Rootless, the kernel-overlay probe runs in the store's user namespace
/// whichever command asks first: a `create` on a fresh runtime dir once
/// cached "no" (it probed outside the namespace), and every later
/// container fell back to fuse-overlayfs, which an ordinary user cannot
/// open here.
#[test]
fn rootless_overlay_probe_from_create() {
    let Some(env) = Env::user("rootless_overlay_probe_from_create") else {
        return;
    };
    let img = busybox_image(&env);
    let runroot = env.dir.path().join("run");
    let rr = runroot.to_str().unwrap();
    let script = "grep ' / ' /proc/mounts | cut -d' ' -f3";
    env.berth(&[
        "--runroot",
        rr,
        "create",
        "--name",
        "p1",
        img,
        "sh",
        "-c",
        script,
    ])
    .ok();
    let cached = std::fs::read_to_string(runroot.join("overlay-native")).unwrap();
    assert_eq!(cached.trim(), "yes");
    assert_eq!(
        env.berth(&["--runroot", rr, "start", "-a", "p1"])
            .ok()
            .trim(),
        "overlay"
    );
    env.berth(&["--runroot", rr, "rm", "p1"]).ok();
}

/// `--userns keep-id`: the user's own ids inside, files on bind mounts
/// stay the user's, the image's files keep their owners; as root it is refused.
#[test]
fn rootless_userns_keep_id() {
    use std::os::unix::fs::MetadataExt;
    let Some(env) = Env::user("rootless_userns_keep_id") else {
        return;
    };
    let img = busybox_image(&env);
    let u = common::rootless_user().unwrap();
    let dir = env.dir.path().join("home/kept");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    let bind = format!("{}:/mnt", dir.display());
    let out = env.berth(&[
        "run",
        "--rm",
        "--userns",
        "keep-id",
        "-v",
        &bind,
        img,
        "sh",
        "-c",
        "id -u; id -g; id -un; stat -c %u:%g /bin/busybox; stat -c %u:%a /home/user /bin/setuid-test; touch /mnt/mine",
    ]);
    assert_eq!(
        out.ok(),
        format!("{}\n{}\n{}\n0:0\n0:700\n0:4755\n", u.uid, u.gid, u.name)
    );
    let made = std::fs::metadata(dir.join("mine")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.gid));
    // -u still picks any id; root is root of the container's namespace,
    // and the image's other owners are kept too.
    let out = env.berth(&[
        "run",
        "--rm",
        "--userns",
        "keep-id",
        "-u",
        "0",
        img,
        "sh",
        "-c",
        "id -u; stat -c %u /home/user/owned",
    ]);
    assert_eq!(out.ok(), "0\n1000\n");
    // Detached, and exec joins its namespace.
    env.berth(&[
        "run", "-d", "--name", "k", "--userns", "keep-id", img, "sleep", "60",
    ])
    .ok();
    assert_eq!(
        env.berth(&["exec", "k", "id", "-u"]).ok(),
        format!("{}\n", u.uid)
    );
    env.berth(&["rm", "-f", "k"]).ok();
    // The image's mapped copy goes with the image.
    env.berth(&["rmi", img]).ok();
    assert!(std::fs::read_dir(env.store().join("layers"))
        .unwrap()
        .next()
        .is_none());
    let img = busybox_image(&env);
    env.berth(&["run", "--rm", "--userns", "auto", img, "true"])
        .fails(125, "unsupported --userns");
    let root = Env::root();
    let img = busybox_image(&root);
    root.berth(&["run", "--rm", "--userns", "keep-id", img, "true"])
        .fails(125, "rootless containers only");
    assert!(common::mounts_under(&env.store()).is_empty());
}

#[test]
fn bad_flags_are_refused_before_anything_is_pulled() {
    let env = Env::root();
    // An image that would have to be pulled (from nowhere): the port is
    // refused first, so no pull is even tried.
    let r = env.berth(&[
        "run",
        "-p",
        "99999:80",
        "127.0.0.1:1/nothing/here:1",
        "true",
    ]);
    r.fails(125, "bad host port");
    assert!(!r.stderr.contains("Trying to pull"), "{}", r.stderr);
    // Every flag is checked before the image is looked for.
    for (flags, why) in [
        (&["--add-host", "db"][..], "invalid --add-host"),
        (
            &["--network", "private", "-p", "8080:80"][..],
            "-p/-P need a network",
        ),
        (
            &["--network", "host", "--ip", "10.0.0.9"][..],
            "need a bridge network",
        ),
        (&["--restart", "sometimes"][..], "invalid --restart"),
        (&["--device", "/dev/null:/dev/x:rwz"][..], "device"),
        (&["--memory", "lots"][..], "invalid size"),
        (
            &["--security-opt", "seccomp=/nonexistent.json"][..],
            "seccomp profile",
        ),
        (&["--sysctl", "kernel.panic=1"][..], "is not allowed"),
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..],
            "--network host",
        ),
        (&["--sysctl", "net.ipv4.ip_forward"][..], "invalid --sysctl"),
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend(["127.0.0.1:1/nothing/here:1", "true"]);
        let r = env.berth(&args);
        r.fails(125, why);
        assert!(
            !r.stderr.contains("Trying to pull"),
            "{flags:?}: {}",
            r.stderr
        );
    }
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
}

/// OCI hooks from a `--hooks-dir` (oci-hooks(5)) run at each of the six
/// stages with the container's state on stdin; createContainer runs in
/// the container's namespaces and startContainer inside its root. A
/// failing hook stops the container and leaves nothing behind; a bad
/// hook file is refused with its path.
#[test]
fn oci_hooks_run_at_their_stages_with_the_state() {
    let env = Env::root();
    let img = busybox_image(&env);
    let hooks = common::TempDir::new("hooks-d");
    let out = common::TempDir::new("hooks-out");
    let o = out.path().display().to_string();
    let stages = [
        ("prestart", o.as_str()),
        ("createRuntime", o.as_str()),
        ("createContainer", o.as_str()),
        ("startContainer", "/out"),
        ("poststart", o.as_str()),
        ("poststop", o.as_str()),
    ];
    for (stage, dir) in stages {
        let script =
            format!("cat > {dir}/{stage}.json; readlink /proc/self/ns/pid > {dir}/{stage}.ns");
        let file = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/bin:/usr/bin"]},
            "when": {"annotations": {"^berth.test$": "^hooks$"}},
            "stages": [stage],
        });
        std::fs::write(hooks.path().join(format!("{stage}.json")), file.to_string()).unwrap();
    }
    let h = hooks.path().to_str().unwrap();
    let vol = format!("{o}:/out");
    // Without the annotation no hook applies.
    env.berth(&["--hooks-dir", h, "run", "--rm", img, "true"])
        .ok();
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let id = env
        .berth(&[
            "--hooks-dir",
            h,
            "run",
            "-d",
            "--annotation",
            "berth.test=hooks",
            "-v",
            &vol,
            img,
            "sleep",
            "30",
        ])
        .ok()
        .trim()
        .to_string();
    env.berth(&["rm", "-f", "-t", "0", &id]).ok();
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let mut pid = None;
    for (stage, _) in stages {
        let text = std::fs::read_to_string(out.path().join(format!("{stage}.json")))
            .unwrap_or_else(|e| panic!("the {stage} hook did not run: {e}"));
        let state: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(state["id"], id.as_str(), "{stage}: {text}");
        assert_eq!(state["annotations"]["berth.test"], "hooks", "{stage}");
        let want = match stage {
            "prestart" | "createRuntime" => "creating",
            "createContainer" | "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], want, "{stage}");
        if stage != "poststop" {
            assert!(state["pid"].as_i64().unwrap() > 0, "{stage}: {text}");
            assert!(
                pid.is_none() || pid == Some(state["pid"].clone()),
                "{stage}"
            );
            pid = Some(state["pid"].clone());
        }
        let ns = std::fs::read_to_string(out.path().join(format!("{stage}.ns"))).unwrap();
        let in_container = matches!(stage, "createContainer" | "startContainer");
        assert_eq!(
            ns.trim() != host_ns.to_str().unwrap(),
            in_container,
            "{stage} runs in the {} namespaces",
            if in_container {
                "container's"
            } else {
                "host's"
            }
        );
    }
    // A failing createRuntime hook: the container does not start.
    let failing = common::TempDir::new("hooks-fail");
    std::fs::write(
        failing.path().join("f.json"),
        r#"{"version":"1.0.0","hook":{"path":"/bin/false"},"when":{"always":true},"stages":["createRuntime"]}"#,
    )
    .unwrap();
    let f = failing.path().to_str().unwrap();
    env.berth(&["--hooks-dir", f, "run", "--rm", img, "echo", "ran"])
        .fails(125, "createRuntime hook /bin/false failed");
    std::fs::write(failing.path().join("f.json"), "{").unwrap();
    env.berth(&["--hooks-dir", f, "run", "--rm", img, "true"])
        .fails(125, "f.json");
    env.assert_consistent();
}

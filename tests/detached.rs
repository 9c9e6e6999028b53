//! Detached containers: `run -d` under a re-executed monitor, then `ps`,
//! `logs`, `stop`, `kill`, `wait`, `rm` from later commands, with no daemon.

mod common;

use common::pty::PtySession;
use common::{busybox_image, cgroups_left, mounts_under, wait_for, Env};
use std::time::{Duration, Instant};

const TICKER: &str =
    "i=0; while true; do echo tick $i; echo err $i >&2; i=$((i+1)); sleep 0.2; done";

fn lifecycle(env: &Env, cg: Option<&str>) {
    let img = busybox_image(env);
    let mut args = vec!["run", "-d", "--name", "ticker"];
    if let Some(cg) = cg {
        args.extend(["--cgroup-parent", cg, "--memory", "64m"]);
    }
    args.extend([img, "sh", "-c", TICKER]);
    let started = Instant::now();
    let id = env.berth(&args).ok().trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let ps = env.berth(&["ps"]);
    assert!(
        ps.ok().contains("ticker") && ps.stdout.contains("Up "),
        "{}",
        ps.stdout
    );
    wait_for("three ticks in the log", 20, || {
        env.berth(&["logs", "ticker"]).stdout.contains("tick 2")
    });
    let logs = env.berth(&["logs", "ticker"]);
    assert!(
        logs.stdout.starts_with("tick 0\ntick 1\n"),
        "stdout in order: {}",
        logs.stdout
    );
    assert!(
        !logs.stdout.contains("err "),
        "stderr stays apart: {}",
        logs.stdout
    );
    assert!(logs.stderr.contains("err 0\n"), "{}", logs.stderr);
    let tail = env.berth(&["logs", "--tail", "1", "-t", "ticker"]);
    assert!(
        tail.ok().len() + tail.stderr.len() < 200,
        "only the last line: {}{}",
        tail.stdout,
        tail.stderr
    );
    // logs -f streams new lines until the container ends.
    let follow = env
        .cmd(&["logs", "-f", "ticker"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stop_started = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    // sh as PID 1 ignores SIGTERM: stop must fall back to SIGKILL after -t.
    env.berth(&["stop", "-t", "1", "ticker"]).ok();
    let stopped_in = stop_started.elapsed();
    assert!(
        stopped_in < Duration::from_secs(8),
        "stop took {stopped_in:?}"
    );
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 3, "logs -f streamed: {text}");
    let ps = env.berth(&["ps", "-a"]);
    assert!(ps.ok().contains("Exited (137)"), "{}", ps.stdout);
    assert_eq!(env.berth(&["wait", "ticker"]).ok().trim(), "137");
    let state = env.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}",
        "ticker",
    ]);
    assert_eq!(state.ok().trim(), "exited 137 0");
    env.berth(&["rm", "ticker"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    if let Some(cg) = cg {
        assert!(
            cgroups_left(cg).is_empty(),
            "cgroups left: {:?}",
            cgroups_left(cg)
        );
    }
    assert!(mounts_under(&env.store()).is_empty());
    env.assert_consistent();
}

#[test]
fn detached_lifecycle_as_root() {
    let env = Env::root();
    let cg = format!("berth-test-detached-{}", std::process::id());
    lifecycle(&env, Some(&cg));
    for base in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/freezer",
    ] {
        let _ = std::fs::remove_dir(std::path::Path::new(base).join(&cg));
    }
}

#[test]
fn detached_lifecycle_rootless() {
    let Some(env) = Env::user("detached_lifecycle_rootless") else {
        return;
    };
    lifecycle(&env, None);
}

#[test]
fn signals_exit_codes_and_auto_remove() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "trap",
        img,
        "sh",
        "-c",
        "trap 'exit 9' TERM; while true; do sleep 0.1; done",
    ])
    .ok();
    wait_for("trap to be up", 10, || {
        env.berth(&["ps"]).stdout.contains("trap")
    });
    std::thread::sleep(Duration::from_millis(300));
    env.berth(&["kill", "-s", "TERM", "trap"]).ok();
    assert_eq!(env.berth(&["wait", "trap"]).ok().trim(), "9");
    env.berth(&["kill", "trap"])
        .fails(125, "can only kill running containers");
    env.berth(&["rm", "trap"]).ok();

    env.berth(&[
        "run", "-d", "--rm", "--name", "once", img, "sh", "-c", "exit 3",
    ])
    .ok();
    wait_for("--rm -d to remove itself", 10, || {
        !env.berth(&["ps", "-a"]).stdout.contains("once")
    });

    env.berth(&["run", "-d", img, "no-such-command"])
        .fails(127, "not found");
    env.berth(&["attach", "no-such"])
        .fails(125, "no such container");
    env.berth(&["attach", "--detach-keys", "ctrl-pp", "x"])
        .fails(125, "invalid detach key");

    env.berth(&["run", "-d", "--name", "busy", img, "sleep", "30"])
        .ok();
    env.berth(&["rm", "busy"]).fails(2, "is running");
    env.berth(&["rm", "-f", "busy"]).ok();
    let names = env.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.ok().lines().any(|n| n == "busy"), "{}", names.stdout);
    env.berth(&["stop", "nothing-here"])
        .fails(125, "no such container");
    env.berth(&["kill", "-s", "NOPE", "x"])
        .fails(125, "invalid signal");
    assert!(mounts_under(&env.store()).is_empty());
}

fn exec_checks(env: &Env) {
    let img = busybox_image(env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--hostname",
        "dbhost",
        img,
        "sleep",
        "300",
    ])
    .ok();
    let r = env.berth(&[
        "exec",
        "db",
        "sh",
        "-c",
        "hostname; ps -o pid,comm | awk '$1==1 {print $2}'; grep CapEff /proc/self/status",
    ]);
    assert_eq!(
        r.ok(),
        "dbhost\nsleep\nCapEff:\t00000000800405fb\n",
        "same UTS and PID namespace, same capabilities"
    );
    let r = env.berth(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "db",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(r.ok(), "1 /tmp 1000\n");
    assert_eq!(env.berth(&["exec", "db", "sh", "-c", "exit 7"]).code, 7);
    env.berth(&["exec", "db", "no-such-command"])
        .fails(127, "not found");
    let mut s = common::pty::PtySession::spawn(env.cmd(&["exec", "-it", "db", "sh"]), 21, 77);
    s.expect("#", 20);
    s.send("stty size; echo $((6*7))\r");
    s.expect("21 77", 10);
    s.expect("42", 10);
    // The pty comes from the container's own /dev/pts: tty names it.
    s.send("tty && test -c $(tty) && echo TTY-$((1+1))\r");
    s.expect("/dev/pts/0", 10);
    s.expect("TTY-2", 10);
    s.send("exit 4\r");
    assert_eq!(s.wait(10), 4);
    env.berth(&[
        "exec",
        "-d",
        "db",
        "sh",
        "-c",
        "sleep 1; touch /tmp/detached-exec",
    ])
    .ok();
    wait_for("exec -d to finish its work", 10, || {
        env.berth(&["exec", "db", "test", "-e", "/tmp/detached-exec"])
            .code
            == 0
    });
    env.berth(&["stop", "-t", "0", "db"]).ok();
    env.berth(&["exec", "db", "true"])
        .fails(125, "can only create exec sessions on running containers");
    env.berth(&["rm", "db"]).ok();
}

#[test]
fn exec_joins_the_running_container() {
    exec_checks(&Env::root());
}

#[test]
fn exec_rootless() {
    let Some(env) = Env::user("exec_rootless") else {
        return;
    };
    exec_checks(&env);
}

#[test]
fn create_start_restart_policies() {
    let env = Env::root();
    let img = busybox_image(&env);
    let cidfile = env.dir.path().join("cid");
    let id = env
        .berth(&[
            "create",
            "--name",
            "c1",
            "--cidfile",
            cidfile.to_str().unwrap(),
            img,
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 5",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    assert!(env.berth(&["ps", "-a"]).ok().contains("Created"));
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.State.Status}}", "c1"])
            .ok()
            .trim(),
        "created"
    );
    let r = env.berth(&["start", "-a", "c1"]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (5, "hi\n", "oops\n"),
        "start -a: output and exit code"
    );
    let again = env.berth(&["start", "-a", "c1"]);
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (5, "hi\n"),
        "start -a re-runs an exited container"
    );
    assert_eq!(env.berth(&["container", "exists", "c1"]).code, 0);

    env.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        img,
        "sh",
        "-c",
        "echo run; exit 1",
    ])
    .ok();
    wait_for("flaky to give up", 20, || {
        env.berth(&["inspect", "--format", "{{.State.Status}}", "flaky"])
            .stdout
            .trim()
            == "exited"
    });
    let runs = env.berth(&["logs", "flaky"]);
    assert_eq!(
        runs.ok().matches("run").count(),
        3,
        "one run and two restarts: {}",
        runs.stdout
    );

    env.berth(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        img,
        "sh",
        "-c",
        "echo up; sleep 0.3",
    ])
    .ok();
    wait_for("two restarts", 20, || {
        env.berth(&["logs", "always"]).stdout.matches("up").count() >= 3
    });
    env.berth(&["stop", "-t", "2", "always"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.State.Status}}", "always"])
            .ok()
            .trim(),
        "exited",
        "stop ends a restart=always container for good"
    );
    env.berth(&["restart", "always"]).ok();
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.State.Status}}", "always"])
            .ok()
            .trim(),
        "running"
    );
    env.berth(&["stop", "-t", "1", "always"]).ok();
    env.berth(&["run", "-d", "--restart", "sometimes", img, "true"])
        .fails(125, "invalid --restart");

    let pruned = env.berth(&["container", "prune"]);
    assert_eq!(pruned.ok().lines().count(), 3);
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    assert_eq!(env.berth(&["container", "exists", "c1"]).code, 1);
    assert!(mounts_under(&env.store()).is_empty());
}

#[test]
fn ps_pause_rename_replace_top_and_pidfiles() {
    let env = Env::root();
    let img = busybox_image(&env);
    let pidfile = env.dir.path().join("pid");
    let monfile = env.dir.path().join("monitor.pid");
    env.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--conmon-pidfile",
        monfile.to_str().unwrap(),
        img,
        "sh",
        "-c",
        "sleep 300",
    ])
    .ok();
    env.berth(&["run", "--name", "done", img, "true"]).ok();
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let mon: i32 = std::fs::read_to_string(&monfile).unwrap().parse().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::path::Path::new(&format!("/proc/{mon}")).exists()
    );
    assert_eq!(
        env.berth(&[
            "inspect",
            "--format",
            "{{.State.Pid}} {{.State.ConmonPid}}",
            "web"
        ])
        .ok()
        .trim(),
        format!("{pid} {mon}")
    );

    assert_eq!(
        env.berth(&["ps", "--format", "{{.Names}} {{.State}}"])
            .ok()
            .trim(),
        "web running"
    );
    assert_eq!(
        env.berth(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}"
        ])
        .ok()
        .trim(),
        "done"
    );
    assert_eq!(
        env.berth(&["ps", "-a", "--filter", "name=we", "-q"])
            .ok()
            .trim()
            .len(),
        12
    );
    assert_eq!(
        env.berth(&["ps", "-l", "--format", "{{.Names}}"])
            .ok()
            .trim(),
        "done"
    );
    assert_eq!(env.berth(&["ps", "-n", "2", "-q"]).ok().lines().count(), 2);
    let j: serde_json::Value =
        serde_json::from_str(env.berth(&["ps", "-a", "--format", "json"]).ok()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    env.berth(&["ps", "--filter", "color=red"])
        .fails(125, "invalid filter");

    let top = env.berth(&["top", "web"]);
    let header: Vec<&str> = top
        .ok()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"],
        "podman's default columns"
    );
    let first: Vec<&str> = top
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&first[..3], ["root", "1", "0"], "{}", top.stdout);
    assert!(top.stdout.contains("sleep 300"), "{}", top.stdout);
    let top = env.berth(&["top", "web", "pid,seccomp", "%c", "capeff"]);
    let row: Vec<&str> = top
        .ok()
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["1", "filter", "sleep"], "{}", top.stdout);
    assert!(row[3].contains("NET_BIND_SERVICE") && !row[3].contains("SYS_ADMIN"));
    env.berth(&["top", "web", "bogus"])
        .fails(125, "unknown top descriptor");

    env.berth(&["pause", "web"]).ok();
    assert_eq!(
        env.berth(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}}",
            "web"
        ])
        .ok()
        .trim(),
        "paused true"
    );
    let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let frozen = std::fs::read_dir("/sys/fs/cgroup/freezer/berth")
        .map(|_| true)
        .unwrap_or(false);
    if frozen {
        assert!(
            state.contains("State:\tS") || state.contains("State:\tD"),
            "{state}"
        );
    }
    // What a paused container refuses, in podman's words.
    env.berth(&["pause", "web"])
        .fails(125, "\"web\" is already paused");
    env.berth(&["exec", "web", "true"])
        .fails(125, "can only create exec sessions on running containers");
    env.berth(&["stop", "web"])
        .fails(125, "can only stop created or running containers");
    let web = env.berth(&["inspect", "--format", "{{.Id}}", "web"]);
    env.berth(&["rm", "web"]).fails(
        2,
        &format!(
            "cannot remove container {} as it is paused",
            web.ok().trim()
        ),
    );
    env.berth(&["start", "web"])
        .fails(125, "must be in Created or Stopped state to be started");
    assert_eq!(
        env.berth(&["ps", "--format", "{{.Names}} {{.State}}"])
            .ok()
            .trim(),
        "web paused"
    );
    env.berth(&["unpause", "web"]).ok();
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.State.Status}}", "web"])
            .ok()
            .trim(),
        "running"
    );
    env.berth(&["unpause", "web"])
        .fails(125, "\"web\" is not paused, can't unpause");

    env.berth(&["rename", "web", "site"]).ok();
    assert_eq!(
        env.berth(&["ps", "--format", "{{.Names}}"]).ok().trim(),
        "site"
    );
    env.berth(&["rename", "site", "done"])
        .fails(125, "already in use");

    env.berth(&["run", "-d", "--name", "site", img, "true"])
        .fails(125, "already in use");
    env.berth(&[
        "run",
        "-d",
        "--replace",
        "--name",
        "site",
        img,
        "sleep",
        "100",
    ])
    .ok();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .contains("Z"),
        "--replace removed the old container"
    );
    // rm -f takes a paused container too (its cgroup is thawed to kill it).
    env.berth(&["pause", "site"]).ok();
    env.berth(&["rm", "-f", "site", "done"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    env.berth(&["pause", "site"])
        .fails(125, "no such container");
}

#[test]
fn names_race_and_parallel_containers() {
    let env = Env::root();
    let img = busybox_image(&env);
    let spawn = |args: &[&str]| {
        env.cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["run", "-d", "--name", "x", img, "sleep", "60"]);
    let b = spawn(&["run", "-d", "--name", "x", img, "sleep", "60"]);
    let ra = common::Run::from(a.wait_with_output().unwrap());
    let rb = common::Run::from(b.wait_with_output().unwrap());
    assert_eq!(
        [ra.code, rb.code].iter().filter(|c| **c == 0).count(),
        1,
        "exactly one wins: {} / {}",
        ra.stderr,
        rb.stderr
    );
    let loser = if ra.code == 0 { &rb } else { &ra };
    assert!(loser.stderr.contains("already in use"), "{}", loser.stderr);
    assert_eq!(
        env.berth(&["ps", "-aq"]).ok().lines().count(),
        1,
        "nothing half-created"
    );
    env.berth(&["rm", "-f", "x"]).ok();

    let children: Vec<_> = (0..20)
        .map(|i| spawn(&["run", "-d", "--name", &format!("p{i}"), img, "sleep", "60"]))
        .collect();
    for c in children {
        common::Run::from(c.wait_with_output().unwrap()).ok();
    }
    assert_eq!(env.berth(&["ps", "-q"]).ok().lines().count(), 20);
    let removers: Vec<_> = (0..20)
        .map(|i| spawn(&["rm", "-f", &format!("p{i}")]))
        .collect();
    for c in removers {
        common::Run::from(c.wait_with_output().unwrap()).ok();
    }
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    let names = std::fs::read_dir(env.store().join("containers/names"))
        .unwrap()
        .count();
    assert_eq!(names, 0, "no stale names");
    assert!(mounts_under(&env.store()).is_empty());
    env.assert_consistent();
}

#[test]
fn log_drivers_rotation_and_time_windows() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        img,
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done",
    ])
    .ok();
    assert_eq!(env.berth(&["wait", "chatty"]).ok().trim(), "0");
    let dir = std::fs::read_dir(env.store().join("containers"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name() != "names")
        .unwrap()
        .path()
        .join("userdata");
    let kept: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ctr.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(kept <= 4096, "log bounded by max-size: {kept} bytes kept");
    let logs = env.berth(&["logs", "chatty"]);
    assert!(
        logs.ok().ends_with("line-399\n"),
        "the newest output survives rotation"
    );
    assert!(
        !logs.stdout.starts_with("line-0\n"),
        "the oldest was rotated away"
    );
    assert!(env
        .berth(&["logs", "--since", "2h", "chatty"])
        .ok()
        .contains("line-399"));
    assert!(
        env.berth(&["logs", "--until", "1h", "chatty"])
            .ok()
            .is_empty(),
        "nothing is older than an hour"
    );
    env.berth(&["logs", "--since", "yesterday", "chatty"])
        .fails(125, "invalid time");

    env.berth(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        img,
        "echo",
        "unseen",
    ])
    .ok();
    assert_eq!(env.berth(&["wait", "quiet"]).ok().trim(), "0");
    // Nothing was kept, and `logs` says so (podman's words).
    env.berth(&["logs", "quiet"]).fails(
        125,
        "this container is using the 'none' log driver, cannot read logs",
    );
    env.berth(&["run", "-d", "--log-driver", "passthrough", img, "true"])
        .fails(125, "foreground");
    env.berth(&["run", "-d", "--log-driver", "syslog", img, "true"])
        .fails(125, "unsupported --log-driver");
    // A foreground run shows its output and logs it too (stdout and stderr apart).
    let fg = env.berth(&[
        "run",
        "--name",
        "fg",
        img,
        "sh",
        "-c",
        "echo shown; echo warned >&2; exit 2",
    ]);
    assert_eq!(
        (fg.code, fg.stdout.as_str(), fg.stderr.as_str()),
        (2, "shown\n", "warned\n")
    );
    let logs = env.berth(&["logs", "fg"]);
    assert_eq!((logs.ok(), logs.stderr.as_str()), ("shown\n", "warned\n"));
    // passthrough: the container writes to berth's own stdio; nothing is logged.
    let pass = env.berth(&[
        "run",
        "--name",
        "pass",
        "--log-driver",
        "passthrough",
        img,
        "echo",
        "direct",
    ]);
    assert_eq!(pass.ok(), "direct\n");
    env.berth(&["logs", "pass"])
        .fails(125, "using the 'passthrough' log driver, cannot read logs");
    env.berth(&["rm", "chatty", "quiet", "fg", "pass"]).ok();
}

#[test]
fn labels_and_stop_timeout() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "lab",
        "--label",
        "team=blue",
        "--stop-timeout",
        "1",
        img,
        "sleep",
        "300",
    ])
    .ok();
    env.berth(&["run", "-d", "--name", "other", img, "sleep", "300"])
        .ok();
    assert_eq!(
        env.berth(&[
            "ps",
            "--filter",
            "label=team=blue",
            "--format",
            "{{.Names}}"
        ])
        .ok()
        .trim(),
        "lab"
    );
    assert_eq!(
        env.berth(&["ps", "--filter", "label=team", "--format", "{{.Names}}"])
            .ok()
            .trim(),
        "lab"
    );
    assert_eq!(
        env.berth(&[
            "inspect",
            "--format",
            "{{.Config.Labels.team}} {{.Config.StopTimeout}}",
            "lab"
        ])
        .ok()
        .trim(),
        "blue 1"
    );
    // sleep as PID 1 ignores SIGTERM: stop falls back to SIGKILL after the container's own timeout.
    let t = Instant::now();
    env.berth(&["stop", "lab"]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "stop used --stop-timeout 1, took {:?}",
        t.elapsed()
    );
    env.berth(&["rm", "-f", "lab", "other"]).ok();
}

#[test]
fn cp_between_host_and_container() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "box",
        img,
        "sh",
        "-c",
        "ln -s / /escape; echo inside > /tmp/made-inside; sleep 300",
    ])
    .ok();
    wait_for("the container to write its file", 10, || {
        env.berth(&["exec", "box", "test", "-e", "/tmp/made-inside"])
            .code
            == 0
    });
    let src = env.dir.path().join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), "deep\n").unwrap();
    std::fs::write(env.dir.path().join("one.txt"), "one\n").unwrap();
    env.berth(&[
        "cp",
        env.dir.path().join("one.txt").to_str().unwrap(),
        "box:/tmp/renamed.txt",
    ])
    .ok();
    env.berth(&["cp", src.to_str().unwrap(), "box:/tmp/"]).ok();
    assert_eq!(
        env.berth(&["exec", "box", "cat", "/tmp/renamed.txt", "/tmp/tree/sub/f"])
            .ok(),
        "one\ndeep\n"
    );
    // A symlink in the container cannot send a copy to the host.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    env.berth(&[
        "cp",
        env.dir.path().join("one.txt").to_str().unwrap(),
        &format!("box:/escape/tmp/{marker}"),
    ])
    .ok();
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "copy escaped to the host"
    );
    assert_eq!(
        env.berth(&["exec", "box", "cat", &format!("/tmp/{marker}")])
            .ok(),
        "one\n"
    );
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    env.berth(&["cp", "box:/tmp/made-inside", out.to_str().unwrap()])
        .ok();
    env.berth(&["cp", "box:/tmp/tree", out.join("copy").to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("made-inside")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("copy/sub/f")).unwrap(),
        "deep\n"
    );
    env.berth(&["cp", "box:/no/such", out.to_str().unwrap()])
        .fails(125, "\"/no/such\" could not be found on container box");
    env.berth(&["cp", "/a", "/b"]).fails(125, "CONTAINER:PATH");
    env.berth(&["rm", "-f", "box"]).ok();
    env.berth(&["cp", "box:/tmp/x", out.to_str().unwrap()])
        .fails(125, "no such container");
}

/// The store's disk fills up while a container logs: the monitor keeps
/// draining the output (the container is never blocked), records the exit,
/// and the container can still be removed.
#[test]
fn full_disk_while_logging() {
    let env = Env::root();
    let store = env.store();
    std::fs::create_dir_all(&store).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "berth-test-full-log"])
        .arg(&store)
        .status()
        .unwrap();
    if !st.success() {
        return common::skip("full_disk_while_logging", "cannot mount a tmpfs here");
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _u = Unmount(store.clone());
    let img = busybox_image(&env);
    // ~20 MB of output into a store with ~8 MB free.
    env.berth(&["run", "-d", "--name", "loud", img, "sh", "-c", "yes 'a long line of log output to fill the disk quickly' | head -c 20000000; echo finished >&2"]).ok();
    let started = Instant::now();
    assert_eq!(
        env.berth(&["wait", "loud"]).ok().trim(),
        "0",
        "the container ran to its end"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let ps = env.berth(&["ps", "-a"]);
    assert!(ps.ok().contains("Exited (0)"), "{}", ps.stdout);
    env.berth(&["rm", "loud"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
}

fn attach_checks(env: &Env) {
    let img = busybox_image(env);
    // run -d -it: a terminal held by the monitor; attach types into it.
    let id = env
        .berth(&["run", "-dit", "--name", "term", img, "sh"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let mut s = PtySession::spawn(env.cmd(&["attach", "term"]), 30, 100);
    std::thread::sleep(Duration::from_millis(300));
    s.send("echo $((6*7)) && stty size\r");
    s.expect("42", 10);
    s.expect("30 100", 10);
    // ctrl-p ctrl-q detaches; the container keeps running.
    s.send("\x10\x11");
    assert_eq!(s.wait(10), 0, "detach exits 0: {}", s.output);
    assert!(env.berth(&["ps"]).ok().contains("term"), "still running");
    let mut s = PtySession::spawn(env.cmd(&["attach", "term"]), 24, 80);
    std::thread::sleep(Duration::from_millis(300));
    s.send("exit 3\r");
    assert_eq!(s.wait(10), 3, "attach returns the exit code: {}", s.output);
    assert!(env.berth(&["ps", "-a"]).ok().contains("Exited (3)"));
    env.berth(&["attach", "term"])
        .fails(125, "you can only attach to running containers");

    // run -d -i without a terminal: attach feeds stdin, stdout and stderr stay apart.
    env.berth(&[
        "run",
        "-di",
        "--name",
        "pipe",
        img,
        "sh",
        "-c",
        "while read l; do echo out $l; echo err $l >&2; done; exit 7",
    ])
    .ok();
    let mut at = env
        .cmd(&["attach", "pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = at.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\n").unwrap();
    } // end of input closes the container's stdin
    let out = at.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out one\nout two\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err one\nerr two\n");

    // create -i + start -ai: attached before the container starts, so nothing is missed.
    env.berth(&[
        "create",
        "-i",
        "--name",
        "ask",
        img,
        "sh",
        "-c",
        "echo first; read x; echo got $x; exit 4",
    ])
    .ok();
    let mut st = env
        .cmd(&["start", "-ai", "ask"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        st.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    }
    let out = st.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\ngot yes\n");
    env.berth(&["rm", "-a", "-f"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
}

#[test]
fn attach_run_dit_and_start_ai() {
    attach_checks(&Env::root());
}

#[test]
fn attach_rootless() {
    let Some(env) = Env::user("attach_rootless") else {
        return;
    };
    attach_checks(&env);
}

fn cp_stopped_checks(env: &Env) {
    let img = busybox_image(env);
    env.berth(&["create", "--name", "later", img, "cat", "/config/app.conf"])
        .ok();
    let conf = env.dir.path().join("home/conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("app.conf"), "port=8080\n").unwrap();
    if env.who == common::As::User {
        let u = common::rootless_user().unwrap();
        std::process::Command::new("chown")
            .args(["-R", &format!("{}:{}", u.uid, u.gid)])
            .arg(&conf)
            .status()
            .unwrap();
    }
    // Into a container that has not started yet: it sees the file when it runs.
    env.berth(&["cp", conf.to_str().unwrap(), "later:/config"])
        .ok();
    let run = env.berth(&["start", "-a", "later"]);
    assert_eq!(run.ok(), "port=8080\n");
    // Out of an exited container.
    let back = env.dir.path().join("home/back.conf");
    env.berth(&["cp", "later:/config/app.conf", back.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "port=8080\n");
    env.berth(&["cp", "later:/missing", back.to_str().unwrap()])
        .fails(125, "\"/missing\" could not be found on container later");
    assert!(mounts_under(&env.store()).is_empty(), "cp left a mount");
    env.berth(&["rm", "later"]).ok();
}

#[test]
fn cp_with_a_stopped_container() {
    cp_stopped_checks(&Env::root());
}

#[test]
fn cp_with_a_stopped_container_rootless() {
    let Some(env) = Env::user("cp_with_a_stopped_container_rootless") else {
        return;
    };
    cp_stopped_checks(&env);
}

/// A rootless container whose process switched to another id (as a
/// database drops to its own user) is still stopped and removed: signals
/// go through its monitor, which shares its user namespace.
#[test]
fn rootless_stop_and_rm_reach_processes_of_other_ids() {
    let Some(env) = Env::user("rootless_stop_and_rm_reach_processes_of_other_ids") else {
        return;
    };
    let img = busybox_image(&env);
    let alive = |marker: &str| {
        let out = std::process::Command::new("pgrep")
            .args(["-f", marker])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    env.berth(&[
        "run", "-d", "--name", "a", "-u", "1000", img, "sleep", "301",
    ])
    .ok();
    env.berth(&["stop", "-t", "1", "a"]).ok();
    assert!(env.berth(&["ps", "-a"]).ok().contains("Exited (137)"));
    assert!(!alive("sleep 301"), "stop left the process running");
    env.berth(&[
        "run", "-d", "--name", "b", "-u", "1000", img, "sleep", "302",
    ])
    .ok();
    env.berth(&["kill", "-s", "KILL", "b"]).ok();
    assert_eq!(env.berth(&["wait", "b"]).ok().trim(), "137");
    env.berth(&[
        "run", "-d", "--name", "c", "-u", "1000", img, "sleep", "303",
    ])
    .ok();
    env.berth(&["rm", "-f", "a", "b", "c"]).ok();
    assert!(!alive("sleep 303"), "rm -f left the process running");
}

#[test]
fn the_monitor_has_a_name_people_recognise() {
    let env = Env::root();
    let img = busybox_image(&env);
    let pidfile = env.dir.path().join("monitor.pid");
    env.berth(&[
        "run",
        "-d",
        "--name",
        "named",
        "--conmon-pidfile",
        pidfile.to_str().unwrap(),
        img,
        "sleep",
        "600",
    ])
    .ok();
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "berth-monitor");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"berth-monitor\0"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    env.berth(&["rm", "-f", "named"]).ok();
}

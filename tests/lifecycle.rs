//! The container lifecycle as other commands see it: a record changed by
//! two berth processes at once (a monitor recording an exit and a
//! `network connect`) keeps both changes, and a container run in the
//! foreground can be stopped and inspected from another command.

mod common;

use common::{busybox_image, wait_for, As, Env, Run};
use std::time::Duration;

/// The networks a container's record lists, as `inspect` shows them.
fn networks(env: &Env, name: &str) -> Vec<String> {
    let out = env.berth(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let mut names: Vec<String> = v[0]["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// One inspect field ("" while the container does not exist yet).
fn field(env: &Env, name: &str, template: &str) -> String {
    env.berth(&["inspect", "--format", template, name])
        .stdout
        .trim()
        .to_string()
}

#[test]
fn network_connect_is_kept_when_the_monitor_records_an_exit() {
    let Some(env) = Env::networked(As::Root, "network_connect_kept") else {
        return;
    };
    let img = busybox_image(&env);
    env.berth(&["network", "create", "side"]).ok();

    // Connected while it runs, then stopped: its monitor records the exit
    // after the connect and must not write its older copy over it.
    env.berth(&["run", "-d", "--name", "w", img, "sleep", "1000"])
        .ok();
    env.berth(&["network", "connect", "side", "w"]).ok();
    env.berth(&["stop", "-t", "0", "w"]).ok();
    // A new start joins both.
    env.berth(&["start", "w"]).ok();
    let addrs = env.berth(&["exec", "w", "ip", "-4", "-o", "addr"]);
    assert!(addrs.ok().contains("eth1"), "{}", addrs.stdout);
    env.berth(&["stop", "-t", "0", "w"]).ok();
    assert_eq!(networks(&env, "w"), ["berth", "side"]);
    env.berth(&["rm", "-f", "w"]).ok();

    // Restarted by its policy: the monitor's next start joins the network
    // connected before (the first run waits for /tmp/go, then fails).
    let script = "if [ -e /tmp/again ]; then exec sleep 1000; fi; touch /tmp/again; \
                  while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3";
    env.berth(&[
        "run",
        "-d",
        "--name",
        "r",
        "--restart",
        "on-failure",
        img,
        "sh",
        "-c",
        script,
    ])
    .ok();
    env.berth(&["network", "connect", "side", "r"]).ok();
    env.berth(&["exec", "r", "touch", "/tmp/go"]).ok();
    wait_for("the restart", 20, || {
        field(&env, "r", "{{.RestartCount}}") == "1"
            && field(&env, "r", "{{.State.Pid}}")
                .parse::<u32>()
                .unwrap_or(0)
                > 0
    });
    let addrs = env.berth(&["exec", "r", "ip", "-4", "-o", "addr"]);
    assert!(addrs.ok().contains("eth1"), "{}", addrs.stdout);
    assert_eq!(networks(&env, "r"), ["berth", "side"]);
    env.berth(&["rm", "-f", "r"]).ok();

    // At the same moment as the exit: whatever the order, a connect that
    // reports success is in the record afterwards.
    for i in 0..8 {
        let name = format!("race{i}");
        let nap = format!("0.{}", i + 1);
        env.berth(&["run", "-d", "--name", &name, img, "sleep", &nap])
            .ok();
        let connect = env.berth(&["network", "connect", "side", &name]);
        env.berth(&["wait", &name]).ok();
        let listed = networks(&env, &name).contains(&"side".to_string());
        if connect.code == 0 {
            assert!(listed, "round {i}: a successful connect was lost");
        } else {
            assert_eq!(connect.code, 125, "{}", connect.stderr);
        }
        env.berth(&["rm", &name]).ok();
    }
    env.berth(&["network", "rm", "side"]).ok();
    env.assert_consistent();
}

/// Runs its command when dropped.
struct Reaper(std::process::Command);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.output();
    }
}

#[test]
fn a_foreground_container_is_stopped_from_another_command() {
    let env = Env::root();
    let img = busybox_image(&env);
    let fg = env
        .cmd(&["run", "--name", "fg", img, "sleep", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Should an assertion fail, the container goes with the test.
    let _reaper = Reaper(env.cmd(&["rm", "-f", "fg"]));
    wait_for("the foreground container", 20, || {
        field(&env, "fg", "{{.State.Pid}}")
            .parse::<u32>()
            .unwrap_or(0)
            > 0
    });
    // Its process is recorded, so top and kill reach it.
    let top = env.berth(&["top", "fg", "args"]);
    assert!(top.ok().contains("sleep 100"), "{}", top.stdout);
    // sleep as pid 1 ignores SIGTERM: stop kills it after the timeout.
    env.berth(&["stop", "-t", "1", "fg"]).ok();
    let out = Run::from(fg.wait_with_output().unwrap());
    assert_eq!(out.code, 137, "{}", out.stderr);
    assert_eq!(field(&env, "fg", "{{.State.Status}}"), "exited");
    // Moves its state does not allow, with podman's words and codes.
    env.berth(&["kill", "fg"])
        .fails(125, "can only kill running containers");
    env.berth(&["pause", "fg"])
        .fails(125, "\"fg\" is not running, can't pause");
    env.berth(&["attach", "fg"])
        .fails(125, "you can only attach to running containers");
    env.berth(&["create", "--name", "made", img, "true"]).ok();
    env.berth(&["kill", "made"]).fails(
        125,
        "can only kill running containers. made is in state created",
    );
    env.berth(&["stop", "made"]).ok();
    env.berth(&["rm", "fg", "made"]).ok();
    env.assert_consistent();
}

#[test]
fn a_killed_container_stays_down_whatever_its_restart_policy() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "k",
        "--restart",
        "always",
        img,
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo READY; while :; do sleep 0.2; done",
    ])
    .ok();
    wait_for("the trap", 20, || {
        env.berth(&["logs", "k"]).stdout.contains("READY")
    });
    env.berth(&["kill", "-s", "TERM", "k"]).ok();
    assert_eq!(env.berth(&["wait", "k"]).ok().trim(), "42");
    // Its monitor would have restarted it within a second.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        field(
            &env,
            "k",
            "{{.State.Status}} {{.RestartCount}} {{.State.StoppedByUser}}"
        ),
        "exited 0 true"
    );
    // Started again by hand, its policy holds again.
    env.berth(&["start", "k"]).ok();
    assert_eq!(field(&env, "k", "{{.State.StoppedByUser}}"), "false");
    env.berth(&["rm", "-f", "k"]).ok();
}

fn commit_checks(env: &Env) {
    let img = busybox_image(env);
    // New files, and a deleted one (a whiteout in the layer).
    env.berth(&[
        "run",
        "--name",
        "c",
        img,
        "sh",
        "-c",
        "echo made > /made && mkdir /data && echo a > /data/a && echo b > /data/b && rm /bin/true",
    ])
    .ok();
    let id = env.berth(&[
        "commit",
        "-a",
        "me",
        "-m",
        "first",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "c",
        "snap",
    ]);
    assert_eq!(id.ok().trim().len(), 64, "{}", id.stdout);
    assert_eq!(env.berth(&["run", "--rm", "snap"]).ok(), "made\n");
    assert_eq!(
        env.berth(&["run", "--rm", "snap", "ls", "/data"]).ok(),
        "a\nb\n"
    );
    let gone = env.berth(&[
        "run",
        "--rm",
        "snap",
        "sh",
        "-c",
        "test -e /bin/true && echo kept || echo gone",
    ]);
    assert_eq!(gone.ok(), "gone\n");
    assert!(env.berth(&["images"]).ok().contains("localhost/snap"));
    // The runtime's mount targets are not part of the change: the image
    // has no /etc/hosts or /proc of its own (podman's diff of it neither).
    let changes = env.berth(&["diff", "snap"]);
    assert!(
        !changes.ok().contains("/etc/hosts") && !changes.stdout.contains("/proc"),
        "{}",
        changes.stdout
    );
    assert!(changes.stdout.contains("A /made"), "{}", changes.stdout);
    // --pause on a running container, --iidfile.
    env.berth(&["run", "-d", "--name", "running", img, "sleep", "30"])
        .ok();
    let iid = env.dir.path().join("home/iid");
    let paused = env.berth(&[
        "commit",
        "-q",
        "--pause",
        "--iidfile",
        iid.to_str().unwrap(),
        "running",
    ]);
    assert_eq!(
        std::fs::read_to_string(&iid)
            .unwrap_or_else(|e| panic!("{e}: {:?} {}", iid, paused.stderr)),
        format!("sha256:{}", paused.ok().trim())
    );
    let ps = env.berth(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.ok().contains("running Up"),
        "unpaused after: {}",
        ps.stdout
    );
    env.berth(&["rm", "-f", "-t", "0", "running"]).ok();
    // A commit of the commit stacks one more layer; a directory replaced
    // whole hides what the layers below had in it (an opaque directory).
    env.berth(&[
        "run",
        "--name",
        "d",
        "snap",
        "sh",
        "-c",
        "rm -rf /data && mkdir /data && echo only > /data/only && echo two > /two",
    ])
    .ok();
    env.berth(&["commit", "d", "snap2"]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "snap2", "cat", "/made", "/two"])
            .ok(),
        "made\ntwo\n"
    );
    assert_eq!(
        env.berth(&["run", "--rm", "snap2", "ls", "/data"]).ok(),
        "only\n"
    );
    // --squash: one layer holding the whole tree, deletions applied.
    env.berth(&["commit", "-q", "--squash", "d", "flat"]).ok();
    let layers = env.berth(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        "flat",
    ]);
    assert_eq!(layers.ok().trim(), "1");
    assert_eq!(
        env.berth(&[
            "run", "--rm", "flat", "sh", "-c",
            "cat /made /two; ls /data; test -e /bin/true || echo gone; test -e /.berth-copied || echo clean"
        ])
        .ok(),
        "made\ntwo\nonly\ngone\nclean\n"
    );
    env.berth(&["commit", "nothing-here", "x"])
        .fails(125, "no such container");
    env.berth(&["rm", "c", "d"]).ok();
    env.assert_consistent();
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    commit_checks(&Env::root());
}

#[test]
fn commit_rootless() {
    if let Some(env) = Env::user("commit_rootless") {
        commit_checks(&env);
    }
}

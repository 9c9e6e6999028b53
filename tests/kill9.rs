//! Killing berth with -9 while it runs a container in the foreground. In a
//! test binary of its own: it makes this process the subreaper that reaps
//! the orphans, as an init would (this machine's init does not reap fast).

mod common;

use common::{assert_clean, busybox_image, Env};

/// The tests here reap any child (waitpid(-1)), which would steal the exit
/// status of another test's berth: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reap_orphans() {
    // SAFETY: waitpid on any child without blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// A foreground container is "Up" while berth watches it and cannot be
/// removed; if berth is killed with -9 the container dies with it, and `rm`
/// clears the record, the cgroup and the files.
#[test]
fn running_container_is_protected_and_kill_9_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::root();
    let img = busybox_image(&env);
    let cg = format!("berth-test-kill9-{}", std::process::id());
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let marker = format!("sleep {}", 3000 + std::process::id() % 1000);
    let mut child = env
        .cmd(&[
            "run",
            "--name",
            "longrun",
            "--cgroup-parent",
            &cg,
            "--memory",
            "64m",
            img,
            "sh",
            "-c",
            &marker,
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ps = env.berth(&["ps"]);
        if ps.stdout.contains("longrun") && ps.stdout.contains("Up ") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never shown as Up: {}",
            ps.stdout
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    env.berth(&["rm", "longrun"]).fails(2, "is running");
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    reap_orphans();
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            std::time::Instant::now() < gone,
            "the container outlived berth"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        reap_orphans();
    }
    let ps = env.berth(&["ps", "-a"]);
    assert!(ps.ok().contains("berth was killed"), "{}", ps.stdout);
    env.berth(&["rm", "longrun"]).ok();
    assert_clean(&env, &cg);
    env.assert_consistent();
}

/// kill -9 of a detached container's monitor: the container goes with it,
/// nothing hangs, `ps -a` says what happened, and `rm` leaves no trace.
#[test]
fn killed_monitor_takes_its_container_and_rm_cleans_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let env = Env::root();
    let img = busybox_image(&env);
    let cg = format!("berth-test-monkill-{}", std::process::id());
    let marker = format!("sleep {}", 4000 + std::process::id() % 1000);
    env.berth(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--cgroup-parent",
        &cg,
        "--pids-limit",
        "50",
        img,
        "sh",
        "-c",
        &marker,
    ])
    .ok();
    let mon: i32 = env
        .berth(&["inspect", "--format", "{{.State.ConmonPid}}", "victim"])
        .ok()
        .trim()
        .parse()
        .unwrap();
    assert!(mon > 0);
    // SAFETY: killing the monitor we just started.
    unsafe { libc::kill(mon, libc::SIGKILL) };
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        reap_orphans();
        let alive = std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .status()
            .unwrap()
            .success();
        if !alive {
            break;
        }
        assert!(
            std::time::Instant::now() < gone,
            "the container outlived its monitor"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ps = env.berth(&["ps", "-a"]);
    assert!(ps.ok().contains("berth was killed"), "{}", ps.stdout);
    assert_eq!(
        env.berth(&["inspect", "--format", "{{.State.Status}}", "victim"])
            .ok()
            .trim(),
        "exited"
    );
    env.berth(&["stop", "victim"]).ok();
    env.berth(&["rm", "victim"]).ok();
    assert_clean(&env, &cg);
    env.assert_consistent();
}

//! The start path does not grow with the store: starting a container
//! makes the same number of system calls with one image as with a hundred
//! more images and containers beside it. Counted with `strace -c`, not
//! timed.

mod common;

use common::fixtures::Layer;
use common::{busybox_image, Env};
use std::process::Command;

/// System calls made by `berth run --rm --network none IMG echo`, with
/// every process of it counted.
fn start_syscalls(env: &Env, img: &str) -> u64 {
    let out = env.dir.path().join("strace.txt");
    let mut c = env.cmd(&["run", "--rm", "--network", "none", img, "echo"]);
    let berth = c.get_program().to_owned();
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = c
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    c = Command::new("strace");
    c.args(["-f", "-c", "-o"]).arg(&out).arg(berth).args(args);
    c.env_clear().envs(envs);
    let st = c.status().expect("strace runs");
    assert!(st.success(), "berth under strace failed");
    let text = std::fs::read_to_string(&out).unwrap();
    let total = text
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .unwrap_or_else(|| panic!("no total in:\n{text}"));
    let cols: Vec<&str> = total.split_whitespace().collect();
    cols[3].parse().unwrap()
}

#[test]
fn a_start_makes_as_many_syscalls_in_a_full_store() {
    if Command::new("strace").arg("-V").output().is_err() {
        return common::skip(
            "a_start_makes_as_many_syscalls_in_a_full_store",
            "strace is not installed (make test-deps installs it)",
        );
    }
    let env = Env::root();
    let img = busybox_image(&env);
    start_syscalls(&env, img); // warm: seccomp cache, network defaults
    let small = start_syscalls(&env, img).min(start_syscalls(&env, img));
    for i in 0..100 {
        let mut l = Layer::new();
        l.file("f", format!("image {i}").as_bytes());
        let tar = env.dir.path().join("home/one.tar");
        std::fs::write(&tar, l.finish()).unwrap();
        env.berth(&["import", "-q", tar.to_str().unwrap(), &format!("img{i}")])
            .ok();
        env.berth(&["create", "--name", &format!("c{i}"), img, "true"])
            .ok();
    }
    let full = start_syscalls(&env, img).min(start_syscalls(&env, img));
    assert!(
        full * 100 <= small * 105,
        "a start made {small} system calls with one image and {full} with 100 more images and containers"
    );
}

//! cgroup v2, which this host does not have (it is v1 + an empty v2 mount):
//! boots a qemu VM with a unified hierarchy (integration/cgroup-v2-vm.sh)
//! and checks limits, the OOM exit code, the cgroup namespace, the device
//! filter and cleanup
//! there, as root and rootless in a delegated subtree, in one boot.

mod common;

#[test]
fn cgroup_v2_limits_inside_a_vm() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/integration/cgroup-v2-vm.sh");
    let cache = common::cache_dir().join("vm");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(common::berth_bin())
        .arg(&cache)
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(reason) = text.lines().find_map(|l| l.strip_prefix("SKIP ")) {
        return common::skip("cgroup_v2_limits_inside_a_vm", reason);
    }
    assert!(
        text.contains("RESULTS-END"),
        "the VM did not finish its checks:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "memory-max",
        "cpu-max",
        "pids-max",
        "oom-exit-137",
        "pids-fork-bomb-contained",
        "cgroup-namespace",
        "v2-device-node-refused",
        "v2-device-flag-allows",
        "v2-default-devices",
        "no-cgroups-left",
        "rootless-delegated-limits",
        "rootless-oom-exit-137",
        "rootless-detached-in-subtree",
        "rootless-no-cgroups-left",
    ] {
        assert!(
            text.lines().any(|l| l == format!("ok {check}")),
            "cgroup v2 check {check} failed:\n{text}"
        );
    }
}

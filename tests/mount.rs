//! `mount`/`umount`, `image mount`/`image umount` and `unshare`: roots
//! mounted where the user reaches them, and nothing left mounted after
//! `umount`, `rm` or `rmi`; rootless, the mounts live in the store's own
//! mount namespace and are seen through `berth unshare`.

mod common;

use common::{busybox_image, mounts_under, As, Env};

fn mount_checks(env: &Env) {
    let img = busybox_image(env);
    let id = env.berth(&[
        "create",
        "--name",
        "m1",
        img,
        "sh",
        "-c",
        "cat /from-host; echo made > /made",
    ]);
    let id = id.ok().trim().to_string();
    let path = env.berth(&["mount", "m1"]).ok().trim().to_string();
    assert!(path.starts_with(env.store().to_str().unwrap()), "{path}");
    // Mounting again answers with the same path.
    assert_eq!(env.berth(&["mount", "m1"]).ok().trim(), path);
    let listed = env.berth(&["mount"]);
    assert_eq!(listed.ok().trim(), format!("{}  {path}", &id[..12]));
    let notrunc = env.berth(&["mount", "--no-trunc"]);
    assert!(notrunc.ok().starts_with(&id), "{}", notrunc.stdout);
    let json: serde_json::Value =
        serde_json::from_str(env.berth(&["mount", "--format", "json"]).ok()).unwrap();
    assert_eq!(json[0]["mountpoint"], path.as_str());
    assert_eq!(json[0]["names"][0], "m1");

    // What is written through the mount, the container reads, and what the
    // container writes shows through the mount.
    let shell = |script: &str| -> common::Run {
        match env.who {
            As::Root => common::Run::from(
                std::process::Command::new("sh")
                    .args(["-c", script])
                    .output()
                    .unwrap(),
            ),
            As::User => env.berth(&["unshare", "sh", "-c", script]),
        }
    };
    shell(&format!("echo from-host > {path}/from-host")).ok();
    let run = env.berth(&["start", "-a", "m1"]);
    assert_eq!(run.ok().trim(), "from-host");
    assert_eq!(shell(&format!("cat {path}/made")).ok().trim(), "made");
    // The image's files are there; the mount is on the host as root and
    // only in the store's namespace rootless.
    assert!(shell(&format!("test -x {path}/bin/busybox")).code == 0);
    let on_host = mounts_under(&env.store());
    match env.who {
        As::Root => assert_eq!(on_host.len(), 1, "{on_host:?}"),
        As::User => {
            assert!(
                on_host.is_empty(),
                "a rootless mount reached the host: {on_host:?}"
            );
            let inside = env.berth(&["unshare", "cat", "/proc/self/mountinfo"]);
            assert!(inside.ok().contains(&path), "{}", inside.stdout);
        }
    }

    assert_eq!(env.berth(&["umount", "m1"]).ok().trim(), "m1");
    assert!(env.berth(&["mount"]).ok().trim().is_empty());
    assert!(
        shell(&format!("test -e {path}/bin/busybox")).code != 0,
        "still mounted"
    );
    // A container removed while mounted takes its mount along.
    env.berth(&["container", "mount", "m1"]).ok();
    env.berth(&["rm", "m1"]).ok();
    if env.who == As::User {
        let inside = env.berth(&["unshare", "cat", "/proc/self/mountinfo"]);
        assert!(
            !inside.ok().contains(&path),
            "rm left the mount: {}",
            inside.stdout
        );
    }
    env.berth(&["umount", "m1"]).fails(125, "no such container");

    // An image mounts read-only; rmi unmounts it.
    let ipath = env.berth(&["image", "mount", img]).ok().trim().to_string();
    let listed = env.berth(&["image", "mount"]);
    assert_eq!(
        listed.ok().trim(),
        format!("localhost/{img}:latest  {ipath}")
    );
    assert_eq!(
        shell(&format!("test -x {ipath}/bin/busybox && echo yes"))
            .ok()
            .trim(),
        "yes"
    );
    let w = shell(&format!("touch {ipath}/new 2>&1"));
    assert!(w.stdout.contains("Read-only"), "{}", w.stdout);
    env.berth(&["image", "umount", img]).ok();
    assert!(env.berth(&["image", "mount"]).ok().trim().is_empty());
    env.berth(&["image", "mount", img]).ok();
    env.berth(&["rmi", img]).ok();
    assert!(mounts_under(&env.store()).is_empty());
    if env.who == As::User {
        let inside = env.berth(&["unshare", "cat", "/proc/self/mountinfo"]);
        assert!(!inside.ok().contains(&ipath), "rmi left the mount");
    }
    env.assert_consistent();
}

#[test]
fn mount_and_umount_as_root() {
    let env = Env::root();
    mount_checks(&env);
    env.berth(&["unshare", "true"])
        .fails(125, "please use unshare with rootless");
}

#[test]
fn mount_and_unshare_rootless() {
    let Some(env) = Env::user("mount_and_unshare_rootless") else {
        return;
    };
    mount_checks(&env);
    // unshare: root of the store's namespace, the store named, the
    // command's own exit code.
    let r = env.berth(&[
        "unshare",
        "sh",
        "-c",
        "id -u; echo $CONTAINERS_GRAPHROOT; exit 3",
    ]);
    assert_eq!(r.code, 3);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines, ["0", env.store().to_str().unwrap()]);
    env.berth(&["unshare", "no-such-command"])
        .fails(127, "no-such-command");
}

//! Volumes: named volumes that outlive containers, copy-up of the image's
//! content into a new volume, anonymous volumes, `--volumes-from`, `:U`,
//! and the `volume` commands — as root and as an unprivileged user.

mod common;

use common::{busybox_image, mounts_under, Env};

fn volume_checks(env: &Env) {
    let img = busybox_image(env);
    // Created on first use; the image's /etc is copied into the empty volume.
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "conf:/etc",
        img,
        "sh",
        "-c",
        "grep -c root /etc/passwd; echo kept > /etc/mine",
    ]);
    assert_eq!(out.ok(), "1\n", "copy-up gave the volume the image's /etc");
    assert_eq!(env.berth(&["volume", "ls", "-q"]).ok(), "conf\n");
    // Data outlives the container; a new one sees it, read-only when asked.
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        "conf:/etc:ro",
        img,
        "sh",
        "-c",
        "cat /etc/mine; echo x > /etc/other",
    ]);
    assert_eq!(out.stdout, "kept\n");
    assert!(out.stderr.contains("Read-only"), "{}", out.stderr);
    // A volume that has content is not copied into again.
    let out = env.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=conf,target=/etc",
        img,
        "ls",
        "/etc",
    ]);
    assert!(out.ok().contains("mine") && out.stdout.contains("passwd"));

    // volume commands.
    env.berth(&["volume", "create", "--label", "team=blue", "data"])
        .ok();
    env.berth(&["volume", "create", "data"])
        .fails(125, "already exists");
    env.berth(&["volume", "create", "bad/name"])
        .fails(125, "invalid volume name");
    let ls = env.berth(&["volume", "ls"]);
    assert!(ls.ok().starts_with("DRIVER"), "{}", ls.stdout);
    assert!(ls.stdout.contains("local") && ls.stdout.contains("data"));
    assert_eq!(
        env.berth(&[
            "volume",
            "ls",
            "--filter",
            "label=team=blue",
            "--format",
            "{{.Name}}"
        ])
        .ok(),
        "data\n"
    );
    let mp = env.berth(&["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]);
    assert!(
        mp.ok().trim().ends_with("volumes/data/_data"),
        "{}",
        mp.stdout
    );
    env.berth(&["volume", "inspect", "nope"])
        .fails(125, "no such volume");
    assert_eq!(env.berth(&["volume", "exists", "data"]).code, 0);
    assert_eq!(env.berth(&["volume", "exists", "nope"]).code, 1);

    // In use: refused without -f; -f removes the container that uses it.
    env.berth(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "data:/data",
        img,
        "sleep",
        "300",
    ])
    .ok();
    let rm = env.berth(&["volume", "rm", "data"]);
    assert_eq!(rm.code, 2, "{}", rm.stderr);
    let holder = env.berth(&["inspect", "--format", "{{.Id}}", "holder"]);
    let want = format!(
        "volume data is being used by the following container(s): {}: volume is being used",
        holder.ok().trim()
    );
    assert!(rm.stderr.contains(&want), "{}", rm.stderr);
    // --volumes-from shares it (read-only here).
    env.berth(&["exec", "holder", "sh", "-c", "echo shared > /data/f"])
        .ok();
    let out = env.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "holder:ro",
        img,
        "sh",
        "-c",
        "cat /data/f; touch /data/g",
    ]);
    assert_eq!(out.stdout, "shared\n");
    assert!(out.stderr.contains("Read-only"), "{}", out.stderr);
    let inspect: serde_json::Value =
        serde_json::from_str(env.berth(&["inspect", "holder"]).ok()).unwrap();
    let m = &inspect[0]["Mounts"][0];
    assert_eq!(
        (
            m["Type"].as_str(),
            m["Name"].as_str(),
            m["Destination"].as_str()
        ),
        (Some("volume"), Some("data"), Some("/data"))
    );
    env.berth(&["volume", "rm", "-f", "data"]).ok();
    assert!(!env.berth(&["ps", "-a"]).ok().contains("holder"));

    // Anonymous volumes: removed by rm -v and by --rm, kept by plain rm.
    env.berth(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/scratch",
        img,
        "touch",
        "/scratch/x",
    ])
    .ok();
    let names = env.berth(&["volume", "ls", "-q"]).ok().to_string();
    assert_eq!(names.lines().count(), 2, "conf + one anonymous: {names}");
    env.berth(&["rm", "-v", "anon"]).ok();
    assert_eq!(env.berth(&["volume", "ls", "-q"]).ok(), "conf\n");
    env.berth(&["run", "--rm", "-v", "/scratch", img, "true"])
        .ok();
    assert_eq!(env.berth(&["volume", "ls", "-q"]).ok(), "conf\n");

    // :U gives the volume to the container's user.
    let out = env.berth(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "-v",
        "owned:/home/user:U",
        img,
        "sh",
        "-c",
        "touch /home/user/ok && stat -c %u /home/user/ok",
    ]);
    assert_eq!(out.ok(), "1000\n");

    env.berth(&["run", "--rm", "-v", "no such:/x", img, "true"])
        .fails(125, "invalid volume");
    env.berth(&["run", "--rm", "-v", "relative", img, "true"])
        .fails(125, "invalid volume");
    env.berth(&["volume", "prune", "-f"]).ok();
    assert!(env.berth(&["volume", "ls", "-q"]).ok().is_empty());
    assert!(mounts_under(&env.store()).is_empty());
    env.assert_consistent();
}

#[test]
fn volumes_as_root() {
    volume_checks(&Env::root());
}

#[test]
fn volumes_rootless() {
    let Some(env) = Env::user("volumes_rootless") else {
        return;
    };
    volume_checks(&env);
}

#[test]
fn volume_export_import_mount_and_a_prune_that_asks() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&["volume", "create", "src"]).ok();
    env.berth(&[
        "run",
        "--rm",
        "-v",
        "src:/v",
        img,
        "sh",
        "-c",
        "mkdir /v/d && echo kept > /v/d/f && ln -s /etc/passwd /v/link",
    ])
    .ok();
    let tarball = env.dir.path().join("home/vol.tar");
    env.berth(&[
        "volume",
        "export",
        "src",
        "--output",
        tarball.to_str().unwrap(),
    ])
    .ok();
    env.berth(&["volume", "create", "dst"]).ok();
    env.berth(&["volume", "import", "dst", tarball.to_str().unwrap()])
        .ok();
    let got = env.berth(&[
        "run",
        "--rm",
        "-v",
        "dst:/v",
        img,
        "sh",
        "-c",
        "cat /v/d/f; readlink /v/link",
    ]);
    assert_eq!(got.ok(), "kept\n/etc/passwd\n");
    // `volume mount` prints the directory a local volume is.
    let at = env.berth(&["volume", "mount", "dst"]);
    let at = at.ok().trim().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{at}/d/f")).unwrap(),
        "kept\n"
    );
    env.berth(&["volume", "export", "nosuch"])
        .fails(125, "no volume with name \"nosuch\" found");
    // prune asks first; anything but y keeps the volumes.
    let mut c = env.cmd(&["volume", "prune"]);
    c.stdin(std::process::Stdio::piped());
    let mut child = c.stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"N\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WARNING!") && text.contains("dst"), "{text}");
    env.berth(&["volume", "exists", "dst"]).ok();
    let pruned = env.berth(&["volume", "prune", "-f"]);
    assert!(pruned.ok().contains("dst") && pruned.stdout.contains("src"));
    assert_eq!(env.berth(&["volume", "exists", "dst"]).code, 1);
}

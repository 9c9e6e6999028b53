//! End-to-end tests of the image pipeline against real registries.

mod common;

use common::fixtures::ESCAPE_MARKERS;
use common::registry::{broken_server, free_port, shared, Auth, PASS, USER};
use common::{Env, TempDir};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

fn plain() -> String {
    shared(Auth::None).host()
}

fn inspect(env: &Env, image: &str) -> serde_json::Value {
    let out = env.berth(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    v[0].clone()
}

fn lower_dirs(env: &Env, image: &str) -> Vec<PathBuf> {
    let v = inspect(env, image);
    v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .map(PathBuf::from)
        .collect()
}

#[test]
fn pull_stores_a_faithful_root_filesystem() {
    let env = Env::root();
    let image = format!("{}/library/busybox", plain());
    let r = env.berth(&["pull", &image]);
    let id = r.ok().trim().to_string();
    assert_eq!(id.len(), 64, "pull prints the full image id: {id}");
    assert!(
        r.stderr
            .contains(&format!("Trying to pull {image}:latest...")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Copying blob") && r.stderr.contains("done"),
        "plain progress lines: {}",
        r.stderr
    );
    let layers = lower_dirs(&env, &image);
    assert_eq!(layers.len(), 1);
    let root = &layers[0];
    let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(bb.mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    let owned = std::fs::metadata(root.join("home/user/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (1000, 1000),
        "ownership preserved"
    );
    let suid = std::fs::metadata(root.join("bin/setuid-test")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755, "setuid bit preserved");
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert_eq!(tmp.mtime(), 1_700_000_000, "directory mtimes preserved");
    let link = std::fs::metadata(root.join("bin/busybox-hardlink")).unwrap();
    assert_eq!(link.ino(), bb.ino(), "hard links stay hard links");
    assert_eq!(
        xattr(&root.join("etc/xattr-test"), "user.berth").as_deref(),
        Some(&b"kept"[..]),
        "xattrs preserved"
    );
    let null = std::fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(
        null.file_type().is_char_device(),
        "device nodes kept for root"
    );
    env.assert_consistent();
    env.assert_no_temp();

    // A second pull of the same image downloads nothing.
    let again = env.berth(&["pull", &image]);
    assert_eq!(again.ok().trim(), id);
    assert!(
        again.stderr.contains("skipped: already exists"),
        "{}",
        again.stderr
    );

    // -q prints only the id.
    let q = env.berth(&["pull", "-q", &image]);
    assert_eq!(q.ok().trim(), id);
    assert!(q.stderr.is_empty(), "quiet pull printed: {}", q.stderr);
}

#[test]
fn images_and_inspect_show_podman_fields() {
    let env = Env::root();
    let image = format!("{}/library/busybox:1.36", plain());
    env.berth(&["pull", "-q", &image]).ok();
    let table = env.berth(&["images"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY")
            && lines[0].contains("TAG")
            && lines[0].contains("IMAGE ID")
            && lines[0].contains("CREATED")
            && lines[0].contains("SIZE"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!("{}/library/busybox", plain())) && lines[1].contains("1.36"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(" MB") || lines[1].contains(" kB"),
        "human size: {}",
        lines[1]
    );

    let v = inspect(&env, &image);
    for field in [
        "Id",
        "Digest",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "RootFS",
        "GraphDriver",
        "History",
    ] {
        assert!(v.get(field).is_some(), "inspect lacks {field}");
    }
    assert_eq!(v["RepoTags"][0], image.as_str());
    assert!(v["RepoDigests"][0].as_str().unwrap().contains("@sha256:"));
    assert_eq!(v["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(v["Labels"]["org.berth.test"], "yes");
    let id = v["Id"].as_str().unwrap().to_string();

    let f = env.berth(&[
        "inspect",
        "--format",
        "{{.Id}} {{.Config.Cmd}} {{json .RootFS.Type}}",
        &image,
    ]);
    assert_eq!(f.ok().trim(), format!("{id} [/bin/sh] \"layers\""));
    let q = env.berth(&["images", "-q"]);
    assert_eq!(q.ok().trim(), &id[..12]);
    let t = env.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(t.ok().trim(), image);
    let j: serde_json::Value =
        serde_json::from_str(env.berth(&["images", "--format", "json"]).ok()).unwrap();
    assert_eq!(j[0]["Id"], id.as_str());
    let d = env.berth(&["images", "--digests"]);
    assert!(d.ok().contains("DIGEST") && d.stdout.contains("sha256:"));
    // Short ids and id prefixes resolve.
    assert_eq!(inspect(&env, &id[..5])["Id"], id.as_str());
    env.berth(&["inspect", "no-such-image"])
        .fails(125, "no such object");
    env.berth(&["inspect", "--type", "image", "no-such-image"])
        .fails(125, "no such image");
}

#[test]
fn short_names_follow_registries_conf() {
    let env = Env::root();
    let conf = format!(
        "unqualified-search-registries = [\"docker.io\"]\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}\"\ninsecure = true\n[aliases]\n\"bb\" = \"docker.io/library/busybox\"\n",
        plain()
    );
    std::fs::write(env.dir.path().join("registries.conf"), conf).unwrap();
    let r = env.berth(&["pull", "busybox"]);
    r.ok();
    assert!(
        r.stderr
            .contains("Trying to pull docker.io/library/busybox:latest..."),
        "{}",
        r.stderr
    );
    let v = inspect(&env, "busybox");
    assert_eq!(v["RepoTags"][0], "docker.io/library/busybox:latest");
    assert_eq!(inspect(&env, "docker.io/library/busybox")["Id"], v["Id"]);
    env.berth(&["pull", "-q", "bb:1.36"]).ok();
    assert_eq!(
        inspect(&env, "docker.io/library/busybox:1.36")["Id"],
        v["Id"]
    );
}

#[test]
fn docker_oci_plain_and_zstd_layers_share_one_unpacked_layer() {
    let env = Env::root();
    let mut lowers = Vec::new();
    for repo in [
        "library/busybox",
        "busybox-docker",
        "busybox-plain",
        "busybox-zstd",
    ] {
        let image = format!("{}/{repo}", plain());
        env.berth(&["pull", "-q", &image]).ok();
        lowers.push(lower_dirs(&env, &image));
    }
    assert!(
        lowers.windows(2).all(|w| w[0] == w[1]),
        "same diff id, same layer dir: {lowers:?}"
    );
    let docker = inspect(&env, &format!("{}/busybox-docker", plain()));
    assert_eq!(
        docker["ManifestType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let layer_dirs = std::fs::read_dir(env.store().join("layers"))
        .unwrap()
        .count();
    assert_eq!(layer_dirs, 1, "one unpacked copy of the layer");
    env.assert_consistent();
}

#[test]
fn whiteouts_and_opaque_dirs_apply_through_overlayfs() {
    let env = Env::root();
    let image = format!("{}/multi", plain());
    env.berth(&["pull", "-q", &image]).ok();
    let lowers = lower_dirs(&env, &image);
    assert_eq!(lowers.len(), 3);
    let top = &lowers[0];
    assert!(
        std::fs::symlink_metadata(top.join("data/gone"))
            .unwrap()
            .file_type()
            .is_char_device(),
        "whiteout is a 0/0 device"
    );
    let mnt = TempDir::new("ovl");
    let script = format!(
        "mount -t overlay overlay -o lowerdir={} {m} && ls -A {m}/data {m}/olddir",
        lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        m = mnt.path().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "overlay mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("keep"), "{text}");
    assert!(
        !text.contains("gone"),
        "whited-out file still visible: {text}"
    );
    assert!(
        text.contains('b') && !text.lines().any(|l| l.trim() == "a"),
        "opaque dir hides the lower content: {text}"
    );
}

#[test]
fn image_index_resolves_to_the_platform() {
    let env = Env::root();
    let image = format!("{}/multiarch", plain());
    env.berth(&["pull", "-q", &image]).ok();
    let v = inspect(&env, &image);
    assert_eq!(v["Architecture"], "amd64");
    let lower = lower_dirs(&env, &image);
    assert_eq!(
        std::fs::read_to_string(lower[0].join("arch")).unwrap(),
        "amd64\n"
    );
    let arm = Env::root();
    arm.berth(&["pull", "-q", "--platform", "linux/arm64/v8", &image])
        .ok();
    assert_eq!(inspect(&arm, &image)["Architecture"], "arm64");
    let s390 = Env::root();
    s390.berth(&["pull", "--platform", "linux/s390x", &image])
        .fails(125, "linux/s390x");
    s390.berth(&["pull", "--platform", "linux", &image])
        .fails(125, "invalid platform");
    s390.assert_consistent();
}

#[test]
fn pull_by_digest() {
    let env = Env::root();
    let image = format!("{}/library/busybox", plain());
    env.berth(&["pull", "-q", &image]).ok();
    let digest = inspect(&env, &image)["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    let other = Env::root();
    other
        .berth(&["pull", "-q", &format!("{image}@{digest}")])
        .ok();
    let v = inspect(&other, &format!("{image}@{digest}"));
    assert_eq!(v["Digest"], digest.as_str());
    let missing = format!("{image}@sha256:{}", "0".repeat(64));
    other
        .berth(&["pull", &missing])
        .fails(125, "image not known");
}

#[test]
fn bad_references_and_flags_fail_clearly() {
    let env = Env::root();
    for bad in ["UPPER", "a//b", "x@sha256:123", "busybox:", "-x"] {
        let r = env.berth(&["pull", "--", bad]);
        assert_eq!(r.code, 125, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid reference format"),
            "{bad}: {}",
            r.stderr
        );
    }
    let r = env.berth(&["pull", "--bogus", "busybox"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--bogus"), "{}", r.stderr);
    let r = env.berth(&["frobnicate"]);
    assert_eq!(r.code, 125);
}

#[test]
fn registry_errors_are_one_line_and_leave_the_store_clean() {
    let env = Env::root();
    env.berth(&["pull", &format!("{}/does/not-exist", plain())])
        .fails(125, "image not known");
    let port = broken_server();
    let r = env.berth(&["pull", &format!("127.0.0.1:{port}/x")]);
    r.fails(125, "500");
    assert!(
        r.stderr.contains("after 3 tries"),
        "retried with backoff: {}",
        r.stderr
    );
    env.berth(&["pull", &format!("127.0.0.1:{}/x", free_port())])
        .fails(125, "connection refused");
    env.assert_consistent();
    env.assert_no_temp();
    let images = env.berth(&["images", "-q"]);
    assert!(images.ok().trim().is_empty());
}

#[test]
fn basic_auth_login_pull_logout() {
    let reg = shared(Auth::Basic);
    let env = Env::root();
    let image = format!("{}/library/busybox", reg.host());
    env.berth(&["pull", &image])
        .fails(125, &format!("berth login {}", reg.host()));
    env.berth(&["login", "-u", USER, "-p", "wrong", &reg.host()])
        .fails(125, "invalid username or password");
    assert!(!env.auth_file().exists(), "failed login stores nothing");
    let ok = env.berth(&["login", "-u", USER, "-p", PASS, &reg.host()]);
    assert!(ok.ok().contains("Login Succeeded!"));
    assert_eq!(
        std::fs::metadata(env.auth_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        env.berth(&["login", "--get-login", &reg.host()])
            .ok()
            .trim(),
        USER
    );
    env.berth(&["pull", "-q", &image]).ok();
    env.berth(&["logout", &reg.host()]).ok();
    env.berth(&["logout", &reg.host()])
        .fails(125, "not logged into");
    env.berth(&["rmi", &image]).ok();
    env.berth(&["pull", &image])
        .fails(125, "authentication required");
}

#[test]
fn bearer_token_auth_with_docker_config_credentials() {
    let reg = shared(Auth::Token);
    let env = Env::root();
    let image = format!("{}/library/busybox", reg.host());
    env.berth(&["pull", &image])
        .fails(125, "no credentials found");
    // Credentials from ~/.docker/config.json, as docker users have them.
    let docker_dir = env.dir.path().join("home/.docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    std::fs::write(
        docker_dir.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{enc}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let mut cmd = env.cmd(&["pull", "-q", &image]);
    cmd.env_remove("REGISTRY_AUTH_FILE");
    let r = common::Run::from(cmd.output().unwrap());
    r.ok();
    // And through berth login, with a bad password first.
    let env2 = Env::root();
    env2.berth(&["login", "-u", USER, "-p", "nope", &reg.host()])
        .fails(125, "invalid username or password");
    env2.berth(&["login", "-u", USER, "-p", PASS, &reg.host()])
        .ok();
    env2.berth(&["pull", "-q", &image]).ok();
    env2.assert_consistent();
}

#[test]
fn tampered_blob_is_rejected_and_nothing_is_stored() {
    let env = Env::root();
    let r = env.berth(&["pull", &format!("{}/tampered", plain())]);
    r.fails(125, "does not match its digest");
    env.assert_consistent();
    env.assert_no_temp();
    let blobs = std::fs::read_dir(env.store().join("oci/blobs/sha256"))
        .unwrap()
        .count();
    assert!(
        blobs <= 1,
        "only the verified config may be stored, found {blobs} blobs"
    );
    assert_eq!(
        std::fs::read_dir(env.store().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn truncated_gzip_fails_cleanly() {
    let env = Env::root();
    env.berth(&["pull", &format!("{}/truncated", plain())])
        .fails(125, "layer");
    env.assert_consistent();
    env.assert_no_temp();
    assert_eq!(
        std::fs::read_dir(env.store().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn hostile_paths_stay_inside_the_layer() {
    let env = Env::root();
    let image = format!("{}/hostile:escapes", plain());
    env.berth(&["pull", "-q", &image]).ok();
    for m in ESCAPE_MARKERS {
        assert!(
            !PathBuf::from("/tmp").join(m).exists(),
            "{m} escaped to /tmp"
        );
        assert!(!PathBuf::from("/").join(m).exists(), "{m} escaped to /");
    }
    let root = &lower_dirs(&env, &image)[0];
    assert!(
        root.join("tmp").join(ESCAPE_MARKERS[0]).exists(),
        ".. clamped at the layer root"
    );
    assert!(
        root.join("tmp").join(ESCAPE_MARKERS[1]).exists(),
        "absolute symlink resolved inside"
    );
    assert!(
        root.join("tmp").join(ESCAPE_MARKERS[2]).exists(),
        "relative symlink climbing out resolved inside"
    );
    assert!(
        root.join("tmp").join(ESCAPE_MARKERS[3]).exists(),
        "symlinked parent dir resolved inside"
    );
    let r = env.berth(&["pull", &format!("{}/hostile:hardlink", plain())]);
    r.fails(125, "hard link");
    env.assert_consistent();
    env.assert_no_temp();
}

#[test]
fn kill_9_mid_pull_then_pull_again() {
    let env = Env::root();
    let image = format!("{}/big", plain());
    let mut child = env.cmd(&["pull", "-q", &image]).spawn().unwrap();
    let tmp = env.store().join("tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let busy = std::fs::read_dir(&tmp)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false))
            })
            .unwrap_or(false);
        if busy || std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let r = env.berth(&["pull", "-q", &image]);
    r.ok();
    env.assert_consistent();
    env.assert_no_temp();
}

#[test]
fn two_pulls_at_once_agree() {
    let env = Env::root();
    let image = format!("{}/big", plain());
    let a = env
        .cmd(&["pull", "-q", &image])
        .output()
        .map(common::Run::from);
    let b_child = env
        .cmd(&["pull", "-q", &image])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = common::Run::from(b_child.wait_with_output().unwrap());
    let a = a.unwrap();
    assert_eq!(a.ok(), b.ok());
    env.assert_consistent();
    assert_eq!(env.berth(&["images", "-q"]).ok().lines().count(), 1);
}

#[test]
fn parallel_pulls_race_safely() {
    let env = Env::root();
    let image = format!("{}/big", plain());
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.cmd(&["pull", "-q", &image])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            common::Run::from(c.wait_with_output().unwrap())
                .ok()
                .to_string()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    env.assert_consistent();
    env.assert_no_temp();
}

#[test]
fn disk_full_during_pull_is_clean() {
    let env = Env::root();
    let store = env.store();
    std::fs::create_dir_all(&store).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "berth-test-full"])
        .arg(&store)
        .status()
        .unwrap();
    if !st.success() {
        common::skip(
            "disk_full_during_pull_is_clean",
            "cannot mount a tmpfs here",
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(store.clone());
    let r = env.berth(&["pull", &format!("{}/big", plain())]);
    r.fails(125, "no space left on device");
    env.assert_consistent();
    env.assert_no_temp();
    // The store still works for something that fits.
    env.berth(&["pull", "-q", &format!("{}/multiarch", plain())])
        .ok();
    env.assert_consistent();
}

#[test]
fn tag_rmi_and_garbage_collection() {
    let env = Env::root();
    let image = format!("{}/library/busybox", plain());
    let id = env.berth(&["pull", "-q", &image]).ok().trim().to_string();
    env.berth(&["tag", &image, "mybox:v1", "quay.io/me/box:2"])
        .ok();
    let names = inspect(&env, "mybox:v1")["RepoTags"].clone();
    assert_eq!(names.as_array().unwrap().len(), 3, "{names}");
    assert!(names.to_string().contains("localhost/mybox:v1"));
    let r = env.berth(&["rmi", "mybox:v1"]);
    assert_eq!(r.ok().trim(), "Untagged: localhost/mybox:v1");
    env.berth(&["rmi", "does-not-exist"])
        .fails(1, "image not known");
    let r = env.berth(&["rmi", &id[..12]]);
    assert!(r.ok().contains(&format!("Deleted: {id}")), "{}", r.stdout);
    assert_eq!(
        std::fs::read_dir(env.store().join("oci/blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "blobs collected"
    );
    assert_eq!(
        std::fs::read_dir(env.store().join("layers"))
            .unwrap()
            .count(),
        0,
        "layers collected"
    );
    // Layers shared by two images survive removal of one.
    env.berth(&["pull", "-q", &image]).ok();
    env.berth(&["pull", "-q", &format!("{}/multi", plain())])
        .ok();
    env.berth(&["rmi", &image]).ok();
    env.assert_consistent();
    env.berth(&["rmi", "-a"]).ok();
    assert!(env.berth(&["images", "-q"]).ok().trim().is_empty());
    assert_eq!(env.berth(&["image", "exists", &image]).code, 1);
}

fn busybox_tarball(dir: &std::path::Path) -> PathBuf {
    let t = dir.join("rootfs.tar.gz");
    std::fs::write(
        &t,
        common::fixtures::gzip(&common::fixtures::busybox_rootfs()),
    )
    .unwrap();
    t
}

#[test]
fn import_save_load_round_trip_with_skopeo() {
    let env = Env::root();
    let tarball = busybox_tarball(env.dir.path());
    let id = env
        .berth(&[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            "-c",
            "ENV A=1",
            "-m",
            "from busybox-static",
            tarball.to_str().unwrap(),
            "bb",
        ])
        .ok()
        .trim()
        .to_string();
    let v = inspect(&env, "bb");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RepoTags"][0], "localhost/bb:latest");
    assert_eq!(v["Config"]["Cmd"][0], "/bin/sh");
    assert_eq!(v["Config"]["Env"][0], "A=1");
    assert_eq!(v["Comment"], "from busybox-static");
    env.berth(&["import", "-c", "RUN rm -rf /", tarball.to_str().unwrap()])
        .fails(125, "invalid --change");
    env.berth(&["import", "/no/such/file.tar"])
        .fails(125, "cannot open");

    let has_skopeo = Command::new("skopeo").arg("--version").output().is_ok();
    for format in ["docker-archive", "oci-archive"] {
        let archive = env.dir.path().join(format!("{format}.tar"));
        env.berth(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "bb",
        ])
        .ok();
        if has_skopeo {
            let out = Command::new("skopeo")
                .arg("inspect")
                .arg("--raw")
                .arg(format!("{format}:{}", archive.display()))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "skopeo reads berth's {format}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let other = Env::root();
        let r = other.berth(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(r.ok().trim(), "Loaded image: localhost/bb:latest");
        assert_eq!(
            inspect(&other, "bb")["Id"],
            id.as_str(),
            "{format} round trip keeps the image id"
        );
        other.assert_consistent();
    }
    env.berth(&["load", "-i", tarball.to_str().unwrap()]).fails(
        125,
        "payload does not match any of the supported image formats",
    );

    if has_skopeo {
        // skopeo reads berth's store as an OCI layout...
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!(
                "oci:{}:localhost/bb:latest",
                env.store().join("oci").display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo reads the store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // ...and berth loads what skopeo writes.
        let from_skopeo = env.dir.path().join("skopeo.tar");
        let out = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/library/busybox:latest", plain()))
            .arg(format!(
                "docker-archive:{}:skopeo/busybox:latest",
                from_skopeo.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let other = Env::root();
        let r = other.berth(&["load", "-i", from_skopeo.to_str().unwrap()]);
        assert!(
            r.ok().contains("docker.io/skopeo/busybox:latest"),
            "{}",
            r.stdout
        );
        other.assert_consistent();
    } else {
        common::skip(
            "import_save_load_round_trip_with_skopeo (skopeo part)",
            "skopeo is not installed",
        );
    }
}

#[test]
fn rootless_pull_maps_ids_into_the_subordinate_range() {
    let Some(env) = Env::user("rootless_pull_maps_ids_into_the_subordinate_range") else {
        return;
    };
    let user = common::rootless_user().unwrap();
    let image = format!("{}/library/busybox", plain());
    let r = env.berth(&["pull", &image]);
    r.ok();
    assert!(
        r.stderr.contains("device"),
        "skipped device nodes are reported: {}",
        r.stderr
    );
    let root = &lower_dirs(&env, &image)[0];
    let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(bb.uid(), user.uid, "container root is the user");
    let owned = std::fs::metadata(root.join("home/user/owned")).unwrap();
    assert_eq!(
        owned.uid(),
        user.subuid + 999,
        "uid 1000 maps into the subordinate range"
    );
    assert!(!root.join("dev/null").exists(), "no device nodes rootless");
    env.berth(&["pull", "-q", &format!("{}/multi", plain())])
        .ok();
    let multi = lower_dirs(&env, &format!("{}/multi", plain()));
    let opaque = xattr(&multi[0].join("olddir"), "user.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]), "rootless opaque marker");
    env.assert_consistent();
    env.berth(&["rmi", "-a"]).ok();
    assert_eq!(
        std::fs::read_dir(env.store().join("layers"))
            .unwrap()
            .count(),
        0
    );
    let import = env.dir.path().join("home/rootfs.tar.gz");
    std::fs::write(
        &import,
        common::fixtures::gzip(&common::fixtures::busybox_rootfs()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("644")
        .arg(&import)
        .status()
        .unwrap();
    env.berth(&["import", import.to_str().unwrap(), "mine"])
        .ok();
    env.assert_consistent();
}

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 64];
    // SAFETY: valid pointers and buffer length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

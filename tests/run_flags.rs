//! `run` as podman's scripts use it: the default environment and
//! /run/.containerenv, --unsetenv, --tz, --pull, --rmi, --timeout,
//! --preserve-fds, --attach, a JSON --entrypoint, a --workdir that is not
//! there, the image's `/` mode, /etc/mtab, and what inspect says of it all.

mod common;

use common::{busybox_image, Env, Run};
use std::process::Command;

fn sh(env: &Env, flags: &[&str], img: &str, script: &str) -> Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[img, "sh", "-c", script]);
    env.berth(&args)
}

#[test]
fn environment_defaults_unsetenv_and_containerenv() {
    let env = Env::root();
    let img = busybox_image(&env);
    let all = sh(&env, &[], img, "env");
    for want in ["TERM=xterm", "container=berth", "PATH=", "HOSTNAME="] {
        assert!(all.ok().contains(want), "{want} missing: {}", all.stdout);
    }
    let less = sh(&env, &["--unsetenv", "TERM"], img, "env");
    assert!(!less.ok().contains("TERM="), "{}", less.stdout);
    assert!(less.stdout.contains("container=berth"));
    let none = env.berth(&[
        "run",
        "--rm",
        "--unsetenv-all",
        "-e",
        "ONLY=1",
        img,
        "/bin/env",
    ]);
    let none: Vec<&str> = none.ok().lines().collect();
    assert!(none.contains(&"ONLY=1"), "{none:?}");
    assert!(
        !none.iter().any(|l| l.starts_with("TERM=")
            || l.starts_with("PATH=")
            || l.starts_with("container=")),
        "{none:?}"
    );
    // The caller's proxy settings pass in (podman's --http-proxy), unless refused.
    let mut c = env.cmd(&["run", "--rm", img, "sh", "-c", "echo $http_proxy"]);
    c.env("http_proxy", "http://proxy.example:3128");
    let out = Run::from(c.output().unwrap());
    assert_eq!(out.ok().trim(), "http://proxy.example:3128");
    let mut c = env.cmd(&[
        "run",
        "--rm",
        "--http-proxy=false",
        img,
        "sh",
        "-c",
        "echo x$http_proxy",
    ]);
    c.env("http_proxy", "http://proxy.example:3128");
    assert_eq!(Run::from(c.output().unwrap()).ok().trim(), "x");
    // /run/.containerenv: empty, unless --privileged says what it is.
    let size = sh(&env, &[], img, "stat -c %s /run/.containerenv");
    assert_eq!(size.ok().trim(), "0");
    let said = sh(
        &env,
        &["--privileged", "--name", "told"],
        img,
        ". /run/.containerenv; echo $engine $name $rootless",
    );
    let said = said.ok();
    assert!(
        said.starts_with("berth-") && said.contains(" told 0"),
        "{said}"
    );
}

#[test]
fn mtab_root_mode_and_workdir_follow_podman() {
    let env = Env::root();
    let img = busybox_image(&env);
    // An image without /etc/mtab gets podman's symlink, which is not
    // listed as the container's change.
    env.berth(&["run", "--name", "m", img, "true"]).ok();
    let link = env.berth(&["run", "--rm", img, "readlink", "/etc/mtab"]);
    assert_eq!(link.ok().trim(), "/proc/mounts");
    let diff = env.berth(&["diff", "m"]);
    assert!(!diff.ok().contains("/etc/mtab"), "{}", diff.stdout);
    // The container's / has the mode the image's root entry gives it.
    let root = env.dir.path().join("home/root555");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/stat")).unwrap();
    let tarball = env.dir.path().join("home/root555.tar");
    let st = Command::new("tar")
        .args(["--mode=u=rx,go=rx", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    env.berth(&["import", "-q", tarball.to_str().unwrap(), "root555"])
        .ok();
    let mode = env.berth(&["run", "--rm", "root555", "/bin/stat", "-c", "%a", "/"]);
    assert_eq!(mode.ok().trim(), "555");
    // A --workdir the image lacks is an error (126), unless a mount makes it.
    env.berth(&["run", "--rm", "--workdir", "/not/here", img, "pwd"])
        .fails(126, "workdir \"/not/here\" does not exist on container");
    let vol = env.dir.path().join("home/wd");
    std::fs::create_dir_all(&vol).unwrap();
    let bind = format!("{}:/made/by/mount", vol.display());
    let pwd = env.berth(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "--workdir",
        "/made/by/mount",
        img,
        "pwd",
    ]);
    assert_eq!(pwd.ok().trim(), "/made/by/mount");
    let parent = env.berth(&["run", "--rm", "-v", &bind, "--workdir", "/made", img, "pwd"]);
    assert_eq!(parent.ok().trim(), "/made");
    // The image's own WORKDIR is still made when missing.
    env.berth(&["commit", "-q", "-c", "WORKDIR /srv/app", "m", "wd-image"])
        .ok();
    let made = env.berth(&["run", "--rm", "wd-image", "pwd"]);
    assert_eq!(made.ok().trim(), "/srv/app");
    env.assert_consistent();
}

#[test]
fn tz_pull_rmi_timeout_and_entrypoint() {
    let env = Env::root();
    let img = busybox_image(&env);
    let tokyo = sh(
        &env,
        &["--tz", "UTC", "--tz", "Asia/Tokyo"],
        img,
        "date +%Z",
    );
    assert_eq!(tokyo.ok().trim(), "JST", "the last --tz wins");
    env.berth(&["run", "--rm", "--tz", "../../../etc/passwd", img, "true"])
        .fails(125, "invalid --tz");
    env.berth(&["run", "--rm", "--tz", "No/Such_Zone", img, "true"])
        .fails(125, "no such time zone");
    // --pull=never does not reach for a registry.
    env.berth(&["run", "--rm", "--pull=never", "localhost/absent:1", "true"])
        .fails(125, "localhost/absent:1: image not known");
    env.berth(&["run", "--rm", "--pull=sometimes", img, "true"])
        .fails(125, "invalid --pull");
    // --rmi removes the image once its container is gone (it implies --rm).
    env.berth(&["tag", img, "localhost/doomed:1"]).ok();
    env.berth(&["run", "--rmi", "localhost/doomed:1", "true"])
        .ok();
    assert_eq!(
        env.berth(&["image", "exists", "localhost/doomed:1"]).code,
        1
    );
    assert!(env.berth(&["ps", "-a", "-q"]).ok().trim().is_empty());
    // --timeout kills it: exit 255, recorded as -1.
    let r = env.berth(&[
        "run",
        "--name",
        "late",
        "--timeout",
        "1",
        img,
        "sleep",
        "30",
    ]);
    assert_eq!(r.code, 255, "{}", r.stderr);
    let st = env.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "late",
    ]);
    assert_eq!(st.ok().trim(), "exited -1");
    // A JSON array is an entrypoint with arguments.
    let j = env.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        r#"["/bin/echo","a b"]"#,
        img,
        "c",
    ]);
    assert_eq!(j.ok(), "a b c\n");
    // --kernel-memory is gone from the kernel: a warning, not an error.
    let k = env.berth(&["run", "--rm", "--kernel-memory", "100m", img, "true"]);
    k.ok();
    assert!(k.stderr.contains("no longer supported"), "{}", k.stderr);
}

#[test]
fn preserve_fds_attach_and_inspect_fields() {
    let env = Env::root();
    let img = busybox_image(&env);
    // --preserve-fds 1 passes fd 3; without it fd 3 is closed.
    let file = env.dir.path().join("home/fd3");
    std::fs::write(&file, "through fd 3\n").unwrap();
    let with_fd3 = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[img, "sh", "-c", "cat <&3"]);
        let mut c = env.cmd(&args);
        let f = std::fs::File::open(&file).unwrap();
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let raw = f.as_raw_fd();
        // SAFETY: dup2 in the child before exec; `f` outlives the spawn.
        unsafe {
            c.pre_exec(move || {
                // dup2 onto itself would leave it close-on-exec.
                let r = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = Run::from(c.output().unwrap());
        drop(f);
        out
    };
    assert_eq!(with_fd3(&["--preserve-fds", "1"]).ok(), "through fd 3\n");
    assert_ne!(with_fd3(&[]).code, 0, "fd 3 leaked without --preserve-fds");
    env.berth(&["run", "-d", "--preserve-fds", "1", img, "true"])
        .fails(125, "--preserve-fds");
    // --attach: only the named streams reach berth's; without stdout the
    // container's id is printed.
    let a = env.berth(&[
        "run",
        "--rm",
        "--attach",
        "stdout",
        img,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(a.ok(), "out\n");
    assert!(!a.stderr.contains("err"), "{}", a.stderr);
    let id = env.berth(&[
        "run", "--name", "att", "--attach", "stdin", img, "echo", "hidden",
    ]);
    let full = env.berth(&["inspect", "--format", "{{.Id}}", "att"]);
    assert_eq!(id.ok().trim(), full.ok().trim());
    env.berth(&["run", "--rm", "--attach", "stdfoo", img, "true"])
        .fails(125, "invalid stream \"stdfoo\"");
    // inspect: the name with its tag, the manifest digest, the log config.
    env.berth(&["tag", img, "localhost/short/name"]).ok();
    env.berth(&[
        "create",
        "--name",
        "named",
        "--log-driver",
        "none",
        "--log-opt",
        "max-size=5.041m",
        "localhost/short/name",
        "true",
    ])
    .ok();
    let f = env.berth(&[
        "inspect",
        "--format",
        "{{.ImageName}}|{{.HostConfig.LogConfig.Type}}|{{.HostConfig.LogConfig.Size}}|{{.HostConfig.LogConfig.Path}}",
        "named",
    ]);
    assert_eq!(f.ok().trim(), "localhost/short/name:latest|none|5.041MB|");
    let digest = env.berth(&["inspect", "--format", "{{.ImageDigest}}", "named"]);
    assert!(digest.ok().starts_with("sha256:"), "{}", digest.stdout);
    env.berth(&["start", "-a", "named"]).ok();
    env.berth(&["logs", "named"]).fails(
        125,
        "this container is using the 'none' log driver, cannot read logs",
    );
    // --latest picks the container created last.
    let latest = env.berth(&["inspect", "-l", "--format", "{{.Name}}"]);
    assert_eq!(latest.ok().trim(), "named");
    env.berth(&["rm", "--latest", "att"])
        .fails(125, "--latest and containers cannot be used together");
    env.berth(&["rm", "--latest"]).ok();
    assert!(env.berth(&["container", "exists", "named"]).code == 1);
}

#[test]
fn devices_rules_and_discarded_ports() {
    let env = Env::root();
    let img = busybox_image(&env);
    // podman's --device-cgroup-rule grammar: MAJOR alone means any minor.
    sh(&env, &["--device-cgroup-rule", "a 7 rmw"], img, "true").ok();
    sh(&env, &["--device-cgroup-rule", "b 7:* rmX"], img, "true")
        .fails(125, "invalid device access in device-access-add: X");
    sh(&env, &["--device-cgroup-rule", "b 7:2"], img, "true").fails(
        125,
        "invalid device cgroup rule requires type, major:Minor, and access rules",
    );
    // --privileged gets the host's device nodes, each with its host mode.
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let host = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("loop") && e.file_type().is_ok_and(|t| t.is_block_device())
        })
        .or_else(|| {
            std::fs::read_dir("/dev").unwrap().flatten().find(|e| {
                e.file_name().to_string_lossy().starts_with("tty")
                    && e.file_name().len() > 3
                    && e.file_type().is_ok_and(|t| t.is_char_device())
            })
        });
    if let Some(dev) = host {
        let path = dev.path().display().to_string();
        let mode = format!("{:o}", dev.metadata().unwrap().mode() & 0o777);
        let inside = sh(&env, &["--privileged"], img, &format!("stat -c %a {path}"));
        assert_eq!(inside.ok().trim(), mode, "{path}");
        let not = sh(
            &env,
            &[],
            img,
            &format!("test -e {path} && echo there || echo absent"),
        );
        assert_eq!(not.ok().trim(), "absent");
    }
    // One mount twice is fine; two on one destination are refused.
    sh(&env, &["--tmpfs", "/m", "--tmpfs", "/m"], img, "true").ok();
    sh(&env, &["--tmpfs", "/m", "--tmpfs", "/m:ro"], img, "true")
        .fails(125, "/m: duplicate mount destination");
    sh(&env, &["-v", "one:/m", "--tmpfs", "/m"], img, "true")
        .fails(125, "/m: duplicate mount destination");
    // -p with a network that has no ports of its own: podman's warning.
    let r = env.berth(&[
        "run",
        "--rm",
        "-p",
        "8080",
        "--network",
        "none",
        img,
        "echo",
        "ran",
    ]);
    assert_eq!(r.ok(), "ran\n");
    assert!(
        r.stderr.contains("Port mappings have been discarded"),
        "{}",
        r.stderr
    );
}

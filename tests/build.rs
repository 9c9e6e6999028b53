//! `berth build`: Containerfiles built into images that then run, as root
//! and as an unprivileged user; the layer cache counted hit by hit.

mod common;

use common::http::fetch_eventually;
use common::{busybox_image, As, Env};
use std::path::{Path, PathBuf};

/// A build context under the env's home, readable by the test user.
fn context(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.dir.path().join("home").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    share(env);
    dir
}

/// Lets the test user read (and, for its own contexts, move) the home.
fn share(env: &Env) {
    let home = env.dir.path().join("home");
    if env.who == As::User {
        let u = common::rootless_user().unwrap();
        std::process::Command::new("chown")
            .args(["-R", &format!("{}:{}", u.uid, u.gid)])
            .arg(&home)
            .status()
            .unwrap();
    }
}

fn build(env: &Env, ctx: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap();
    args.push(c);
    env.berth(&args)
}

/// The "Using cache" lines of a build's output.
fn hits(out: &str) -> usize {
    out.lines()
        .filter(|l| l.starts_with("--> Using cache"))
        .count()
}

/// The image id a build printed last.
fn image_id(out: &str) -> String {
    out.lines().last().unwrap_or("").to_string()
}

fn inspect(env: &Env, image: &str) -> serde_json::Value {
    let out = env.berth(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    v[0].clone()
}

fn site(env: &Env) {
    busybox_image(env);
    let ctx = context(
        env,
        "site",
        &[
            (
                "Containerfile",
                "FROM busybox\nCOPY site/ /www/\nEXPOSE 80\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
            ),
            ("site/index.html", "built by berth\n"),
        ],
    );
    build(env, &ctx, &["-t", "site"]).ok();
    env.berth(&["run", "-d", "--name", "web", "-p", "8080:80", "site"])
        .ok();
    assert_eq!(
        fetch_eventually(env, "http://127.0.0.1:8080/"),
        "built by berth\n"
    );
    env.berth(&["rm", "-f", "-t", "0", "web"]).ok();
    env.assert_consistent();
}

/// The seeds' kind of app: a small site built from a Containerfile, run
/// with -p and fetched from the host.
#[test]
fn a_site_built_from_a_containerfile_is_served() {
    site(&Env::networked(As::Root, "build-site").unwrap());
    match Env::networked(As::User, "build-site") {
        Some(env) => site(&env),
        None => common::skip(
            "a_site_built_from_a_containerfile_is_served (rootless)",
            "no unprivileged test user",
        ),
    }
}

#[test]
fn a_multi_stage_build_copies_one_binary_out_of_its_builder() {
    let env = Env::root();
    busybox_image(&env);
    let file = "\
FROM busybox AS build
RUN mkdir /out && printf '#!/bin/sh\\necho built tool\\n' > /out/tool && chmod 755 /out/tool && echo junk > /out/junk

FROM busybox AS unused
RUN exit 9

FROM busybox
COPY --from=build /out/tool /usr/local/bin/tool
COPY --from=build /out /opt/tools
CMD [\"tool\"]
";
    let ctx = context(&env, "multi", &[("Containerfile", file)]);
    let r = build(&env, &ctx, &["-t", "multi"]);
    let out = r.ok();
    assert!(
        !out.contains("RUN exit 9"),
        "the unused stage is skipped:\n{out}"
    );
    assert!(out.contains("[1/3] STEP 1/"), "{out}");
    assert_eq!(env.berth(&["run", "--rm", "multi"]).ok(), "built tool\n");
    let r = env.berth(&["run", "--rm", "multi", "ls", "/out"]);
    assert_eq!(
        r.code, 1,
        "the builder's files stay in the builder: {}",
        r.stdout
    );
    // --target builds the builder alone.
    build(&env, &ctx, &["-t", "builder", "--target", "build"]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "builder", "cat", "/out/junk"])
            .ok(),
        "junk\n"
    );
    assert_eq!(
        env.berth(&["run", "--rm", "multi", "ls", "/opt/tools"])
            .ok(),
        "junk\ntool\n",
        "a directory copied to a destination that names it"
    );
    build(&env, &ctx, &["--target", "nope"]).fails(125, "--target nope");
    env.assert_consistent();
}

#[test]
fn every_instruction_lands_in_the_image() {
    let env = Env::root();
    busybox_image(&env);
    // A local archive for ADD to unpack.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut b = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "inside/packed.txt", &b"tar\n"[..])
            .unwrap();
        b.finish().unwrap();
    }
    let archive = gz.finish().unwrap();
    let file = r#"# escape=\
ARG BASE=busybox
FROM $BASE
ARG WHO=world
ENV GREETING="hello $WHO" \
    EMPTY=
LABEL org.example.team="build team" version=1
MAINTAINER berth tests
EXPOSE 8080 53/udp
VOLUME /data
WORKDIR /app
WORKDIR sub
COPY --chown=1000:1000 --chmod=0640 a.txt b.txt ./
COPY *.md /docs/
COPY conf /etc/app
ADD pack.tar.gz /unpacked/
COPY <<EOF /etc/motd
greeting is $GREETING
EOF
RUN <<EOF
echo "$GREETING" > /app/sub/from-run
id -u >> /app/sub/from-run
EOF
SHELL ["/bin/sh", "-ec"]
RUN echo shell-ok > /app/sub/shell
USER 1000:1000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=2 CMD cat /app/sub/from-run
ONBUILD RUN echo triggered > /tmp/onbuild
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/sub/from-run"]
"#;
    let ctx = context(
        &env,
        "every",
        &[
            ("Containerfile", file),
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("x.md", "x\n"),
            ("y.md", "y\n"),
            ("conf/x.conf", "x=1\n"),
        ],
    );
    std::fs::write(ctx.join("pack.tar.gz"), archive).unwrap();
    let r = build(
        &env,
        &ctx,
        &[
            "-t",
            "every",
            "--format",
            "docker",
            "--build-arg",
            "WHO=berth",
            "--build-arg",
            "BASE=busybox",
            "--annotation",
            "org.example.note=from the command line",
            "--label",
            "extra=1",
        ],
    );
    let out = r.ok();
    assert!(!out.contains("not consumed"), "{out}");
    let img = inspect(&env, "every");
    let c = &img["Config"];
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&"GREETING=hello berth".into()),
        "{c}"
    );
    assert_eq!(c["Labels"]["org.example.team"], "build team");
    assert_eq!(c["Labels"]["version"], "1");
    assert_eq!(c["Labels"]["extra"], "1");
    assert_eq!(
        img["Annotations"]["org.example.note"],
        "from the command line"
    );
    assert_eq!(img["Author"], "berth tests");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object() && c["ExposedPorts"]["53/udp"].is_object());
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["WorkingDir"], "/app/sub");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "cat /app/sub/from-run"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo triggered > /tmp/onbuild"])
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /app/sub/from-run"]));
    // The default command runs as the image says.
    assert_eq!(
        env.berth(&["run", "--rm", "every"]).ok(),
        "hello berth\n0\n"
    );
    let files = env
        .berth(&[
            "run", "--rm", "--user", "0", "every",
            "stat -c '%u:%g %a %n' a.txt b.txt; ls /docs; cat /unpacked/inside/packed.txt /etc/motd shell /etc/app/x.conf",
        ])
        .ok()
        .to_string();
    assert_eq!(
        files,
        "1000:1000 640 a.txt\n1000:1000 640 b.txt\nx.md\ny.md\ntar\ngreeting is hello berth\nshell-ok\nx=1\n"
    );
    // ONBUILD runs in a build that starts from the image.
    let child = context(&env, "child", &[("Containerfile", "FROM every\nUSER 0\n")]);
    build(&env, &child, &["-t", "child"]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "child", "cat /tmp/onbuild"])
            .ok(),
        "triggered\n"
    );
    assert!(inspect(&env, "child")["Config"]["OnBuild"].is_null());
    env.assert_consistent();
}

#[test]
fn the_cache_hits_exactly_what_did_not_change() {
    let env = Env::root();
    busybox_image(&env);
    let file = "\
FROM busybox
ARG V=1
ENV FROM_ARG=$V
COPY one.txt /one.txt
RUN cat /one.txt > /copy-of-one
COPY two.txt /two.txt
RUN echo \"$FROM_ARG\" > /env-from-arg
";
    let ctx = context(
        &env,
        "cache",
        &[
            ("Containerfile", file),
            ("one.txt", "1\n"),
            ("two.txt", "2\n"),
        ],
    );
    let layers = |img: &str| -> Vec<serde_json::Value> {
        inspect(&env, img)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .clone()
    };
    let cold = build(&env, &ctx, &["-t", "c"]);
    assert_eq!(hits(cold.ok()), 0);
    let id = image_id(cold.ok());
    // Unchanged: every layer step hits, and the image is the same.
    let warm = build(&env, &ctx, &["-t", "c"]);
    assert_eq!(hits(warm.ok()), 4, "{}", warm.stdout);
    assert_eq!(image_id(warm.ok()), id);
    // touch of the whole context, then the context moved: still all hits.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for f in ["Containerfile", "one.txt", "two.txt"] {
        std::fs::File::options()
            .write(true)
            .open(ctx.join(f))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    assert_eq!(hits(build(&env, &ctx, &["-t", "c"]).ok()), 4);
    let moved = env.dir.path().join("home/cache-moved");
    std::fs::rename(&ctx, &moved).unwrap();
    let r = build(&env, &moved, &["-t", "c"]);
    assert_eq!(hits(r.ok()), 4);
    assert_eq!(image_id(r.ok()), id);
    // One changed file: the steps before it hit, its COPY and later miss.
    let before = layers("c");
    std::fs::write(moved.join("two.txt"), "two\n").unwrap();
    let r = build(&env, &moved, &["-t", "c"]);
    assert_eq!(hits(r.ok()), 2, "{}", r.stdout);
    let after = layers("c");
    assert_eq!(before[..before.len() - 2], after[..after.len() - 2]);
    assert_ne!(before, after);
    // A changed build arg reaches ENV and the RUN that reads it (buildah
    // #5501): no false hit.
    let r = build(&env, &moved, &["-t", "c", "--build-arg", "V=2"]);
    assert_eq!(hits(r.ok()), 0, "{}", r.stdout);
    assert_eq!(
        env.berth(&["run", "--rm", "c", "cat", "/env-from-arg"])
            .ok(),
        "2\n"
    );
    // --no-cache runs everything; --layers=false neither reads nor writes.
    assert_eq!(hits(build(&env, &moved, &["--no-cache"]).ok()), 0);
    assert_eq!(hits(build(&env, &moved, &["--layers=false"]).ok()), 0);
    env.assert_consistent();
}

#[test]
fn failing_steps_and_bad_files_say_what_went_wrong() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "bad",
        &[
            (
                "Containerfile",
                "FROM busybox\nRUN echo about to fail; exit 3\n",
            ),
            (".containerignore", "secret.txt\n"),
            ("secret.txt", "s\n"),
        ],
    );
    let r = build(&env, &ctx, &[]);
    assert_eq!(r.code, 3, "a RUN's code passes through: {}", r.stderr);
    assert!(
        r.stderr.contains("RUN echo about to fail; exit 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("about to fail"),
        "the output's tail: {}",
        r.stderr
    );
    let write = |text: &str| std::fs::write(ctx.join("Containerfile"), text).unwrap();
    write("FROM busybox\nRUNN true\n");
    build(&env, &ctx, &[]).fails(125, "Containerfile:2: unknown instruction \"RUNN\"");
    write("FROM busybox\nCOPY missing.txt /x\n");
    build(&env, &ctx, &[]).fails(125, "\"missing.txt\" is not in the context");
    write("FROM busybox\nCOPY secret.txt /x\n");
    build(&env, &ctx, &[]).fails(125, "the ignore file excludes it");
    write("FROM busybox\nADD https://example.com/x.tar.gz /x\n");
    build(&env, &ctx, &[]).fails(125, "fetch the file into the context");
    write("FROM --platform=linux/s390x busybox\n");
    build(&env, &ctx, &[]).fails(125, "binfmt");
    // Nothing of the failed builds is left: no container, no mount.
    assert!(env.berth(&["ps", "-a", "-q"]).ok().trim().is_empty());
    assert!(common::mounts_under(env.dir.path()).is_empty());
    env.assert_consistent();
    env.assert_no_temp();
}

#[test]
fn the_same_timestamp_gives_the_same_image() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "repro",
        &[
            (
                "Containerfile",
                "FROM busybox\nCOPY f /f\nRUN mkdir -p /var/x && echo same > /made\n",
            ),
            ("f", "f\n"),
        ],
    );
    // Two cold builds a second apart: every file time differs unless
    // clamped, so only the timestamp makes them byte-identical.
    let c = build(&env, &ctx, &["--no-cache", "--timestamp", "1700000000"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let d = build(&env, &ctx, &["--no-cache", "--timestamp", "1700000000"]);
    assert_eq!(
        image_id(c.ok()),
        image_id(d.ok()),
        "byte-identical with one timestamp"
    );
    let e = build(&env, &ctx, &["--no-cache"]);
    assert_ne!(image_id(e.ok()), image_id(c.ok()));
    let img = inspect(&env, &image_id(c.ok()));
    assert_eq!(img["Created"], "2023-11-14T22:13:20Z");
}

fn rootless_ownership(env: &Env) {
    busybox_image(env);
    let ctx = context(
        env,
        "owners",
        &[
            (
                "Containerfile",
                "FROM busybox\nCOPY --chown=1000:100 f /f\nRUN touch /g && chown 123:456 /g\n",
            ),
            ("f", "f\n"),
        ],
    );
    build(env, &ctx, &["-t", "owners"]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "owners", "stat", "-c", "%u:%g", "/f", "/g"])
            .ok(),
        "1000:100\n123:456\n"
    );
}

/// Ownership survives through the user's subordinate ids.
#[test]
fn rootless_builds_keep_ownership() {
    match Env::user("build-owners") {
        Some(env) => rootless_ownership(&env),
        None => common::skip(
            "rootless_builds_keep_ownership",
            "no unprivileged test user",
        ),
    }
}

/// `history` as podman prints it, `untag`, and `rmi -f NAME` that only
/// untags while the image has other names (podman 4).
#[test]
fn history_untag_and_rmi_by_name() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "hist",
        &[
            (
                "Containerfile",
                "FROM busybox\nENV A=1\nCOPY f /f\nRUN echo x > /x\n",
            ),
            ("f", "f\n"),
        ],
    );
    let id = image_id(build(&env, &ctx, &["-t", "hist", "-t", "second"]).ok());
    let h = env.berth(&["history", "hist"]);
    let lines: Vec<&str> = h.ok().lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("CREATED BY"),
        "{}",
        h.stdout
    );
    assert!(lines[1].starts_with(&id[..12]), "{}", h.stdout);
    assert!(lines[1].contains("echo x > /x"), "{}", h.stdout);
    assert!(
        lines[3].contains("ENV A=1") && lines[3].contains("0 B"),
        "{}",
        h.stdout
    );
    assert_eq!(
        lines.len(),
        1 + inspect(&env, "hist")["History"].as_array().unwrap().len()
    );
    let q = env.berth(&["image", "history", "-q", "--no-trunc", "hist"]);
    assert_eq!(q.ok().lines().next(), Some(id.as_str()));
    let json: serde_json::Value =
        serde_json::from_str(env.berth(&["history", "--format", "json", "hist"]).ok()).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    // rmi -f of one name keeps the image under the other.
    let r = env.berth(&["rmi", "-f", "second"]);
    assert_eq!(r.ok().trim(), "Untagged: localhost/second:latest");
    assert_eq!(inspect(&env, "hist")["Id"], id.as_str());
    // untag takes the rest; the image stays, dangling.
    env.berth(&["untag", "hist"]).ok();
    assert!(inspect(&env, &id)["RepoTags"]
        .as_array()
        .unwrap()
        .is_empty());
    env.berth(&["untag", &id, "nope"])
        .fails(125, "tag not known");
}

/// `diff` lists a container's changes as podman does (and an image's top
/// layer); `export` writes its root as a tar, running or not, without
/// what is mounted in it.
#[test]
fn diff_and_export_show_a_containers_files() {
    let env = Env::root();
    let img = busybox_image(&env);
    env.berth(&[
        "run",
        "--name",
        "changed",
        img,
        "sh",
        "-c",
        "rm /etc/group; echo n > /etc/new; mkdir /made",
    ])
    .ok();
    let d = env.berth(&["diff", "changed"]);
    let lines: Vec<&str> = d.ok().lines().collect();
    for want in ["C /etc", "D /etc/group", "A /etc/new", "A /made"] {
        assert!(lines.contains(&want), "{want} missing: {}", d.stdout);
    }
    let j: serde_json::Value =
        serde_json::from_str(env.berth(&["diff", "--format", "json", "changed"]).ok()).unwrap();
    assert!(j["deleted"]
        .as_array()
        .unwrap()
        .contains(&"/etc/group".into()));
    let tar_names = |bytes: &[u8]| -> Vec<String> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    };
    let out = env.dir.path().join("export.tar");
    env.berth(&["export", "-o", out.to_str().unwrap(), "changed"])
        .ok();
    let names = tar_names(&std::fs::read(&out).unwrap());
    assert!(names.contains(&"etc/new".to_string()) && names.contains(&"bin/busybox".to_string()));
    assert!(!names.contains(&"etc/group".to_string()));
    // Running: /proc is an empty directory in the tar.
    env.berth(&["run", "-d", "--name", "live", img, "sleep", "30"])
        .ok();
    let live = env.cmd(&["export", "live"]).output().unwrap();
    assert!(live.status.success());
    let names = tar_names(&live.stdout);
    assert!(names.iter().any(|n| n == "proc" || n == "proc/"));
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n.len() > 5),
        "nothing of /proc"
    );
    env.berth(&["rm", "-f", "-t", "0", "live", "changed"]).ok();
    env.berth(&["export", "nosuch"]).fails(125, "nosuch");
}

/// A COPY into a path the image made a symlink out of (even one aimed
/// at `../../..` or an absolute host path) lands inside the image, where
/// the container would see it, and nothing is written on the host.
#[test]
fn copy_through_an_image_symlink_stays_inside_the_image() {
    let env = Env::root();
    busybox_image(&env);
    let host = format!("/tmp/berth-escape-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&host);
    let file = format!(
        "FROM busybox\nRUN mkdir -p {host} /owned && ln -s ../../../../../..{host} /app && ln -s {host} /abs && chown 1000:1000 /owned && chmod 750 /owned\nCOPY f /app/f\nCOPY f /abs/g\nCOPY f /owned/deeper/f\n"
    );
    let ctx = context(
        &env,
        "escape",
        &[("Containerfile", &file), ("f", "inside\n")],
    );
    build(&env, &ctx, &["-t", "escape"]).ok();
    assert!(
        !std::path::Path::new(&host).exists(),
        "the build wrote {host} on the host"
    );
    let out = env
        .berth(&[
            "run",
            "--rm",
            "escape",
            "sh",
            "-c",
            &format!("cat {host}/f {host}/g; test -L /app && echo link"),
        ])
        .ok()
        .to_string();
    assert_eq!(out, "inside\ninside\nlink\n");
}

/// RUN --mount: a cache kept between builds, a context bind whose content
/// is in the step's key (a changed file reruns the step, buildah #5400),
/// a tmpfs, and a secret that never reaches the image.
#[test]
fn run_mounts_cache_bind_tmpfs_and_secret() {
    let env = Env::root();
    busybox_image(&env);
    let file = "\
FROM busybox
RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/log; wc -l < /cache/log > /count'
RUN --mount=type=bind,source=data,target=/data cat /data/x > /copied
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/t && grep -q \" /scratch tmpfs\" /proc/mounts && echo tmpfs > /was'
RUN --mount=type=secret,id=token,required=true sh -c 'test \"$(cat /run/secrets/token)\" = s3cr3t && echo seen > /secret-seen'
";
    let ctx = context(
        &env,
        "mounts",
        &[("Containerfile", file), ("data/x", "1\n")],
    );
    let secret = env.dir.path().join("home/token.txt");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let s = format!("id=token,src={}", secret.display());
    let show = "cat /count /copied /was /secret-seen; ls /run/secrets 2>&1; test -e /scratch || test -e /cache || echo no-mount-targets";
    build(&env, &ctx, &["-t", "m", "--secret", &s]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "m", "sh", "-c", show]).ok(),
        "1\n1\ntmpfs\nseen\nls: /run/secrets: No such file or directory\nno-mount-targets\n"
    );
    // The bound file changed: that RUN (and what follows) runs again.
    std::fs::write(ctx.join("data/x"), "2\n").unwrap();
    let r = build(&env, &ctx, &["-t", "m", "--secret", &s]);
    assert_eq!(hits(r.ok()), 1, "only the cache step hits: {}", r.stdout);
    assert_eq!(
        env.berth(&["run", "--rm", "m", "cat", "/copied"]).ok(),
        "2\n"
    );
    // The cache outlives the builds.
    build(&env, &ctx, &["-t", "m", "--no-cache", "--secret", &s]).ok();
    assert_eq!(
        env.berth(&["run", "--rm", "m", "cat", "/count"]).ok(),
        "2\n"
    );
    // The secret's bytes are in no layer.
    let out = env.dir.path().join("m.tar");
    env.berth(&["run", "--name", "mc", "m", "true"]).ok();
    env.berth(&["export", "-o", out.to_str().unwrap(), "mc"])
        .ok();
    let bytes = std::fs::read(&out).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"));
    // A required secret that was not given.
    build(&env, &ctx, &["--no-cache"]).fails(125, "the secret token is required");
    env.assert_consistent();
}

/// A listing whose reader is gone (`| head`) ends by SIGPIPE, as Unix
/// tools do, not with a panic about a broken pipe.
#[test]
fn listings_end_quietly_when_their_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::root();
    busybox_image(&env);
    for args in [
        &["images"][..],
        &["history", "busybox"][..],
        &["ps", "-a"][..],
    ] {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let out = env.cmd(args).stdout(w).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

/// `--squash-all` makes the image one layer with the same files.
#[test]
fn squash_all_makes_one_layer() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "squash",
        &[
            (
                "Containerfile",
                "FROM busybox\nCOPY f /f\nRUN echo r > /r && rm /bin/true\n",
            ),
            ("f", "f\n"),
        ],
    );
    build(&env, &ctx, &["-t", "sq", "--squash-all"]).ok();
    let img = inspect(&env, "sq");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let non_empty = img["History"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(non_empty, 1, "one history entry per layer");
    assert_eq!(
        env.berth(&[
            "run",
            "--rm",
            "sq",
            "sh",
            "-c",
            "cat /f /r; test -e /bin/true || echo gone"
        ])
        .ok(),
        "f\nr\ngone\n"
    );
}

/// `--squash` merges only the build's own layers, over the base's: files
/// added, then deleted, never reach it; deletions of base files and a
/// directory replaced whole (opaque) survive the merge.
#[test]
fn squash_merges_the_new_layers_over_the_base() {
    let env = Env::root();
    busybox_image(&env);
    let base_layers = inspect(&env, "busybox")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    let ctx = context(
        &env,
        "squash-new",
        &[
            (
                "Containerfile",
                "FROM busybox\nRUN mkdir /d && echo 1 > /d/f && echo big > /tmp/scratch\nRUN echo 2 > /d/g && rm /tmp/scratch\nRUN rm /d/f /bin/true\nRUN rm -r /home && mkdir /home && echo only > /home/only\nCOPY f /d/h\n",
            ),
            ("f", "h\n"),
        ],
    );
    build(&env, &ctx, &["-t", "sqn", "--squash"]).ok();
    let img = inspect(&env, "sqn");
    let layers = img["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers + 1, "{img}");
    assert_eq!(
        env.berth(&[
            "run",
            "--rm",
            "sqn",
            "sh",
            "-c",
            "ls /d; ls /home; ls /tmp; test -e /bin/true || echo gone; cat /d/h"
        ])
        .ok(),
        "g\nh\nonly\ngone\nh\n"
    );
    // The merged layer holds the change, not the history of it.
    let tar = env.dir.path().join("sqn.tar");
    env.berth(&["save", "-o", tar.to_str().unwrap(), "sqn"])
        .ok();
    let names = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {0} && mkdir x && tar -xf sqn.tar -C x && for l in $(find x -type f -size +1k); do tar -tf $l 2>/dev/null; done",
            env.dir.path().display()
        ))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout);
    assert!(names.contains("home/.wh..wh..opq"), "{names}");
    assert!(names.contains("bin/.wh.true"), "{names}");
    assert!(!names.contains("scratch"), "{names}");
    assert!(!names.contains("d/f"), "{names}");
}

/// A real HTTP file server (python's http.server) on a free loopback port,
/// serving `dir`; killed when dropped.
struct FileServer(std::process::Child, u16);

impl FileServer {
    fn start(dir: &Path) -> FileServer {
        let port = common::registry::free_port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        common::http::eventually("the file server", 15, || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        FileServer(child, port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ADD URL`: downloaded with the URL's file name and mode 0600, keyed on
/// the content (same file: a hit; changed file: a miss), `--checksum`
/// checked, and a server that is not there is a one-line error.
#[test]
fn add_downloads_urls_keyed_on_their_content() {
    let env = Env::root();
    busybox_image(&env);
    let served = env.dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("notes.txt"), "first\n").unwrap();
    let server = FileServer::start(&served);
    let url = format!("http://127.0.0.1:{}/notes.txt", server.1);
    let file = format!(
        "FROM busybox\nADD {url} /dl/\nADD {url} /named\nRUN stat -c '%a %n' /dl/notes.txt /named > /modes\n"
    );
    let ctx = context(&env, "add-url", &[("Containerfile", &file)]);
    build(&env, &ctx, &["-t", "dl"]).ok();
    assert_eq!(
        env.berth(&[
            "run",
            "--rm",
            "dl",
            "sh",
            "-c",
            "cat /dl/notes.txt /named /modes"
        ])
        .ok(),
        "first\nfirst\n600 /dl/notes.txt\n600 /named\n"
    );
    let again = build(&env, &ctx, &["-t", "dl"]);
    assert_eq!(
        hits(again.ok()),
        3,
        "unchanged download: all hits\n{}",
        again.stdout
    );
    std::fs::write(served.join("notes.txt"), "second\n").unwrap();
    let changed = build(&env, &ctx, &["-t", "dl"]);
    assert_eq!(
        hits(changed.ok()),
        0,
        "changed content: a miss\n{}",
        changed.stdout
    );
    assert_eq!(
        env.berth(&["run", "--rm", "dl", "cat", "/named"]).ok(),
        "second\n"
    );
    // --checksum pins the content.
    use sha2::Digest as _;
    let sum = format!("sha256:{:x}", sha2::Sha256::digest(b"second\n"));
    let pinned = context(
        &env,
        "add-sum",
        &[(
            "Containerfile",
            &format!("FROM busybox\nADD --checksum={sum} {url} /f\n"),
        )],
    );
    build(&env, &pinned, &[]).ok();
    std::fs::write(served.join("notes.txt"), "tampered\n").unwrap();
    build(&env, &pinned, &[]).fails(125, "not --checksum=");
    // A missing file and a server that is not there.
    let missing = context(
        &env,
        "add-404",
        &[(
            "Containerfile",
            &format!("FROM busybox\nADD {url}.gone /f\n"),
        )],
    );
    build(&env, &missing, &[]).fails(125, "the server answered 404");
    drop(server);
    let gone = context(
        &env,
        "add-gone",
        &[("Containerfile", &format!("FROM busybox\nADD {url} /f\n"))],
    );
    let r = build(&env, &gone, &[]);
    r.fails(125, "Containerfile:2: ADD http://127.0.0.1:");
    assert!(r.stderr.contains("network"), "{}", r.stderr);
    env.assert_consistent();
}

/// `--build-context NAME=DIR|docker-image://IMAGE`, and RUN bind mounts
/// `from=` a stage or a named context and read-write ones: each read
/// where it should be, writes of an rw mount reach no file, and a changed
/// file in a named context is a cache miss (buildah #5560).
#[test]
fn build_contexts_and_bind_mounts_from_stages() {
    let env = Env::root();
    busybox_image(&env);
    let extra = context(&env, "named-extra", &[("e.txt", "extra one\n")]);
    let ctx = context(
        &env,
        "named-main",
        &[
            (
                "Containerfile",
                "FROM base AS tools\nRUN mkdir /t && echo tool > /t/tool\nFROM base\nCOPY --from=extra e.txt /e.txt\nRUN --mount=type=bind,from=tools,source=/t,target=/mnt/t cat /mnt/t/tool > /from-stage\nRUN --mount=type=bind,from=extra,target=/mnt/x cat /mnt/x/e.txt > /from-ctx\nRUN --mount=type=bind,source=data,target=/mnt/d,rw=true echo scribble > /mnt/d/new && cat /mnt/d/f > /rw-read\n",
            ),
            ("data/f", "data\n"),
        ],
    );
    let named = format!("extra={}", extra.display());
    let args = [
        "-t",
        "named",
        "--build-context",
        &named,
        "--build-context",
        "base=docker-image://busybox",
    ];
    build(&env, &ctx, &args).ok();
    assert_eq!(
        env.berth(&[
            "run",
            "--rm",
            "named",
            "cat",
            "/e.txt",
            "/from-stage",
            "/from-ctx",
            "/rw-read"
        ])
        .ok(),
        "extra one\ntool\nextra one\ndata\n"
    );
    assert!(
        !ctx.join("data/new").exists(),
        "an rw bind mount's writes stay out of the context"
    );
    let again = build(&env, &ctx, &args);
    assert_eq!(hits(again.ok()), 5, "{}", again.stdout);
    std::fs::write(extra.join("e.txt"), "extra two\n").unwrap();
    let changed = build(&env, &ctx, &args);
    assert_eq!(
        hits(changed.ok()),
        1,
        "the tools stage hits; the rest reads the changed context\n{}",
        changed.stdout
    );
    assert_eq!(
        env.berth(&["run", "--rm", "named", "cat", "/e.txt", "/from-ctx"])
            .ok(),
        "extra two\nextra two\n"
    );
    let bad = format!("base={}", extra.display());
    build(&env, &ctx, &["--build-context", &bad])
        .fails(125, "a directory build context is no base image");
    build(
        &env,
        &ctx,
        &["--build-context", "x=https://example.com/c.tar"],
    )
    .fails(125, "only directories");
    env.assert_consistent();
}

/// A file with two names made by a RUN step stays one file with two names
/// in the layer (a hard-link entry), not two copies of its data.
#[test]
fn hard_links_made_by_run_stay_links() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "hardlinks",
        &[(
            "Containerfile",
            "FROM busybox\nRUN mkdir /h && echo data > /h/one && ln /h/one /h/two\n",
        )],
    );
    build(&env, &ctx, &["-t", "links"]).ok();
    env.berth(&["create", "--name", "lc", "links", "true"]).ok();
    let out = env.cmd(&["export", "lc"]).output().unwrap();
    let mut a = tar::Archive::new(&out.stdout[..]);
    let mut kinds = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name.starts_with("h/") {
            kinds.push((name, e.header().entry_type()));
        }
    }
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        [
            ("h/one".to_string(), tar::EntryType::Regular),
            ("h/two".to_string(), tar::EntryType::Link)
        ]
    );
    assert_eq!(
        env.berth(&[
            "run",
            "--rm",
            "links",
            "sh",
            "-c",
            "stat -c %h /h/one; cat /h/two"
        ])
        .ok(),
        "2\ndata\n"
    );
    env.berth(&["rm", "lc"]).ok();
}

/// On a terminal a build shows BuildKit's kind of live view: each step
/// ends as `=> [n/m] …  0.1s` or `=> CACHED [n/m] …`, and a RUN step's
/// output is shown under it while it runs; without one, podman's lines.
#[test]
fn a_terminal_gets_the_live_build_view() {
    let env = Env::root();
    busybox_image(&env);
    let ctx = context(
        &env,
        "live",
        &[
            (
                "Containerfile",
                "FROM busybox\nRUN echo shown-while-running\nCOPY f /f\n",
            ),
            ("f", "f\n"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let mut s = common::pty::PtySession::spawn(env.cmd(&["build", "-t", "live", c]), 24, 100);
    s.expect("shown-while-running", 20);
    s.expect("=> [2/3] RUN echo shown-while-running  ", 20);
    s.expect("=> [3/3] COPY f /f  ", 20);
    assert_eq!(s.wait(20), 0);
    let mut again = common::pty::PtySession::spawn(env.cmd(&["build", "-t", "live", c]), 24, 100);
    again.expect("=> CACHED [2/3] RUN echo shown-while-running", 20);
    again.expect("=> CACHED [3/3] COPY f /f", 20);
    assert_eq!(again.wait(20), 0);
    // Not a terminal: the plain lines.
    let plain = build(&env, &ctx, &["-t", "live"]);
    assert!(
        plain
            .ok()
            .contains("STEP 2/3: RUN echo shown-while-running"),
        "{}",
        plain.stdout
    );
    assert!(!plain.stdout.contains("=> "), "{}", plain.stdout);
}

/// Two stages that each wait for the other to start: they finish only
/// when built at the same time, and --jobs 1 builds them one by one.
fn parallel_stages(env: &Env) {
    busybox_image(env);
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/sync,id=sync sh -c 'touch /sync/{me}; i=0; \
             while [ ! -e /sync/{other} ]; do i=$((i+1)); [ $i -gt $WAIT ] && exit 7; sleep 1; done; echo {me} > /{me}'"
        )
    };
    let file = format!(
        "ARG WAIT=60\nFROM busybox AS a\nARG WAIT\n{}\nFROM busybox AS b\nARG WAIT\n{}\n\
         FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCMD [\"cat\", \"/a\", \"/b\"]\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let ctx = context(env, "parallel", &[("Containerfile", &file)]);
    // One at a time, the first stage gives up waiting for the second.
    build(env, &ctx, &["--jobs", "1", "--build-arg", "WAIT=1"]).fails(7, "exited with 7");
    let out = build(env, &ctx, &["--jobs", "2", "-t", "both"])
        .ok()
        .to_string();
    // The plain lines still come in order, each step numbered once.
    for (n, step) in [
        "1/10: FROM busybox AS a",
        "4/10: FROM busybox AS b",
        "10/10: CMD",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(out.matches(step).count(), 1, "step {n}: {out}");
    }
    assert!(
        out.find("STEP 3/10").unwrap() < out.find("STEP 4/10").unwrap(),
        "{out}"
    );
    assert_eq!(env.berth(&["run", "--rm", "both"]).ok(), "a\nb\n");
    // A rebuild is all hits, and a job's failure is the build's.
    let again = build(env, &ctx, &["--jobs", "2"]).ok().to_string();
    assert_eq!(hits(&again), 4, "{again}");
    let bad = file.replace("echo b > /b", "echo b > /b; exit 3");
    let ctx = context(env, "parallel-bad", &[("Containerfile", &bad)]);
    build(env, &ctx, &["--jobs", "2"]).fails(3, "exited with 3");
    env.assert_consistent();
}

#[test]
fn independent_stages_build_at_once() {
    parallel_stages(&Env::root());
    match Env::user("build-parallel") {
        Some(env) => parallel_stages(&env),
        None => common::skip(
            "independent_stages_build_at_once (rootless)",
            "no unprivileged test user",
        ),
    }
}

/// An unchanged rebuild decides its COPY hits from the stat cache and the
/// layer cache alone: no file it copies is opened, let alone read into a
/// tar (counted with strace, not timed).
#[test]
fn a_cached_copy_opens_none_of_its_files() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        return common::skip(
            "a_cached_copy_opens_none_of_its_files",
            "strace is not installed (make test-deps installs it)",
        );
    }
    let env = Env::root();
    busybox_image(&env);
    let files: Vec<(String, String)> = (0..50)
        .map(|i| (format!("src/f{i:02}.txt"), format!("file {i}\n")))
        .collect();
    let mut all: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    all.push((
        "Containerfile",
        "FROM busybox\nCOPY src /src\nCOPY src/f07.txt /seven\n",
    ));
    let ctx = context(&env, "cached-copy", &all);
    build(&env, &ctx, &["-t", "cc"]).ok();
    let trace = env.dir.path().join("opens.txt");
    let c = env.cmd(&["build", "-t", "cc", ctx.to_str().unwrap()]);
    let mut s = std::process::Command::new("strace");
    s.args(["-f", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(c.get_program())
        .args(c.get_args());
    s.env_clear().envs(
        c.get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
    );
    let out = s.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hits(&String::from_utf8_lossy(&out.stdout)), 2);
    let opens = std::fs::read_to_string(&trace).unwrap();
    let copied: Vec<&str> = opens.lines().filter(|l| l.contains(".txt\"")).collect();
    assert!(
        copied.is_empty(),
        "a hit opened what it copies:\n{}",
        copied.join("\n")
    );
    env.assert_consistent();
}

//! `berth push` to real registries (plain, Basic, Bearer tokens), pulled
//! back by berth, skopeo and podman, and run.

mod common;

use common::registry::{shared, Auth, Registry, PASS, USER};
use common::{busybox_image, Env};
use std::process::Command;

/// Builds a small image with layers of the build's own (uncompressed in
/// the store, so the push compresses them).
fn built(env: &Env, tag: &str, epoch: &str) -> String {
    let ctx = env
        .dir
        .path()
        .join("home")
        .join(format!("ctx-{}", tag.replace([':', '/'], "-")));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo made > /made\nCMD [\"/bin/busybox\", \"cat\", \"/hello.txt\", \"/made\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "pushed by berth\n").unwrap();
    env.berth(&[
        "build",
        "-q",
        "--no-cache",
        "--timestamp",
        epoch,
        "-t",
        tag,
        ctx.to_str().unwrap(),
    ])
    .ok()
    .trim()
    .to_string()
}

fn creds(r: &Registry) -> Vec<String> {
    match r.push_creds() {
        Some((u, p)) => vec!["--creds".into(), format!("{u}:{p}")],
        None => Vec::new(),
    }
}

fn push_to(
    env: &Env,
    r: &Registry,
    image: &str,
    dest: &str,
    digestfile: &std::path::Path,
) -> common::Run {
    let mut args: Vec<String> = vec![
        "push".into(),
        "--digestfile".into(),
        digestfile.display().to_string(),
    ];
    args.extend(creds(r));
    args.extend([image.to_string(), dest.to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    env.berth(&a)
}

fn skopeo_inspect_digest(r: &Registry, reference: &str) -> String {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
    if let Some((u, p)) = r.push_creds() {
        c.args(["--creds", &format!("{u}:{p}")]);
    }
    let out = c.arg(format!("docker://{reference}")).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn round_trip(auth: Auth) {
    let r = shared(auth);
    let env = Env::root();
    busybox_image(&env);
    let id = built(&env, "app", "1700000000");
    let dest = format!("{}/pushed/app:v1", r.host());
    let df = env.dir.path().join("digest");
    let out = push_to(&env, r, "app", &dest, &df);
    out.ok();
    assert!(
        out.stderr.contains("Writing manifest to image destination"),
        "{}",
        out.stderr
    );
    let digest = std::fs::read_to_string(&df).unwrap();
    assert!(digest.starts_with("sha256:"));
    // skopeo sees the same manifest.
    assert_eq!(skopeo_inspect_digest(r, &dest), digest);
    // A fresh store pulls it back and runs it.
    let other = Env::root();
    if auth != Auth::None {
        other
            .berth(&["login", "-u", USER, "-p", PASS, &r.host()])
            .ok();
    }
    other.berth(&["pull", "-q", &dest]).ok();
    assert_eq!(
        other.berth(&["run", "--rm", &dest]).ok(),
        "pushed by berth\nmade\n"
    );
    assert_eq!(
        other
            .berth(&["image", "inspect", "--format", "{{.Id}}", &dest])
            .ok()
            .trim(),
        id,
        "the same config, so the same image id"
    );
    // Pushed again: every blob is already there.
    let again = push_to(&env, r, "app", &dest, &df);
    assert_eq!(
        again.stderr.matches("skipped: already exists").count(),
        4,
        "{}",
        again.stderr
    );
    // Built again from scratch with the same timestamp, it pushes as
    // the same manifest (layers compress the same way).
    assert_eq!(built(&env, "app", "1700000000"), id);
    let df2 = env.dir.path().join("digest2");
    push_to(&env, r, "app", &format!("{}/pushed/app:v2", r.host()), &df2).ok();
    assert_eq!(
        std::fs::read_to_string(&df2).unwrap(),
        digest,
        "reproducible"
    );
}

#[test]
fn push_to_a_plain_registry() {
    round_trip(Auth::None);
}

#[test]
fn push_with_basic_auth() {
    round_trip(Auth::Basic);
}

#[test]
fn push_with_bearer_tokens() {
    round_trip(Auth::Token);
}

/// A pulled image pushed to another repository of the same registry:
/// its blobs are mounted there, not uploaded again.
#[test]
fn blobs_are_mounted_across_repositories() {
    let r = shared(Auth::Token);
    let env = Env::root();
    let src = format!("{}/library/busybox", r.host());
    env.berth(&["login", "-u", USER, "-p", PASS, &r.host()])
        .ok();
    env.berth(&["pull", "-q", &src]).ok();
    let dest = format!("{}/copies/busybox:latest", r.host());
    let out = env.berth(&["push", &src, &dest]);
    out.ok();
    let layers = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Copying blob"))
        .count();
    assert!(layers > 0);
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("Copying blob") && l.ends_with("skipped: already exists"))
            .count(),
        layers,
        "every layer mounted: {}",
        out.stderr
    );
    assert_eq!(skopeo_inspect_digest(r, &dest).len(), 71);
}

/// podman pulls what berth pushed, and runs it. (The image starts from
/// scratch: the shared busybox fixture has a hardlink entry whose header
/// mode podman applies to the linked file, making busybox 0644 there.)
#[test]
fn podman_runs_what_berth_pushed() {
    let r = shared(Auth::None);
    let podman = match common::podman::Podman::new() {
        Ok(p) => p,
        Err(why) => {
            common::skip("podman_runs_what_berth_pushed", &why);
            return;
        }
    };
    let env = Env::root();
    let ctx = env.dir.path().join("home/scratch-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(ctx.join("hello.txt"), "pushed by berth\n").unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY hello.txt /hello.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo made > /made\"]\nCMD [\"/bin/busybox\", \"cat\", \"/hello.txt\", \"/made\"]\n",
    )
    .unwrap();
    env.berth(&["build", "-q", "-t", "forpodman", ctx.to_str().unwrap()])
        .ok();
    let dest = format!("{}/pushed/forpodman:v1", r.host());
    push_to(&env, r, "forpodman", &dest, &env.dir.path().join("d")).ok();
    podman.ok(&["pull", "-q", "--tls-verify=false", &dest]);
    let out = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "0",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        &dest,
    ]);
    assert_eq!(String::from_utf8_lossy(&out), "pushed by berth\nmade\n");
}

#[test]
fn push_errors_say_what_to_do() {
    let env = Env::root();
    busybox_image(&env);
    built(&env, "local", "1700000000");
    env.berth(&["push", "local"])
        .fails(125, "names no registry");
    let port = common::registry::free_port();
    env.berth(&["push", "local", &format!("127.0.0.1:{port}/x/y")])
        .fails(125, "cannot reach registry");
    let r = shared(Auth::Basic);
    env.berth(&[
        "push",
        "--creds",
        "berthuser:wrong",
        "local",
        &format!("{}/x/y", r.host()),
    ])
    .fails(125, "invalid username or password");
    env.berth(&["push", "local", "oci:/tmp/x"])
        .fails(125, "not supported");
}

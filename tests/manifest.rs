//! `berth manifest`: a multi-platform list made from two built images,
//! pushed to a real registry, read back raw by skopeo and pulled per
//! platform by berth (and by podman for the host's platform).

mod common;

use common::registry::{shared, Auth};
use common::{busybox_image, Env};
use serde_json::Value;
use std::process::Command;

/// Builds `FROM busybox` plus a file saying `word`; returns the image id.
fn built(env: &Env, tag: &str, word: &str) -> String {
    let ctx = env.dir.path().join("home").join(format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("word"), format!("{word}\n")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nCOPY word /word\nCMD [\"/bin/busybox\", \"cat\", \"/word\"]\n",
    )
    .unwrap();
    env.berth(&["build", "-q", "-t", tag, ctx.to_str().unwrap()])
        .ok()
        .trim()
        .to_string()
}

fn manifest_digest(env: &Env, image: &str) -> String {
    env.berth(&["image", "inspect", "--format", "{{.Digest}}", image])
        .ok()
        .trim()
        .to_string()
}

fn skopeo_raw(reference: &str) -> (Vec<u8>, Value) {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (out.stdout, v)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn a_list_of_two_platforms_round_trips_through_a_registry() {
    let r = shared(Auth::None);
    let env = Env::root();
    busybox_image(&env);
    built(&env, "app-amd64", "amd64 build");
    built(&env, "app-arm64", "arm64 build");
    let arm_digest = manifest_digest(&env, "app-arm64");

    let id = env
        .berth(&["manifest", "create", "multi"])
        .ok()
        .trim()
        .to_string();
    let id = id.as_str();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        env.berth(&["manifest", "add", "multi", "app-amd64"])
            .ok()
            .trim(),
        id
    );
    env.berth(&[
        "manifest",
        "add",
        "--arch",
        "arm64",
        "--variant",
        "v8",
        "--annotation",
        "made.by=berth",
        "multi",
        "app-arm64",
    ])
    .ok();
    env.berth(&["manifest", "create", "multi"])
        .fails(125, "already exists");
    env.berth(&["manifest", "add", "multi", "nosuchimage"])
        .fails(125, "pull or build nosuchimage first");
    env.berth(&["manifest", "exists", "multi"]).ok();

    let inspected: Value =
        serde_json::from_str(env.berth(&["manifest", "inspect", "multi"]).ok()).unwrap();
    let entries = inspected["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{inspected}");
    assert_eq!(entries[0]["platform"]["architecture"], "amd64");
    assert_eq!(entries[0]["platform"]["os"], "linux");
    assert_eq!(entries[1]["platform"]["architecture"], "arm64");
    assert_eq!(entries[1]["platform"]["variant"], "v8");
    assert_eq!(entries[1]["digest"], arm_digest.as_str());
    assert_eq!(entries[1]["annotations"]["made.by"], "berth");

    // Pushed: the registry holds an OCI index of both, whose digest is
    // what --digestfile says, and every member by digest.
    let dest = format!("{}/lists/multi:v1", r.host());
    let df = env.dir.path().join("digest");
    env.berth(&[
        "manifest",
        "push",
        "-q",
        "--tls-verify=false",
        "--digestfile",
        df.to_str().unwrap(),
        "multi",
        &dest,
    ])
    .ok();
    let (raw, index) = skopeo_raw(&dest);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(std::fs::read_to_string(&df).unwrap(), sha256(&raw));
    let pushed = index["manifests"].as_array().unwrap();
    assert_eq!(pushed.len(), 2);
    for m in pushed {
        let member = format!("{}/lists/multi@{}", r.host(), m["digest"].as_str().unwrap());
        let (bytes, _) = skopeo_raw(&member);
        assert_eq!(sha256(&bytes), m["digest"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, m["size"].as_u64().unwrap());
    }

    // A fresh store picks each platform's image out of the list.
    let other = Env::root();
    other.berth(&["pull", "-q", &dest]).ok();
    assert_eq!(other.berth(&["run", "--rm", &dest]).ok(), "amd64 build\n");
    other.berth(&["rmi", &dest]).ok();
    other
        .berth(&["pull", "-q", "--platform", "linux/arm64", &dest])
        .ok();
    assert_eq!(
        other
            .berth(&["image", "inspect", "--format", "{{.Architecture}}", &dest])
            .ok()
            .trim(),
        "amd64",
        "the image's own config is unchanged: only the list entry says arm64"
    );
    assert_eq!(other.berth(&["run", "--rm", &dest]).ok(), "arm64 build\n");

    // As a Docker manifest list.
    let docker_dest = format!("{}/lists/multi:docker", r.host());
    env.berth(&[
        "manifest",
        "push",
        "-q",
        "--tls-verify=false",
        "--format",
        "docker",
        "multi",
        &docker_dest,
    ])
    .ok();
    let (_, list) = skopeo_raw(&docker_dest);
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    for m in list["manifests"].as_array().unwrap() {
        assert_eq!(
            m["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }

    // Entries come out by digest prefix; the list goes, its images stay.
    let short = &arm_digest["sha256:".len().."sha256:".len() + 16];
    env.berth(&["manifest", "remove", "multi", short]).ok();
    let after: Value =
        serde_json::from_str(env.berth(&["manifest", "inspect", "multi"]).ok()).unwrap();
    assert_eq!(after["manifests"].as_array().unwrap().len(), 1);
    env.berth(&["manifest", "remove", "multi", short])
        .fails(125, "has no entry");
    let rm = env.berth(&["manifest", "rm", "multi"]).ok().to_string();
    assert!(rm.contains("Untagged: localhost/multi:latest"), "{rm}");
    assert_eq!(env.berth(&["manifest", "exists", "multi"]).code, 1);
    env.berth(&["manifest", "inspect", "multi"])
        .fails(125, "no such manifest list");
    env.berth(&["image", "exists", "app-arm64"]).ok();
    env.assert_consistent();
}

#[test]
fn podman_pulls_a_list_berth_pushed() {
    let r = shared(Auth::None);
    let podman = match common::podman::Podman::new() {
        Ok(p) => p,
        Err(why) => {
            common::skip("podman_pulls_a_list_berth_pushed", &why);
            return;
        }
    };
    let env = Env::root();
    busybox_image(&env);
    built(&env, "papp", "for podman");
    env.berth(&["manifest", "create", "plist", "papp"]).ok();
    let dest = format!("{}/lists/plist:v1", r.host());
    env.berth(&[
        "manifest",
        "push",
        "-q",
        "--tls-verify=false",
        "plist",
        &dest,
    ])
    .ok();
    podman.ok(&["pull", "-q", "--tls-verify=false", &dest]);
    let inspected = podman.ok(&["image", "inspect", "--format", "{{.Digest}}", &dest]);
    let (raw, _) = skopeo_raw(&dest);
    assert_eq!(String::from_utf8_lossy(&inspected).trim(), sha256(&raw));
}

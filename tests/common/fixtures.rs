//! Fixture images, built here from Debian's busybox-static and from
//! generated content: layers are deterministic tars (fixed mtimes), so
//! digests are stable between runs; the large random layers are cached
//! under target/.

use super::push::{digest, push, Pushable};
use super::registry::Registry;
use serde_json::json;
use std::io::Write;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Markers a hostile layer tries to write outside its dir.
pub const ESCAPE_MARKERS: [&str; 4] = [
    "berth-escape-1",
    "berth-escape-2",
    "berth-escape-3",
    "berth-escape-4",
];

/// A layer under construction.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    pub fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        h
    }

    /// Appends an entry with a raw name (no sanitising: hostile names allowed).
    fn raw(
        &mut self,
        mut h: tar::Header,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name = [0; 100];
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname = [0; 100];
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(
            Self::header(tar::EntryType::Directory, mode, 0),
            name,
            None,
            &[],
        )
    }
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_owned(name, data, 0o644, 0)
    }
    pub fn file_owned(&mut self, name: &str, data: &[u8], mode: u32, uid: u64) -> &mut Self {
        self.raw(
            Self::header(tar::EntryType::Regular, mode, uid),
            name,
            None,
            data,
        )
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            Self::header(tar::EntryType::Symlink, 0o777, 0),
            name,
            Some(target),
            &[],
        )
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            Self::header(tar::EntryType::Link, 0o644, 0),
            name,
            Some(target),
            &[],
        )
    }
    /// A regular file preceded by a PAX header carrying one xattr.
    pub fn file_with_xattr(
        &mut self,
        name: &str,
        data: &[u8],
        key: &str,
        value: &str,
    ) -> &mut Self {
        let body = format!("SCHILY.xattr.{key}={value}\n");
        // A PAX record is "LEN KEY=VALUE\n" where LEN counts itself too.
        let mut len = body.len() + 2;
        while format!("{len} {body}").len() != len {
            len = format!("{len} {body}").len();
        }
        let record = format!("{len} {body}");
        let h = Self::header(tar::EntryType::XHeader, 0o644, 0);
        self.raw(h, &format!("PaxHeaders/{name}"), None, record.as_bytes());
        self.file(name, data)
    }
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.raw(h, name, None, &[])
    }
    /// Appends every entry of another tar (e.g. the busybox rootfs), so
    /// hostile entries can be added on top of a working image.
    pub fn append_tar(&mut self, tar_bytes: &[u8]) -> &mut Self {
        let mut a = tar::Archive::new(tar_bytes);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            self.0.append(&h, data.as_slice()).unwrap();
        }
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd_compress(data)
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    // The crate's own zstd dependency.
    let mut out = Vec::new();
    let mut e = ::zstd::stream::write::Encoder::new(&mut out, 3).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap();
    out
}

/// The busybox root filesystem as a tar: busybox-static with an applet
/// symlink per command, /etc/passwd, a file owned by uid 1000, a setuid
/// file and a device node.
pub fn busybox_rootfs() -> Vec<u8> {
    let bin =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (`make test-deps`)");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut l = Layer::new();
    l.dir("bin/", 0o755)
        .file_owned("bin/busybox", &bin, 0o755, 0);
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            l.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    l.dir("etc/", 0o755)
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        .file("etc/group", b"root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
        .dir("home/", 0o755)
        .dir("home/user/", 0o700)
        .file_owned("home/user/owned", b"mine\n", 0o600, 1000)
        .file_owned("bin/setuid-test", b"#!/bin/sh\n", 0o4755, 0)
        .hardlink("bin/busybox-hardlink", "bin/busybox")
        .file_with_xattr("etc/xattr-test", b"x\n", "user.berth", "kept")
        .dir("tmp/", 0o1777)
        .dir("root/", 0o700)
        .dir("dev/", 0o755)
        .chardev("dev/null", 1, 3);
    l.finish()
}

/// An image: config + layers (as stored, i.e. maybe compressed).
pub struct Built {
    pub config: Vec<u8>,
    pub layers: Vec<(Vec<u8>, String)>,
    pub manifest: Vec<u8>,
    pub media_type: String,
}

/// Builds an image from (uncompressed diff, stored blob, media type) triples.
pub fn image(
    layers: Vec<(Vec<u8>, Vec<u8>, &str)>,
    arch: &str,
    docker: bool,
    cmd: &[&str],
) -> Built {
    let diff_ids: Vec<String> = layers.iter().map(|(diff, _, _)| digest(diff)).collect();
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "Labels": {"org.berth.test": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "berth test fixture"}],
    }))
    .unwrap();
    let (mt, cmt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cmt, "digest": digest(&config), "size": config.len()},
        "layers": layers.iter().map(|(_, blob, lmt)| json!({"mediaType": lmt, "digest": digest(blob), "size": blob.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    Built {
        config,
        layers: layers
            .into_iter()
            .map(|(_, b, m)| (b, m.to_string()))
            .collect(),
        manifest,
        media_type: mt.into(),
    }
}

impl Built {
    pub fn pushable(&self, repo: &str, tag: &str) -> Pushable {
        let mut blobs = vec![self.config.clone()];
        blobs.extend(self.layers.iter().map(|(b, _)| b.clone()));
        Pushable {
            repo: repo.into(),
            tag: tag.into(),
            blobs,
            manifests: vec![(self.manifest.clone(), self.media_type.clone())],
        }
    }
}

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZ: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn busybox() -> Built {
    let diff = busybox_rootfs();
    let gz = gzip(&diff);
    image(vec![(diff, gz, GZ)], "amd64", false, &["/bin/sh"])
}

/// The layers of the whiteout fixture: base, then files, then deletions.
pub fn multilayer() -> Built {
    let base = busybox_rootfs();
    let mut l2 = Layer::new();
    l2.dir("data/", 0o755)
        .file("data/keep", b"keep\n")
        .file("data/gone", b"gone\n")
        .dir("olddir/", 0o755)
        .file("olddir/a", b"a\n");
    let l2 = l2.finish();
    let mut l3 = Layer::new();
    l3.dir("data/", 0o755)
        .file("data/.wh.gone", b"")
        .dir("olddir/", 0o755)
        .file("olddir/.wh..wh..opq", b"")
        .file("olddir/b", b"b\n");
    let l3 = l3.finish();
    let (g1, g2) = (gzip(&base), gzip(&l2));
    image(
        vec![(base, g1, GZ), (l2.clone(), g2, GZ), (l3.clone(), l3, TAR)],
        "amd64",
        false,
        &["/bin/sh"],
    )
}

fn arch_image(arch: &str) -> Built {
    let mut l = Layer::new();
    l.file("arch", format!("{arch}\n").as_bytes());
    let d = l.finish();
    let g = gzip(&d);
    image(vec![(d, g, GZ)], arch, false, &["/arch"])
}

/// An index: linux/arm64/v8, an attestation (unknown/unknown), linux/amd64.
pub fn multiarch() -> Pushable {
    let arm = arch_image("arm64");
    let amd = arch_image("amd64");
    let att_layer = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#.to_vec();
    let att_config =
        br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let att_manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest(&att_config), "size": att_config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": digest(&att_layer), "size": att_layer.len()}],
    }))
    .unwrap();
    let desc = |m: &[u8], arch: &str, os: &str, variant: Option<&str>| {
        let mut p = json!({"architecture": arch, "os": os});
        if let Some(v) = variant {
            p["variant"] = json!(v);
        }
        json!({"mediaType": OCI_MANIFEST, "digest": digest(m), "size": m.len(), "platform": p})
    };
    let mut att_desc = desc(&att_manifest, "unknown", "unknown", None);
    att_desc["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": digest(&amd.manifest)});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [desc(&arm.manifest, "arm64", "linux", Some("v8")), att_desc, desc(&amd.manifest, "amd64", "linux", None)],
    }))
    .unwrap();
    let mut blobs = vec![
        arm.config.clone(),
        amd.config.clone(),
        att_config,
        att_layer,
    ];
    blobs.extend(
        arm.layers
            .iter()
            .chain(amd.layers.iter())
            .map(|(b, _)| b.clone()),
    );
    Pushable {
        repo: "multiarch".into(),
        tag: "latest".into(),
        blobs,
        manifests: vec![
            (arm.manifest, OCI_MANIFEST.into()),
            (att_manifest, OCI_MANIFEST.into()),
            (amd.manifest, OCI_MANIFEST.into()),
            (index, OCI_INDEX.into()),
        ],
    }
}

/// A layer that tries to write outside its dir in four ways; unpacking
/// must keep every write inside.
pub fn hostile_escapes() -> Built {
    let mut l = Layer::new();
    l.file(
        &format!("../../../../../../tmp/{}", ESCAPE_MARKERS[0]),
        b"x",
    )
    .symlink("abs", "/")
    .file(&format!("abs/tmp/{}", ESCAPE_MARKERS[1]), b"x")
    .symlink("up", "../../../../../../../..")
    .file(&format!("up/tmp/{}", ESCAPE_MARKERS[2]), b"x")
    .dir("d/", 0o755)
    .symlink("d/link", "/tmp")
    .file(&format!("d/link/{}", ESCAPE_MARKERS[3]), b"x");
    let d = l.finish();
    image(vec![(d.clone(), d, TAR)], "amd64", false, &["/bin/sh"])
}

/// A layer with a hard link to a file outside the layer.
pub fn hostile_hardlink() -> Built {
    let mut l = Layer::new();
    l.file("ok", b"ok")
        .hardlink("stolen-passwd", "../../../../../etc/passwd");
    let d = l.finish();
    image(vec![(d.clone(), d, TAR)], "amd64", false, &["/bin/sh"])
}

/// A gzip layer cut in half (its digest is of the cut bytes, so only the
/// decompressor can notice).
pub fn truncated() -> Built {
    let mut l = Layer::new();
    l.file("big", &pseudo_random(200_000, 7));
    let d = l.finish();
    let g = gzip(&d);
    let cut = g[..g.len() / 2].to_vec();
    image(vec![(d, cut, GZ)], "amd64", false, &["/bin/sh"])
}

/// A small unique image whose layer blob the tests overwrite in the
/// registry's storage.
pub fn tamper_target() -> Built {
    let mut l = Layer::new();
    l.file("tamper-me", &pseudo_random(50_000, 11));
    let d = l.finish();
    let g = gzip(&d);
    image(vec![(d, g, GZ)], "amd64", false, &["/bin/sh"])
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A multi-layer image of `layers` x `mb` MB of incompressible data
/// (cached under target/).
pub fn big(layers: usize, mb: usize) -> Built {
    let mut parts = Vec::new();
    for i in 0..layers {
        let cache = super::cache_dir().join(format!("big-{mb}mb-{i}.tar.gz"));
        let diff_cache = super::cache_dir().join(format!("big-{mb}mb-{i}.tar"));
        if !cache.exists() || !diff_cache.exists() {
            let mut l = Layer::new();
            l.file(
                &format!("blob-{i}"),
                &pseudo_random(mb << 20, 100 + i as u64),
            );
            let d = l.finish();
            std::fs::write(&diff_cache, &d).unwrap();
            std::fs::write(&cache, gzip(&d)).unwrap();
        }
        parts.push((
            std::fs::read(&diff_cache).unwrap(),
            std::fs::read(&cache).unwrap(),
            GZ,
        ));
    }
    image(parts, "amd64", false, &["/bin/sh"])
}

/// Pushes every fixture a registry of its kind needs.
pub fn push_all(r: &Registry) {
    let bb = busybox();
    push(r, &bb.pushable("library/busybox", "latest"));
    if r.auth != super::registry::Auth::None {
        return;
    }
    push(r, &bb.pushable("library/busybox", "1.36"));
    let diff = busybox_rootfs();
    let docker = image(
        vec![(diff.clone(), gzip(&diff), DOCKER_GZ)],
        "amd64",
        true,
        &["/bin/sh"],
    );
    push(r, &docker.pushable("busybox-docker", "latest"));
    let plain = image(
        vec![(diff.clone(), diff.clone(), TAR)],
        "amd64",
        false,
        &["/bin/sh"],
    );
    push(r, &plain.pushable("busybox-plain", "latest"));
    let z = image(
        vec![(diff.clone(), zstd(&diff), ZST)],
        "amd64",
        false,
        &["/bin/sh"],
    );
    push(r, &z.pushable("busybox-zstd", "latest"));
    push(r, &multilayer().pushable("multi", "latest"));
    push(r, &multiarch());
    push(r, &hostile_escapes().pushable("hostile", "escapes"));
    push(r, &hostile_hardlink().pushable("hostile", "hardlink"));
    push(r, &truncated().pushable("truncated", "latest"));
    let t = tamper_target();
    push(r, &t.pushable("tampered", "latest"));
    let hex = digest(&t.layers[0].0)[7..].to_string();
    let path = r.blob_data(&hex);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    push(r, &big(2, 12).pushable("big", "latest"));
}

/// The Debian mirror and suite apt on this machine uses (never hard-coded:
/// read from apt's own sources and /etc/os-release).
pub fn apt_mirror_and_suite() -> Option<(String, String)> {
    let suite = std::fs::read_to_string("/etc/os-release")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VERSION_CODENAME=")
                .map(|s| s.trim_matches('"').to_string())
        })?;
    let mut texts: Vec<String> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in rd.flatten() {
            if e.path()
                .extension()
                .is_some_and(|x| x == "sources" || x == "list")
            {
                texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for t in &texts {
        // deb822: a stanza with URIs and our suite.
        for stanza in t.split("\n\n") {
            let field = |k: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
                if suites.split_whitespace().any(|s| s == suite) && !uris.contains("security") {
                    return Some((uris.split_whitespace().next()?.to_string(), suite));
                }
            }
        }
        // one-line: deb URL SUITE main
        for l in t.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 3 && f[0] == "deb" && f[2] == suite {
                let url = f.iter().find(|x| x.starts_with("http"))?;
                return Some((url.to_string(), suite));
            }
        }
    }
    None
}

/// A Debian root filesystem made with `debootstrap --variant=minbase`,
/// as an uncompressed tar, cached under target/ keyed by mirror and suite.
pub fn debian_rootfs_tar() -> Result<std::path::PathBuf, String> {
    debootstrap_tar("debian", &[], &[])
}

/// MariaDB's start script for the test image: initialise the data dir on
/// first start, let the test user in from anywhere, run the server.
const MARIADB_START: &str = r#"#!/bin/sh
set -e
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
fi
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld /var/lib/mysql
cat >/run/mysqld/init.sql <<SQL
CREATE USER IF NOT EXISTS 'test'@'%' IDENTIFIED BY 'pw';
GRANT ALL ON *.* TO 'test'@'%';
SQL
exec mariadbd --user=mysql --bind-address=0.0.0.0 --skip-name-resolve --init-file=/run/mysqld/init.sql
"#;

/// Debian with mariadb-server and a start script at /usr/local/bin/start-db
/// (the day-one `run -p 3306:3306 mariadb` image, built from Debian packages).
pub fn mariadb_rootfs_tar() -> Result<std::path::PathBuf, String> {
    debootstrap_tar(
        "mariadb",
        &["mariadb-server"],
        &[("usr/local/bin/start-db", MARIADB_START)],
    )
}

/// `debootstrap --variant=minbase [--include=...]` plus extra files (mode
/// 0755), as an uncompressed tar cached under target/.
fn debootstrap_tar(
    name: &str,
    include: &[&str],
    files: &[(&str, &str)],
) -> Result<std::path::PathBuf, String> {
    let (mirror, suite) =
        apt_mirror_and_suite().ok_or("no Debian mirror found in apt's sources")?;
    let mut what = format!("{mirror} {suite} minbase bash");
    if !include.is_empty() || !files.is_empty() {
        what.push_str(&format!(" {include:?} {files:?}"));
    }
    let key = digest(what.as_bytes())[7..19].to_string();
    let out = super::cache_dir().join(format!("{name}-{suite}-{key}.tar"));
    let lock = std::fs::File::create(super::cache_dir().join(format!("{name}.lock")))
        .map_err(|e| e.to_string())?;
    super::flock_file(&lock);
    if out.exists() {
        return Ok(out);
    }
    let work = super::cache_dir().join(format!("debootstrap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut cmd = std::process::Command::new("debootstrap");
    cmd.arg("--variant=minbase");
    if !include.is_empty() {
        cmd.arg(format!("--include={}", include.join(",")));
    }
    let st = cmd
        .arg(&suite)
        .arg(&work)
        .arg(&mirror)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("debootstrap: {e} (`make test-deps` installs it)"))?;
    if !st.success() {
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&work)
            .status();
        return Err(format!("debootstrap {suite} from {mirror} failed"));
    }
    for (path, text) in files {
        use std::os::unix::fs::PermissionsExt;
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
    }
    let tmp = out.with_extension("tmp");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&work)
        .args(["--numeric-owner", "--xattrs", "-cf"])
        .arg(&tmp)
        .args(["--exclude=./dev/*", "."])
        .status()
        .map_err(|e| e.to_string())?;
    let _ = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&work)
        .status();
    if !st.success() {
        return Err("tar of the debootstrap tree failed".into());
    }
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Pushes the Debian fixture (as library/debian and library/ubuntu) once.
pub fn push_debian(r: &Registry) -> Result<(), String> {
    let tar = debian_rootfs_tar()?;
    let diff = std::fs::read(&tar).map_err(|e| e.to_string())?;
    let gz = gzip(&diff);
    let img = image(vec![(diff, gz, GZ)], "amd64", false, &["bash"]);
    push(r, &img.pushable("library/debian", "latest"));
    push(r, &img.pushable("library/ubuntu", "latest"));
    Ok(())
}

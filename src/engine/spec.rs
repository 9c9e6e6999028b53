//! Image config + `run` flags -> an OCI runtime spec, with podman's
//! defaults: its capability set, mounts, masked and read-only paths, and
//! the default seccomp policy.

use super::record::UserMount;
use crate::cgroups::DeviceRule;
use crate::image::manifest::ContainerConfig;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// podman's default capabilities.
pub const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Paths hidden from containers (podman 5's whole list).
pub const MASKED: [&str; 12] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];

/// Paths containers may read but not write (podman's list).
pub const READONLY: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability name the kernel has (for --privileged and ALL).
pub fn all_caps() -> Vec<String> {
    caps::all().iter().map(|c| c.to_string()).collect()
}

fn cap_name(s: &str) -> String {
    let up = s.to_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Why flags could not become a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(s: impl Into<String>) -> SpecError {
    SpecError::Invalid(s.into())
}

/// The capability set after --cap-add/--cap-drop/--privileged.
pub fn capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    let all = all_caps();
    let mut set: Vec<String> = if privileged {
        all.clone()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for d in drop {
        if d.eq_ignore_ascii_case("all") {
            set.clear();
            continue;
        }
        let n = cap_name(d);
        if !all.contains(&n) {
            return Err(invalid(format!("unknown capability {d:?} in --cap-drop")));
        }
        set.retain(|c| *c != n);
    }
    for a in add {
        if a.eq_ignore_ascii_case("all") {
            set = all.clone();
            continue;
        }
        let n = cap_name(a);
        if !all.contains(&n) {
            return Err(invalid(format!("unknown capability {a:?} in --cap-add")));
        }
        if !set.contains(&n) {
            set.push(n);
        }
    }
    set.sort();
    Ok(set)
}

/// Parses `--memory` sizes: 32m, 1g, 512k, 1048576.
pub fn parse_size(s: &str) -> Result<i64, SpecError> {
    let t = s.trim().to_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| {
        invalid(format!(
            "invalid size {s:?}: use a number with an optional unit b, k, m or g"
        ))
    })?;
    if n <= 0.0 {
        return Err(invalid(format!("invalid size {s:?}: must be positive")));
    }
    Ok((n * mult as f64) as i64)
}

/// Parses `-v SRC:DST[:OPTS]` and `-v DST`. A source that is not a path
/// names a volume (kind "volume"; an empty source is an anonymous one),
/// which the engine resolves to its directory.
pub fn parse_volume(v: &str) -> Result<UserMount, SpecError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] if d.starts_with('/') => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(invalid(format!(
            "invalid volume {v:?}: expected [SRC:]DST[:OPTIONS], SRC a host path or a volume name"
        )))
        }
    };
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume {v:?}: the destination must be an absolute path"
        )));
    }
    if src.starts_with('.') {
        return Err(invalid(format!(
            "invalid volume {v:?}: the source must be an absolute host path or a volume name"
        )));
    }
    let named = !src.starts_with('/');
    if named && !src.is_empty() && !crate::util::names::valid(src) {
        return Err(invalid(format!(
            "invalid volume {v:?}: {src:?} is neither an absolute host path nor a volume name"
        )));
    }
    if !named && !Path::new(src).exists() {
        return Err(invalid(format!(
            "invalid volume {v:?}: {src} does not exist on the host"
        )));
    }
    let mut options = vec!["rbind".to_string()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" | "z" | "Z" | "U" | "nosuid" | "nodev" | "noexec" | "private"
            | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => options.push(o.into()),
            "nocopy" | "copy" if named => options.push(o.into()),
            other => return Err(invalid(format!("invalid volume option {other:?} in {v:?}"))),
        }
    }
    Ok(UserMount {
        destination: dst.into(),
        kind: if named { "volume" } else { "bind" }.into(),
        source: src.into(),
        options,
    })
}

/// Parses `--mount type=bind|tmpfs,source=...,target=...,readonly`.
pub fn parse_mount(m: &str) -> Result<UserMount, SpecError> {
    let mut kind = "bind".to_string();
    let mut src = String::new();
    let mut dst = String::new();
    let mut options = Vec::new();
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v.into(),
            "source" | "src" => src = v.into(),
            "target" | "destination" | "dst" => dst = v.into(),
            "readonly" | "ro" if v.is_empty() || v == "true" => options.push("ro".into()),
            "tmpfs-size" => options.push(format!("size={v}")),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            "bind-propagation" | "relabel" => {}
            "volume-nocopy" if v.is_empty() || v == "true" => options.push("nocopy".into()),
            "U" | "chown" if v.is_empty() || v == "true" => options.push("U".into()),
            other => {
                return Err(invalid(format!(
                    "invalid --mount option {other:?} in {m:?}"
                )))
            }
        }
    }
    if dst.is_empty() || !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid --mount {m:?}: target must be an absolute path"
        )));
    }
    match kind.as_str() {
        "bind" => {
            if !src.starts_with('/') || !Path::new(&src).exists() {
                return Err(invalid(format!(
                    "invalid --mount {m:?}: source must be an existing absolute host path"
                )));
            }
            options.insert(0, "rbind".into());
        }
        "tmpfs" => {
            src = "tmpfs".into();
            options.extend(["nosuid".into(), "nodev".into()]);
        }
        "volume" => {
            if !src.is_empty() && !crate::util::names::valid(&src) {
                return Err(invalid(format!(
                    "invalid --mount {m:?}: {src:?} is not a volume name"
                )));
            }
            options.insert(0, "rbind".into());
        }
        other => {
            return Err(invalid(format!(
                "unsupported --mount type {other:?}: use bind, volume or tmpfs"
            )))
        }
    }
    Ok(UserMount {
        destination: dst,
        kind,
        source: src,
        options,
    })
}

/// Parses `--tmpfs /path[:opts]`.
pub fn parse_tmpfs(t: &str) -> Result<UserMount, SpecError> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid --tmpfs {t:?}: the path must be absolute"
        )));
    }
    let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into()];
    options.extend(opts.split(',').filter(|o| !o.is_empty()).map(String::from));
    Ok(UserMount {
        destination: dst.into(),
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        options,
    })
}

/// A host device node given to the container (`--device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    pub host: PathBuf,
    pub container: String,
    pub block: bool,
    pub major: u32,
    pub minor: u32,
    pub access: String,
    /// The host node's permission bits and owner, which the container's
    /// node keeps (a disk the host keeps 0660 is not 0666 inside).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Parses `--device HOST[:CONTAINER][:PERMISSIONS]`; HOST must be a
/// character or block device.
pub fn parse_device(d: &str) -> Result<DeviceNode, SpecError> {
    let parts: Vec<&str> = d.split(':').collect();
    let perms = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, container, access) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms(p) => (*h, *c, *p),
        _ => {
            return Err(invalid(format!(
                "invalid --device {d:?}: use HOST[:CONTAINER][:PERMISSIONS], PERMISSIONS made of r, w and m"
            )))
        }
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(invalid(format!(
            "invalid --device {d:?}: both paths must be absolute"
        )));
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(host).map_err(|e| invalid(format!("--device {host}: {e}")))?;
    let block = m.file_type().is_block_device();
    if !block && !m.file_type().is_char_device() {
        return Err(invalid(format!(
            "--device {host}: not a character or block device"
        )));
    }
    Ok(DeviceNode {
        host: host.into(),
        container: container.into(),
        block,
        major: libc::major(m.rdev()),
        minor: libc::minor(m.rdev()),
        access: access.into(),
        mode: m.mode() & 0o777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// The host's device nodes a `--privileged` container gets, as podman
/// gives them: every character and block device under /dev, but not
/// those of the container's own /dev (null, tty, ptys, shm, mqueue …).
pub fn host_devices() -> Vec<DeviceNode> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const OWN: [&str; 9] = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "fuse",
    ];
    let mut out = Vec::new();
    let mut dirs = vec![(PathBuf::from("/dev"), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = m.file_type();
            if ft.is_dir() {
                if depth < 3 && !["pts", "shm", "mqueue"].contains(&name.as_str()) {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            if !(ft.is_char_device() || ft.is_block_device())
                || (depth == 0 && OWN.contains(&name.as_str()))
            {
                continue;
            }
            let container = path.display().to_string();
            out.push(DeviceNode {
                host: path,
                container,
                block: ft.is_block_device(),
                major: libc::major(m.rdev()),
                minor: libc::minor(m.rdev()),
                access: "rwm".into(),
                mode: m.mode() & 0o777,
                uid: m.uid(),
                gid: m.gid(),
            });
        }
    }
    out.sort_by(|a, b| a.container.cmp(&b.container));
    out
}

/// What every container may use, as runc and crun allow: mknod of any
/// node (using one is what the list guards), the nodes of the minimal
/// /dev, ptys and /dev/net/tun.
pub const DEFAULT_DEVICE_RULES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // null
    "c 1:5 rwm",    // zero
    "c 1:7 rwm",    // full
    "c 1:8 rwm",    // random
    "c 1:9 rwm",    // urandom
    "c 5:0 rwm",    // tty
    "c 5:1 rwm",    // console
    "c 5:2 rwm",    // ptmx
    "c 136:* rwm",  // pts/*
    "c 10:200 rwm", // net/tun
];

/// The device cgroup's allow list: the defaults, `--device` nodes and
/// `--device-cgroup-rule`s. None for `--privileged` (every device) and
/// rootless containers (no device cgroup; they cannot make nodes).
pub fn device_rules(
    privileged: bool,
    rootless: bool,
    devices: &[DeviceNode],
    extra: &[String],
) -> Result<Option<Vec<DeviceRule>>, SpecError> {
    let mut rules: Vec<DeviceRule> = DEFAULT_DEVICE_RULES
        .iter()
        .map(|r| DeviceRule::parse(r).expect("the defaults parse"))
        .collect();
    for d in devices {
        rules.push(DeviceRule {
            kind: if d.block { 'b' } else { 'c' },
            major: Some(d.major),
            minor: Some(d.minor),
            access: d.access.clone(),
        });
    }
    for r in extra {
        rules.push(DeviceRule::parse_flag(r).map_err(|e| invalid(e.to_string()))?);
    }
    Ok((!privileged && !rootless).then_some(rules))
}

/// Everything the spec is made of.
pub struct SpecInput<'a> {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub hostname: String,
    pub tty: bool,
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    /// None: no filter (unconfined or privileged).
    pub seccomp: Option<Value>,
    pub privileged: bool,
    pub read_only: bool,
    pub network_host: bool,
    /// Join this network namespace instead of a new one (`container:`, `ns:`).
    pub network_path: Option<String>,
    pub rootfs: &'a Path,
    /// The overlay mounted over the root, if it is not a plain directory
    /// (the spec's first mount, at `/`).
    pub overlay: Option<Overlay>,
    /// `--device`: host nodes made in the container (bound, rootless).
    pub devices: Vec<DeviceNode>,
    /// berth runs rootless: no device nodes can be made.
    pub rootless: bool,
    /// The device cgroup's allow list; None: every device (privileged,
    /// or rootless, which has no device cgroup).
    pub device_rules: Option<Vec<DeviceRule>>,
    /// `--init`: the init binary to run as PID 1.
    pub init: Option<PathBuf>,
    /// Files bound over /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, PathBuf)>,
    pub user_mounts: Vec<UserMount>,
    pub memory: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub pids: Option<i64>,
    pub cgroup_v2: bool,
    /// `--sysctl`: namespaced kernel parameters.
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--annotation`.
    pub annotations: &'a std::collections::BTreeMap<String, String>,
    /// The spec's `hooks`, from the hooks dirs.
    pub hooks: Option<Value>,
    /// The container's cgroup as (parent, name), relative to each
    /// hierarchy's root (`linux.cgroupsPath`); None: no cgroup.
    pub cgroup: Option<(String, String)>,
    /// `--userns keep-id`: a user namespace of the container's own with
    /// these uid and gid maps (ids relative to the store's namespace).
    pub id_maps: Option<(
        Vec<super::keep_id::IdMapLine>,
        Vec<super::keep_id::IdMapLine>,
    )>,
}

/// An overlay over the container's root: the lower dirs (top first), the
/// upper and work dirs, and the FUSE program that mounts it, if the
/// kernel does not.
#[derive(Clone, Debug)]
pub struct Overlay {
    pub options: String,
    pub program: Option<PathBuf>,
}

impl Overlay {
    /// The spec's mount at `/`: type `overlay` for the kernel's, or
    /// `fuse.NAME` with the program as its source (as mount(8) names
    /// FUSE filesystems).
    fn mount(&self) -> Value {
        let options: Vec<&str> = self.options.split(',').collect();
        match &self.program {
            None => {
                json!({"destination": "/", "type": "overlay", "source": "overlay", "options": options})
            }
            Some(p) => {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                json!({"destination": "/", "type": format!("fuse.{name}"), "source": p, "options": options})
            }
        }
    }
}

/// Default environment when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Merges image Entrypoint/Cmd with the user's, as docker does.
pub fn command(
    cfg: &ContainerConfig,
    entrypoint: Option<&str>,
    user_cmd: &[String],
) -> Vec<String> {
    let entry: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        // podman takes a JSON array too: --entrypoint '["/bin/sh","-c"]'
        Some(e) => match serde_json::from_str::<Vec<String>>(e) {
            Ok(v) if e.trim_start().starts_with('[') => v,
            _ => vec![e.to_string()],
        },
        None => cfg.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !user_cmd.is_empty() {
        user_cmd.to_vec()
    } else if entrypoint.is_some() {
        Vec::new()
    } else {
        cfg.cmd.clone().unwrap_or_default()
    };
    entry.into_iter().chain(cmd).collect()
}

/// Builds the runtime spec.
pub fn build(i: &SpecInput<'_>) -> Result<oci_spec::runtime::Spec, SpecError> {
    let mut mounts: Vec<Value> = i.overlay.iter().map(Overlay::mount).collect();
    mounts.extend([
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ]);
    if i.cgroup_v2 {
        mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    }
    for (dest, src) in &i.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["bind", "rprivate"]}));
    }
    let mut user = i.user_mounts.clone();
    user.sort_by_key(|m| m.destination.matches('/').count());
    for m in user {
        mounts.push(json!({"destination": m.destination, "type": m.kind, "source": m.source, "options": m.options}));
    }
    // Rootless: no device nodes can be made; the host's are bound, as
    // plain bind mounts of the spec (podman's way), not `linux.devices`.
    if i.rootless {
        for d in &i.devices {
            mounts.push(json!({"destination": d.container, "type": "bind", "source": d.host, "options": ["bind", "rprivate", "nosuid", "noexec"]}));
        }
    }
    let args = match &i.init {
        Some(host) => {
            mounts.push(super::init::mount(host));
            super::init::wrap(&i.args)
        }
        None => i.args.clone(),
    };
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "mount"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "cgroup"}),
    ];
    match (&i.network_path, i.network_host) {
        (Some(p), _) => namespaces.push(json!({"type": "network", "path": p})),
        (None, false) => namespaces.push(json!({"type": "network"})),
        (None, true) => {}
    }
    let mut resources = json!({});
    if let Some(m) = i.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(q) = i.cpu_quota {
        resources["cpu"] = json!({"quota": q, "period": 100000});
    }
    if let Some(p) = i.pids {
        resources["pids"] = json!({"limit": p});
    }
    if let Some(rules) = &i.device_rules {
        let mut list = vec![json!({"allow": false, "access": "rwm"})];
        list.extend(rules.iter().map(|r| {
            let mut v = json!({"allow": true, "type": r.kind.to_string(), "access": r.access});
            if let Some(m) = r.major {
                v["major"] = json!(m);
            }
            if let Some(m) = r.minor {
                v["minor"] = json!(m);
            }
            v
        }));
        resources["devices"] = json!(list);
    }
    if i.id_maps.is_some() {
        namespaces.push(json!({"type": "user"}));
    }
    let mut linux = json!({"namespaces": namespaces, "resources": resources});
    if !i.sysctls.is_empty() {
        linux["sysctl"] = json!(i.sysctls);
    }
    if let Some((parent, name)) = &i.cgroup {
        linux["cgroupsPath"] = json!(format!("/{parent}/{name}").replace("//", "/"));
    }
    if let Some((uids, gids)) = &i.id_maps {
        let map = |m: &[super::keep_id::IdMapLine]| {
            m.iter()
                .map(|l| json!({"containerID": l.inside, "hostID": l.outside, "size": l.count}))
                .collect::<Vec<_>>()
        };
        linux["uidMappings"] = json!(map(uids));
        linux["gidMappings"] = json!(map(gids));
    }
    if !i.devices.is_empty() && !i.rootless {
        linux["devices"] = json!(i
            .devices
            .iter()
            .map(|d| json!({"path": d.container, "type": if d.block { "b" } else { "c" }, "major": d.major, "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid}))
            .collect::<Vec<_>>());
    }
    if !i.privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    if let Some(s) = &i.seccomp {
        linux["seccomp"] = s.clone();
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": i.tty,
            "user": {"uid": i.uid, "gid": i.gid, "additionalGids": i.groups},
            "args": args,
            "env": i.env,
            "cwd": i.cwd,
            "capabilities": {"bounding": i.caps, "effective": i.caps, "permitted": i.caps, "inheritable": [], "ambient": []},
            "noNewPrivileges": i.no_new_privileges,
        },
        "root": {"path": i.rootfs, "readonly": i.read_only},
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": i.annotations,
    });
    if let Some(h) = &i.hooks {
        spec["hooks"] = h.clone();
    }
    serde_json::from_value(spec)
        .map_err(|e| invalid(format!("internal error building the runtime spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_entrypoint_and_cmd_like_docker() {
        let cfg = ContainerConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["default".into()]),
            ..Default::default()
        };
        assert_eq!(command(&cfg, None, &[]), ["/entry", "default"]);
        assert_eq!(command(&cfg, None, &["x".into()]), ["/entry", "x"]);
        assert_eq!(command(&cfg, Some("/bin/echo"), &[]), ["/bin/echo"]);
        assert_eq!(
            command(&cfg, Some("/bin/echo"), &["a".into()]),
            ["/bin/echo", "a"]
        );
        assert_eq!(command(&cfg, Some(""), &["sh".into()]), ["sh"]);
        assert_eq!(
            command(&cfg, Some(r#"["/bin/echo","x y"]"#), &["z".into()]),
            ["/bin/echo", "x y", "z"]
        );
        assert_eq!(command(&cfg, Some("[oops"), &[]), ["[oops"]);
    }

    #[test]
    fn capability_flags() {
        let d = capabilities(&[], &[], false).unwrap();
        assert_eq!(d.len(), 11);
        let c = capabilities(&["net_admin".into()], &["chown".into()], false).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".into()) && !c.contains(&"CAP_CHOWN".into()));
        assert!(capabilities(&[], &["all".into()], false)
            .unwrap()
            .is_empty());
        assert!(capabilities(&["bogus".into()], &[], false).is_err());
        assert_eq!(
            capabilities(&[], &[], true).unwrap().len(),
            all_caps().len()
        );
    }

    #[test]
    fn sizes_and_mounts() {
        assert_eq!(parse_size("32m").unwrap(), 32 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("lots").is_err());
        assert!(parse_volume("./relative:/x").is_err());
        assert!(parse_volume("bad name:/x").is_err());
        let named = parse_volume("dbdata:/var/lib/mysql:nocopy").unwrap();
        assert_eq!(
            (named.kind.as_str(), named.source.as_str()),
            ("volume", "dbdata")
        );
        let anon = parse_volume("/scratch").unwrap();
        assert_eq!((anon.kind.as_str(), anon.source.as_str()), ("volume", ""));
        assert!(parse_volume("/tmp:/x:ro")
            .unwrap()
            .options
            .contains(&"ro".to_string()));
        assert!(parse_volume("/tmp:/x:bogus").is_err());
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m")
                .unwrap()
                .kind,
            "tmpfs"
        );
        assert!(parse_mount("type=image,target=/t").is_err());
        assert_eq!(parse_mount("type=volume,target=/t").unwrap().kind, "volume");
        assert_eq!(
            parse_tmpfs("/run:size=1m").unwrap().options.last().unwrap(),
            "size=1m"
        );
    }
}

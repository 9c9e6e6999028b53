//! What `berth info` reports: the host, the store and the registries, in
//! podman's shape (its JSON keys; its Go field names come from
//! [`go_names`]), so that scripts reading `podman info` read berth's.

use super::container::Containers;
use super::Engine;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The whole report.
#[derive(Serialize, Debug)]
pub struct Info {
    pub host: Host,
    pub store: Store,
    pub registries: BTreeMap<String, Vec<String>>,
    pub version: Version,
}

/// The machine and how berth runs containers on it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub arch: String,
    pub buildah_version: String,
    pub cgroup_manager: String,
    pub cgroup_version: String,
    pub conmon: Program,
    pub cpus: usize,
    pub distribution: Distribution,
    pub event_logger: String,
    pub hostname: String,
    pub kernel: String,
    pub log_driver: String,
    pub mem_free: u64,
    pub mem_total: u64,
    pub network_backend: String,
    pub oci_runtime: Program,
    pub os: String,
    pub security: Security,
    pub slirp4netns: Program,
    pub swap_free: u64,
    pub swap_total: u64,
    pub uptime: String,
}

/// A program berth uses: its own binary for the monitor and the runtime.
#[derive(Serialize, Debug)]
pub struct Program {
    pub name: String,
    pub package: String,
    pub path: String,
    pub version: String,
}

/// /etc/os-release.
#[derive(Serialize, Debug)]
pub struct Distribution {
    pub distribution: String,
    pub version: String,
    pub codename: String,
}

/// How containers are confined.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    pub rootless: bool,
    pub seccomp_enabled: bool,
    pub selinux_enabled: bool,
    pub apparmor_enabled: bool,
}

/// The local store.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    pub config_file: String,
    pub container_store: ContainerCounts,
    pub graph_driver_name: String,
    pub graph_options: BTreeMap<String, String>,
    pub graph_root: String,
    pub graph_status: BTreeMap<String, String>,
    pub image_store: Count,
    pub run_root: String,
    pub volume_path: String,
}

/// Containers by state.
#[derive(Serialize, Debug)]
pub struct ContainerCounts {
    pub number: usize,
    pub paused: usize,
    pub running: usize,
    pub stopped: usize,
}

/// A number of things.
#[derive(Serialize, Debug)]
pub struct Count {
    pub number: usize,
}

/// berth's own version, also printed by `berth version`.
#[derive(Serialize, Debug, Clone)]
pub struct Version {
    #[serde(rename = "APIVersion")]
    pub api_version: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "BuiltTime")]
    pub built_time: String,
    #[serde(rename = "Built")]
    pub built: i64,
    #[serde(rename = "OsArch")]
    pub os_arch: String,
    #[serde(rename = "Os")]
    pub os: String,
}

/// The podman interface berth speaks (its system tests are berth's check).
pub const PODMAN_API_VERSION: &str = "4.3.1";

/// berth's version; built when the running binary was written.
pub fn version() -> Version {
    let built = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .map(chrono::DateTime::<chrono::Utc>::from)
        .unwrap_or_default();
    Version {
        api_version: PODMAN_API_VERSION.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        built_time: built.format("%a %b %e %H:%M:%S %Y").to_string(),
        built: built.timestamp(),
        os_arch: format!(
            "linux/{}",
            crate::image::manifest::Platform::host().architecture
        ),
        os: "linux".into(),
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A `KEY=VALUE` file such as /etc/os-release.
fn key_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// /proc/meminfo in bytes.
fn meminfo() -> BTreeMap<String, u64> {
    read("/proc/meminfo")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kb: u64 = v.split_whitespace().next()?.parse().ok()?;
            Some((k.to_string(), kb * 1024))
        })
        .collect()
}

/// Gathers the report. Reads only small files and the container records.
pub fn gather(engine: &Engine) -> Result<Info, super::EngineError> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let v = version();
    let own = |name: &str| Program {
        name: name.into(),
        package: format!("berth {}", v.version),
        path: exe.clone(),
        version: format!("berth version {}", v.version),
    };
    let os = key_values(&read("/etc/os-release"));
    let mem = meminfo();
    let uts = nix::sys::utsname::uname().ok();
    let uptime = read("/proc/uptime")
        .split('.')
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let slirp = crate::util::fsutil::which("slirp4netns");
    let containers = Containers::new(engine.store.root()).list();
    let count = |s: &str| {
        containers
            .iter()
            .filter(|c| super::inspect::status(c) == s)
            .count()
    };
    let mut graph_options = BTreeMap::new();
    if let Some(p) = &engine.storage.mount_program {
        graph_options.insert("overlay.mount_program".into(), p.display().to_string());
    }
    let host = Host {
        arch: crate::image::manifest::Platform::host().architecture,
        buildah_version: v.version.clone(),
        cgroup_manager: "cgroupfs".into(),
        cgroup_version: match crate::cgroups::detect() {
            crate::cgroups::Mode::V2 => "v2".into(),
            crate::cgroups::Mode::V1 => "v1".into(),
        },
        conmon: own("berth"),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        distribution: Distribution {
            distribution: os.get("ID").cloned().unwrap_or_default(),
            version: os.get("VERSION_ID").cloned().unwrap_or_default(),
            codename: os.get("VERSION_CODENAME").cloned().unwrap_or_default(),
        },
        event_logger: "file".into(),
        hostname: uts
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned())
            .unwrap_or_default(),
        kernel: uts
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        log_driver: "k8s-file".into(),
        mem_free: mem.get("MemAvailable").copied().unwrap_or(0),
        mem_total: mem.get("MemTotal").copied().unwrap_or(0),
        network_backend: "berth".into(),
        oci_runtime: own("berth"),
        os: "linux".into(),
        security: Security {
            rootless: engine.paths.rootless,
            seccomp_enabled: true,
            selinux_enabled: false,
            apparmor_enabled: false,
        },
        slirp4netns: Program {
            name: "slirp4netns".into(),
            package: String::new(),
            path: slirp.map(|p| p.display().to_string()).unwrap_or_default(),
            version: String::new(),
        },
        swap_free: mem.get("SwapFree").copied().unwrap_or(0),
        swap_total: mem.get("SwapTotal").copied().unwrap_or(0),
        uptime: crate::util::human::duration(uptime),
    };
    let store = Store {
        config_file: String::new(),
        container_store: ContainerCounts {
            number: containers.len(),
            paused: count("paused"),
            running: containers.iter().filter(|c| c.is_running()).count(),
            stopped: count("exited") + count("created"),
        },
        graph_driver_name: if engine.storage.copy {
            "vfs"
        } else {
            "overlay"
        }
        .into(),
        graph_options,
        graph_root: engine.store.root().display().to_string(),
        graph_status: BTreeMap::new(),
        image_store: Count {
            number: engine.store.images()?.len(),
        },
        run_root: engine.paths.runroot.display().to_string(),
        volume_path: engine.store.root().join("volumes").display().to_string(),
    };
    let mut registries = BTreeMap::new();
    registries.insert("search".into(), engine.conf.search.clone());
    Ok(Info {
        host,
        store,
        registries,
        version: v,
    })
}

/// The same document keyed by podman's Go field names (`.Host.OCIRuntime.Name`),
/// for `--format` templates.
pub fn go_names(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (go_name(k), go_names(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(go_names).collect()),
        other => other.clone(),
    }
}

fn go_name(k: &str) -> String {
    match k {
        "ociRuntime" => "OCIRuntime".into(),
        "cgroupVersion" => "CgroupsVersion".into(),
        "cpus" => "CPUs".into(),
        "os" => "OS".into(),
        _ => {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

//! A `run`/`create` request: the flags as given (`RunOptions`), and the
//! same checked and parsed (`CreateRequest`) before anything is pulled or
//! written, as podman's specgen: a bad port, device, size or policy costs
//! no download and leaves nothing behind.

use super::keep_id::{KeepId, KeepIdError};
use super::netsetup::NetSetupError;
use super::record::UserMount;
use super::spec::{self, SpecError};
use super::Engine;
use crate::cgroups::DeviceRule;
use crate::image::pull::PullOptions;
use crate::network::NetworkError;
use std::path::PathBuf;

/// What `berth run` was asked to do (flags already split, not yet checked).
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub image: String,
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub remove: bool,
    pub interactive: bool,
    pub tty: bool,
    pub init: bool,
    pub read_only: bool,
    pub volumes: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]`
    pub volumes_from: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--device HOST[:CONTAINER][:PERMISSIONS]`
    pub devices: Vec<String>,
    /// `--device-cgroup-rule 'c 1:11 rw'`
    pub device_cgroup_rules: Vec<String>,
    pub security_opt: Vec<String>,
    pub network: Option<String>,
    pub network_alias: Vec<String>,
    pub ip: Option<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub add_host: Vec<String>,
    /// `--sysctl KEY=VALUE`
    pub sysctls: Vec<String>,
    /// `--annotation KEY=VALUE`
    pub annotations: Vec<String>,
    pub userns: Option<String>,
    /// IMAGE is a directory to use as the rootfs.
    pub rootfs: bool,
    /// The image itself, not looked up by name: a build step's state,
    /// which is not in the store's index.
    pub base: Option<Box<crate::image::store::ImageRecord>>,
    pub cgroup_parent: Option<String>,
    pub cgroups: Option<String>,
    pub pull: PullOptions,
    /// Run in the background under a monitor (`-d`).
    pub detach: bool,
    /// Only create the container (`berth create`); `start` runs it.
    pub create_only: bool,
    /// `--restart` policy (detached containers).
    pub restart: Option<String>,
    /// `--stop-signal`
    pub stop_signal: Option<String>,
    /// Write the container id here (`--cidfile`).
    pub cidfile: Option<PathBuf>,
    /// Write the container's pid here once it runs (detached).
    pub pidfile: Option<PathBuf>,
    /// Write the monitor's pid here once the container runs (detached).
    pub conmon_pidfile: Option<PathBuf>,
    /// Remove a container that has the requested name first.
    pub replace: bool,
    /// k8s-file, none or passthrough.
    pub log_driver: Option<String>,
    /// `--log-opt max-size=SIZE`
    pub log_max_size: Option<i64>,
    /// `--stop-timeout`
    pub stop_timeout: Option<u64>,
    /// `--label KEY=VALUE`
    pub labels: Vec<String>,
    /// `--unsetenv KEY`: a default or image variable the container does not get.
    pub unsetenv: Vec<String>,
    /// `--unsetenv-all`: no default or image variables at all.
    pub unsetenv_all: bool,
    /// `--pull`: when to pull the image.
    pub pull_policy: crate::image::pull::PullPolicy,
    /// `--rmi`: remove the image too once the container is removed (`--rm`).
    pub rmi: bool,
    /// `--tz`: a zone of the host's /usr/share/zoneinfo, or `local`.
    pub tz: Option<String>,
    /// `--attach stdin|stdout|stderr` (empty: all of them).
    pub attach: Vec<String>,
    /// `--timeout`: seconds before the container is killed.
    pub timeout: Option<u64>,
    /// `--preserve-fds N`
    pub preserve_fds: u32,
    /// `--http-proxy` (podman's default true): the caller's proxy
    /// variables pass into the container.
    pub http_proxy: bool,
}

/// The proxy variables `--http-proxy` passes on.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "ftp_proxy",
    "FTP_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// A flag that cannot be used, found before anything was done.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    KeepId(#[from] KeepIdError),
    #[error(transparent)]
    Net(#[from] NetSetupError),
    #[error(transparent)]
    Network(#[from] NetworkError),
}

fn invalid(s: impl Into<String>) -> RequestError {
    RequestError::Invalid(s.into())
}

/// A request whose flags are all checked and parsed.
pub struct CreateRequest {
    /// The flags as given (names, env, image, ...).
    pub o: RunOptions,
    /// `--userns keep-id`: the id mapping.
    pub keep_id: Option<KeepId>,
    /// The capabilities it keeps.
    pub caps: Vec<String>,
    /// Its seccomp profile (None: unconfined).
    pub seccomp: Option<serde_json::Value>,
    pub no_new_privileges: bool,
    /// `--device` nodes.
    pub devices: Vec<spec::DeviceNode>,
    /// Its device cgroup rules (None: every device, `--privileged`).
    pub device_rules: Option<Vec<DeviceRule>>,
    /// The init binary on the host (`--init`).
    pub init: Option<PathBuf>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--cpus` as a quota per 100 ms period.
    pub cpu_quota: Option<i64>,
    /// `-v`, `--mount` and `--tmpfs`, parsed.
    pub user_mounts: Vec<UserMount>,
    /// `--sysctl`, checked to be namespaced.
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--annotation`, for the spec (and the hooks' conditions).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// How the root filesystem is made (decided once, here).
    pub rootfs_driver: super::rootfs::RootfsDriver,
    /// `--tz`: the host's zone file that becomes /etc/localtime.
    pub localtime: Option<PathBuf>,
}

/// The host's zone file for `--tz ZONE` (`local`: the host's own
/// /etc/localtime). A zone is a name under /usr/share/zoneinfo; `..` in it
/// is refused, so `--tz` reads nothing else.
fn timezone(tz: &str) -> Result<PathBuf, RequestError> {
    const ZONES: &str = "/usr/share/zoneinfo";
    let path = if tz == "local" {
        std::fs::canonicalize("/etc/localtime")
            .map_err(|e| invalid(format!("--tz local: the host's /etc/localtime: {e}")))?
    } else {
        let clean = !tz.is_empty()
            && !tz.starts_with('/')
            && tz
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        let p = std::path::Path::new(ZONES).join(tz);
        let real = std::fs::canonicalize(&p)
            .ok()
            .filter(|r| clean && r.starts_with(ZONES));
        real.ok_or_else(|| {
            invalid(format!(
                "invalid --tz {tz:?}: no such time zone in {ZONES} (e.g. Europe/Berlin, UTC, or local)"
            ))
        })?
    };
    if !path.is_file() {
        return Err(invalid(format!(
            "invalid --tz {tz:?}: {} is not a zone file",
            path.display()
        )));
    }
    Ok(path)
}

/// The kernel parameters a container may set: those of its own IPC and
/// network namespaces (podman's list).
fn sysctls(
    given: &[String],
    network_host: bool,
) -> Result<std::collections::BTreeMap<String, String>, RequestError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out = std::collections::BTreeMap::new();
    for s in given {
        let Some((k, v)) = s.split_once('=') else {
            return Err(invalid(format!(
                "invalid --sysctl {s:?}: use KEY=VALUE, e.g. net.ipv4.ip_unprivileged_port_start=80"
            )));
        };
        let net = k.starts_with("net.");
        if !(net || k.starts_with("fs.mqueue.") || IPC.contains(&k)) {
            return Err(invalid(format!(
                "sysctl {k:?} is not allowed: only net.*, fs.mqueue.* and the IPC ones (kernel.msg*, kernel.sem, kernel.shm*) belong to a container's namespaces"
            )));
        }
        if net && network_host {
            return Err(invalid(format!(
                "sysctl {k:?} is not allowed with --network host: it would change the host's network"
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

impl CreateRequest {
    /// Checks every flag of `o`; nothing is pulled or written.
    pub fn check(o: RunOptions, engine: &Engine) -> Result<CreateRequest, RequestError> {
        let keep_id = super::keep_id::parse(o.userns.as_deref(), engine.paths.rootless)?;
        if o.tty && o.interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            tracing::debug!("-t with a stdin that is not a terminal");
        }
        let caps = spec::capabilities(&o.cap_add, &o.cap_drop, o.privileged)?;
        let (seccomp, nnp) = seccomp(&o, &caps)?;
        let mut devices = o
            .devices
            .iter()
            .map(|d| spec::parse_device(d))
            .collect::<Result<Vec<_>, _>>()?;
        if o.privileged && !engine.paths.rootless {
            let asked: Vec<String> = devices.iter().map(|d| d.container.clone()).collect();
            devices.extend(
                spec::host_devices()
                    .into_iter()
                    .filter(|d| !asked.contains(&d.container)),
            );
        }
        let mut device_rules = spec::device_rules(
            o.privileged,
            engine.paths.rootless,
            &devices,
            &o.device_cgroup_rules,
        )?;
        // A FUSE mount program (fuse-overlayfs) mounts the rootfs from inside
        // the container's cgroup: it needs /dev/fuse. The container itself has
        // no such node (and no CAP_MKNOD by default).
        let rootfs_driver = engine.rootfs_driver();
        if let (Some(rules), super::rootfs::RootfsDriver::Fuse(_)) =
            (device_rules.as_mut(), &rootfs_driver)
        {
            rules.push(crate::cgroups::DeviceRule::parse("c 10:229 rwm").expect("valid rule"));
        }
        let init_path = match (o.init, super::init::find()) {
            (false, _) => None,
            (true, Some(p)) => Some(p),
            (true, None) => {
                return Err(invalid(
                    "--init needs catatonit on the host: install the Debian package catatonit",
                ))
            }
        };
        // `--memory 0`, as podman: no limit.
        let memory = o
            .memory
            .as_deref()
            .filter(|m| *m != "0")
            .map(spec::parse_size)
            .transpose()?;
        let cpu_quota = match o.cpus.as_deref() {
            Some(c) => {
                let v: f64 = c.parse().map_err(|_| {
                    invalid(format!(
                        "invalid --cpus {c:?}: use a number such as 0.5 or 2"
                    ))
                })?;
                if v <= 0.0 {
                    return Err(invalid(format!("invalid --cpus {c:?}: must be positive")));
                }
                Some((v * 100_000.0) as i64)
            }
            None => None,
        };
        if let Some(d) = &o.log_driver {
            if !["k8s-file", "json-file", "none", "passthrough"].contains(&d.as_str()) {
                return Err(invalid(format!(
                    "unsupported --log-driver {d:?}: use k8s-file, json-file, none or passthrough"
                )));
            }
        }
        for a in &o.attach {
            if !["stdin", "stdout", "stderr"].contains(&a.as_str()) {
                return Err(invalid(format!(
                    "invalid stream {a:?} for --attach: must be one of stdin, stdout, or stderr"
                )));
            }
        }
        if !o.attach.is_empty() && o.detach {
            return Err(invalid("--attach and --detach cannot be used together"));
        }
        if o.preserve_fds > 0 && (o.detach || o.create_only) {
            return Err(invalid(
                "--preserve-fds passes this berth's descriptors: it works for foreground `run` only",
            ));
        }
        let localtime = o.tz.as_deref().map(timezone).transpose()?;
        if let Some(r) = &o.restart {
            if !super::record::valid_restart(r) {
                return Err(invalid(format!(
                    "invalid --restart {r:?}: use no, on-failure[:N], always or unless-stopped"
                )));
            }
        }
        if let Some(p) = &o.cidfile {
            if p.exists() {
                return Err(invalid(format!(
                    "--cidfile {}: the file exists already",
                    p.display()
                )));
            }
        }
        if let Some(p) = o.pids_limit {
            if p == 0 || p < -1 {
                return Err(invalid(format!(
                    "invalid --pids-limit {p}: use a positive number, or -1 for no limit"
                )));
            }
        }
        // Flags are checked before anything is pulled: a bad port must not
        // cost a download first.
        for p in &o.publish {
            crate::network::ports::parse(p)?;
        }
        let mut user_mounts: Vec<UserMount> = Vec::new();
        for v in &o.volumes {
            user_mounts.push(spec::parse_volume(v)?);
        }
        for m in &o.mounts {
            user_mounts.push(spec::parse_mount(m)?);
        }
        for t in &o.tmpfs {
            user_mounts.push(spec::parse_tmpfs(t)?);
        }
        // The same mount twice is one; two different ones on one path are
        // refused (podman's words).
        let mut seen: Vec<&UserMount> = Vec::new();
        for m in &user_mounts {
            let dest = m.destination.trim_end_matches('/');
            if let Some(other) = seen
                .iter()
                .find(|x| x.destination.trim_end_matches('/') == dest)
            {
                let same =
                    other.kind == m.kind && other.source == m.source && other.options == m.options;
                if !same {
                    return Err(invalid(format!(
                        "{}: duplicate mount destination",
                        m.destination
                    )));
                }
            } else {
                seen.push(m);
            }
        }
        let mut unique: Vec<UserMount> = Vec::new();
        for m in user_mounts {
            if !unique.iter().any(|u| u.destination == m.destination) {
                unique.push(m);
            }
        }
        let user_mounts = unique;
        for h in &o.add_host {
            let ok = h
                .split_once(':')
                .is_some_and(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok());
            if !ok {
                return Err(invalid(format!(
                    "invalid --add-host {h:?}: use HOST:IP, e.g. db.local:10.0.0.5"
                )));
            }
        }
        // --network, --ip, --network-alias and -p together (the image's
        // exposed ports for -P are added once it is there).
        super::netsetup::parse(
            &super::netsetup::NetFlags {
                network: o.network.as_deref(),
                aliases: &o.network_alias,
                ip: o.ip.as_deref(),
                publish: &o.publish,
                publish_all: false,
                exposed: Vec::new(),
            },
            engine.paths.rootless,
        )?;
        let sysctls = sysctls(&o.sysctls, o.network.as_deref() == Some("host"))?;
        let annotations = o
            .annotations
            .iter()
            .map(|a| match a.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(invalid(format!(
                    "invalid --annotation {a:?}: use KEY=VALUE"
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(CreateRequest {
            sysctls,
            annotations,
            rootfs_driver,
            localtime,
            o,
            keep_id,
            caps,
            seccomp,
            no_new_privileges: nnp,
            devices,
            device_rules,
            init: init_path,
            memory,
            cpu_quota,
            user_mounts,
        })
    }
}

fn seccomp(
    o: &RunOptions,
    caps: &[String],
) -> Result<(Option<serde_json::Value>, bool), RequestError> {
    let mut nnp = false;
    let mut profile = if o.privileged {
        None
    } else {
        Some(super::seccomp_profile::default_profile(caps))
    };
    for s in &o.security_opt {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => nnp = true,
            ("no-new-privileges", "false") => nnp = false,
            ("seccomp", "unconfined") => profile = None,
            ("seccomp", file) if !file.is_empty() => {
                let text = std::fs::read_to_string(file).map_err(|e| invalid(format!("reading seccomp profile {file}: {e}")))?;
                profile = Some(super::seccomp_profile::from_docker_json(&text, caps).map_err(|e| invalid(format!("seccomp profile {file}: not a seccomp profile: {e}")))?);
            }
            ("label", _) | ("apparmor", _) => tracing::warn!(
                "--security-opt {s}: berth has no AppArmor or SELinux support; the option is ignored (see the README's Security section)"
            ),
            _ => return Err(invalid(format!("unsupported --security-opt {s:?}: use no-new-privileges, seccomp=unconfined or seccomp=FILE"))),
        }
    }
    Ok((profile, nnp))
}

/// The env the container gets, as podman builds it: the defaults (PATH,
/// container, TERM), the image's Env, less --unsetenv (all of it with
/// --unsetenv-all), then --env-file, -e and HOSTNAME.
pub(super) fn environment(
    img_env: &[String],
    o: &RunOptions,
    hostname: &str,
) -> Result<Vec<String>, RequestError> {
    let mut env: Vec<String> = Vec::new();
    fn set_in(env: &mut Vec<String>, kv: String) {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let mut set = |kv: String| set_in(&mut env, kv);
    set(spec::DEFAULT_PATH.into());
    set("container=berth".into());
    set("TERM=xterm".into());
    for e in img_env {
        set(e.clone());
    }
    if o.unsetenv_all {
        env.clear();
    }
    for k in &o.unsetenv {
        env.retain(|e| e.split('=').next() != Some(k.as_str()));
    }
    if o.http_proxy {
        for k in PROXY_VARS {
            if let Ok(v) = std::env::var(k) {
                set_in(&mut env, format!("{k}={v}"));
            }
        }
    }
    let mut set = |kv: String| set_in(&mut env, kv);
    let mut user_env = Vec::new();
    for f in &o.env_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| invalid(format!("reading --env-file {}: {e}", f.display())))?;
        user_env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    user_env.extend(o.env.iter().cloned());
    for e in user_env {
        if e.contains('=') {
            set(e);
        } else if e.is_empty() {
            return Err(invalid("invalid empty --env"));
        } else if let Ok(v) = std::env::var(&e) {
            set(format!("{e}={v}"));
        }
    }
    if !o.unsetenv_all {
        set_in(&mut env, format!("HOSTNAME={hostname}"));
    }
    Ok(env)
}

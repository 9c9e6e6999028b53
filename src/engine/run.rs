//! `run` and `create`: a checked request (`request.rs`) becomes a
//! container: the image is found (or pulled), the container recorded, its
//! volumes, overlay dirs, /etc files and runtime spec written; then it is
//! started under its monitor (`-d`), left created (`create`), or
//! supervised in this process on the caller's terminal.

use super::container::{random_id, ContainerError, Containers};
use super::record::{ContainerRecord, State};
use super::request::{CreateRequest, RequestError, RunOptions};
use super::rootfs::{CopyLayersError, RootfsDriver};
use super::spec::{self, SpecError, SpecInput};
use super::supervisor::Supervisor;
use super::user;
use super::Engine;
use crate::cgroups::{self, Resources};
use crate::image::progress::Progress;
use crate::image::pull::PullError;
use crate::image::store::{ImageRecord, StoreError};
use crate::monitor::foreground::{self, IoMode};
use crate::monitor::logfile::LogWriter;
use std::path::{Path, PathBuf};

/// How `run` ended for the caller.
#[derive(Debug)]
pub enum RunOutcome {
    /// Foreground: the container and its exit code.
    Exited { id: String, code: i32 },
    /// Detached (or only created): the container's id.
    Detached(String),
}

/// Why `run` failed before the command ran, with podman's exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Volume(#[from] super::volumes::VolumeError),
    #[error(transparent)]
    Lifecycle(#[from] super::lifecycle::LifecycleError),
    #[error(transparent)]
    Net(#[from] super::netsetup::NetSetupError),
    #[error(transparent)]
    KeepId(#[from] super::keep_id::KeepIdError),
    #[error(transparent)]
    Supervise(#[from] super::supervisor::SuperviseError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Rootfs(#[from] CopyLayersError),
    #[error(transparent)]
    Hooks(#[from] super::hooks_dir::HooksDirError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("workdir {workdir:?} does not exist on container {id}")]
    NoWorkdir { workdir: String, id: String },
}

impl RunError {
    /// 126/127 when the command cannot run, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Runtime(e) => e.container_code(),
            RunError::Lifecycle(e) => e.container_code(),
            RunError::NoWorkdir { .. } => Some(126),
            RunError::Supervise(e) => Some(e.exit_code()),
            _ => None,
        }
        .unwrap_or(125)
    }
}

/// Wraps an I/O error with what `run` was doing, for `map_err`.
fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

fn usage(s: impl Into<String>) -> RunError {
    RunError::Usage(s.into())
}

/// Where the container's cgroup goes (relative to the hierarchy's root),
/// or None for no cgroup: `--cgroups disabled`, or rootless without a
/// delegated cgroup v2 subtree (limits then warn that they are ignored).
/// Rootless containers always go under the delegated subtree.
fn cgroup_parent(o: &RunOptions, rootless: bool, res: &Resources) -> Option<String> {
    if o.cgroups.as_deref() == Some("disabled") {
        return None;
    }
    let parent = if rootless {
        cgroups::delegated_parent()
    } else {
        Some(o.cgroup_parent.clone().unwrap_or_else(|| "berth".into()))
    };
    if parent.is_none() && !res.is_empty() {
        tracing::warn!("rootless containers cannot use cgroup limits on this host (no delegated cgroup v2 subtree): --memory, --cpus and --pids-limit are ignored");
    }
    parent.map(|p| p.trim_matches('/').to_string())
}

/// Runs a created container in this process with the caller's stdio
/// until it ends; returns its exit code (125-127 when it could not start).
fn supervise_here(
    engine: &Engine,
    mut sup: Supervisor,
    o: &RunOptions,
    log: Option<&mut LogWriter>,
) -> Result<i32, RunError> {
    let hook = |pid| sup.prestart(pid);
    let outcome = foreground::run(
        foreground::Foreground {
            spec: &sup.spec,
            id: &sup.record.id,
            bundle: sup.bundle(),
            rootfs: sup.rootfs(),
            userns: engine.paths.rootless,
            cache: Some(engine.paths.runroot.join("seccomp")),
            prestart: Some(&hook),
        },
        IoMode {
            attach_out: o.attach.is_empty() || o.attach.iter().any(|s| s == "stdout"),
            attach_err: o.attach.is_empty() || o.attach.iter().any(|s| s == "stderr"),
            preserve_fds: o.preserve_fds,
            timeout: o.timeout.map(std::time::Duration::from_secs),
            ..IoMode::plain(o.tty, o.interactive)
        },
        sup.cgroup(),
        log,
    );
    match outcome {
        Ok(done) => {
            let (_, code, oom) = sup.exited(done.exit_code, false);
            // podman records a --timeout kill as -1, and exits 255.
            sup.finish(if done.timed_out { -1 } else { code }, oom);
            Ok(code)
        }
        Err(e) => {
            sup.finish(e.container_code().unwrap_or(125), false);
            Err(e.into())
        }
    }
}

/// Runs a container in the foreground and returns its exit code.
pub fn run(
    engine: &Engine,
    o: RunOptions,
    progress: &dyn Progress,
) -> Result<RunOutcome, RunError> {
    let req = CreateRequest::check(o, engine)?;
    let o = &req.o;
    // The image (or plain directory) the rootfs comes from.
    // `--rootfs DIR:O`: DIR is an overlay's lower layer, left unchanged.
    let rootfs_dir = match o.image.strip_suffix(":O") {
        Some(d) if o.rootfs => d,
        _ => o.image.as_str(),
    };
    // The directory itself is the root (changes land in it).
    let direct = o.rootfs && rootfs_dir.len() == o.image.len();
    let (image, lowers): (Option<ImageRecord>, Vec<PathBuf>) = if o.rootfs {
        let dir = std::fs::canonicalize(rootfs_dir)
            .map_err(|e| usage(format!("--rootfs {rootfs_dir}: {e}")))?;
        if !dir.is_dir() {
            return Err(usage(format!("--rootfs {}: not a directory", o.image)));
        }
        (None, vec![dir])
    } else {
        use crate::image::pull::PullPolicy;
        let found = match (&o.base, o.pull_policy) {
            (Some(b), _) => Ok((**b).clone()),
            (None, PullPolicy::Always) => Err(StoreError::NotKnown(o.image.clone())),
            (None, _) => engine.store.find(&o.image),
        };
        let img = match found {
            Ok(i) => i,
            Err(StoreError::NotKnown(_)) if o.pull_policy != PullPolicy::Never => {
                crate::image::pull::pull(&engine.store, &engine.conf, &o.image, &o.pull, progress)?
                    .image
            }
            Err(e) => return Err(e.into()),
        };
        let lowers = img
            .chain_ids()
            .iter()
            .rev()
            .map(|c| engine.store.layer_diff(c))
            .collect();
        (Some(img), lowers)
    };
    let cfg = image
        .as_ref()
        .and_then(|i| i.config.config.clone())
        .unwrap_or_default();
    let net = super::netsetup::parse(
        &super::netsetup::NetFlags {
            network: o.network.as_deref(),
            aliases: &o.network_alias,
            ip: o.ip.as_deref(),
            publish: &o.publish,
            publish_all: o.publish_all,
            exposed: cfg
                .exposed_ports
                .as_ref()
                .map(|e| e.keys().cloned().collect())
                .unwrap_or_default(),
        },
        engine.paths.rootless,
    )?;
    if net.ports.is_empty()
        && (!o.publish.is_empty() || o.publish_all)
        && super::netsetup::ports_discarded(&net.mode)
    {
        // podman's words, on stderr before the container's output.
        eprintln!("Port mappings have been discarded as one of the Host, Container, Pod, and None network modes are in use");
    }
    let network_host = net.mode == "host";
    let args = spec::command(&cfg, o.entrypoint.as_deref(), &o.command);
    if args.is_empty() {
        return Err(usage("no command specified: the image has no Cmd or Entrypoint; give one after the image name"));
    }
    let lowers = match (&req.keep_id, o.rootfs) {
        (Some(k), false) => k.mapped_lowers(&lowers)?,
        _ => lowers,
    };
    let lower_refs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
    // keep-id runs as the user unless told otherwise, as in podman.
    let user_spec = match (&req.keep_id, o.user.clone()) {
        (_, Some(u)) => u,
        (Some(k), None) => format!("{}:{}", k.uid, k.gid),
        (None, None) => cfg.user.clone().unwrap_or_default(),
    };
    let mut ids = user::resolve(&user_spec, &lower_refs)?;
    let keep_id_passwd = match (&req.keep_id, &o.user) {
        (Some(k), None) => {
            let image = user::read_first(&lower_refs, "etc/passwd");
            super::keep_id::passwd_with_user(k, &image).map(|(text, home)| {
                ids.home = Some(home);
                text
            })
        }
        _ => None,
    };

    let containers = Containers::new(engine.store.root());
    if let (true, Some(n)) = (o.replace, o.name.as_deref()) {
        if let Ok(old) = containers.find(n) {
            if old.name == n {
                super::lifecycle::remove_forced(&containers, &old.id)?;
            }
        }
    }
    let id = random_id();
    let name = containers.claim(&id, o.name.as_deref())?;
    if let Some(p) = &o.cidfile {
        std::fs::write(p, &id).map_err(io_err(format!("writing --cidfile {}", p.display())))?;
    }
    let dir = containers.dir(&id);
    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let res = Resources {
        memory: req.memory,
        cpu_quota: req.cpu_quota,
        cpu_period: 100_000,
        pids: o.pids_limit.filter(|p| *p > 0),
        devices: req.device_rules.clone(),
    };
    let cgroup_target =
        cgroup_parent(o, engine.paths.rootless, &res).map(|parent| (parent, format!("berth-{id}")));
    let rootfs_mount = if direct {
        lowers[0].clone()
    } else {
        dir.join("rootfs")
    };
    let mut record = ContainerRecord {
        id: id.clone(),
        name: name.clone(),
        image: image
            .as_ref()
            .and_then(|i| crate::image::store::matched_name(i, &o.image))
            .unwrap_or_else(|| o.image.clone()),
        image_digest: image
            .as_ref()
            .map(|i| i.manifest_digest.to_string())
            .unwrap_or_default(),
        remove_image: o.rmi,
        image_id: image
            .as_ref()
            .map(|i| i.id.hex().to_string())
            .unwrap_or_default(),
        command: args.clone(),
        created: now(),
        state: State::Created,
        exit_code: None,
        oom_killed: false,
        started_at: None,
        finished_at: None,
        layers: image
            .as_ref()
            .map(|i| i.chain_ids().iter().map(|c| c.hex().to_string()).collect())
            .unwrap_or_default(),
        monitor: super::container::ProcessId::current(),
        pid: None,
        remove: o.remove,
        stop_signal: o.stop_signal.clone().or(cfg.stop_signal.clone()),
        restart: o.restart.clone(),
        restart_count: 0,
        log_driver: o.log_driver.clone(),
        log_max_size: o.log_max_size.map(|m| m as u64),
        stop_timeout: o.stop_timeout,
        labels: {
            let mut l = cfg.labels.clone().unwrap_or_default();
            for kv in &o.labels {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                l.insert(k.to_string(), v.to_string());
            }
            l
        },
        tty: o.tty,
        interactive: o.interactive,
        net: net.clone(),
        rootfs_mount: Some(rootfs_mount.display().to_string()),
        // Known before anything exists, so a berth killed at any point
        // leaves a record that says what to clean up.
        cgroup: cgroup_target.clone(),
        ..Default::default()
    };
    let vols = super::volumes::Volumes::new(engine.store.root());
    let result = (|| -> Result<Option<i32>, RunError> {
        let image_volumes: Vec<String> = cfg
            .volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        let resolved = super::volumes::resolve(
            &vols,
            &containers,
            req.user_mounts.clone(),
            &o.volumes_from,
            &image_volumes,
            (ids.uid, ids.gid),
        )?;
        record.volumes = resolved.volumes;
        record.anonymous_volumes = resolved.anonymous;
        record.mounts = resolved.mounts.clone();
        // One write for the new record, with its volumes (each write is
        // an fsync on the start path).
        containers.create(&record)?;
        let user_mounts = resolved.mounts;
        let userdata = dir.join("userdata");
        let rootfs = dir.join("rootfs");
        for d in [&userdata, &rootfs] {
            std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        let overlay = if direct {
            None
        } else {
            let (upper, work) = (dir.join("upper"), dir.join("work"));
            for d in [&upper, &work] {
                std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
            }
            // The overlay's root shows the upper dir's mode: the image's.
            if let Ok(m) = std::fs::metadata(&lowers[0]) {
                let _ = std::fs::set_permissions(&upper, m.permissions());
            }
            // (not for a build step, whose upper dir becomes a layer)
            if !o.rootfs && o.base.is_none() {
                super::rootfs::add_mtab(&lowers, &upper).map_err(io_err("adding /etc/mtab"))?;
            }
            if let Some(k) = &req.keep_id {
                // The overlay's root shows the upper dir's owner: root's.
                let (uid, gid) = k.owner(0, 0);
                std::os::unix::fs::lchown(&upper, Some(uid), Some(gid))
                    .map_err(io_err("preparing the upper dir"))?;
            }
            let lower = lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            let mut options = format!(
                "lowerdir={lower},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            if engine.paths.rootless {
                options.push_str(",userxattr");
            }
            match req.rootfs_driver.clone() {
                RootfsDriver::Kernel => Some(spec::Overlay {
                    options,
                    program: None,
                }),
                RootfsDriver::Fuse(p) => Some(spec::Overlay {
                    options,
                    program: Some(p),
                }),
                RootfsDriver::Copy => {
                    super::rootfs::copy_layers(&lowers, &upper)?;
                    None
                }
            }
        };
        let mut etc_files = super::etc_files::write_etc_files(
            &userdata,
            &hostname,
            &name,
            network_host,
            net.mode == "slirp4netns",
            o,
        )
        .map_err(io_err("writing the container's /etc files"))?;
        etc_files.push(
            super::etc_files::container_env(
                &userdata,
                o.privileged.then(|| super::etc_files::ContainerEnv {
                    id: &id,
                    name: &name,
                    image: &record.image,
                    image_id: &record.image_id,
                    rootless: engine.paths.rootless,
                }),
            )
            .map_err(io_err("writing /run/.containerenv"))?,
        );
        if let Some(zone) = &req.localtime {
            let p = userdata.join("localtime");
            std::fs::copy(zone, &p).map_err(io_err(format!("copying {}", zone.display())))?;
            etc_files.push(("/etc/localtime".into(), p));
        }
        if let Some(text) = &keep_id_passwd {
            let p = userdata.join("passwd");
            std::fs::write(&p, text).map_err(io_err("writing passwd"))?;
            etc_files.push(("/etc/passwd".into(), p));
        }
        let network_path = super::netsetup::joined_netns(&containers, &net.mode)?;
        let cwd = o
            .workdir
            .clone()
            .or(cfg.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        if !cwd.starts_with('/') {
            return Err(usage(format!(
                "invalid --workdir {cwd:?}: must be an absolute path"
            )));
        }
        // podman makes the image's WORKDIR, but not one given with
        // --workdir, unless a mount provides it.
        if let Some(w) = o.workdir.as_deref().filter(|_| !o.rootfs) {
            let under_mount = user_mounts.iter().any(|m| {
                let d = m.destination.trim_end_matches('/');
                let w = w.trim_end_matches('/');
                d == w || d.starts_with(&format!("{w}/")) || w.starts_with(&format!("{d}/"))
            });
            let exists = lowers
                .iter()
                .any(|l| crate::util::secure_path::exists_in_root(l, w));
            if !under_mount && !exists && w != "/" {
                return Err(RunError::NoWorkdir {
                    workdir: w.to_string(),
                    id: id.clone(),
                });
            }
        }
        let mut env =
            super::request::environment(cfg.env.as_deref().unwrap_or_default(), o, &hostname)?;
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                ids.home.clone().unwrap_or_else(|| "/root".into())
            ));
        }
        let cgroup_v2 = cgroups::detect() == cgroups::Mode::V2;
        let root_path = if direct {
            lowers[0].clone()
        } else if overlay.is_none() {
            // The vfs driver: the copied layers are the root.
            dir.join("upper")
        } else {
            rootfs.clone()
        };
        let hooks = super::hooks_dir::hooks_for(
            &engine.hooks_dirs,
            &super::hooks_dir::Subject {
                command: args.first().map(String::as_str).unwrap_or_default(),
                annotations: &req.annotations,
                has_bind_mounts: user_mounts.iter().any(|m| m.kind == "bind"),
            },
        )?;
        let spec = spec::build(&SpecInput {
            args: args.clone(),
            env,
            cwd,
            uid: ids.uid,
            gid: ids.gid,
            groups: ids.groups.clone(),
            hostname: hostname.clone(),
            tty: o.tty,
            caps: req.caps.clone(),
            no_new_privileges: req.no_new_privileges,
            seccomp: req.seccomp.clone(),
            privileged: o.privileged,
            read_only: o.read_only,
            network_host,
            network_path,
            rootfs: &root_path,
            overlay,
            init: req.init.clone(),
            devices: req.devices.clone(),
            rootless: engine.paths.rootless,
            cgroup: cgroup_target.clone(),
            sysctls: req.sysctls.clone(),
            annotations: &req.annotations,
            hooks,
            device_rules: req.device_rules.clone(),
            etc_files,
            user_mounts: user_mounts.clone(),
            memory: req.memory,
            cpu_quota: req.cpu_quota,
            pids: o.pids_limit.filter(|p| *p > 0),
            cgroup_v2,
            id_maps: req.keep_id.map(|k| (k.uid_map(), k.gid_map())),
        })?;
        let spec_json = serde_json::to_vec_pretty(&spec).expect("spec serialises");
        std::fs::write(userdata.join("config.json"), spec_json)
            .map_err(io_err("writing config.json"))?;

        if o.detach || o.create_only {
            if o.log_driver.as_deref() == Some("passthrough") {
                return Err(usage("--log-driver passthrough writes to berth's own stdio: it works for foreground containers only"));
            }
            if !o.create_only {
                super::lifecycle::start(engine, &containers, &id, false)?;
                let now = containers.find(&id)?;
                let write = |p: &Option<PathBuf>, v: Option<i32>| -> Result<(), RunError> {
                    if let (Some(p), Some(v)) = (p, v) {
                        std::fs::write(p, v.to_string())
                            .map_err(io_err(format!("writing {}", p.display())))?;
                    }
                    Ok(())
                };
                write(&o.pidfile, now.pid)?;
                write(&o.conmon_pidfile, now.monitor.map(|m| m.pid))?;
            }
            return Ok(None);
        }
        // podman logs a foreground container too, unless told not to.
        let mut log = match o.log_driver.as_deref() {
            Some("passthrough") | Some("none") => None,
            _ => Some(
                LogWriter::with_limit(&containers.log_path(&id), o.log_max_size.map(|m| m as u64))
                    .map_err(io_err("opening the container log"))?,
            ),
        };
        // From here it runs under the same supervisor as a detached
        // container's monitor, in this process, on the caller's terminal.
        let sup = Supervisor::prepare_with(engine, record.clone(), spec)?;
        record.state = State::Running;
        supervise_here(engine, sup, o, log.as_mut()).map(Some)
    })();
    if let Ok(None) = result {
        return Ok(RunOutcome::Detached(id));
    }
    if result.is_err() && (o.detach || o.create_only) {
        // The monitor already recorded (or removed) the container.
        if let Ok(r) = containers.find(&id) {
            if o.remove || r.state == State::Created {
                let _ = containers.remove(&id, &name);
                super::volumes::remove_anonymous(&vols, &containers, &r.anonymous_volumes);
            }
        }
        return result.map(|_| RunOutcome::Exited { id, code: 0 });
    }
    if result.is_err() && record.state == State::Created {
        // It never started (a port in use, a bad mount): leave nothing behind.
        let _ = containers.remove(&id, &name);
        super::volumes::remove_anonymous(&vols, &containers, &record.anonymous_volumes);
        return result.map(|_| RunOutcome::Exited { id, code: 0 });
    }
    // Otherwise the supervisor recorded how it ended (or removed it, --rm).
    result.map(|c| RunOutcome::Exited {
        id,
        code: c.unwrap_or(0),
    })
}

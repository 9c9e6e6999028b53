//! `berth run` and `berth create`: flags (podman's names) to run options.

use super::{progress, CliResult, Failure};
use crate::engine::lifecycle::parse_signal;
use crate::engine::request::RunOptions;
use crate::engine::Engine;
use clap::Args;
use std::path::PathBuf;

/// `berth run` (`-h` is --hostname, as in podman; help is --help)
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Override the image's entrypoint
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy it from berth's environment)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (name or uid, with optional :group) to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name (default: the short id)
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container name (default: a generated adjective_noun)
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id
    #[arg(short, long)]
    pub detach: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal `stop` sends first (default SIGTERM, or the image's)
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Write the container id to this file
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Seconds `stop` waits before SIGKILL (default 10)
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Set a label: KEY=VALUE
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Write the container's first process id here (detached containers)
    #[arg(long)]
    pub pidfile: Option<PathBuf>,
    /// Write the monitor's process id here, for systemd units to follow
    #[arg(long)]
    pub conmon_pidfile: Option<PathBuf>,
    /// Remove a container of the same --name first
    #[arg(long)]
    pub replace: bool,
    /// k8s-file (default), none, or passthrough (foreground: the container writes to berth's stdio)
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log option: max-size=SIZE (e.g. 10m) rotates the log
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run a small init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Mount a host path or a named volume: [SRC|NAME:]DST[:ro|rw|U|z|Z|nocopy]
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Mount the volumes of another container: CONTAINER[:ro|rw]
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs: /path[:options]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Add capabilities (or ALL)
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop capabilities (or ALL)
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give the container all capabilities, every device, no seccomp filter and no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Add a host device: HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/kmsg:/dev/kmsg:r
    #[arg(long)]
    pub device: Vec<String>,
    /// Allow devices by cgroup rule, e.g. 'c 1:11 rw' (TYPE MAJOR:MINOR ACCESS)
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
    /// no-new-privileges, seccomp=unconfined or seccomp=FILE
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Network: bridge (root default), pasta (rootless default), none, host,
    /// container:NAME, ns:PATH, or NAME[,NAME...] of networks
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Another name for the container on its user-defined networks
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its (first) network
    #[arg(long)]
    pub ip: Option<String>,
    /// Publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp], ranges too
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish the image's exposed ports on free host ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// A DNS server for the container
    #[arg(long)]
    pub dns: Vec<String>,
    /// A DNS search domain for the container
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// An /etc/hosts entry: HOST:IP
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set a namespaced kernel parameter: net.*, fs.mqueue.*, kernel.msg*/sem/shm*
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Add an annotation to the container's OCI spec
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// User namespace mode
    #[arg(long)]
    pub userns: Option<String>,
    /// IMAGE is a directory to use as the root filesystem
    #[arg(long)]
    pub rootfs: bool,
    /// Parent cgroup (default: berth)
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// enabled (default) or disabled
    #[arg(long)]
    pub cgroups: Option<String>,
    /// Platform to pull if the image is missing
    #[arg(long)]
    pub platform: Option<String>,
    /// Require HTTPS when pulling (false allows plain http)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Do not print pull progress
    #[arg(short, long)]
    pub quiet: bool,
    /// When to pull the image: missing (default), always, never or newer
    #[arg(long, num_args = 0..=1, default_missing_value = "always", value_name = "POLICY")]
    pub pull: Option<String>,
    /// Remove the image once the container exits, unless another container uses it (implies --rm)
    #[arg(long)]
    pub rmi: bool,
    /// Time zone: a name under /usr/share/zoneinfo (e.g. Europe/Berlin), or local
    #[arg(long)]
    pub tz: Option<String>,
    /// Attach to stdin, stdout or stderr only (repeatable; default all)
    #[arg(short, long, value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Kill the container after this many seconds (it exits 255)
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Pass berth's descriptors 3..3+N on to the container
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Do not give the container this default or image variable
    #[arg(long, value_name = "KEY")]
    pub unsetenv: Vec<String>,
    /// Pass the caller's proxy variables (http_proxy, https_proxy, ...) into the container
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub http_proxy: bool,
    /// Give the container no default or image variables at all
    #[arg(long)]
    pub unsetenv_all: bool,
    /// No longer supported (the kernel dropped it); ignored with a warning
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    /// Image to run (or a directory with --rootfs)
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs a container in the foreground; exits with its exit code.
pub fn run(engine: &Engine, a: RunArgs) -> CliResult {
    run_or_create(engine, a, false)
}

/// `berth create`: the container is recorded, ready for `start`.
pub fn create(engine: &Engine, a: RunArgs) -> CliResult {
    run_or_create(engine, a, true)
}

fn run_or_create(engine: &Engine, a: RunArgs, create_only: bool) -> CliResult {
    let mut log_max_size = None;
    for o in &a.log_opt {
        match o.split_once('=') {
            Some(("max-size", v)) => {
                log_max_size =
                    Some(crate::util::human::parse_si_size(v).ok_or_else(|| {
                        Failure::with_code(
                            format!("invalid --log-opt max-size={v:?}: use a number with an optional unit k, m or g"),
                            125,
                        )
                    })? as i64)
            }
            _ => {
                return Err(Failure::with_code(
                    format!("unsupported --log-opt {o:?}: berth knows max-size=SIZE"),
                    125,
                ))
            }
        }
    }
    if a.kernel_memory.is_some() {
        tracing::warn!("The --kernel-memory flag is no longer supported. This flag is a noop.");
    }
    let pull_policy =
        crate::image::pull::PullPolicy::parse(a.pull.as_deref()).ok_or_else(|| {
            Failure::with_code(
                format!(
                    "invalid --pull {:?}: use always, missing, never or newer",
                    a.pull.as_deref().unwrap_or_default()
                ),
                125,
            )
        })?;
    if let Some(s) = &a.stop_signal {
        parse_signal(s)?;
    }
    let pull = crate::image::pull::PullOptions {
        platform: match &a.platform {
            Some(p) => crate::image::manifest::Platform::parse(p)?,
            None => crate::image::manifest::Platform::host(),
        },
        tls_verify: a.tls_verify.unwrap_or(true),
        authfile: std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from),
    };
    if let Some(c) = &a.cgroups {
        if c != "enabled" && c != "disabled" {
            return Err(Failure::with_code(
                format!("invalid --cgroups {c:?}: use enabled or disabled"),
                125,
            ));
        }
    }
    // With stdout not attached, podman prints the container's id instead.
    let print_id =
        !a.attach.is_empty() && !a.attach.iter().any(|s| s.eq_ignore_ascii_case("stdout"));
    let opts = RunOptions {
        image: a.image,
        command: a.command,
        entrypoint: a.entrypoint,
        env: a.env,
        env_files: a.env_file,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        name: a.name,
        remove: a.rm || a.rmi,
        interactive: a.interactive,
        tty: a.tty,
        init: a.init,
        read_only: a.read_only,
        volumes: a.volume,
        volumes_from: a.volumes_from,
        mounts: a.mount,
        tmpfs: a.tmpfs,
        memory: a.memory,
        cpus: a.cpus,
        pids_limit: a.pids_limit,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        privileged: a.privileged,
        devices: a.device,
        device_cgroup_rules: a.device_cgroup_rule,
        security_opt: a.security_opt,
        network: a.network,
        network_alias: a.network_alias,
        ip: a.ip,
        publish: a.publish,
        publish_all: a.publish_all,
        dns: a.dns,
        dns_search: a.dns_search,
        add_host: a.add_host,
        sysctls: a.sysctl,
        annotations: a.annotation,
        base: None,
        userns: a.userns,
        rootfs: a.rootfs,
        cgroup_parent: a.cgroup_parent,
        cgroups: a.cgroups,
        pull,
        detach: a.detach,
        create_only,
        restart: a.restart,
        stop_signal: a.stop_signal,
        cidfile: a.cidfile,
        pidfile: a.pidfile,
        conmon_pidfile: a.conmon_pidfile,
        replace: a.replace,
        log_driver: a.log_driver,
        log_max_size,
        stop_timeout: a.stop_timeout,
        labels: a.label,
        unsetenv: a.unsetenv,
        unsetenv_all: a.unsetenv_all,
        pull_policy,
        rmi: a.rmi,
        tz: a.tz,
        attach: a.attach.iter().map(|s| s.to_lowercase()).collect(),
        timeout: a.timeout,
        preserve_fds: a.preserve_fds,
        http_proxy: a.http_proxy,
    };
    let progress = progress::for_stderr(a.quiet);
    match crate::engine::run::run(engine, opts, progress.as_ref()) {
        Ok(crate::engine::run::RunOutcome::Exited { code, id }) => {
            if print_id {
                println!("{id}");
            }
            Ok(code)
        }
        Ok(crate::engine::run::RunOutcome::Detached(id)) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            let code = e.exit_code();
            Err(Failure::with_code(e.to_string().replace('\n', ": "), code))
        }
    }
}

/// `berth container-monitor` (internal)
#[derive(Args, Debug)]
pub struct MonitorArgs {
    pub id: String,
}

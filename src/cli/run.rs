//! `berth run` flags (podman's names) and a minimal `ps`/`rm` for the
//! containers `run` leaves behind without `--rm`.

use super::format::columns;
use super::{progress, CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::run::RunOptions;
use crate::engine::Engine;
use crate::util::human;
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
    /// Bind mount a host path: SRC:DST[:ro]
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Mount: type=bind|tmpfs,source=...,target=...[,readonly]
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
    /// Give the container all capabilities, no seccomp filter and no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges, seccomp=unconfined or seccomp=FILE
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Network mode: none or host (default: private network namespace with loopback)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
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
    /// Image to run (or a directory with --rootfs)
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs a container in the foreground; exits with its exit code.
pub fn run(engine: &Engine, a: RunArgs) -> CliResult {
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
        remove: a.rm,
        interactive: a.interactive,
        tty: a.tty,
        init: a.init,
        read_only: a.read_only,
        volumes: a.volume,
        mounts: a.mount,
        tmpfs: a.tmpfs,
        memory: a.memory,
        cpus: a.cpus,
        pids_limit: a.pids_limit,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        privileged: a.privileged,
        security_opt: a.security_opt,
        network: a.network,
        userns: a.userns,
        rootfs: a.rootfs,
        cgroup_parent: a.cgroup_parent,
        cgroups: a.cgroups,
        pull,
    };
    let progress = progress::for_stderr(a.quiet);
    match crate::engine::run::run(engine, opts, progress.as_ref()) {
        Ok(code) => Ok(code),
        Err(e) => {
            let code = e.exit_code();
            Err(Failure::with_code(e.to_string().replace('\n', ": "), code))
        }
    }
}

/// `berth ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (berth keeps only exited ones so far)
    #[arg(short, long)]
    pub all: bool,
    /// Print only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids
    #[arg(long)]
    pub no_trunc: bool,
}

/// Lists containers with podman's columns.
pub fn ps(engine: &Engine, a: PsArgs) -> CliResult {
    let mut list = Containers::new(engine.store.root()).list();
    list.sort_by(|x, y| y.created.cmp(&x.created));
    if !a.all {
        list.retain(|c| c.is_running());
    }
    let id = |s: &str| {
        if a.no_trunc {
            s.to_string()
        } else {
            s[..12].to_string()
        }
    };
    if a.quiet {
        for c in &list {
            println!("{}", id(&c.id));
        }
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &list {
        let created = chrono::DateTime::parse_from_rfc3339(&c.created)
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        let status = match (c.state.as_str(), c.exit_code) {
            ("exited", Some(code)) => {
                let fin = c
                    .finished_at
                    .as_deref()
                    .and_then(|f| chrono::DateTime::parse_from_rfc3339(f).ok())
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .unwrap_or(now);
                format!("Exited ({code}) {}", human::ago(fin, now))
            }
            ("running", _) if c.is_running() => {
                let up = c
                    .started_at
                    .as_deref()
                    .and_then(|f| chrono::DateTime::parse_from_rfc3339(f).ok())
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .unwrap_or(now);
                format!(
                    "Up {}",
                    human::duration((now - up).num_seconds().max(0) as u64)
                )
            }
            ("running", _) => "Exited (unknown): berth was killed".to_string(),
            (s, _) => s.to_string(),
        };
        let mut cmd = c.command.join(" ");
        if cmd.chars().count() > 20 && !a.no_trunc {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        rows.push(vec![
            id(&c.id),
            c.image.clone(),
            cmd,
            human::ago(created, now),
            status,
            String::new(),
            c.name.clone(),
        ]);
    }
    print!("{}", columns(&rows));
    Ok(0)
}

/// `berth rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Containers (names, ids or id prefixes)
    pub containers: Vec<String>,
    /// Remove all containers
    #[arg(short, long)]
    pub all: bool,
    /// Do not fail when a container does not exist
    #[arg(short, long)]
    pub force: bool,
}

/// Removes exited containers and their files.
pub fn rm(engine: &Engine, a: RmArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let targets: Vec<String> = if a.all {
        cs.list().into_iter().map(|c| c.id).collect()
    } else {
        a.containers.clone()
    };
    if targets.is_empty() && !a.all {
        return Err(Failure::with_code(
            "container name or id must be specified (or --all)",
            125,
        ));
    }
    let mut code = 0;
    for t in targets {
        match cs.find(&t) {
            Ok(c) if c.is_running() => {
                eprintln!("Error: container {} is running: stop it first, or end the berth run that holds it", c.name);
                code = 2;
            }
            Ok(c) => {
                if let Some((parent, name)) = &c.cgroup {
                    crate::cgroups::remove_leftover(parent, name);
                }
                cs.remove(&c.id, &c.name)?;
                println!("{}", c.id);
            }
            Err(_) if a.force => {}
            Err(e) => {
                eprintln!("Error: {e}");
                code = code.max(1);
            }
        }
    }
    Ok(code)
}

//! `berth run` flags (podman's names) and a minimal `ps`/`rm` for the
//! containers `run` leaves behind without `--rm`.

use super::format::columns;
use super::{progress, CliResult, Failure};
use crate::engine::container::{ContainerRecord, Containers};
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
            Some(("max-size", v)) => log_max_size = Some(crate::engine::spec::parse_size(v)?),
            _ => {
                return Err(Failure::with_code(
                    format!("unsupported --log-opt {o:?}: berth knows max-size=SIZE"),
                    125,
                ))
            }
        }
    }
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
    };
    let progress = progress::for_stderr(a.quiet);
    match crate::engine::run::run(engine, opts, progress.as_ref()) {
        Ok(crate::engine::run::RunOutcome::Exited(code)) => Ok(code),
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

/// `berth ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,
    /// Print only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids or commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the N most recently created containers (all states)
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the most recently created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter: name=, status=, ancestor=, id=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json, or a Go template such as '{{.Names}} {{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
}

fn ps_value(
    c: &ContainerRecord,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(now)
    };
    let created = parse(&c.created);
    let status = crate::engine::inspect::status(c);
    let status_text = match status {
        "running" => format!(
            "Up {}",
            human::duration(
                (now - parse(c.started_at.as_deref().unwrap_or(&c.created)))
                    .num_seconds()
                    .max(0) as u64
            )
        ),
        "created" => "Created".to_string(),
        _ if c.state == "running" => "Exited (unknown): berth was killed".to_string(),
        _ => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            human::ago(parse(c.finished_at.as_deref().unwrap_or(&c.created)), now)
        ),
    };
    let mut cmd = c.command.join(" ");
    if cmd.chars().count() > 20 && !no_trunc {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    serde_json::json!({
        "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
        "Id": c.id,
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": cmd,
        "CreatedAt": c.created,
        "Created": created.timestamp(),
        "CreatedSince": human::ago(created, now),
        "RunningFor": human::ago(created, now),
        "State": status,
        "Status": status_text,
        "Ports": "",
        "Names": c.name,
        "Pid": c.pid.filter(|_| status == "running").unwrap_or(0),
        "ExitCode": c.exit_code.unwrap_or(0),
        "Exited": status == "exited",
    })
}

fn ps_matches(c: &ContainerRecord, filters: &[(String, String)]) -> Result<bool, Failure> {
    for (k, v) in filters {
        let ok = match k.as_str() {
            "name" => c.name.contains(v.as_str()),
            "id" => c.id.starts_with(v.as_str()),
            "status" => {
                crate::engine::inspect::status(c) == v
                    || (v == "stopped" && crate::engine::inspect::status(c) == "exited")
            }
            "ancestor" => {
                c.image == *v
                    || c.image_id.starts_with(v.as_str())
                    || crate::image::store::find_in_names(&c.image, v)
            }
            other => {
                return Err(Failure::with_code(
                    format!("invalid filter {other:?}: use name=, id=, status=, ancestor="),
                    125,
                ))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Lists containers with podman's columns. Reads one small record per
/// container and nothing else, so it stays fast with thousands of them.
pub fn ps(engine: &Engine, a: PsArgs) -> CliResult {
    let mut filters = Vec::new();
    for f in &a.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Failure::with_code(format!("invalid filter {f:?}: expected KEY=VALUE"), 125)
        })?;
        filters.push((k.to_string(), v.to_string()));
    }
    let mut list = Containers::new(engine.store.root()).list();
    list.sort_by(|x, y| y.created.cmp(&x.created));
    let limit = if a.latest { Some(1) } else { a.last };
    if !a.all && limit.is_none() && !filters.iter().any(|(k, _)| k == "status") {
        list.retain(|c| c.is_running());
    }
    let mut kept = Vec::new();
    for c in list {
        if ps_matches(&c, &filters)? {
            kept.push(c);
        }
    }
    if let Some(n) = limit {
        kept.truncate(n);
    }
    let now = chrono::Utc::now();
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if a.quiet {
        for c in &kept {
            let _ = writeln!(out, "{}", if a.no_trunc { &c.id[..] } else { &c.id[..12] });
        }
        return Ok(0);
    }
    let values: Vec<serde_json::Value> =
        kept.iter().map(|c| ps_value(c, a.no_trunc, now)).collect();
    match a.format.as_deref() {
        Some("json") => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&values).expect("json")
            );
        }
        Some(t) if t != "table" => {
            let (tpl, header) = match t.strip_prefix("table") {
                Some(rest) => (rest.trim_start(), true),
                None => (t, false),
            };
            let mut table = Vec::new();
            if header {
                table.push(
                    super::format::table_header(tpl)
                        .split('\t')
                        .map(String::from)
                        .collect(),
                );
            }
            for v in &values {
                table.push(
                    super::format::render(tpl, v)?
                        .split('\t')
                        .map(String::from)
                        .collect(),
                );
            }
            let _ = write!(out, "{}", columns(&table));
        }
        _ => {
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
            for v in &values {
                rows.push(
                    [
                        "ID",
                        "Image",
                        "Command",
                        "CreatedSince",
                        "Status",
                        "Ports",
                        "Names",
                    ]
                    .iter()
                    .map(|k| super::format::go_string(&v[*k]))
                    .collect(),
                );
            }
            let _ = write!(out, "{}", columns(&rows));
        }
    }
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
            Ok(c) if c.is_running() && !a.force => {
                eprintln!(
                    "Error: container {} is running: stop it first, or use rm -f",
                    c.name
                );
                code = 2;
            }
            Ok(c) if c.is_running() => {
                crate::engine::detached::remove_forcibly(&cs, &c)?;
                println!("{}", c.id);
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

/// Sends `sig` to a running container's first process.
fn signal_container(c: &ContainerRecord, sig: i32) -> Result<(), Failure> {
    let Some(pid) = c.pid.filter(|_| c.is_running()) else {
        return Err(Failure::with_code(
            format!("container {} is not running", c.name),
            125,
        ));
    };
    // SAFETY: plain kill.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(Failure::with_code(
            format!("signalling {}: {}", c.name, std::io::Error::last_os_error()),
            125,
        ));
    }
    Ok(())
}

/// Waits until the monitor has recorded the exit (or is gone).
fn wait_exited(cs: &Containers, id: &str, timeout: std::time::Duration) -> Option<ContainerRecord> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match cs.find(id) {
            Ok(r) if !r.is_running() => return Some(r),
            Err(_) => return None, // removed (--rm)
            Ok(_) if std::time::Instant::now() >= deadline => return cs.find(id).ok(),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// The stop signal, then SIGKILL after `timeout` seconds. Marks the
/// container stopped first, so its restart policy leaves it down.
fn stop_container(cs: &Containers, c: &ContainerRecord, timeout: u64) -> Result<(), Failure> {
    if !c.is_running() {
        return Ok(());
    }
    let _ = std::fs::write(crate::engine::detached::stopped_marker(cs, &c.id), b"");
    let sig = c
        .stop_signal
        .as_deref()
        .map(parse_signal)
        .transpose()?
        .unwrap_or(libc::SIGTERM);
    if timeout > 0 {
        // The record is read again each time: a restart changes the pid.
        let current = cs.find(&c.id).unwrap_or_else(|_| c.clone());
        let _ = signal_container(&current, sig);
        match wait_exited(cs, &c.id, std::time::Duration::from_secs(timeout)) {
            Some(r) if r.is_running() => {}
            _ => return Ok(()),
        }
    }
    if let Ok(current) = cs.find(&c.id) {
        let _ = signal_container(&current, libc::SIGKILL);
    }
    wait_exited(cs, &c.id, std::time::Duration::from_secs(10));
    Ok(())
}

/// Parses SIGTERM, TERM, 15, KILL...
pub fn parse_signal(s: &str) -> Result<i32, Failure> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..65).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| {
            Failure::with_code(
                format!("invalid signal {s:?}: use a name such as TERM or KILL, or a number"),
                125,
            )
        })
}

/// `berth stop`
#[derive(Args, Debug)]
pub struct StopArgs {
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Stop all running containers
    #[arg(short, long)]
    pub all: bool,
}

/// Stops containers: stop signal, then SIGKILL after the timeout.
pub fn stop(engine: &Engine, a: StopArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let targets: Vec<String> = if a.all {
        cs.list()
            .into_iter()
            .filter(|c| c.is_running())
            .map(|c| c.id)
            .collect()
    } else {
        a.containers
    };
    let mut code = 0;
    for t in targets {
        match cs.find(&t) {
            Ok(c) => {
                stop_container(&cs, &c, a.time)?;
                println!("{t}");
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = 125;
            }
        }
    }
    Ok(code)
}

/// `berth kill`
#[derive(Args, Debug)]
pub struct KillArgs {
    pub containers: Vec<String>,
    /// Signal to send (default KILL)
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

/// Sends a signal to containers.
pub fn kill(engine: &Engine, a: KillArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let sig = parse_signal(&a.signal)?;
    for t in &a.containers {
        let c = cs.find(t)?;
        signal_container(&c, sig)?;
        println!("{t}");
    }
    Ok(0)
}

/// `berth wait`
#[derive(Args, Debug)]
pub struct WaitArgs {
    pub containers: Vec<String>,
}

/// Waits for containers to exit and prints their exit codes.
pub fn wait(engine: &Engine, a: WaitArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    for t in &a.containers {
        let c = cs.find(t)?;
        match wait_exited(&cs, &c.id, std::time::Duration::from_secs(u64::MAX / 4)) {
            Some(r) => println!("{}", r.exit_code.unwrap_or(-1)),
            None => println!("{}", c.exit_code.unwrap_or(0)),
        }
    }
    Ok(0)
}

/// `berth logs`
#[derive(Args, Debug)]
pub struct LogsArgs {
    pub container: String,
    /// Keep printing new output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long)]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only output after this time (RFC 3339, or a duration such as 10m, 2h)
    #[arg(long)]
    pub since: Option<String>,
    /// Only output before this time (RFC 3339, or a duration such as 10m)
    #[arg(long)]
    pub until: Option<String>,
}

/// RFC 3339 or "how long ago" (30s, 10m, 2h) into a UTC time.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num.parse().map_err(|_| {
        Failure::with_code(
            format!("invalid time {s:?}: use RFC 3339 or a duration such as 10m"),
            125,
        )
    })?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(Failure::with_code(
                format!("invalid time {s:?}: units are s, m, h"),
                125,
            ))
        }
    };
    Ok(chrono::Utc::now() - chrono::Duration::seconds(secs))
}

fn print_entries(entries: &[crate::monitor::logfile::Entry], timestamps: bool) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn std::io::Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if timestamps {
            let _ = write!(w, "{} ", e.timestamp);
        }
        let _ = w.write_all(&e.content);
        if e.full {
            let _ = w.write_all(b"\n");
        }
        let _ = w.flush();
    }
}

/// Prints a container's log, stdout to stdout and stderr to stderr.
pub fn logs(engine: &Engine, a: LogsArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let c = cs.find(&a.container)?;
    let path = crate::engine::detached::log_path(&cs, &c.id);
    let since = a.since.as_deref().map(parse_time).transpose()?;
    let until = a.until.as_deref().map(parse_time).transpose()?;
    let in_window = |e: &crate::monitor::logfile::Entry| {
        let t = chrono::DateTime::parse_from_rfc3339(&e.timestamp)
            .map(|d| d.with_timezone(&chrono::Utc))
            .ok();
        since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && until.is_none_or(|u| t.is_some_and(|t| t <= u))
    };
    let all: Vec<_> = crate::monitor::logfile::read_all(&path)?
        .into_iter()
        .filter(|e| in_window(e))
        .collect();
    let skip = a
        .tail
        .map(|n| all.iter().filter(|e| e.full).count().saturating_sub(n))
        .unwrap_or(0);
    let mut full_seen = 0;
    let start = all.iter().position(|e| {
        let ok = full_seen >= skip;
        if e.full {
            full_seen += 1;
        }
        ok
    });
    let first = start.unwrap_or(all.len());
    print_entries(&all[first..], a.timestamps);
    if !a.follow {
        return Ok(0);
    }
    let mut seen = all.len();
    loop {
        let running = cs.find(&c.id).map(|r| r.is_running()).unwrap_or(false);
        let now = crate::monitor::logfile::read_all(&path)?;
        if now.len() > seen {
            print_entries(&now[seen..], a.timestamps);
            seen = now.len();
        }
        if !running {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `berth container-monitor` (internal)
#[derive(Args, Debug)]
pub struct MonitorArgs {
    pub id: String,
}

/// `berth exec` (`-h` is not used; help is --help)
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// User (name or uid, with optional :group)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// All capabilities and no seccomp filter for this process
    #[arg(long)]
    pub privileged: bool,
    /// The container
    pub container: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Runs a command in a running container; exits with its code.
pub fn exec(engine: &Engine, a: ExecArgs) -> CliResult {
    let o = crate::engine::exec::ExecOptions {
        container: a.container,
        command: a.command,
        env: a.env,
        user: a.user,
        workdir: a.workdir,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    crate::engine::exec::exec(engine, o).map_err(|e| {
        let code = e.exit_code();
        Failure::with_code(e.to_string().replace('\n', ": "), code)
    })
}

/// `berth start`
#[derive(Args, Debug)]
pub struct StartArgs {
    pub containers: Vec<String>,
    /// Wait for the container and print its output (stdout and stderr apart)
    #[arg(short, long)]
    pub attach: bool,
}

/// Starts created or exited containers under a monitor.
pub fn start(engine: &Engine, a: StartArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    if a.attach && a.containers.len() != 1 {
        return Err(Failure::with_code(
            "start -a takes exactly one container",
            125,
        ));
    }
    for t in &a.containers {
        let c = cs.find(t)?;
        if c.is_running() {
            if !a.attach {
                println!("{t}");
            }
            continue;
        }
        let before =
            crate::monitor::logfile::read_all(&crate::engine::detached::log_path(&cs, &c.id))
                .map(|l| l.len())
                .unwrap_or(0);
        crate::engine::detached::start(engine, &c.id).map_err(|e| {
            let code = e.exit_code();
            Failure::with_code(e.to_string(), code)
        })?;
        if !a.attach {
            println!("{t}");
            continue;
        }
        // Attached: stream this run's output, then exit with its code.
        let path = crate::engine::detached::log_path(&cs, &c.id);
        let mut seen = before;
        loop {
            let running = cs.find(&c.id).map(|r| r.is_running()).unwrap_or(false);
            let now = crate::monitor::logfile::read_all(&path)?;
            if now.len() > seen {
                print_entries(&now[seen..], false);
                seen = now.len();
            }
            if !running {
                let code = cs.find(&c.id).ok().and_then(|r| r.exit_code).unwrap_or(0);
                return Ok(code);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(0)
}

/// `berth restart`
#[derive(Args, Debug)]
pub struct RestartArgs {
    pub containers: Vec<String>,
    /// Seconds to wait for the stop before killing
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
}

/// Stops (if running) and starts containers again.
pub fn restart(engine: &Engine, a: RestartArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    for t in &a.containers {
        let c = cs.find(t)?;
        stop_container(&cs, &c, a.time)?;
        crate::engine::detached::start(engine, &c.id).map_err(|e| {
            let code = e.exit_code();
            Failure::with_code(e.to_string(), code)
        })?;
        println!("{t}");
    }
    Ok(0)
}

/// `berth container ...`
#[derive(clap::Subcommand, Debug)]
pub enum ContainerCommand {
    /// Whether a container exists (exit 0 if it does, 1 if not)
    Exists(ExistsArgs),
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove all stopped containers
    Prune,
}

/// `berth container exists`
#[derive(Args, Debug)]
pub struct ExistsArgs {
    pub container: String,
}

/// Dispatches `berth container ...`.
pub fn container_command(engine: &Engine, c: ContainerCommand) -> CliResult {
    let cs = Containers::new(engine.store.root());
    match c {
        ContainerCommand::Exists(a) => Ok(if cs.find(&a.container).is_ok() { 0 } else { 1 }),
        ContainerCommand::Ls(a) => ps(engine, a),
        ContainerCommand::Prune => {
            for c in cs.list() {
                if !c.is_running() {
                    if let Some((parent, name)) = &c.cgroup {
                        crate::cgroups::remove_leftover(parent, name);
                    }
                    cs.remove(&c.id, &c.name)?;
                    println!("{}", c.id);
                }
            }
            Ok(0)
        }
    }
}

/// `berth pause` / `berth unpause`
#[derive(Args, Debug)]
pub struct PauseArgs {
    pub containers: Vec<String>,
}

/// Freezes or thaws containers with the cgroup freezer.
pub fn pause(engine: &Engine, a: PauseArgs, frozen: bool) -> CliResult {
    let cs = Containers::new(engine.store.root());
    for t in &a.containers {
        let mut c = cs.find(t)?;
        if !c.is_running() {
            return Err(Failure::with_code(
                format!("container {} is not running", c.name),
                125,
            ));
        }
        let Some((parent, name)) = c.cgroup.clone() else {
            return Err(Failure::with_code(format!("container {} has no cgroup (rootless on this host, or --cgroups=disabled): it cannot be paused", c.name), 125));
        };
        crate::cgroups::freeze(&parent, &name, frozen)?;
        c.paused = frozen;
        cs.save(&c)?;
        println!("{t}");
    }
    Ok(0)
}

/// `berth rename`
#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

/// Gives a container another name.
pub fn rename(engine: &Engine, a: RenameArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let c = cs.find(&a.container)?;
    cs.rename(&c, &a.new_name)?;
    Ok(0)
}

/// `berth top`
#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
}

/// Lists the processes of a running container.
pub fn top(engine: &Engine, a: TopArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let c = cs.find(&a.container)?;
    let Some(pid) = c.pid.filter(|_| c.is_running()) else {
        return Err(Failure::with_code(
            format!("container {} is not running", c.name),
            125,
        ));
    };
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let target = ns(&pid.to_string());
    let mut rows = vec![vec![
        "USER".to_string(),
        "PID".into(),
        "PPID".into(),
        "COMMAND".into(),
    ]];
    let mut procs: Vec<i32> = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    procs.sort();
    for p in procs {
        if ns(&p.to_string()) != target {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        // NSpid: the pid as the container sees it is the last one.
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last().map(String::from))
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .trim()
            .to_string();
        let uid = field("Uid:");
        let user = uid
            .parse::<u32>()
            .ok()
            .and_then(crate::namespaces::idmap::user_name)
            .unwrap_or(uid);
        rows.push(vec![user, inner, field("PPid:"), cmd]);
    }
    print!("{}", columns(&rows));
    Ok(0)
}

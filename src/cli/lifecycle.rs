//! Commands that drive containers through their life: start, stop, kill,
//! wait, restart, pause, rename, top, rm, and `container ...`.

use super::format::columns;
use super::ps::{ps, PsArgs};
use super::{CliResult, Failure};
use crate::engine::container::{ContainerError, Containers};
use crate::engine::lifecycle::{self, LifecycleError, RemoveOptions};
use crate::engine::record::{Action, ContainerRecord};
use crate::engine::Engine;
use clap::Args;

/// `berth rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    pub latest: super::Latest,
    /// Containers (names, ids or id prefixes)
    pub containers: Vec<String>,
    /// Remove all containers
    #[arg(short, long)]
    pub all: bool,
    /// Do not fail when a container does not exist
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    /// With -f: seconds to wait after the stop signal before killing (default: kill at once)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// Say nothing of containers that do not exist
    #[arg(short, long)]
    pub ignore: bool,
}

/// Removes exited containers and their files.
pub fn rm(engine: &Engine, mut a: RmArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
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
    let options = RemoveOptions {
        force: a.force,
        stop_timeout: a.time,
        volumes: a.volumes,
    };
    let mut code = 0;
    for t in targets {
        match lifecycle::remove(&cs, &t, options) {
            // podman echoes what it was given (ids for --all).
            Ok(_) => println!("{t}"),
            Err(LifecycleError::Container(ContainerError::NotFound(_))) if a.force || a.ignore => {}
            // podman's `rm` says 1 for a name it does not know.
            Err(e @ LifecycleError::Container(ContainerError::NotFound(_))) => {
                eprintln!("Error: {e}");
                code = code.max(1);
            }
            Err(e) => {
                let f = Failure::from(e);
                eprintln!("Error: {}", f.message);
                code = code.max(f.code);
            }
        }
    }
    Ok(code)
}

/// `berth stop`
#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub latest: super::Latest,
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container (default: its --stop-timeout, else 10)
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<u64>,
    /// Stop all running containers
    #[arg(short, long)]
    pub all: bool,
    /// Say nothing of containers that do not exist
    #[arg(short, long)]
    pub ignore: bool,
}

/// Stops containers: stop signal, then SIGKILL after the timeout.
pub fn stop(engine: &Engine, mut a: StopArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
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
        let timeout = |c: ContainerRecord| a.time.or(c.stop_timeout).unwrap_or(10);
        match cs
            .find(&t)
            .map_err(LifecycleError::from)
            .and_then(|c| lifecycle::stop(&cs, &t, timeout(c)))
        {
            Ok(()) => println!("{t}"),
            Err(LifecycleError::Container(ContainerError::NotFound(_))) if a.ignore => {}
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
    #[command(flatten)]
    pub latest: super::Latest,
    pub containers: Vec<String>,
    /// Signal to send (default KILL)
    #[arg(short, long, default_value = "KILL", allow_hyphen_values = true)]
    pub signal: String,
    /// Signal every running container
    #[arg(short, long)]
    pub all: bool,
}

/// The containers a verb with `--all` acts on: those named, or every one
/// that `keep` picks (by id).
fn all_or_named(
    verb: &str,
    cs: &Containers,
    all: bool,
    named: &[String],
    keep: impl Fn(&ContainerRecord) -> bool,
) -> Result<Vec<String>, Failure> {
    if all && !named.is_empty() {
        return Err(Failure::with_code(
            format!("either {verb} all containers or the container(s) provided in the arguments"),
            125,
        ));
    }
    Ok(if all {
        cs.list()
            .into_iter()
            .filter(|c| keep(c))
            .map(|c| c.id)
            .collect()
    } else {
        named.to_vec()
    })
}

/// Sends a signal to containers.
pub fn kill(engine: &Engine, mut a: KillArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
    let cs = Containers::new(engine.store.root());
    let sig = lifecycle::parse_signal(&a.signal)?;
    let targets = all_or_named("kill", &cs, a.all, &a.containers, |c| c.is_running())?;
    for t in &targets {
        lifecycle::kill(&cs, t, sig)?;
        println!("{t}");
    }
    Ok(0)
}

/// `berth wait`
#[derive(Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub latest: super::Latest,
    pub containers: Vec<String>,
}

/// Waits for containers to exit and prints their exit codes.
pub fn wait(engine: &Engine, mut a: WaitArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
    let cs = Containers::new(engine.store.root());
    for t in &a.containers {
        let c = cs.find(t)?;
        match lifecycle::wait(&cs, &c.id, std::time::Duration::from_secs(u64::MAX / 4)) {
            Some(r) => println!("{}", r.exit_code.unwrap_or(-1)),
            None => println!("{}", c.exit_code.unwrap_or(0)),
        }
    }
    Ok(0)
}

/// `berth start`
#[derive(Args, Debug)]
pub struct StartArgs {
    #[command(flatten)]
    pub latest: super::Latest,
    pub containers: Vec<String>,
    /// Attach to the container's output (stdout and stderr apart) until it exits
    #[arg(short, long)]
    pub attach: bool,
    /// Forward stdin to the container (with -a)
    #[arg(short, long)]
    pub interactive: bool,
    /// Key sequence that detaches and leaves the container running
    #[arg(long, default_value = super::attach::DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Forward signals berth receives to the container (with -a)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Start every container that is not running
    #[arg(long)]
    pub all: bool,
    /// Only containers that pass these filters (as `ps --filter`)
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Starts created or exited containers under a monitor.
pub fn start(engine: &Engine, mut a: StartArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
    let cs = Containers::new(engine.store.root());
    if a.attach && a.containers.len() != 1 {
        return Err(Failure::with_code(
            "start -a takes exactly one container",
            125,
        ));
    }
    let keys = super::attach::detach_keys(&a.detach_keys)?;
    let filters = super::ps::parse_filters(&a.filter)?;
    let targets = all_or_named("start", &cs, a.all, &a.containers, |c| !c.is_running())?;
    for t in &targets {
        let c = cs.find(t)?;
        if !super::ps::ps_matches(&c, &filters)? {
            continue;
        }
        if c.is_running() && c.status() != crate::engine::record::State::Paused {
            if a.attach {
                return Err(Failure::with_code(
                    format!(
                        "{} is already running: use `berth attach {}`",
                        c.name, c.name
                    ),
                    125,
                ));
            }
            println!("{t}");
            continue;
        }
        // podman's start exits 125 whatever kept the container from
        // starting (a missing command too, unlike run's 126/127).
        let conn = lifecycle::start(engine, &cs, &c.id, a.attach)
            .map_err(|e| Failure::with_code(e.to_string().replace('\n', ": "), 125))?;
        match conn {
            Some(conn) => {
                let stdin = a.interactive && c.interactive;
                return super::attach::session(&cs, &c, conn, stdin, keys, a.sig_proxy);
            }
            None => println!("{t}"),
        }
    }
    Ok(0)
}

/// `berth restart`
#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub latest: super::Latest,
    pub containers: Vec<String>,
    /// Seconds to wait for the stop before killing (default: its --stop-timeout, else 10)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
}

/// Stops (if running) and starts containers again.
pub fn restart(engine: &Engine, mut a: RestartArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
    let cs = Containers::new(engine.store.root());
    for t in &a.containers {
        lifecycle::restart(engine, &cs, t, a.time)?;
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
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Remove all stopped containers
    Prune,
    /// The container commands, as at the top level
    #[command(flatten)]
    Verb(super::container_verbs::ContainerVerb),
}

impl ContainerCommand {
    pub(super) fn needs_userns(&self) -> bool {
        match self {
            ContainerCommand::Prune => true,
            ContainerCommand::Verb(v) => v.needs_userns(),
            _ => false,
        }
    }
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
                    lifecycle::remove_stopped(&cs, &c)?;
                    println!("{}", c.id);
                }
            }
            Ok(0)
        }
        ContainerCommand::Verb(v) => super::container_verbs::dispatch(engine, v),
    }
}

/// `berth pause` / `berth unpause`
#[derive(Args, Debug)]
pub struct PauseArgs {
    pub containers: Vec<String>,
    /// Every running (to pause) or paused (to unpause) container
    #[arg(short, long)]
    pub all: bool,
}

/// Freezes or thaws containers with the cgroup freezer.
pub fn pause(engine: &Engine, a: PauseArgs, frozen: bool) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let paused = |c: &ContainerRecord| c.status() == crate::engine::record::State::Paused;
    let verb = if frozen { "pause" } else { "unpause" };
    let targets = all_or_named(verb, &cs, a.all, &a.containers, |c| {
        if frozen {
            c.is_running() && !paused(c)
        } else {
            paused(c)
        }
    })?;
    for t in &targets {
        lifecycle::pause(&cs, t, frozen)?;
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
    /// Format descriptors (podman's: user,pid,ppid,pcpu,etime,tty,time,args, %U %p ...)
    pub descriptors: Vec<String>,
}

/// Lists the processes of a running container.
pub fn top(engine: &Engine, a: TopArgs) -> CliResult {
    let descriptors = crate::engine::top::descriptors(&a.descriptors)?;
    let cs = Containers::new(engine.store.root());
    let c = cs.find(&a.container)?;
    c.allows(Action::Top).map_err(LifecycleError::from)?;
    let Some(pid) = c.pid else {
        return Err(Failure::with_code(
            format!("container {} has no process yet", c.name),
            125,
        ));
    };
    let mut rows = vec![descriptors
        .iter()
        .map(|d| crate::engine::top::header(d).to_string())
        .collect::<Vec<_>>()];
    rows.extend(crate::engine::top::rows(pid, &descriptors));
    print!("{}", columns(&rows));
    Ok(0)
}

/// `berth cp`
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Source: a host path or CONTAINER:PATH
    pub source: String,
    /// Destination: a host path or CONTAINER:PATH
    pub destination: String,
    /// Let a directory replace a file (and a file a directory) at the destination
    #[arg(long)]
    pub overwrite: bool,
    /// Keep the files' owners (default); false: what goes into the container belongs to its root
    #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub archive: bool,
    /// Accepted for podman's scripts: berth resolves every path inside the
    /// container's root (openat2), so a copy is safe without pausing it
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pause: bool,
}

/// Copies files between the host and a running container.
pub fn cp(engine: &Engine, a: CpArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let flags = crate::engine::copy::CopyFlags {
        overwrite: a.overwrite,
        archive: a.archive,
    };
    crate::engine::copy::copy(&cs, &a.source, &a.destination, &engine.paths, flags)?;
    Ok(0)
}

/// `berth commit`
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The container whose changes become a layer
    pub container: String,
    /// Name for the new image (short names go under localhost/)
    pub image: Option<String>,
    /// Author of the image
    #[arg(short, long)]
    pub author: Option<String>,
    /// Commit message (the history entry's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// A Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Pause the container while its files are read
    #[arg(short, long)]
    pub pause: bool,
    /// Make the image one layer: the container's whole tree
    #[arg(short, long)]
    pub squash: bool,
    /// Write the image id to this file
    #[arg(long)]
    pub iidfile: Option<std::path::PathBuf>,
    /// Image format: oci or docker (both are stored as OCI; `push --format docker` converts)
    #[arg(short, long, default_value = "oci")]
    pub format: String,
}

/// Makes an image of a container's changes; prints its id.
pub fn commit(engine: &Engine, a: CommitArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let name = a
        .image
        .as_deref()
        .map(super::images::local_name)
        .transpose()?;
    let opts = crate::image::commit::CommitOptions {
        name,
        changes: a.change,
        author: a.author,
        message: a.message,
        created_by: String::new(),
        squash: a.squash,
    };
    if !matches!(a.format.as_str(), "oci" | "docker") {
        return Err(Failure::with_code(
            format!("invalid --format {:?}: use oci or docker", a.format),
            125,
        ));
    }
    let running = a.pause
        && cs
            .find(&a.container)
            .is_ok_and(|r| r.state == crate::engine::record::State::Running);
    let paused = running
        && match lifecycle::pause(&cs, &a.container, true) {
            Ok(()) => true,
            Err(lifecycle::LifecycleError::NoCgroup(_)) => {
                eprintln!(
                    "WARN: {} has no cgroup to freeze: committing it running",
                    a.container
                );
                false
            }
            Err(e) => return Err(e.into()),
        };
    let made = lifecycle::commit(engine, &cs, &a.container, opts);
    if paused {
        lifecycle::pause(&cs, &a.container, false)?;
    }
    let img = made?;
    if let Some(p) = &a.iidfile {
        std::fs::write(p, img.id.to_string()).map_err(|e| {
            Failure::with_code(format!("writing --iidfile {}: {e}", p.display()), 125)
        })?;
    }
    println!("{}", img.id.hex());
    Ok(0)
}

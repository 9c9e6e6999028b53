//! The container commands, said either way: `berth rm` and
//! `berth container rm` are one definition, flattened into both places.

use super::{attach, diff, exec, images, lifecycle, logs, mount, network, run, CliResult};
use crate::engine::Engine;
use clap::Subcommand;

/// Commands that act on containers; podman has each at the top level and
/// under `container`.
#[derive(Subcommand, Debug)]
pub enum ContainerVerb {
    /// Run a command in a new container
    Run(Box<run::RunArgs>),
    /// Remove containers
    Rm(lifecycle::RmArgs),
    /// Stop running containers (stop signal, then SIGKILL after a timeout)
    Stop(lifecycle::StopArgs),
    /// Send a signal to running containers
    Kill(lifecycle::KillArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(lifecycle::WaitArgs),
    /// Print containers' output
    Logs(logs::LogsArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Create a container without starting it
    Create(Box<run::RunArgs>),
    /// List a container's published ports
    Port(network::PortArgs),
    /// Attach to a running container's terminal or output
    Attach(attach::AttachArgs),
    /// Start created or stopped containers
    Start(lifecycle::StartArgs),
    /// Restart containers
    Restart(lifecycle::RestartArgs),
    /// Pause containers (cgroup freezer)
    Pause(lifecycle::PauseArgs),
    /// Unpause containers
    Unpause(lifecycle::PauseArgs),
    /// Rename a container
    Rename(lifecycle::RenameArgs),
    /// Show a container's processes
    Top(lifecycle::TopArgs),
    /// Copy files between the host and a container
    Cp(lifecycle::CpArgs),
    /// Create an image from a container's changes
    Commit(lifecycle::CommitArgs),
    /// List what a container changed in its image (or an image's top layer)
    Diff(diff::DiffArgs),
    /// Write a container's root filesystem as a tar
    Export(diff::ExportArgs),
    /// Mount a container's root filesystem and print where (none: list the mounted ones)
    Mount(mount::MountArgs),
    /// Unmount containers' root filesystems
    #[command(alias = "unmount")]
    Umount(mount::UmountArgs),
    /// Show details of containers or images (as JSON)
    Inspect(images::InspectArgs),
}

impl ContainerVerb {
    /// Verbs that only print (see `Command::only_prints`).
    pub(super) fn only_prints(&self) -> bool {
        matches!(
            self,
            ContainerVerb::Inspect(_)
                | ContainerVerb::Diff(_)
                | ContainerVerb::Logs(_)
                | ContainerVerb::Port(_)
        )
    }

    /// Verbs that write layer files (see `Command::needs_userns`).
    pub(super) fn needs_userns(&self) -> bool {
        matches!(
            self,
            ContainerVerb::Run(_)
                | ContainerVerb::Create(_)
                | ContainerVerb::Start(_)
                | ContainerVerb::Restart(_)
                | ContainerVerb::Rm(_)
                | ContainerVerb::Commit(_)
                | ContainerVerb::Export(_)
                | ContainerVerb::Diff(_)
                | ContainerVerb::Mount(_)
                | ContainerVerb::Umount(_)
        )
    }
}

/// Runs one container verb.
pub fn dispatch(engine: &Engine, v: ContainerVerb) -> CliResult {
    match v {
        ContainerVerb::Run(a) => run::run(engine, *a),
        ContainerVerb::Rm(a) => lifecycle::rm(engine, a),
        ContainerVerb::Stop(a) => lifecycle::stop(engine, a),
        ContainerVerb::Kill(a) => lifecycle::kill(engine, a),
        ContainerVerb::Wait(a) => lifecycle::wait(engine, a),
        ContainerVerb::Logs(a) => logs::logs(engine, a),
        ContainerVerb::Exec(a) => exec::exec(engine, a),
        ContainerVerb::Create(a) => run::create(engine, *a),
        ContainerVerb::Port(a) => network::port(engine, a),
        ContainerVerb::Attach(a) => attach::attach(engine, a),
        ContainerVerb::Start(a) => lifecycle::start(engine, a),
        ContainerVerb::Restart(a) => lifecycle::restart(engine, a),
        ContainerVerb::Pause(a) => lifecycle::pause(engine, a, true),
        ContainerVerb::Unpause(a) => lifecycle::pause(engine, a, false),
        ContainerVerb::Rename(a) => lifecycle::rename(engine, a),
        ContainerVerb::Top(a) => lifecycle::top(engine, a),
        ContainerVerb::Cp(a) => lifecycle::cp(engine, a),
        ContainerVerb::Commit(a) => lifecycle::commit(engine, a),
        ContainerVerb::Diff(a) => diff::diff(engine, a),
        ContainerVerb::Export(a) => diff::export(engine, a),
        ContainerVerb::Mount(a) => mount::mount(engine, a),
        ContainerVerb::Umount(a) => mount::umount(engine, a),
        ContainerVerb::Inspect(a) => images::inspect(engine, a),
    }
}

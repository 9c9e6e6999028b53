//! Command-line front end: clap definitions, one module per command family,
//! and the mapping of errors to podman's exit codes.

pub mod attach;
pub mod build;
pub mod diff;
pub mod exec;
pub mod format;
pub mod history;
pub mod images;
pub mod lifecycle;
pub mod login;
pub mod logs;
pub mod manifest;
pub mod mount;
pub mod network;
pub mod progress;
pub mod ps;
pub mod push;
pub mod run;
pub mod volumes;

use crate::engine::{Engine, Paths};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// berth: run containers from OCI images, with no daemon.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about,
    propagate_version = true,
    disable_help_subcommand = true,
    args_override_self = true
)]
pub struct Cli {
    /// Storage root (default /var/lib/berth, or ~/.local/share/berth when rootless)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime state dir (default /run/berth, or $XDG_RUNTIME_DIR/berth when rootless)
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,
    /// Root filesystem driver: overlay (default; kernel overlayfs, then
    /// fuse-overlayfs, then a copy) or vfs (always copy the layers)
    #[arg(long, global = true, default_value = "overlay", value_name = "DRIVER")]
    pub storage_driver: String,
    /// Storage option, as podman: overlay.mount_program=/usr/bin/fuse-overlayfs
    #[arg(long, global = true, value_name = "OPT")]
    pub storage_opt: Vec<String>,
    /// Read OCI hook files (oci-hooks(5)) from this dir instead of
    /// /usr/share/containers/oci/hooks.d and /etc/containers/oci/hooks.d
    #[arg(long, global = true, value_name = "DIR")]
    pub hooks_dir: Vec<PathBuf>,
    /// Log messages at or above this level: trace, debug, info, warn, error
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command berth has.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command in a new container
    Run(Box<run::RunArgs>),
    /// List containers
    Ps(ps::PsArgs),
    /// Remove containers
    Rm(lifecycle::RmArgs),
    /// Stop running containers (stop signal, then SIGKILL after a timeout)
    Stop(lifecycle::StopArgs),
    /// Send a signal to running containers
    Kill(lifecycle::KillArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(lifecycle::WaitArgs),
    /// Print a container's output
    Logs(logs::LogsArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Create a container without starting it
    Create(Box<run::RunArgs>),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List a container's published ports
    Port(network::PortArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Attach to a running container's terminal or output
    Attach(attach::AttachArgs),
    /// Start created or stopped containers
    Start(lifecycle::StartArgs),
    /// Restart containers
    Restart(lifecycle::RestartArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(lifecycle::ContainerCommand),
    /// Pause containers (cgroup freezer)
    Pause(lifecycle::PauseArgs),
    /// Unpause containers
    Unpause(lifecycle::PauseArgs),
    /// Rename a container
    Rename(lifecycle::RenameArgs),
    /// Show a container's processes
    Top(lifecycle::TopArgs),
    /// Copy files between the host and a running container
    Cp(lifecycle::CpArgs),
    /// Create an image from a container's changes
    Commit(lifecycle::CommitArgs),
    /// Build an image from a Containerfile or Dockerfile
    Build(Box<build::BuildArgs>),
    /// Docker's buildx: `buildx build` is `build`
    #[command(subcommand)]
    Buildx(build::BuildxCommand),
    /// Internal: the monitor of a detached container
    #[command(hide = true)]
    ContainerMonitor(run::MonitorArgs),
    /// Pull an image from a registry
    Pull(images::PullArgs),
    /// Push an image to a registry
    Push(push::PushArgs),
    /// List images in local storage
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Add a name to an image
    Tag(images::TagArgs),
    /// Remove names from an image (all of them without NAME)
    Untag(history::UntagArgs),
    /// Show how an image was made, layer by layer
    History(history::HistoryArgs),
    /// List what a container changed in its image (or an image's top layer)
    Diff(diff::DiffArgs),
    /// Write a container's root filesystem as a tar
    Export(diff::ExportArgs),
    /// Mount a container's root filesystem and print where (none: list the mounted ones)
    Mount(mount::MountArgs),
    /// Unmount containers' root filesystems
    #[command(alias = "unmount")]
    Umount(mount::UmountArgs),
    /// Run a command in the rootless store's user and mount namespaces
    Unshare(mount::UnshareArgs),
    /// Make and push multi-platform manifest lists
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    /// Show details of images (as JSON)
    Inspect(images::InspectArgs),
    /// Create an image from a root filesystem tarball
    Import(images::ImportArgs),
    /// Save images to an archive (docker-archive or oci-archive)
    Save(images::SaveArgs),
    /// Load images from an archive
    Load(images::LoadArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out of a registry
    Logout(login::LogoutArgs),
    /// Manage images
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Check and manage berth's storage
    #[command(subcommand)]
    System(images::SystemCommand),
}

/// A failure, already phrased for the user, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

/// podman's exit codes for each layer's errors, decided here and nowhere
/// else: 125 when berth itself failed, 126/127 when the container's
/// command cannot be invoked or found, 2 for a refused `rm`.
mod exit_codes {
    use super::{one_line, Failure};
    use crate::engine::lifecycle::LifecycleError;
    use crate::engine::record::Action;

    fn failure(e: &dyn std::error::Error, code: i32) -> Failure {
        Failure {
            message: one_line(&e.to_string()),
            code,
        }
    }

    impl From<LifecycleError> for Failure {
        fn from(e: LifecycleError) -> Self {
            let code = match &e {
                LifecycleError::State(s) if s.action == Action::Remove => 2,
                e => e.container_code().unwrap_or(125),
            };
            failure(&e, code)
        }
    }

    impl From<crate::build::BuildError> for Failure {
        fn from(e: crate::build::BuildError) -> Self {
            let code = e.exit_code();
            failure(&e, code)
        }
    }

    impl From<crate::engine::run::RunError> for Failure {
        fn from(e: crate::engine::run::RunError) -> Self {
            let code = e.exit_code();
            failure(&e, code)
        }
    }

    /// Errors for which berth itself failed: 125.
    macro_rules! berth_failed {
        ($($t:ty),* $(,)?) => {$(
            impl From<$t> for Failure {
                fn from(e: $t) -> Self {
                    failure(&e, 125)
                }
            }
        )*};
    }

    berth_failed!(
        std::io::Error,
        crate::cgroups::CgroupError,
        crate::engine::container::ContainerError,
        crate::engine::record::StateError,
        crate::engine::top::UnknownDescriptor,
        crate::monitor::attach::BadDetachKey,
        crate::network::NetworkError,
        crate::engine::netsetup::NetSetupError,
        crate::engine::spec::SpecError,
        crate::engine::volumes::VolumeError,
        crate::engine::EngineError,
        crate::engine::PathsError,
        crate::engine::StorageOptionError,
        crate::engine::hooks_dir::HooksDirError,
        crate::image::push::PushError,
        crate::engine::changes::ChangesError,
        crate::engine::copy::CopyError,
        crate::engine::mount::MountError,
        crate::image::lists::ListError,
        crate::image::archive::ArchiveError,
        crate::image::auth::AuthError,
        crate::image::import::ImportError,
        crate::image::manifest::PlatformError,
        crate::image::pull::PullError,
        crate::image::reference::ReferenceError,
        crate::image::registries_conf::ConfError,
        crate::image::registry::RegistryError,
        crate::image::store::StoreError,
        crate::namespaces::userns::UsernsError,
        super::format::TemplateError,
        super::images::FilterError,
        super::images::OpenError,
        super::images::UsageError,
        super::login::LoginError,
    );
}

impl Failure {
    /// A failure with a specific exit code.
    pub fn with_code(message: impl Into<String>, code: i32) -> Failure {
        Failure {
            message: message.into(),
            code,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// What a command returns: its exit code, or a failure to print.
pub type CliResult = Result<i32, Failure>;

impl Command {
    /// Commands that write layer files: rootless, they run inside the
    /// user namespace so image ownership maps into the subordinate ids.
    /// Commands that only print: when their reader goes away (`| head`),
    /// they end as any Unix tool does, by SIGPIPE, instead of failing on
    /// the write. (Commands that run containers keep SIGPIPE ignored: they
    /// must live to clean up.)
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Ps(_)
                | Command::Images(_)
                | Command::History(_)
                | Command::Inspect(_)
                | Command::Diff(_)
                | Command::Logs(_)
                | Command::Port(_)
        )
    }

    fn needs_userns(&self) -> bool {
        match self {
            Command::Pull(_)
            | Command::Push(_)
            | Command::Rmi(_)
            | Command::Import(_)
            | Command::Load(_)
            | Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Restart(_)
            | Command::Rm(_)
            | Command::Commit(_)
            | Command::Export(_)
            | Command::Diff(_)
            | Command::Mount(_)
            | Command::Umount(_)
            | Command::Build(_)
            | Command::Buildx(_)
            | Command::Network(_) => true,
            Command::Image(c) => c.needs_userns(),
            Command::Container(c) => c.needs_userns(),
            Command::Volume(c) => c.needs_userns(),
            Command::System(c) => c.needs_userns(),
            _ => false,
        }
    }
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> CliResult {
    if cli.command.only_prints() {
        // SAFETY: restoring the default disposition of one signal.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let paths = Paths::resolve(cli.root.clone(), cli.runroot.clone());
    // Before anything is read from them (the user namespace's record).
    paths.check_owned()?;
    if paths.rootless && cli.command.needs_userns() {
        crate::namespaces::userns::enter_store_userns(&paths.runroot)?;
    }
    match cli.command {
        Command::Login(a) => return login::login(a),
        Command::Logout(a) => return login::logout(a),
        _ => {}
    }
    let storage = crate::engine::StorageOptions::parse(&cli.storage_driver, &cli.storage_opt)?;
    let mut engine = Engine::open(paths)?;
    engine.storage = storage;
    crate::engine::hooks_dir::check_named(&cli.hooks_dir)?;
    engine.hooks_dirs = crate::engine::hooks_dir::dirs(&cli.hooks_dir);
    match cli.command {
        Command::Run(a) => run::run(&engine, *a),
        Command::Ps(a) => ps::ps(&engine, a),
        Command::Rm(a) => lifecycle::rm(&engine, a),
        Command::Stop(a) => lifecycle::stop(&engine, a),
        Command::Kill(a) => lifecycle::kill(&engine, a),
        Command::Wait(a) => lifecycle::wait(&engine, a),
        Command::Logs(a) => logs::logs(&engine, a),
        Command::Exec(a) => exec::exec(&engine, a),
        Command::Create(a) => run::create(&engine, *a),
        Command::Start(a) => lifecycle::start(&engine, a),
        Command::Attach(a) => attach::attach(&engine, a),
        Command::Volume(c) => volumes::volume(&engine, c),
        Command::Network(c) => network::network(&engine, c),
        Command::Port(a) => network::port(&engine, a),
        Command::Restart(a) => lifecycle::restart(&engine, a),
        Command::Container(c) => lifecycle::container_command(&engine, c),
        Command::Pause(a) => lifecycle::pause(&engine, a, true),
        Command::Unpause(a) => lifecycle::pause(&engine, a, false),
        Command::Rename(a) => lifecycle::rename(&engine, a),
        Command::Top(a) => lifecycle::top(&engine, a),
        Command::Cp(a) => lifecycle::cp(&engine, a),
        Command::Commit(a) => lifecycle::commit(&engine, a),
        Command::Push(a) => push::push(&engine, a),
        Command::Untag(a) => history::untag(&engine, a),
        Command::History(a) => history::history(&engine, a),
        Command::Diff(a) => diff::diff(&engine, a),
        Command::Export(a) => diff::export(&engine, a),
        Command::Mount(a) => mount::mount(&engine, a),
        Command::Manifest(c) => manifest::manifest(&engine, c),
        Command::Umount(a) => mount::umount(&engine, a),
        Command::Unshare(a) => mount::unshare(&engine, a),
        Command::Build(a) => build::build(&engine, *a),
        Command::Buildx(build::BuildxCommand::Build(a)) => build::build(&engine, *a),
        Command::ContainerMonitor(a) => Ok(crate::engine::detached::monitor_main(&engine, &a.id)),
        Command::Pull(a) => images::pull(&engine, a),
        Command::Images(a) => images::list(&engine, a),
        Command::Rmi(a) => images::rmi(&engine, a),
        Command::Tag(a) => images::tag(&engine, a),
        Command::Inspect(a) => images::inspect(&engine, a),
        Command::Import(a) => images::import(&engine, a),
        Command::Save(a) => images::save(&engine, a),
        Command::Load(a) => images::load(&engine, a),
        Command::Image(c) => images::image_command(&engine, c),
        Command::System(c) => images::system_command(&engine, c),
        Command::Login(_) | Command::Logout(_) => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

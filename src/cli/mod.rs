//! Command-line front end: clap definitions, one module per command family,
//! and the mapping of errors to podman's exit codes.

pub mod attach;
pub mod build;
pub mod container_verbs;
pub mod diff;
pub mod events;
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
pub mod system;
pub mod template;
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
    /// Print nothing on stdout
    #[arg(long, global = true)]
    pub noout: bool,
    /// Where events are recorded: file (berth's journal) or none
    #[arg(long, global = true, default_value = "file", value_name = "BACKEND")]
    pub events_backend: String,
    /// A flag for the OCI runtime (berth's built-in runtime takes none)
    #[arg(long, global = true, value_name = "FLAG")]
    pub runtime_flag: Vec<String>,
    /// Where named volumes live: berth keeps them in volumes/ of the storage root
    #[arg(long, global = true, value_name = "DIR")]
    pub volumepath: Option<PathBuf>,
    /// Talk to a remote service (berth has none: it runs locally, with no daemon)
    #[arg(long, global = true)]
    pub remote: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Every command berth has.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The container commands (also under `container`)
    #[command(flatten)]
    Verb(container_verbs::ContainerVerb),
    /// List containers
    Ps(ps::PsArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(lifecycle::ContainerCommand),
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
    /// Run a command in the rootless store's user and mount namespaces
    Unshare(mount::UnshareArgs),
    /// Make and push multi-platform manifest lists
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
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
    System(system::SystemCommand),
    /// Show what berth runs on: host, store and registries
    Info(system::InfoArgs),
    /// Show berth's version
    Version(system::VersionArgs),
    /// Show what berth's commands did (containers started, images tagged, …)
    Events(events::EventsArgs),
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
            Command::Ps(_) | Command::Images(_) | Command::History(_) | Command::Events(_)
        ) || matches!(self, Command::Verb(v) if v.only_prints())
    }

    fn needs_userns(&self) -> bool {
        match self {
            Command::Pull(_)
            | Command::Push(_)
            | Command::Rmi(_)
            | Command::Import(_)
            | Command::Load(_)
            | Command::Build(_)
            | Command::Buildx(_)
            | Command::Network(_) => true,
            Command::Verb(v) => v.needs_userns(),
            Command::Image(c) => c.needs_userns(),
            Command::Container(c) => c.needs_userns(),
            Command::Volume(c) => c.needs_userns(),
            Command::System(c) => c.needs_userns(),
            _ => false,
        }
    }
}

/// Refuses global flags that ask for what berth does not do.
fn check_global_flags(cli: &Cli) -> Result<(), Failure> {
    if cli.remote {
        return Err(Failure::with_code(
            "berth has no remote mode: it runs containers on this machine with no service; drop --remote",
            125,
        ));
    }
    if let Some(p) = &cli.volumepath {
        return Err(Failure::with_code(
            format!("--volumepath {}: berth keeps named volumes in volumes/ under --root; set --root instead", p.display()),
            125,
        ));
    }
    if !["file", "journald", "none"].contains(&cli.events_backend.as_str()) {
        return Err(Failure::with_code(
            format!(
                "invalid --events-backend {:?}: use file or none",
                cli.events_backend
            ),
            125,
        ));
    }
    let starts = matches!(
        &cli.command,
        Command::Verb(
            container_verbs::ContainerVerb::Run(_)
                | container_verbs::ContainerVerb::Create(_)
                | container_verbs::ContainerVerb::Start(_)
        )
    );
    if let (Some(f), true) = (cli.runtime_flag.first(), starts) {
        return Err(Failure::with_code(
            format!("--runtime-flag {f}: berth's built-in runtime takes no flags"),
            126,
        ));
    }
    Ok(())
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> CliResult {
    check_global_flags(&cli)?;
    if cli.events_backend == "none" {
        crate::util::events::disable();
    }
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
        Command::Version(a) => return system::version(a),
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
        Command::Ps(a) => ps::ps(&engine, a),
        Command::Volume(c) => volumes::volume(&engine, c),
        Command::Network(c) => network::network(&engine, c),
        Command::Verb(v) => container_verbs::dispatch(&engine, v),
        Command::Container(c) => lifecycle::container_command(&engine, c),
        Command::Push(a) => push::push(&engine, a),
        Command::Untag(a) => history::untag(&engine, a),
        Command::History(a) => history::history(&engine, a),
        Command::Manifest(c) => manifest::manifest(&engine, c),
        Command::Unshare(a) => mount::unshare(&engine, a),
        Command::Build(a) => build::build(&engine, *a),
        Command::Buildx(build::BuildxCommand::Build(a)) => build::build(&engine, *a),
        Command::ContainerMonitor(a) => Ok(crate::engine::detached::monitor_main(&engine, &a.id)),
        Command::Pull(a) => images::pull(&engine, a),
        Command::Images(a) => images::list(&engine, a),
        Command::Rmi(a) => images::rmi(&engine, a),
        Command::Tag(a) => images::tag(&engine, a),
        Command::Import(a) => images::import(&engine, a),
        Command::Save(a) => images::save(&engine, a),
        Command::Load(a) => images::load(&engine, a),
        Command::Image(c) => images::image_command(&engine, c),
        Command::System(c) => system::system_command(&engine, c),
        Command::Info(a) => system::show_info(&engine, a),
        Command::Events(a) => events::events(&engine, a, &cli.events_backend),
        Command::Login(_) | Command::Logout(_) | Command::Version(_) => {
            unreachable!("handled above")
        }
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

/// `-l/--latest`: act on the container created last instead of named ones
/// (podman's flag on the container verbs).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct Latest {
    /// Act on the container created last
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
}

impl Latest {
    /// The containers to act on: `names`, or with --latest the newest one
    /// (names and --latest together are refused, as podman does).
    pub fn pick(self, engine: &Engine, names: Vec<String>) -> Result<Vec<String>, Failure> {
        if !self.latest {
            return Ok(names);
        }
        if !names.is_empty() {
            return Err(Failure::with_code(
                "--latest and containers cannot be used together: give one or the other",
                125,
            ));
        }
        let cs = crate::engine::container::Containers::new(engine.store.root());
        match cs.latest() {
            Some(c) => Ok(vec![c.id]),
            None => Err(Failure::with_code("--latest: there are no containers", 125)),
        }
    }
}

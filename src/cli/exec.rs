//! `berth exec`: a command in a running container.

use super::{CliResult, Failure};
use crate::engine::Engine;
use clap::Args;

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
    /// Pass berth's descriptors 3..3+N on to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
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
        preserve_fds: a.preserve_fds,
    };
    crate::engine::exec::exec(engine, o).map_err(|e| {
        let code = e.exit_code();
        Failure::with_code(e.to_string().replace('\n', ": "), code)
    })
}

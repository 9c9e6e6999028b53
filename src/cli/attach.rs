//! `berth attach`: joins a detached container's terminal or stdio through
//! its monitor's attach socket; also the attached half of `start -a`.

use super::{CliResult, Failure};
use crate::engine::container::{ContainerRecord, Containers};
use crate::engine::Engine;
use crate::monitor::attach::{self, ClientOptions, Ended};
use clap::Args;
use std::os::fd::OwnedFd;

/// The default detach sequence, as podman's.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// `berth attach`
#[derive(Args, Debug)]
pub struct AttachArgs {
    pub container: String,
    /// Do not forward stdin
    #[arg(long)]
    pub no_stdin: bool,
    /// Key sequence that detaches and leaves the container running
    #[arg(long, default_value = DEFAULT_DETACH_KEYS)]
    pub detach_keys: String,
    /// Forward signals berth receives to the container
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
}

/// Attaches to a running container.
pub fn attach(engine: &Engine, a: AttachArgs) -> CliResult {
    let keys = detach_keys(&a.detach_keys)?;
    let cs = Containers::new(engine.store.root());
    let c = cs.find(&a.container)?;
    c.allows(crate::engine::record::Action::Attach)
        .map_err(crate::engine::lifecycle::LifecycleError::from)?;
    let conn = attach::connect_to(&cs.dir(&c.id).join("userdata")).map_err(|e| {
        Failure::with_code(format!("cannot reach the monitor of {}: {e}", c.name), 125)
    })?;
    session(
        &cs,
        &c,
        conn,
        c.interactive && !a.no_stdin,
        keys,
        a.sig_proxy,
    )
}

/// Checks `--detach-keys` before anything starts.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, Failure> {
    Ok(attach::parse_detach_keys(spec)?)
}

/// Relays until the container exits (its code), the user detaches (0), or
/// the monitor disappears (the recorded code, if any).
pub fn session(
    cs: &Containers,
    c: &ContainerRecord,
    conn: OwnedFd,
    stdin: bool,
    keys: Vec<u8>,
    sig_proxy: bool,
) -> CliResult {
    let ended = attach::client(
        conn,
        ClientOptions {
            tty: c.tty,
            stdin,
            detach_keys: keys,
            sig_proxy,
        },
    )
    .map_err(|e| Failure::with_code(format!("attach: {e}"), 125))?;
    match ended {
        Ended::Exited(code) => Ok(code),
        Ended::Detached => Ok(0),
        Ended::Lost => match cs.find(&c.id).ok().and_then(|r| r.exit_code) {
            Some(code) => Ok(code),
            None => Err(Failure::with_code(
                format!("the monitor of {} went away without an exit status", c.name),
                125,
            )),
        },
    }
}

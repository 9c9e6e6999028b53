//! Why a setup step of a container process failed: what berth was doing,
//! and the system's answer. The child turns it into a `ChildError` for
//! its parent; the parent-side helpers (`cp` of a stopped container)
//! show it as it is.

/// A setup step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct StepError {
    /// What berth was doing ("binding /data to /srv").
    pub what: String,
    #[source]
    pub cause: Cause,
}

/// The answer a step got.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Sys(#[from] nix::Error),
    /// A helper program said no (its own words).
    #[error("{0}")]
    Helper(String),
}

/// Wraps the error of a step with what it was doing, for `map_err`.
pub fn ctx<E: Into<Cause>>(what: impl std::fmt::Display) -> impl FnOnce(E) -> StepError {
    move |e| StepError {
        what: what.to_string(),
        cause: e.into(),
    }
}

/// The last OS error of a raw call, with what it was doing.
pub fn last_os(what: impl std::fmt::Display) -> StepError {
    ctx(what)(std::io::Error::last_os_error())
}

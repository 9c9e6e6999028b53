//! `berth build`: a Containerfile's stages run as steps over the engine.
//! A RUN step is a container the engine creates and runs on the image so
//! far, whose changes become a layer; COPY and ADD make their layer
//! without running anything; the other instructions change the config.
//! Every step has a cache key (its parent's, the instruction, and what it
//! reads), and a step whose key is cached is not run again.

pub mod cache;
pub mod context;
pub mod fetch;
pub mod from_stage;
pub mod ignore;
mod jobs;
pub mod layer;
pub mod parse;
pub mod run_mounts;
mod stage;
pub mod view;
pub mod words;

use crate::engine::Engine;
use crate::image::store::{ImageRecord, StoreError};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Syntax(#[from] parse::SyntaxError),
    #[error(transparent)]
    Ignore(#[from] ignore::IgnoreError),
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error("{file}:{line}: {problem}")]
    Instruction {
        file: String,
        line: usize,
        problem: String,
    },
    /// A RUN step's command failed; podman passes its code through.
    #[error("building at STEP \"{step}\": the command exited with {code}{tail}")]
    Run {
        step: String,
        code: i32,
        tail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] crate::image::import::ImportError),
    #[error(transparent)]
    Pull(#[from] crate::image::pull::PullError),
    #[error(transparent)]
    Engine(#[from] crate::engine::run::RunError),
    #[error(transparent)]
    Reference(#[from] crate::image::reference::ReferenceError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A stage built by a parallel job failed with this message.
    #[error("{message}")]
    Job { code: i32, message: String },
    #[error("{0}")]
    Usage(String),
}

impl BuildError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let what = what.into();
        move |source| BuildError::Io { what, source }
    }

    /// podman's exit code: a failing RUN's own, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Run { code, .. } if *code > 0 => *code,
            BuildError::Job { code, .. } => *code,
            _ => 125,
        }
    }
}

pub use crate::image::pull::PullPolicy;

/// What to build and how.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Containerfile's text and its name for messages.
    pub containerfile: (String, String),
    /// `.containerignore`'s text and name, if any.
    pub ignore: Option<(String, String)>,
    /// `-t`: the image's names.
    pub tags: Vec<String>,
    /// `--build-arg`
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--layers=false`: neither read nor write the cache.
    pub no_layers: bool,
    /// `--label`: added to the final image.
    pub labels: Vec<String>,
    /// `--annotation`: on the final image's manifest.
    pub annotations: Vec<String>,
    /// `--squash-all`: the image as one layer.
    pub squash_all: bool,
    /// `--squash`: the build's new layers as one, over the base's.
    pub squash: bool,
    /// `-q`: print only the image id.
    pub quiet: bool,
    /// Output goes to a terminal: the live view instead of plain lines.
    pub live: bool,
    /// `--jobs`: how many independent stages build at once (0: as many
    /// as the machine has cores).
    pub jobs: usize,
    /// `--network` for RUN steps.
    pub network: Option<String>,
    pub pull: PullPolicy,
    pub pull_options: crate::image::pull::PullOptions,
    /// `--timestamp` / SOURCE_DATE_EPOCH: every time in the image.
    pub timestamp: Option<i64>,
    /// `--format docker` keeps HEALTHCHECK and friends, as podman does
    /// (they are kept in both here).
    pub docker_format: bool,
    /// `--secret id=ID,src=PATH`: files RUN --mount=type=secret shows.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--build-context NAME=VALUE`: what `COPY --from=NAME`,
    /// `RUN --mount=from=NAME` and `FROM NAME` read instead of a stage or
    /// an image of that name.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A `--build-context` value.
#[derive(Clone, Debug)]
pub enum NamedContext {
    /// A directory, read as the main context is (no ignore file).
    Dir(PathBuf),
    /// An image (`docker-image://` or `container-image://`).
    Image(String),
}

/// Builds the image; returns its record. Plain progress lines go to `out`
/// (podman's `STEP n/m:` form) unless quiet.
pub fn build(
    engine: &Engine,
    opts: &BuildOptions,
    out: &mut dyn std::io::Write,
) -> Result<ImageRecord, BuildError> {
    stage::Builder::new(engine, opts, out)?.run()
}

//! `berth build` (also `image build`, `buildx build`): podman's flags.

use super::{CliResult, Failure};
use crate::build::{BuildOptions, NamedContext, PullPolicy};
use crate::engine::Engine;
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `berth buildx ...`
#[derive(clap::Subcommand, Debug)]
pub enum BuildxCommand {
    /// Build an image (as `berth build`)
    Build(Box<BuildArgs>),
}

/// `berth build [flags] [CONTEXT]`
#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The Containerfile (default: Containerfile, then Dockerfile, in the context; - reads stdin)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Name the image (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// A build argument: KEY=VALUE, or KEY to take it from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// A file of KEY=VALUE build arguments, one per line
    #[arg(long = "build-arg-file", value_name = "FILE")]
    pub build_arg_files: Vec<PathBuf>,
    /// Build this stage (and what it needs) only
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, using no cached layer
    #[arg(long)]
    pub no_cache: bool,
    /// Cache each step's layer (podman's default)
    #[arg(long, default_value = "true", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub layers: String,
    /// Add a label to the image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Make the image one layer: every layer, the base's too
    #[arg(long)]
    pub squash_all: bool,
    /// Squash the build's new layers into one, over the base's
    #[arg(long)]
    pub squash: bool,
    /// Add an annotation to the image's manifest
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// How many independent stages to build at once (default: one per core; 1 builds them in order)
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub jobs: usize,
    /// Write the image id to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Network for RUN steps (as run's --network)
    #[arg(long)]
    pub network: Option<String>,
    /// Pull the base images: always, missing (default), never, newer
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = "always")]
    pub pull: Option<String>,
    /// An ignore file instead of .containerignore/.dockerignore
    #[arg(long, value_name = "FILE")]
    pub ignorefile: Option<PathBuf>,
    /// Seconds since the epoch for every time in the image (also SOURCE_DATE_EPOCH)
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Image format: oci (default) or docker
    #[arg(long, default_value = "oci")]
    pub format: String,
    /// Only the host's platform can be built
    #[arg(long)]
    pub platform: Option<String>,
    /// Skip TLS verification when pulling base images
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: String,
    /// A secret for RUN --mount=type=secret: id=ID,src=PATH
    #[arg(long, value_name = "id=ID,src=PATH")]
    pub secret: Vec<String>,
    /// Another context for COPY --from, RUN --mount from= and FROM: NAME=DIR or NAME=docker-image://IMAGE
    #[arg(long, value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// The build context: a directory, or - for a tar on stdin
    #[arg(default_value = ".")]
    pub context: String,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::with_code(msg, 125)
}

fn truthy(s: &str, flag: &str) -> Result<bool, Failure> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(usage(format!(
            "invalid {flag} {other:?}: use true or false"
        ))),
    }
}

/// Unpacks a context tar from stdin into a temporary directory.
fn context_from_stdin(engine: &Engine) -> Result<crate::image::store::TempPath, Failure> {
    let tmp = engine.store.temp_path("build-context")?;
    std::fs::create_dir_all(tmp.path())?;
    let opts = crate::image::unpack::UnpackOptions {
        rootless: engine.paths.rootless,
        copy: Some(crate::image::unpack::CopyRules {
            overwrite: true,
            keep_owners: false,
            devices: false,
        }),
    };
    crate::image::unpack::unpack(std::io::stdin().lock(), tmp.path(), opts)
        .map_err(|e| usage(format!("reading the context tar from stdin: {e}")))?;
    Ok(tmp)
}

fn read_containerfile(file: Option<&str>, context: &Path) -> Result<(String, String), Failure> {
    match file {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Ok((s, "-".into()))
        }
        Some(f) => {
            let p = Path::new(f);
            let p = if p.is_absolute() || p.exists() {
                p.to_path_buf()
            } else {
                context.join(f)
            };
            let text = std::fs::read_to_string(&p)
                .map_err(|e| usage(format!("reading {}: {e}", p.display())))?;
            Ok((text, p.display().to_string()))
        }
        None => {
            for n in ["Containerfile", "Dockerfile"] {
                let p = context.join(n);
                if p.is_file() {
                    let text = std::fs::read_to_string(&p)?;
                    return Ok((text, n.to_string()));
                }
            }
            Err(usage(format!(
                "no Containerfile or Dockerfile in {}: name one with -f",
                context.display()
            )))
        }
    }
}

fn build_args(a: &BuildArgs) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let mut out = std::collections::BTreeMap::new();
    for f in &a.build_arg_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| usage(format!("--build-arg-file {}: {e}", f.display())))?;
        for l in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            out.insert(k.to_string(), v.to_string());
        }
    }
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(b) {
                    out.insert(b.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// How many user ids this (rootless) process has mapped.
fn mapped_ids() -> u64 {
    std::fs::read_to_string("/proc/self/uid_map")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

/// Runs `berth build`.
pub fn build(engine: &Engine, a: BuildArgs) -> CliResult {
    if engine.paths.rootless {
        let n = mapped_ids();
        if n < 65536 {
            // Said before anything runs, not as an lchown error half way.
            eprintln!(
                "WARN: only {n} user id(s) are mapped for rootless builds (/etc/subuid, /etc/subgid): files an image gives to ids from {n} up cannot be made; add ranges with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER`, then `berth system migrate`"
            );
        }
    }
    let stdin_context = if a.context == "-" {
        Some(context_from_stdin(engine)?)
    } else {
        None
    };
    let context = match &stdin_context {
        Some(t) => t.path().to_path_buf(),
        None => std::fs::canonicalize(&a.context)
            .map_err(|e| usage(format!("the build context {}: {e}", a.context)))?,
    };
    if !context.is_dir() {
        return Err(usage(format!(
            "the build context {} is not a directory",
            context.display()
        )));
    }
    if let Some(p) = &a.platform {
        let host = format!(
            "linux/{}",
            crate::image::manifest::Platform::host().architecture
        );
        if p != &host {
            return Err(usage(format!("--platform {p}: this host builds {host} only; another architecture's RUN steps need binfmt emulation, which berth does not set up")));
        }
    }
    let containerfile = read_containerfile(a.file.as_deref(), &context)?;
    let ignore = match &a.ignorefile {
        Some(f) => Some((
            std::fs::read_to_string(f)
                .map_err(|e| usage(format!("--ignorefile {}: {e}", f.display())))?,
            f.display().to_string(),
        )),
        None => [".containerignore", ".dockerignore"].iter().find_map(|n| {
            std::fs::read_to_string(context.join(n))
                .ok()
                .map(|t| (t, n.to_string()))
        }),
    };
    let pull = PullPolicy::parse(a.pull.as_deref()).ok_or_else(|| {
        usage(format!(
            "invalid --pull {:?}: use always, missing, never or newer",
            a.pull.as_deref().unwrap_or_default()
        ))
    })?;
    let timestamp =
        match a.timestamp {
            Some(t) => Some(t),
            None => match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(v) if !v.is_empty() => Some(v.parse().map_err(|_| {
                    usage(format!("SOURCE_DATE_EPOCH={v}: not a number of seconds"))
                })?),
                _ => None,
            },
        };
    let docker_format = match a.format.as_str() {
        "oci" => false,
        "docker" => true,
        o => return Err(usage(format!("invalid --format {o:?}: use oci or docker"))),
    };
    let mut secrets = std::collections::BTreeMap::new();
    for s in &a.secret {
        let kv: std::collections::BTreeMap<&str, &str> =
            s.split(',').filter_map(|f| f.split_once('=')).collect();
        let (Some(id), Some(src)) = (kv.get("id"), kv.get("src").or(kv.get("source"))) else {
            return Err(usage(format!("invalid --secret {s:?}: use id=ID,src=PATH")));
        };
        let path =
            std::fs::canonicalize(src).map_err(|e| usage(format!("--secret {id}: {src}: {e}")))?;
        secrets.insert(id.to_string(), path);
    }
    let mut named_contexts = std::collections::BTreeMap::new();
    for c in &a.build_context {
        let Some((name, value)) = c
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            return Err(usage(format!(
                "invalid --build-context {c:?}: use NAME=DIR or NAME=docker-image://IMAGE"
            )));
        };
        let named = if let Some(image) = value
            .strip_prefix("docker-image://")
            .or_else(|| value.strip_prefix("container-image://"))
        {
            NamedContext::Image(image.to_string())
        } else if value.contains("://") {
            return Err(usage(format!(
                "--build-context {name}={value}: only directories and docker-image:// or container-image:// images are supported"
            )));
        } else {
            let dir = std::fs::canonicalize(value)
                .ok()
                .filter(|d| d.is_dir())
                .ok_or_else(|| usage(format!("--build-context {name}={value}: not a directory")))?;
            NamedContext::Dir(dir)
        };
        named_contexts.insert(name.to_string(), named);
    }
    let pull_options = crate::image::pull::PullOptions {
        tls_verify: truthy(&a.tls_verify, "--tls-verify")?,
        ..Default::default()
    };
    let opts = BuildOptions {
        context,
        containerfile,
        ignore,
        tags: a.tags.clone(),
        build_args: build_args(&a)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        no_layers: !truthy(&a.layers, "--layers")?,
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        squash_all: a.squash_all,
        squash: a.squash,
        quiet: a.quiet,
        live: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        jobs: a.jobs,
        network: a.network.clone(),
        pull,
        pull_options,
        timestamp,
        docker_format,
        secrets,
        named_contexts,
    };
    let mut out = std::io::stdout();
    let result = crate::build::build(engine, &opts, &mut out);
    drop(stdin_context);
    let img = result?;
    if let Some(p) = &a.iidfile {
        std::fs::write(p, img.id.to_string())
            .map_err(|e| usage(format!("writing --iidfile {}: {e}", p.display())))?;
    }
    println!("{}", img.id.hex());
    Ok(0)
}

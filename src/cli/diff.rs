//! `berth diff` / `container diff` / `image diff`, and `berth export`.

use super::{CliResult, Failure};
use crate::engine::Engine;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

/// `berth diff [--format json] CONTAINER|IMAGE`
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// A container or an image
    #[arg(required_unless_present = "latest")]
    pub name: Option<String>,
    #[command(flatten)]
    pub latest: super::Latest,
    /// Output format: json
    #[arg(long)]
    pub format: Option<String>,
}

/// Lists what a container changed in its image (or what an image's top
/// layer changed), as podman: `A`, `C` or `D` and the path.
pub fn diff(engine: &Engine, a: DiffArgs) -> CliResult {
    let names = a.latest.pick(engine, a.name.into_iter().collect())?;
    let list = crate::engine::changes::of(engine, &names[0])?;
    match a.format.as_deref() {
        None => {
            for c in &list {
                println!("{} {}", c.kind, c.path);
            }
        }
        Some("json") => {
            let pick = |k: char| {
                list.iter()
                    .filter(|c| c.kind == k)
                    .map(|c| c.path.clone())
                    .collect::<Vec<_>>()
            };
            let mut v = serde_json::Map::new();
            for (k, name) in [('C', "changed"), ('A', "added"), ('D', "deleted")] {
                let paths = pick(k);
                if !paths.is_empty() {
                    v.insert(name.into(), paths.into());
                }
            }
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        }
        Some(o) => {
            return Err(Failure::with_code(
                format!("invalid --format {o:?}: use json"),
                125,
            ))
        }
    }
    Ok(0)
}

/// `berth export [-o FILE] CONTAINER`
#[derive(Args, Debug)]
pub struct ExportArgs {
    pub container: String,
    /// Write to this file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Writes a container's root filesystem as a tar.
pub fn export(engine: &Engine, a: ExportArgs) -> CliResult {
    let containers = crate::engine::container::Containers::new(engine.store.root());
    let out = match &a.output {
        Some(p) => std::fs::File::create(p)
            .map_err(|e| Failure::with_code(format!("creating {}: {e}", p.display()), 125))?,
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure::with_code(
                    "refusing to export to a terminal: use -o FILE or redirect stdout",
                    125,
                ));
            }
            // SAFETY: dup of our own stdout; the File owns the new fd.
            let fd = unsafe { libc::dup(1) };
            if fd < 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            // SAFETY: a fresh fd we own.
            unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        }
    };
    crate::engine::copy::export(&containers, &a.container, &engine.paths, &out)?;
    Ok(0)
}

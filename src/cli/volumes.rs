//! `berth volume create|ls|inspect|rm|prune|exists`: podman's volume
//! commands over the volume store.

use super::format::columns;
use super::{CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::volumes::{pairs, VolumeError, VolumeRecord, Volumes};
use crate::engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `berth volume ...`
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (a generated name when none is given)
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON
    Inspect(InspectArgs),
    /// Remove volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every volume no container uses
    Prune(PruneArgs),
    /// Whether a volume exists (exit 0 if it does, 1 if not)
    Exists(ExistsArgs),
    /// Write a volume's files as a tar (to stdout, or --output)
    Export(ExportArgs),
    /// Unpack a tar (a file, or - for stdin) into a volume
    Import(ImportArgs),
    /// Print where a volume's files are (a local volume is a directory: nothing is mounted)
    Mount(MountArgs),
    /// The counterpart of `volume mount` (nothing to undo for local volumes)
    #[command(alias = "umount")]
    Unmount(MountArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub name: String,
    /// Write to this file instead of stdout
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    pub name: String,
    /// A tar file, or - for stdin
    pub source: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl VolumeCommand {
    /// Removing volume files written inside containers needs the
    /// subordinate ids (rootless); so does creating them owned right.
    pub fn needs_userns(&self) -> bool {
        matches!(
            self,
            VolumeCommand::Rm(_) | VolumeCommand::Prune(_) | VolumeCommand::Import(_)
        )
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: Option<String>,
    /// Set a label: KEY=VALUE
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Driver option: KEY=VALUE
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// Volume driver (only "local")
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Do nothing if the volume exists
    #[arg(long)]
    pub ignore: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Filter: name=, label=KEY[=VALUE], dangling=true|false, driver=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Print names only
    #[arg(short, long)]
    pub quiet: bool,
    /// json, table, or a template such as {{.Name}}
    #[arg(long)]
    pub format: Option<String>,
    /// Print no header line
    #[arg(long)]
    pub noheading: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub names: Vec<String>,
    /// Inspect every volume
    #[arg(short, long)]
    pub all: bool,
    /// A template such as {{.Mountpoint}}
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    pub names: Vec<String>,
    /// Remove every volume
    #[arg(short, long)]
    pub all: bool,
    /// Remove the containers using the volume first
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask before removing them
    #[arg(short, long)]
    pub force: bool,
    /// Only volumes matching: label=KEY[=VALUE]
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExistsArgs {
    pub name: String,
}

fn fail(e: VolumeError) -> Failure {
    Failure::with_code(e.to_string(), 125)
}

/// podman's `volume inspect` object.
fn value(vols: &Volumes, cs: &Containers, v: &VolumeRecord) -> Value {
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": vols.data(&v.name),
        "CreatedAt": v.created,
        "Labels": v.labels,
        "Scope": "local",
        "Options": v.options,
        "Anonymous": v.anonymous,
        "MountCount": vols.users(cs, &v.name).len(),
    })
}

fn label_matches(v: &VolumeRecord, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

/// The named volumes, or every one with --all.
fn names_or_all(
    vols: &Volumes,
    names: Vec<String>,
    all: bool,
    verb: &str,
) -> Result<Vec<String>, Failure> {
    let names = if all {
        vols.list().into_iter().map(|v| v.name).collect()
    } else {
        names
    };
    if names.is_empty() {
        return Err(Failure::with_code(
            format!("volume {verb} needs a volume name (or --all)"),
            125,
        ));
    }
    Ok(names)
}

/// Dispatches `berth volume ...`.
pub fn volume(engine: &Engine, c: VolumeCommand) -> CliResult {
    let vols = Volumes::new(engine.store.root());
    let cs = Containers::new(engine.store.root());
    match c {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                return Err(Failure::with_code(
                    format!(
                        "unsupported volume driver {:?}: berth has the local driver only",
                        a.driver
                    ),
                    125,
                ));
            }
            let name = a.name.unwrap_or_else(crate::engine::container::random_id);
            let r = vols
                .create(&name, pairs(&a.label), pairs(&a.opt), false, a.ignore)
                .map_err(fail)?;
            println!("{}", r.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let mut list = vols.list();
            for f in &a.filter {
                let (k, want) = f.split_once('=').ok_or_else(|| {
                    Failure::with_code(format!("invalid filter {f:?}: expected KEY=VALUE"), 125)
                })?;
                match k {
                    // A regular expression, as podman matches names.
                    "name" => {
                        let re = regex::Regex::new(want).map_err(|e| {
                            Failure::with_code(format!("invalid filter {f:?}: {e}"), 125)
                        })?;
                        list.retain(|v| re.is_match(&v.name))
                    }
                    "label" => list.retain(|v| label_matches(v, want)),
                    "driver" => list.retain(|v| v.driver == want),
                    "dangling" => {
                        let dangling = matches!(want, "true" | "1");
                        list.retain(|v| vols.users(&cs, &v.name).is_empty() == dangling)
                    }
                    other => {
                        return Err(Failure::with_code(
                            format!(
                                "invalid filter {other:?}: use name=, label=, driver=, dangling="
                            ),
                            125,
                        ))
                    }
                }
            }
            if a.quiet {
                for v in &list {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let values: Vec<Value> = list.iter().map(|v| value(&vols, &cs, v)).collect();
            match a.format.as_deref() {
                Some("json") => {
                    println!("{}", serde_json::to_string_pretty(&values).expect("json"))
                }
                Some(t) if t != "table" => {
                    print!(
                        "{}",
                        super::format::template_table(t, &values, a.noheading)?
                    )
                }
                _ => {
                    let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
                    if a.noheading {
                        rows.clear();
                    }
                    rows.extend(list.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
                    print!("{}", columns(&rows));
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let names = names_or_all(&vols, a.names, a.all, "inspect")?;
            let mut out = Vec::new();
            for n in &names {
                out.push(value(&vols, &cs, &vols.get(n).map_err(fail)?));
            }
            super::format::print_inspect(&out, a.format.as_deref())?;
            Ok(0)
        }
        VolumeCommand::Rm(a) => {
            let names = names_or_all(&vols, a.names, a.all, "rm")?;
            let mut code = 0;
            for n in names {
                if a.force && vols.get(&n).is_ok() {
                    for user in vols.users(&cs, &n) {
                        if let Ok(c) = cs.find(&user) {
                            crate::engine::lifecycle::remove_forced(&cs, &c.id)?;
                        }
                    }
                }
                match vols.remove(&cs, &n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = match e {
                            VolumeError::NotFound(_) => code.max(1),
                            // podman's code for a volume in use.
                            VolumeError::InUse { .. } => code.max(2),
                            _ => 125,
                        };
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => {
            let unused: Vec<VolumeRecord> = vols
                .list()
                .into_iter()
                .filter(|v| {
                    a.filter.iter().all(|f| {
                        f.strip_prefix("label=")
                            .is_some_and(|want| label_matches(v, want))
                    })
                })
                .filter(|v| vols.users(&cs, &v.name).is_empty())
                .collect();
            if !a.force {
                // podman's question; anything but y/yes keeps them all.
                println!("WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:");
                for v in &unused {
                    println!("{}", v.name);
                }
                print!("Are you sure you want to continue? [y/N] ");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                    return Ok(0);
                }
            }
            for v in unused {
                if vols.remove(&cs, &v.name).is_ok() {
                    println!("{}", v.name);
                }
            }
            Ok(0)
        }
        VolumeCommand::Export(a) => {
            vols.get(&a.name).map_err(fail)?;
            let out: Box<dyn std::io::Write> = match &a.output {
                Some(p) => Box::new(std::fs::File::create(p).map_err(|e| {
                    Failure::with_code(format!("--output {}: {e}", p.display()), 125)
                })?),
                None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                    return Err(Failure::with_code(
                        "refusing to write a tar to the terminal: use --output FILE or redirect stdout",
                        125,
                    ))
                }
                None => Box::new(std::io::stdout().lock()),
            };
            crate::engine::volumes::export(&vols, &a.name, out).map_err(fail)?;
            Ok(0)
        }
        VolumeCommand::Import(a) => {
            vols.get(&a.name).map_err(fail)?;
            let input: Box<dyn std::io::Read> =
                if a.source == std::path::Path::new("-") {
                    Box::new(std::io::stdin().lock())
                } else {
                    Box::new(std::fs::File::open(&a.source).map_err(|e| {
                        Failure::with_code(format!("{}: {e}", a.source.display()), 125)
                    })?)
                };
            crate::engine::volumes::import(&vols, &a.name, input, engine.paths.rootless)
                .map_err(fail)?;
            Ok(0)
        }
        VolumeCommand::Mount(a) => {
            // The local driver's volumes are directories: nothing to mount.
            for n in &a.names {
                vols.get(n).map_err(fail)?;
                println!("{}", vols.data(n).display());
            }
            Ok(0)
        }
        VolumeCommand::Unmount(a) => {
            for n in &a.names {
                vols.get(n).map_err(fail)?;
            }
            Ok(0)
        }
        VolumeCommand::Exists(a) => Ok(if vols.get(&a.name).is_ok() { 0 } else { 1 }),
    }
}

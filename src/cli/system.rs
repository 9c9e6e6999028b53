//! `berth system`, `info` and `version`: the store's health, what berth
//! runs on, and its disk use.

use super::{CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::images::collect_garbage;
use crate::engine::info;
use crate::engine::volumes::Volumes;
use crate::engine::Engine;
use crate::util::human;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `berth system ...`
#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Verify the store: digests of every blob, every image complete, no leftovers
    Check(CheckArgs),
    /// Stop the rootless user namespace keeper, so the next command maps the current /etc/subuid and /etc/subgid ranges
    Migrate,
    /// Show how much disk images, containers and volumes use
    Df(DfArgs),
    /// Show what berth runs on (as `berth info`)
    Info(InfoArgs),
}

/// `berth system check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Remove leftovers of interrupted operations before checking
    #[arg(short, long)]
    pub repair: bool,
}

impl SystemCommand {
    pub(super) fn needs_userns(&self) -> bool {
        matches!(self, SystemCommand::Check(CheckArgs { repair: true }))
    }
}

/// Dispatches `berth system ...`.
pub fn system_command(engine: &Engine, c: SystemCommand) -> CliResult {
    match c {
        SystemCommand::Check(a) => {
            if a.repair {
                collect_garbage(&engine.store)?;
            }
            let problems = engine.store.check()?;
            if problems.is_empty() {
                println!("No problems found");
                return Ok(0);
            }
            for p in &problems {
                println!("{p}");
            }
            Err(Failure::with_code(
                format!(
                    "{} problem(s) found in {}",
                    problems.len(),
                    engine.store.root().display()
                ),
                1,
            ))
        }
        SystemCommand::Migrate => {
            if engine.paths.rootless {
                crate::namespaces::userns::stop_keeper(&engine.paths.runroot);
            }
            Ok(0)
        }
        SystemCommand::Df(a) => df(engine, a),
        SystemCommand::Info(a) => show_info(engine, a),
    }
}

/// `berth info`
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// json, or a Go template such as '{{.Host.Arch}}' (default: YAML)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Accepted for podman's sake: berth has no debug-only fields
    #[arg(short = 'D', long)]
    pub debug: bool,
}

/// Prints the host, store and registry report: YAML, JSON or a template.
pub fn show_info(engine: &Engine, a: InfoArgs) -> CliResult {
    let report = info::gather(engine)?;
    let v = serde_json::to_value(&report).expect("info is plain data");
    match a.format.as_deref() {
        None => print!(
            "{}",
            serde_yaml_ng::to_string(&v).expect("info is plain data")
        ),
        Some("json") => println!("{}", serde_json::to_string_pretty(&v).expect("json")),
        Some(t) => println!("{}", super::format::render(t, &info::go_names(&v))?),
    }
    Ok(0)
}

/// `berth version`
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// json, or a Go template such as '{{.Client.Version}}'
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Prints berth's version in podman's layout.
pub fn version(a: VersionArgs) -> CliResult {
    let v = serde_json::to_value(info::version()).expect("plain data");
    match a.format.as_deref() {
        None => {
            println!("Version:      {}", v["Version"].as_str().unwrap_or(""));
            println!("API Version:  {}", v["APIVersion"].as_str().unwrap_or(""));
            println!("Built:        {}", v["BuiltTime"].as_str().unwrap_or(""));
            println!("OS/Arch:      {}", v["OsArch"].as_str().unwrap_or(""));
        }
        Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "Client": v })).expect("json")
        ),
        Some(t) => println!("{}", super::format::render(t, &json!({ "Client": v }))?),
    }
    Ok(0)
}

/// `berth system df`
#[derive(Args, Debug)]
pub struct DfArgs {
    /// Go template over Type, Total, Active, Size and Reclaimable
    #[arg(long)]
    pub format: Option<String>,
    /// Also list each image, container and volume
    #[arg(short, long)]
    pub verbose: bool,
}

/// Disk use by images, containers and volumes, as podman's summary.
pub fn df(engine: &Engine, a: DfArgs) -> CliResult {
    let images = engine.store.images()?;
    let containers = Containers::new(engine.store.root()).list();
    let vols = Volumes::new(engine.store.root());
    let volumes = vols.list();
    let used_images: std::collections::BTreeSet<&str> =
        containers.iter().map(|c| c.image_id.as_str()).collect();
    let image_active = |i: &crate::image::store::ImageRecord| used_images.contains(i.id.hex());
    let image_size: u64 = images.iter().map(|i| i.size).sum();
    let image_free: u64 = images
        .iter()
        .filter(|i| !image_active(i))
        .map(|i| i.size)
        .sum();
    let cs = Containers::new(engine.store.root());
    let ctr_size = |c: &crate::engine::container::ContainerRecord| {
        crate::util::fsutil::dir_size(&cs.dir(&c.id))
    };
    let ctr_sizes: Vec<u64> = containers.iter().map(ctr_size).collect();
    let used_vols: std::collections::BTreeSet<&str> = containers
        .iter()
        .flat_map(|c| c.volumes.iter().map(String::as_str))
        .collect();
    let vol_sizes: Vec<u64> = volumes
        .iter()
        .map(|v| crate::util::fsutil::dir_size(&vols.data(&v.name)))
        .collect();
    let reclaim = |total: u64, free: u64| {
        let pct = (free * 100).checked_div(total).unwrap_or(0);
        format!("{} ({pct}%)", human::size(free))
    };
    let ctr_total: u64 = ctr_sizes.iter().sum();
    let ctr_free: u64 = containers
        .iter()
        .zip(&ctr_sizes)
        .filter(|(c, _)| !c.is_running())
        .map(|(_, s)| s)
        .sum();
    let vol_total: u64 = vol_sizes.iter().sum();
    let vol_free: u64 = volumes
        .iter()
        .zip(&vol_sizes)
        .filter(|(v, _)| !used_vols.contains(v.name.as_str()))
        .map(|(_, s)| s)
        .sum();
    let rows: Vec<Value> = vec![
        json!({"Type": "Images", "Total": images.len(),
            "Active": images.iter().filter(|i| image_active(i)).count(),
            "Size": human::size(image_size), "Reclaimable": reclaim(image_size, image_free)}),
        json!({"Type": "Containers", "Total": containers.len(),
            "Active": containers.iter().filter(|c| c.is_running()).count(),
            "Size": human::size(ctr_total), "Reclaimable": reclaim(ctr_total, ctr_free)}),
        json!({"Type": "Local Volumes", "Total": volumes.len(),
            "Active": volumes.iter().filter(|v| used_vols.contains(v.name.as_str())).count(),
            "Size": human::size(vol_total), "Reclaimable": reclaim(vol_total, vol_free)}),
    ];
    let table = a.format.unwrap_or_else(|| {
        "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
    });
    print!("{}", super::format::template_table(&table, &rows, false)?);
    Ok(0)
}

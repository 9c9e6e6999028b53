//! `berth manifest create|add|annotate|remove|inspect|push|rm|exists`:
//! podman's multi-platform list commands over the store's lists.

use super::push::PushFlags;
use super::{progress, CliResult, Failure};
use crate::engine::Engine;
use crate::image::lists::{self, EntryOverrides};
use crate::image::push::destination;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;

/// `berth manifest ...`
#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Create a manifest list, optionally holding images
    Create(CreateArgs),
    /// Add an image to a manifest list
    Add(AddArgs),
    /// Set an entry's platform or annotations
    Annotate(AnnotateArgs),
    /// Take an entry (by digest) out of a manifest list
    Remove(RemoveArgs),
    /// Print a manifest list as JSON
    Inspect(InspectArgs),
    /// Push a manifest list (and, by default, its images) to a registry
    Push(PushArgs),
    /// Delete manifest lists (their images stay)
    Rm(RmArgs),
    /// Whether a manifest list exists (exit 0 if it does, 1 if not)
    Exists(ExistsArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The list's name
    pub list: String,
    /// Images to put in it
    pub images: Vec<String>,
    /// Add to the list if it already exists
    #[arg(short, long)]
    pub amend: bool,
}

/// What `add` and `annotate` may set on an entry.
#[derive(Args, Debug)]
pub struct EntryFlags {
    /// Architecture (default: the image's)
    #[arg(long)]
    pub arch: Option<String>,
    /// Operating system (default: the image's)
    #[arg(long)]
    pub os: Option<String>,
    /// Architecture variant, e.g. v8
    #[arg(long)]
    pub variant: Option<String>,
    /// Operating system version
    #[arg(long)]
    pub os_version: Option<String>,
    /// Annotation on the entry: KEY=VALUE
    #[arg(long)]
    pub annotation: Vec<String>,
}

impl EntryFlags {
    fn overrides(&self) -> Result<EntryOverrides, Failure> {
        let mut annotations = BTreeMap::new();
        for a in &self.annotation {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                Failure::with_code(format!("invalid --annotation {a:?}: use KEY=VALUE"), 125)
            })?;
            annotations.insert(k.to_string(), v.to_string());
        }
        Ok(EntryOverrides {
            os: self.os.clone(),
            arch: self.arch.clone(),
            variant: self.variant.clone(),
            os_version: self.os_version.clone(),
            annotations,
        })
    }
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub list: String,
    /// An image in the store
    pub image: String,
    #[command(flatten)]
    pub entry: EntryFlags,
}

#[derive(Args, Debug)]
pub struct AnnotateArgs {
    pub list: String,
    /// The entry's manifest digest (or a unique prefix)
    pub digest: String,
    #[command(flatten)]
    pub entry: EntryFlags,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    pub list: String,
    /// The entry's manifest digest (or a unique prefix)
    pub digest: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub list: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    pub list: String,
    /// Where to push it: [docker://]REGISTRY/REPOSITORY[:TAG] (default: the list's name)
    pub destination: Option<String>,
    /// Push the list's images too (false: only the list, whose images the registry must have)
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub all: bool,
    /// Delete the local list once it is pushed
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub flags: PushFlags,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(required = true)]
    pub lists: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExistsArgs {
    pub list: String,
}

/// An image for a list: a store image by name or id (`containers-storage:`
/// and `docker://` prefixes name the same local image).
fn local_image(engine: &Engine, name: &str) -> Result<crate::image::store::ImageRecord, Failure> {
    let bare = name
        .strip_prefix("containers-storage:")
        .or_else(|| name.strip_prefix("docker://"))
        .unwrap_or(name);
    engine.store.find(bare).map_err(|e| {
        Failure::with_code(
            format!("{e}: manifest lists are made of images berth has; pull or build {bare} first"),
            125,
        )
    })
}

/// Runs `berth manifest ...`.
pub fn manifest(engine: &Engine, cmd: ManifestCommand) -> CliResult {
    let store = &engine.store;
    match cmd {
        ManifestCommand::Create(a) => {
            let images = a
                .images
                .iter()
                .map(|i| local_image(engine, i))
                .collect::<Result<Vec<_>, _>>()?;
            let list = lists::create(store, &a.list, a.amend, &images)?;
            println!("{}", list.id);
        }
        ManifestCommand::Add(a) => {
            let image = local_image(engine, &a.image)?;
            println!(
                "{}",
                lists::add(store, &a.list, &image, &a.entry.overrides()?)?
            );
        }
        ManifestCommand::Annotate(a) => {
            println!(
                "{}",
                lists::annotate(store, &a.list, &a.digest, &a.entry.overrides()?)?
            );
        }
        ManifestCommand::Remove(a) => {
            println!("{}", lists::remove_entry(store, &a.list, &a.digest)?);
        }
        ManifestCommand::Inspect(a) => {
            let list = lists::load(store, &a.list)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&list.index).expect("index serialises")
            );
        }
        ManifestCommand::Push(a) => {
            let list = lists::load(store, &a.list)?;
            let dest = destination(Some(&list.name), a.destination.as_deref())?;
            let opts = a.flags.options()?;
            let progress = progress::for_stderr(a.flags.quiet);
            let pushed = lists::push_list(
                store,
                &engine.conf,
                &list,
                &dest,
                a.all,
                &opts,
                progress.as_ref(),
            )?;
            a.flags.write_digest(&pushed.digest)?;
            if a.rm {
                lists::remove(store, &list.name)?;
            }
        }
        ManifestCommand::Rm(a) => {
            let mut code = 0;
            for name in &a.lists {
                match lists::load(store, name).and_then(|l| {
                    lists::remove(store, &l.name)?;
                    Ok(l)
                }) {
                    Ok(l) => {
                        println!("Untagged: {}", l.name);
                        println!("Deleted: {}", l.id);
                    }
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        ManifestCommand::Exists(a) => {
            return Ok(if lists::exists(store, &a.list)? { 0 } else { 1 });
        }
    }
    Ok(0)
}

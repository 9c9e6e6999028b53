//! Image commands: pull, images, rmi, tag, inspect, import, save, load, and
//! `system check`.

use super::format::{columns, go_string, render, template_table};
use super::{progress, CliResult, Failure};
use crate::engine::images::{collect_garbage, remove, Removal};
use crate::engine::Engine;
use crate::image::archive::{self, Format};
use crate::image::import::ImportOptions;
use crate::image::inspect::image_json;
use crate::image::manifest::Platform;
use crate::image::pull::PullOptions;
use crate::image::reference::Reference;
use crate::image::store::ImageRecord;
use crate::util::human;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// `berth pull`
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image to pull, e.g. busybox, quay.io/org/app:1.0, name@sha256:...
    pub image: String,
    /// Print only the image id, no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pick from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Architecture to pick (shorthand for --platform linux/ARCH)
    #[arg(long)]
    pub arch: Option<String>,
    /// Require HTTPS and verified certificates (false allows plain http)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Credentials file (default: podman's auth.json)
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

fn pull_options(
    platform: Option<&str>,
    arch: Option<&str>,
    tls_verify: Option<bool>,
    authfile: Option<PathBuf>,
) -> Result<PullOptions, Failure> {
    let platform = match (platform, arch) {
        (Some(p), _) => Platform::parse(p)?,
        (None, Some(a)) => Platform::parse(&format!("linux/{a}"))?,
        (None, None) => Platform::host(),
    };
    Ok(PullOptions {
        platform,
        tls_verify: tls_verify.unwrap_or(true),
        authfile,
    })
}

/// Pulls an image; prints its id on stdout.
pub fn pull(engine: &Engine, a: PullArgs) -> CliResult {
    let opts = pull_options(
        a.platform.as_deref(),
        a.arch.as_deref(),
        a.tls_verify,
        a.authfile,
    )?;
    let progress = progress::for_stderr(a.quiet);
    let pulled = crate::image::pull::pull(
        &engine.store,
        &engine.conf,
        &a.image,
        &opts,
        progress.as_ref(),
    )?;
    crate::engine::images::note(&engine.store, "pull", &pulled.image, &a.image);
    println!("{}", pulled.image.id.hex());
    Ok(0)
}

/// `berth images`
#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Show all images (berth keeps no intermediate images, so the same list)
    #[arg(short, long)]
    pub all: bool,
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Do not truncate image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Do not print the header row
    #[arg(short = 'n', long)]
    pub noheading: bool,
    /// Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE],
    /// before=IMAGE, after=IMAGE (or since=IMAGE)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Sort by created, id, repository, size or tag
    #[arg(long, value_name = "FIELD", default_value = "created")]
    pub sort: String,
    /// Only images matching this reference
    pub reference: Option<String>,
}

/// One row of `images`: one per name, or one for an image without names.
struct Row<'a> {
    img: &'a ImageRecord,
    repository: String,
    tag: String,
}

fn rows(images: &[ImageRecord]) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    for img in images {
        if img.names.is_empty() {
            out.push(Row {
                img,
                repository: "<none>".into(),
                tag: "<none>".into(),
            });
        }
        for n in &img.names {
            // A name by digest is a row only when no tag of that repository
            // names the image, as podman lists them.
            if let Some((repo, _)) = n.split_once('@') {
                if img.names.iter().any(|o| {
                    !o.contains('@') && Reference::parse(o).is_ok_and(|r| r.name() == repo)
                }) {
                    continue;
                }
            }
            let (repository, tag) = match Reference::parse(n) {
                Ok(r) => (r.name(), r.tag.unwrap_or_else(|| "<none>".into())),
                Err(_) => (n.clone(), "<none>".into()),
            };
            out.push(Row {
                img,
                repository,
                tag,
            });
        }
    }
    out
}

/// The image's labels (none when its config has no `Labels`).
fn labels(img: &ImageRecord) -> std::collections::BTreeMap<String, String> {
    img.config
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
}

fn created(img: &ImageRecord) -> chrono::DateTime<chrono::Utc> {
    img.config
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// One `--filter`, with the images that `before`/`after` name resolved.
enum Filter {
    Dangling(bool),
    Reference(String),
    Label(String, Option<String>),
    Before(chrono::DateTime<chrono::Utc>),
    After(chrono::DateTime<chrono::Utc>),
}

fn parse_filter(engine: &Engine, f: &str) -> Result<Filter, Failure> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| Failure::from(FilterError(f.to_string())))?;
    let at = |v: &str| -> Result<_, Failure> { Ok(created(&engine.store.find(v)?)) };
    Ok(match k {
        "dangling" => Filter::Dangling(v == "true"),
        "reference" => Filter::Reference(v.to_string()),
        "label" => match v.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(v.to_string(), None),
        },
        "before" => Filter::Before(at(v)?),
        "after" | "since" => Filter::After(at(v)?),
        _ => return Err(FilterError(f.to_string()).into()),
    })
}

fn matches_filters(row: &Row<'_>, filters: &[Filter]) -> bool {
    filters.iter().all(|f| match f {
        Filter::Dangling(d) => row.img.names.is_empty() == *d,
        Filter::Before(t) => created(row.img) < *t,
        Filter::After(t) => created(row.img) > *t,
        Filter::Label(k, v) => labels(row.img)
            .get(k)
            .is_some_and(|x| v.as_ref().is_none_or(|v| v == x)),
        Filter::Reference(v) => {
            glob_match(v, &format!("{}:{}", row.repository, row.tag))
                || glob_match(v, &row.repository)
                || row
                    .img
                    .names
                    .iter()
                    .any(|n| crate::image::store::find_in_names(n, v))
        }
    })
}

/// `*` wildcard matching, enough for reference filters.
fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s || s.ends_with(&format!("/{pattern}"));
    }
    let mut pos = 0;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        match s[pos..].find(p) {
            Some(found) if i > 0 || found == 0 => pos += found + p.len(),
            _ => return false,
        }
    }
    parts.last().is_some_and(|l| l.is_empty()) || pos == s.len()
}

/// Lists images with podman's columns.
pub fn list(engine: &Engine, a: ImagesArgs) -> CliResult {
    let images = engine.store.images()?;
    let mut filters = Vec::new();
    for f in &a.filter {
        filters.push(parse_filter(engine, f)?);
    }
    if let Some(r) = &a.reference {
        filters.push(Filter::Reference(r.clone()));
    }
    let mut rows: Vec<Row<'_>> = rows(&images)
        .into_iter()
        .filter(|r| matches_filters(r, &filters))
        .collect();
    match a.sort.as_str() {
        "created" => rows.sort_by_key(|r| std::cmp::Reverse(created(r.img))),
        "id" => rows.sort_by(|x, y| x.img.id.hex().cmp(y.img.id.hex())),
        "repository" => rows.sort_by(|x, y| x.repository.cmp(&y.repository)),
        "tag" => rows.sort_by(|x, y| x.tag.cmp(&y.tag)),
        "size" => rows.sort_by_key(|r| r.img.size),
        other => {
            return Err(Failure::with_code(
                format!("invalid --sort {other:?}: use created, id, repository, size or tag"),
                125,
            ))
        }
    }
    let now = chrono::Utc::now();
    let id = |img: &ImageRecord| {
        if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.short().to_string()
        }
    };
    let mut out = std::io::stdout().lock();
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r.img.id.clone()) {
                let _ = writeln!(out, "{}", id(r.img));
            }
        }
        return Ok(0);
    }
    let value = |r: &Row<'_>| {
        json!({
            "ID": id(r.img),
            "Id": r.img.id.hex(),
            "Repository": r.repository,
            "Tag": r.tag,
            "Digest": r.img.manifest_digest.to_string(),
            "CreatedSince": human::ago(created(r.img), now),
            "CreatedAt": human::go_time(created(r.img)),
            "Created": created(r.img).timestamp(),
            "Size": human::size(r.img.size),
            "VirtualSize": human::size(r.img.size),
            "Labels": labels(r.img),
            "Names": r.img.names,
            "Dangling": r.img.names.is_empty(),
            "Containers": 0,
        })
    };
    match a.format.as_deref() {
        Some("json") => {
            let mut seen = std::collections::BTreeSet::new();
            let list: Vec<_> = rows
                .iter()
                .filter(|r| seen.insert(r.img.id.clone()))
                .map(|r| {
                    json!({
                        "Id": r.img.id.hex(),
                        "ParentId": "",
                        "RepoTags": r.img.names.iter().filter(|n| !n.contains('@')).collect::<Vec<_>>(),
                        "RepoDigests": r.img.repo_digests,
                        "Size": r.img.size,
                        "SharedSize": 0,
                        "VirtualSize": r.img.size,
                        "Labels": labels(r.img),
                        "Containers": 0,
                        "Names": r.img.names,
                        "Digest": r.img.manifest_digest.to_string(),
                        "Created": created(r.img).timestamp(),
                        "CreatedAt": human::rfc3339(created(r.img)),
                        "Dangling": r.img.names.is_empty(),
                    })
                })
                .collect();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&list).expect("json")
            );
        }
        Some(t) if t != "table" => {
            let values: Vec<_> = rows.iter().map(value).collect();
            let _ = write!(out, "{}", template_table(t, &values, a.noheading)?);
        }
        _ => {
            let mut table: Vec<Vec<String>> = Vec::new();
            if !a.noheading {
                let mut h = vec!["REPOSITORY", "TAG"];
                if a.digests {
                    h.push("DIGEST");
                }
                h.extend(["IMAGE ID", "CREATED", "SIZE"]);
                table.push(h.into_iter().map(String::from).collect());
            }
            for r in &rows {
                let v = value(r);
                let mut row = vec![r.repository.clone(), r.tag.clone()];
                if a.digests {
                    row.push(r.img.manifest_digest.to_string());
                }
                row.extend([
                    go_string(&v["ID"]),
                    go_string(&v["CreatedSince"]),
                    go_string(&v["Size"]),
                ]);
                table.push(row);
            }
            let _ = write!(out, "{}", columns(&table));
        }
    }
    Ok(0)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid filter {0:?}: supported filters are dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, after=IMAGE and since=IMAGE")]
pub(super) struct FilterError(String);

/// `berth rmi`
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Images to remove (names or ids)
    pub images: Vec<String>,
    /// Remove the image even if containers use it, with all its names
    #[arg(short, long)]
    pub force: bool,
    /// Remove all images
    #[arg(short, long)]
    pub all: bool,
    /// Say nothing of images that do not exist
    #[arg(short, long)]
    pub ignore: bool,
}

/// Removes images; exit 1 if one was unknown, 2 if one is in use.
pub fn rmi(engine: &Engine, a: RmiArgs) -> CliResult {
    let mut targets = a.images.clone();
    if a.all {
        targets = engine
            .store
            .images()?
            .iter()
            .map(|i| i.id.hex().to_string())
            .collect();
    } else if targets.is_empty() {
        return Err(Failure::from(UsageError(
            "image name or id must be specified (or --all)",
        )));
    }
    let mut code = 0;
    let mut deleted_any = false;
    for t in &targets {
        // By name, an image with other names only loses that name, with
        // or without -f (podman 4); by id, it goes.
        match remove(&engine.store, t, a.force) {
            Ok(Removal::Untagged(n)) => println!("Untagged: {n}"),
            Ok(Removal::Deleted { untagged, id }) => {
                for n in untagged {
                    println!("Untagged: {n}");
                }
                println!("Deleted: {}", id.hex());
                deleted_any = true;
            }
            // As podman: --force and --ignore pass over unknown images.
            Err(crate::engine::images::RemoveError::NotKnown(_)) if a.force || a.ignore => {}
            Err(e) => {
                eprintln!("Error: {e}");
                code = code.max(e.exit_code());
            }
        }
    }
    if deleted_any {
        collect_garbage(&engine.store)?;
    }
    Ok(code)
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct UsageError(&'static str);

/// `berth tag`
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Image to name
    pub image: String,
    /// New names
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// The name a locally made image gets: podman puts short names under localhost/.
pub fn local_name(s: &str) -> Result<Reference, Failure> {
    Ok(Reference::local(s)?)
}

/// Adds names to an image.
pub fn tag(engine: &Engine, a: TagArgs) -> CliResult {
    let img = engine.store.find(&a.image)?;
    for n in &a.names {
        let name = local_name(n)?;
        if name.digest.is_some() {
            return Err(Failure::from(UsageError("a tag cannot contain a digest")));
        }
        engine.store.tag(&img, &name)?;
        crate::engine::images::note(&engine.store, "tag", &img, &name.to_string());
    }
    Ok(0)
}

/// `berth inspect` / `berth image inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Containers or images to inspect
    #[arg(required_unless_present = "latest")]
    pub names: Vec<String>,
    /// The container created last
    #[arg(short, long, conflicts_with = "names")]
    pub latest: bool,
    /// Go template for each object, e.g. '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only this kind of object: container, image or all
    #[arg(short = 't', long = "type")]
    pub kind: Option<String>,
}

/// Prints podman-compatible JSON for containers and images (containers
/// first, as podman looks them up), or a template per object.
pub fn inspect(engine: &Engine, a: InspectArgs) -> CliResult {
    let kind = a.kind.as_deref().unwrap_or("all");
    if !["image", "container", "all"].contains(&kind) {
        return Err(Failure::from(UsageError(
            "--type must be container, image or all",
        )));
    }
    let containers = crate::engine::container::Containers::new(engine.store.root());
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    let names = if a.latest {
        let Some(last) = containers.latest() else {
            return Err(Failure::with_code("--latest: there are no containers", 125));
        };
        vec![last.id]
    } else {
        a.names.clone()
    };
    for n in &names {
        if kind != "image" {
            if let Ok(c) = containers.find(n) {
                docs.push(crate::engine::inspect::container_json(&containers, &c));
                continue;
            }
        }
        if kind != "container" {
            match engine.store.find(n) {
                Ok(img) => {
                    docs.push(image_json(&engine.store, &img));
                    continue;
                }
                Err(crate::image::store::StoreError::NotKnown(_))
                | Err(crate::image::store::StoreError::Reference(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        missing.push(n.clone());
    }
    match &a.format {
        Some(f) if f != "json" => {
            for d in &docs {
                println!("{}", render(f, d)?);
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&docs).expect("json")),
    }
    if !missing.is_empty() {
        let what = match kind {
            "image" => "image",
            "container" => "container",
            _ => "object",
        };
        return Err(Failure::with_code(
            format!("no such {what}: {}", missing.join(", ")),
            125,
        ));
    }
    Ok(0)
}

/// `berth import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Root filesystem tarball (plain, gzip or zstd), or - for stdin
    pub source: String,
    /// Name for the new image (short names go under localhost/)
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message recorded in the image history
    #[arg(short, long)]
    pub message: Option<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
}

/// Imports a tarball as an image; prints its id.
pub fn import(engine: &Engine, a: ImportArgs) -> CliResult {
    let name = a.reference.as_deref().map(local_name).transpose()?;
    let opts = ImportOptions {
        name,
        changes: a.change,
        message: a.message,
        platform: None,
    };
    let img = if a.source == "-" {
        crate::image::import::import(&engine.store, std::io::stdin().lock(), &opts)?
    } else {
        let f = std::fs::File::open(&a.source)
            .map_err(|e| Failure::from(OpenError(a.source.clone(), e)))?;
        crate::image::import::import(&engine.store, f, &opts)?
    };
    if !a.quiet {
        eprintln!("Writing manifest to image destination");
    }
    println!("{}", img.id.hex());
    Ok(0)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open {0}: {1}")]
pub(super) struct OpenError(String, std::io::Error);

/// `berth save`
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file (default: stdout, if it is not a terminal)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive (default) or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    /// Accepted for podman's scripts: berth writes layers as it stores them, compressed or not
    #[arg(long)]
    pub uncompressed: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// Writes images to an archive file, atomically.
pub fn save(engine: &Engine, a: SaveArgs) -> CliResult {
    let format = match a.format.as_str() {
        "docker-archive" => Format::DockerArchive,
        "oci-archive" => Format::OciArchive,
        other => {
            return Err(Failure::with_code(
                format!("unsupported --format {other:?}: use docker-archive or oci-archive"),
                125,
            ))
        }
    };
    let mut list = Vec::new();
    for q in &a.images {
        let img = engine.store.find(q)?;
        let names: Vec<String> = img
            .names
            .iter()
            .filter(|n| !n.contains('@') && crate::image::store::find_in_names(n, q))
            .cloned()
            .collect();
        let names = if names.is_empty() {
            img.names
                .iter()
                .filter(|n| !n.contains('@'))
                .cloned()
                .collect()
        } else {
            names
        };
        list.push((img, names));
    }
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(crate::util::fsutil::unique_name(".berth-save-"));
            let res = (|| -> Result<(), Failure> {
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| Failure::from(OpenError(tmp.display().to_string(), e)))?;
                let mut w = std::io::BufWriter::new(f);
                archive::save(&engine.store, &list, format, &mut w)?;
                let f = w.into_inner().map_err(|e| Failure::from(e.into_error()))?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)?;
                Ok(())
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure::from(UsageError(
                    "refusing to write an archive to a terminal: use -o FILE or redirect stdout",
                )));
            }
            archive::save(&engine.store, &list, format, std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

/// `berth load`
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from this archive (default: stdin)
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// Loads every image of an archive.
pub fn load(engine: &Engine, a: LoadArgs) -> CliResult {
    let platform = Platform::host();
    let loaded = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Failure::from(OpenError(p.display().to_string(), e)))?;
            archive::load(&engine.store, f, &platform)?
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::from(UsageError(
                    "no archive given: use -i FILE or pipe one to stdin",
                )));
            }
            archive::load(&engine.store, std::io::stdin().lock(), &platform)?
        }
    };
    for n in loaded {
        println!("Loaded image: {n}");
    }
    Ok(0)
}

/// `berth image ...`
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Pull an image from a registry
    Pull(PullArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Add a name to an image
    Tag(TagArgs),
    /// Show details of images
    Inspect(InspectArgs),
    /// Create an image from a tarball
    Import(ImportArgs),
    /// Save images to an archive
    Save(SaveArgs),
    /// Load images from an archive
    Load(LoadArgs),
    /// Remove unused data: dangling images (all unused images with -a)
    Prune(PruneArgs),
    /// Whether an image exists locally (exit 0 if it does, 1 if not)
    Exists(ExistsArgs),
    /// Build an image (as `berth build`)
    Build(Box<super::build::BuildArgs>),
    /// Push an image to a registry (as `berth push`)
    Push(super::push::PushArgs),
    /// Show how an image was made
    History(super::history::HistoryArgs),
    /// Remove names from an image
    Untag(super::history::UntagArgs),
    /// List what an image's top layer changed
    Diff(super::diff::DiffArgs),
    /// Mount an image read-only and print where (none: list the mounted ones)
    Mount(super::mount::ImageMountArgs),
    /// Unmount images
    #[command(alias = "unmount")]
    Umount(super::mount::ImageUmountArgs),
    /// Not supported: berth does not sign images (use skopeo or cosign)
    Sign(SignArgs),
}

/// `image sign`: refused clearly, whatever its flags.
#[derive(Args, Debug)]
pub struct SignArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl ImageCommand {
    pub(super) fn needs_userns(&self) -> bool {
        matches!(
            self,
            ImageCommand::Pull(_)
                | ImageCommand::Rm(_)
                | ImageCommand::Import(_)
                | ImageCommand::Load(_)
                | ImageCommand::Prune(_)
                | ImageCommand::Build(_)
                | ImageCommand::Push(_)
                | ImageCommand::Mount(_)
                | ImageCommand::Umount(_)
        )
    }
}

/// `berth image prune`
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all images no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask (berth never asks; kept for podman compatibility)
    #[arg(short, long)]
    pub force: bool,
}

/// `berth image exists`
#[derive(Args, Debug)]
pub struct ExistsArgs {
    pub image: String,
}

/// Dispatches `berth image ...`.
pub fn image_command(engine: &Engine, c: ImageCommand) -> CliResult {
    match c {
        ImageCommand::Pull(a) => pull(engine, a),
        ImageCommand::Build(a) => super::build::build(engine, *a),
        ImageCommand::Push(a) => super::push::push(engine, a),
        ImageCommand::History(a) => super::history::history(engine, a),
        ImageCommand::Untag(a) => super::history::untag(engine, a),
        ImageCommand::Diff(a) => super::diff::diff(engine, a),
        ImageCommand::Mount(a) => super::mount::image_mount(engine, a),
        ImageCommand::Umount(a) => super::mount::image_umount(engine, a),
        ImageCommand::Sign(_) => Err(Failure::with_code(
            "image sign is not supported: berth does not make simple signatures; sign with `skopeo copy --sign-by` or cosign",
            125,
        )),
        ImageCommand::Ls(a) => list(engine, a),
        ImageCommand::Rm(a) => rmi(engine, a),
        ImageCommand::Tag(a) => tag(engine, a),
        ImageCommand::Inspect(a) => inspect(engine, a),
        ImageCommand::Import(a) => import(engine, a),
        ImageCommand::Save(a) => save(engine, a),
        ImageCommand::Load(a) => load(engine, a),
        ImageCommand::Exists(a) => Ok(if engine.store.find(&a.image).is_ok() {
            0
        } else {
            1
        }),
        ImageCommand::Prune(a) => {
            let in_use = crate::engine::images::images_in_use(&engine.store);
            for img in engine.store.images()? {
                if (a.all || img.names.is_empty()) && !in_use.contains(&img.id) {
                    engine.store.remove_image(&img.manifest_digest)?;
                    println!("{}", img.id.hex());
                }
            }
            collect_garbage(&engine.store)?;
            Ok(0)
        }
    }
}

//! `RUN --mount=...` as BuildKit has it: `cache` (a directory kept between
//! builds), `bind` (a context path, read-only), `tmpfs`, and `secret` (a
//! file given with `--secret id=ID,src=PATH`, at /run/secrets/ID). What a
//! mount shows the command is part of the step's cache key where it can
//! change the result: a bind mount's content hash is (buildah #5400); a
//! cache's content and a secret's are not, as in BuildKit. Nothing mounted
//! ends up in the layer: the runtime's empty mount targets are left out.

use super::context::{content_hash, Context, StatCache};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a RUN step's mounts add to its container and to its cache key.
#[derive(Clone, Debug, Default)]
pub struct RunMounts {
    /// `-v HOST:TARGET[:ro]` for the container.
    pub volumes: Vec<String>,
    /// `--tmpfs TARGET`
    pub tmpfs: Vec<String>,
    /// What the mounts add to the step's key.
    pub key: String,
    /// Bind mounts the builder resolves: `from=` another stage, image or
    /// build context, or read-write ones (a copy, so writes reach nothing).
    pub pending: Vec<PendingBind>,
}

/// A bind mount that needs more than the main context to set up.
#[derive(Clone, Debug)]
pub struct PendingBind {
    pub from: Option<String>,
    /// The path inside what `from` names (or the context).
    pub source: String,
    pub target: String,
    pub rw: bool,
}

fn fields(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (f.trim().to_ascii_lowercase(), "true".to_string()),
        })
        .collect()
}

/// A target relative to the step's working directory, made absolute.
fn absolute(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{target}", workdir.trim_end_matches('/'))
    }
}

/// Plans the mounts of one RUN step from its `--mount` values.
pub fn plan(
    specs: &[&str],
    context: &Context,
    stats: &mut StatCache,
    secrets: &BTreeMap<String, PathBuf>,
    cache_root: &Path,
    workdir: &str,
) -> Result<RunMounts, String> {
    let mut out = RunMounts::default();
    for spec in specs {
        let f = fields(spec);
        let get = |k: &[&str]| k.iter().find_map(|k| f.get(*k).cloned());
        let kind = get(&["type"]).unwrap_or_else(|| "bind".into());
        let target = get(&["target", "dst", "destination"]).map(|t| absolute(&t, workdir));
        match kind.as_str() {
            "cache" => {
                let target = target.ok_or("a cache mount needs target=PATH")?;
                let id = get(&["id"]).unwrap_or_else(|| target.clone());
                let dir = cache_root.join(crate::util::digest::Digest::of(id.as_bytes()).hex());
                std::fs::create_dir_all(&dir).map_err(|e| format!("making the cache {id}: {e}"))?;
                out.volumes.push(format!("{}:{target}", dir.display()));
                out.key.push_str(&format!("cache:{id}:{target};"));
            }
            "bind" => {
                let target = target.ok_or("a bind mount needs target=PATH")?;
                let rw = matches!(get(&["rw", "readwrite"]).as_deref(), Some("true"));
                let from = get(&["from"]);
                let source = get(&["source", "src"]).unwrap_or_else(|| ".".into());
                if rw || from.is_some() {
                    out.pending.push(PendingBind {
                        from,
                        source,
                        target,
                        rw,
                    });
                    continue;
                }
                let items = context
                    .select(std::slice::from_ref(&source), None)
                    .map_err(|e| e.to_string())?;
                let hash = content_hash(&items, stats).map_err(|e| e.to_string())?;
                let host = context.path_of(&source).ok_or_else(|| {
                    format!("bind mount source {source:?} is outside the build context")
                })?;
                out.volumes.push(format!("{}:{target}:ro", host.display()));
                out.key.push_str(&format!("bind:{source}:{target}:{hash};"));
            }
            "tmpfs" => {
                let target = target.ok_or("a tmpfs mount needs target=PATH")?;
                out.tmpfs.push(target.clone());
                out.key.push_str(&format!("tmpfs:{target};"));
            }
            "secret" => {
                let id = get(&["id"]).ok_or("a secret mount needs id=ID")?;
                let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                match secrets.get(&id) {
                    Some(src) => {
                        out.volumes.push(format!("{}:{target}:ro", src.display()));
                        out.key.push_str(&format!("secret:{id}:{target};"));
                    }
                    None if matches!(get(&["required"]).as_deref(), Some("true")) => {
                        return Err(format!(
                            "the secret {id} is required: give it with --secret id={id},src=FILE"
                        ))
                    }
                    None => {}
                }
            }
            other => {
                return Err(format!(
                    "unknown mount type {other:?}: use cache, bind, tmpfs or secret"
                ))
            }
        }
    }
    Ok(out)
}

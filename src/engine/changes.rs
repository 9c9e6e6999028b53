//! What `diff` lists: a container's changes to its image (its overlay
//! upper dir), or an image's top layer over the layers below it.

use super::container::{ContainerError, Containers};
use super::Engine;
use crate::image::diff::{changes, Change};
use crate::image::store::StoreError;

/// Why the changes could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the changes of {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

/// The changes of the container or image `query` names (a container
/// first, as podman looks).
pub fn of(engine: &Engine, query: &str) -> Result<Vec<Change>, ChangesError> {
    let containers = Containers::new(engine.store.root());
    let io = |name: &str| {
        let name = name.to_string();
        move |source| ChangesError::Io { name, source }
    };
    if let Ok(c) = containers.find(query) {
        let lowers = match engine.store.find(&c.image_id) {
            Ok(img) => img
                .chain_ids()
                .iter()
                .rev()
                .map(|ch| engine.store.layer_diff(ch))
                .collect(),
            Err(_) => Vec::new(),
        };
        // What the runtime made for its mounts is not the container's
        // change (podman's diff leaves these out too).
        let made = super::lifecycle::runtime_made(&containers.dir(&c.id), &lowers);
        let upper = containers.dir(&c.id).join("upper");
        let all = changes(&upper, &lowers).map_err(io(&c.name))?;
        return Ok(all
            .into_iter()
            // A directory "changed" only by what the runtime put in it
            // (/run for /run/.containerenv) is no change either.
            .filter(|ch| {
                let rel = std::path::Path::new(ch.path.trim_start_matches('/'));
                ch.kind != 'C' || !only_made(&upper, rel, &made)
            })
            .filter(|ch| !made.contains(std::path::Path::new(ch.path.trim_start_matches('/'))))
            .collect());
    }
    let img = engine.store.find(query)?;
    let chains = img.chain_ids();
    let Some((top, below)) = chains.split_last() else {
        return Ok(Vec::new());
    };
    let lowers: Vec<_> = below
        .iter()
        .rev()
        .map(|c| engine.store.layer_diff(c))
        .collect();
    changes(&engine.store.layer_diff(top), &lowers).map_err(io(query))
}

/// True when the directory `rel` of `upper` holds nothing but what the
/// runtime made (`made`), at any depth. Entries are listed, never followed.
fn only_made(
    upper: &std::path::Path,
    rel: &std::path::Path,
    made: &std::collections::BTreeSet<std::path::PathBuf>,
) -> bool {
    let dir = upper.join(rel);
    let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
    let Ok(entries) = std::fs::read_dir(&dir).map(|r| r.flatten().collect::<Vec<_>>()) else {
        return false;
    };
    is_dir
        && !entries.is_empty()
        && entries.iter().all(|e| {
            let child = rel.join(e.file_name());
            made.contains(&child)
                || (e.file_type().is_ok_and(|t| t.is_dir()) && only_made(upper, &child, made))
        })
}

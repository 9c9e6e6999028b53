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
        let all = changes(&containers.dir(&c.id).join("upper"), &lowers).map_err(io(&c.name))?;
        return Ok(all
            .into_iter()
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

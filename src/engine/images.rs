//! Image verbs that need more than the image store alone: removal refuses
//! images that containers use (unless forced) and collects garbage after.

use crate::image::store::{ImageRecord, Store, StoreError};
use crate::util::digest::Digest;
use std::collections::BTreeSet;

/// What `rmi` did to one argument.
#[derive(Debug)]
pub enum Removal {
    /// A name was removed; the image still has other names.
    Untagged(String),
    /// The image is gone (after its names, listed first).
    Deleted { untagged: Vec<String>, id: Digest },
}

/// Why `rmi` refused or failed; the exit code follows podman's.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("{0}: image not known")]
    NotKnown(String),
    #[error("image {0} is in use by a container: remove the container first, or use --force")]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RemoveError {
    /// podman rmi's exit codes: 1 unknown image, 2 in use, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RemoveError::NotKnown(_) => 1,
            RemoveError::InUse(_) => 2,
            RemoveError::Store(_) => 125,
        }
    }
}

/// Image ids that containers refer to.
pub fn images_in_use(store: &Store) -> BTreeSet<Digest> {
    super::container::Containers::new(store.root())
        .list()
        .iter()
        .filter_map(|c| Digest::parse_loose(&c.image_id).ok())
        .collect()
}

/// Unpacked layers that containers' root filesystems use.
pub fn layers_in_use(store: &Store) -> BTreeSet<Digest> {
    super::container::Containers::new(store.root())
        .list()
        .iter()
        .flat_map(|c| {
            c.layers
                .iter()
                .filter_map(|l| Digest::parse_loose(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Removes one image argument: a name untags (and deletes the image when it
/// was the last name); an id deletes the image with all its names.
pub fn remove(store: &Store, query: &str, force: bool) -> Result<Removal, RemoveError> {
    let img: ImageRecord = store.find(query).map_err(|e| match e {
        StoreError::NotKnown(_) => RemoveError::NotKnown(query.to_string()),
        other => RemoveError::Store(other),
    })?;
    let by_name = img.names.iter().find(|n| name_matches(n, query)).cloned();
    if let Some(name) = &by_name {
        if img.names.len() > 1 {
            store.untag(name)?;
            note(store, "untag", &img, name);
            return Ok(Removal::Untagged(name.clone()));
        }
    }
    if !force && images_in_use(store).contains(&img.id) {
        return Err(RemoveError::InUse(img.id.short().to_string()));
    }
    if let Err(e) = super::mount::unmount_image(store, &img) {
        tracing::warn!("{e}");
    }
    store.remove_image(&img.manifest_digest)?;
    for n in img.names.iter().filter(|n| !n.contains('@')) {
        note(store, "untag", &img, n);
    }
    note(store, "remove", &img, img.id.hex());
    Ok(Removal::Deleted {
        untagged: img.names.clone(),
        id: img.id,
    })
}

/// Records an image event (`pull`, `tag`, `remove`, …) in the store's journal.
pub fn note(store: &Store, status: &str, img: &ImageRecord, name: &str) {
    let e = crate::util::events::Event::now("image", status, img.id.hex(), name);
    crate::util::events::record(store.root(), &e);
}

fn name_matches(name: &str, query: &str) -> bool {
    if name == query {
        return true;
    }
    crate::image::store::find_in_names(name, query)
}

/// Deletes what no image needs any more.
pub fn collect_garbage(store: &Store) -> Result<(), StoreError> {
    store.gc(&layers_in_use(store)).map(|_| ())
}

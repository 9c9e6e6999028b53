//! Manifest lists (`berth manifest ...`): multi-platform indexes made from
//! images in the store, kept beside the OCI layout rather than in its
//! index.json, so every reader of index.json keeps seeing images only.
//!
//! ```text
//! ROOT/manifests/HEX.json   {"name", "id", "index"}; HEX = sha256 of the name
//! ```
//!
//! A list names its members by manifest digest. Pushing it pushes each
//! member by digest into the destination repository (their digests change
//! when the push recompresses or converts them; the list follows), then the
//! index under the destination's tag.

use super::manifest::{media, Descriptor, Index, Platform};
use super::progress::Progress;
use super::push::{push, push_client, PushError, PushOptions};
use super::reference::{Reference, ReferenceError};
use super::registries_conf::RegistriesConf;
use super::store::{io_err, ImageRecord, Store, StoreError};
use crate::util::digest::Digest;
use crate::util::fsutil::{self, atomic_write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a manifest-list operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{0}: no such manifest list; create it with `berth manifest create {0}`")]
    NotKnown(String),
    #[error(
        "manifest list {0} already exists: use --amend to add to it, or `berth manifest rm {0}`"
    )]
    Exists(String),
    #[error("{list} has no entry {digest}: `berth manifest inspect {list}` lists them")]
    NoEntry { list: String, digest: String },
    #[error("image {digest} of the list is no longer in the store: build or pull it again, or remove it with `berth manifest remove {list} {digest}`")]
    MemberGone { list: String, digest: Digest },
    #[error("manifest list {0} is damaged: {1}; remove it with `berth manifest rm`")]
    Corrupt(String, String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// One stored manifest list.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestList {
    /// Its name, qualified as image names are (`localhost/app:latest`).
    pub name: String,
    /// A stable id, printed by create and add as podman prints a list's.
    pub id: String,
    pub index: Index,
}

/// What `manifest add` and `annotate` set on an entry, over what the
/// image's config says.
#[derive(Clone, Debug, Default)]
pub struct EntryOverrides {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl EntryOverrides {
    fn apply(&self, d: &mut Descriptor) {
        let p = d.platform.get_or_insert_with(Platform::default);
        if let Some(v) = &self.os {
            p.os = v.clone();
        }
        if let Some(v) = &self.arch {
            p.architecture = v.clone();
        }
        if let Some(v) = &self.variant {
            p.variant = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(v) = &self.os_version {
            p.os_version = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if !self.annotations.is_empty() {
            d.annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(self.annotations.clone());
        }
    }
}

fn lists_dir(store: &Store) -> PathBuf {
    store.root().join("manifests")
}

fn list_path(store: &Store, name: &str) -> PathBuf {
    lists_dir(store).join(format!("{}.json", Digest::of(name.as_bytes()).hex()))
}

/// The stored name for what the user typed (short names go under localhost/).
pub fn qualified(name: &str) -> Result<String, ListError> {
    Ok(Reference::local(name)?.to_string())
}

/// Loads the list called `name`.
pub fn load(store: &Store, name: &str) -> Result<ManifestList, ListError> {
    let name = qualified(name)?;
    let data = match std::fs::read(list_path(store, &name)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ListError::NotKnown(name))
        }
        Err(e) => return Err(io_err(format!("reading manifest list {name}"))(e).into()),
    };
    serde_json::from_slice(&data).map_err(|e| ListError::Corrupt(name, e.to_string()))
}

/// Whether a list called `name` exists.
pub fn exists(store: &Store, name: &str) -> Result<bool, ListError> {
    Ok(list_path(store, &qualified(name)?).exists())
}

fn save(store: &Store, list: &ManifestList) -> Result<(), ListError> {
    let dir = lists_dir(store);
    fsutil::create_dir_all_mode(&dir, 0o700).map_err(io_err("creating the manifests dir"))?;
    let data = serde_json::to_vec_pretty(list).expect("list serialises");
    atomic_write(&list_path(store, &list.name), &data, 0o644)
        .map_err(io_err(format!("writing manifest list {}", list.name)))?;
    Ok(())
}

/// Edits (or, with `create`, makes) a list under the store lock.
fn edit<T>(
    store: &Store,
    name: &str,
    create: bool,
    f: impl FnOnce(&mut ManifestList) -> Result<T, ListError>,
) -> Result<T, ListError> {
    let _l = store.lock()?;
    let mut list = match load(store, name) {
        Ok(l) => l,
        Err(ListError::NotKnown(n)) if create => ManifestList {
            id: Digest::of(format!("{n}\0{}", chrono::Utc::now().to_rfc3339()).as_bytes())
                .hex()
                .to_string(),
            name: n,
            index: Index {
                schema_version: 2,
                media_type: Some(media::OCI_INDEX.into()),
                ..Default::default()
            },
        },
        Err(e) => return Err(e),
    };
    let out = f(&mut list)?;
    save(store, &list)?;
    Ok(out)
}

/// Makes a new list (or, with `amend`, reopens one) holding `images`.
pub fn create(
    store: &Store,
    name: &str,
    amend: bool,
    images: &[ImageRecord],
) -> Result<ManifestList, ListError> {
    if !amend && exists(store, name)? {
        return Err(ListError::Exists(qualified(name)?));
    }
    edit(store, name, true, |list| {
        for image in images {
            put_entry(store, list, image, &EntryOverrides::default());
        }
        Ok(list.clone())
    })
}

fn put_entry(store: &Store, list: &mut ManifestList, image: &ImageRecord, over: &EntryOverrides) {
    let size = std::fs::metadata(store.blob_path(&image.manifest_digest))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut d = Descriptor::new(
        &image.manifest_media_type,
        image.manifest_digest.clone(),
        size,
    );
    d.platform = Some(Platform {
        architecture: image.config.architecture.clone(),
        os: image.config.os.clone(),
        variant: image.config.variant.clone(),
        os_version: None,
    });
    over.apply(&mut d);
    let m = &mut list.index.manifests;
    match m.iter_mut().find(|e| e.digest == d.digest) {
        Some(e) => *e = d,
        None => m.push(d),
    }
}

/// Adds (or replaces) `image` in the list; returns the list's id.
pub fn add(
    store: &Store,
    name: &str,
    image: &ImageRecord,
    over: &EntryOverrides,
) -> Result<String, ListError> {
    edit(store, name, false, |list| {
        put_entry(store, list, image, over);
        Ok(list.id.clone())
    })
}

/// Finds the entry `digest` (a full digest or a unique hex prefix).
fn entry_mut<'a>(
    list: &'a mut ManifestList,
    digest: &str,
) -> Result<&'a mut Descriptor, ListError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest).to_string();
    let name = list.name.clone();
    let mut hits = list
        .index
        .manifests
        .iter_mut()
        .filter(|d| !hex.is_empty() && d.digest.hex().starts_with(&hex));
    match (hits.next(), hits.next()) {
        (Some(d), None) => Ok(d),
        _ => Err(ListError::NoEntry {
            list: name,
            digest: digest.into(),
        }),
    }
}

/// Changes an entry's platform or annotations; returns the list's id.
pub fn annotate(
    store: &Store,
    name: &str,
    digest: &str,
    over: &EntryOverrides,
) -> Result<String, ListError> {
    edit(store, name, false, |list| {
        over.apply(entry_mut(list, digest)?);
        Ok(list.id.clone())
    })
}

/// Takes an entry out of the list; returns the list's id.
pub fn remove_entry(store: &Store, name: &str, digest: &str) -> Result<String, ListError> {
    edit(store, name, false, |list| {
        let gone = entry_mut(list, digest)?.digest.clone();
        list.index.manifests.retain(|d| d.digest != gone);
        Ok(list.id.clone())
    })
}

/// Deletes a list (its member images stay).
pub fn remove(store: &Store, name: &str) -> Result<(), ListError> {
    let _l = store.lock()?;
    let name = qualified(name)?;
    match std::fs::remove_file(list_path(store, &name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ListError::NotKnown(name)),
        Err(e) => Err(io_err(format!("removing manifest list {name}"))(e).into()),
    }
}

/// Pushes a list to `dest`: with `all`, each member first (by digest),
/// then the index under `dest`'s tag. Returns the index's descriptor.
pub fn push_list(
    store: &Store,
    conf: &RegistriesConf,
    list: &ManifestList,
    dest: &Reference,
    all: bool,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Descriptor, ListError> {
    let mut index = list.index.clone();
    if all {
        let images = store.images()?;
        let member_opts = PushOptions {
            by_digest: true,
            ..opts.clone()
        };
        for entry in index.manifests.iter_mut() {
            let image = images
                .iter()
                .find(|i| i.manifest_digest == entry.digest)
                .ok_or_else(|| ListError::MemberGone {
                    list: list.name.clone(),
                    digest: entry.digest.clone(),
                })?;
            let pushed = push(store, conf, image, dest, &member_opts, progress)?;
            entry.media_type = pushed.media_type;
            entry.digest = pushed.digest;
            entry.size = pushed.size;
        }
    }
    let media_type = if opts.docker {
        media::DOCKER_LIST
    } else {
        media::OCI_INDEX
    };
    index.media_type = Some(media_type.into());
    if opts.docker {
        index.annotations = None;
    }
    let bytes = serde_json::to_vec(&index).expect("index serialises");
    let client = push_client(conf, dest, opts, Vec::new())?;
    progress.message("Writing manifest list to image destination");
    let digest = client
        .put_manifest(&dest.manifest_ref(), media_type, &bytes)
        .map_err(PushError::from)?;
    Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
}

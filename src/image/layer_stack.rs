//! An image being made, layer by layer: layers stored as a build step
//! makes them, and an image record for the state in between (a config
//! and its layers) that is not in the store's index until it is named.

use super::import::{record_annotated, ImportError};
use super::ingest::{ingest_layer, LayerExpectation};
use super::manifest::{media, Descriptor, ImageConfig, Manifest};
use super::reference::Reference;
use super::store::{ImageRecord, Store, StoreError};
use crate::util::digest::Digest;
use serde::{Deserialize, Serialize};

/// A stored layer, as an image lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub diff_id: Digest,
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// Size of its uncompressed tar.
    pub diff_size: u64,
}

impl LayerRef {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.blob.clone(), self.blob_size)
    }
}

/// The layers of a stored image, with their diff ids.
pub fn layers_of(store: &Store, image: &ImageRecord) -> Vec<LayerRef> {
    let chains = image.chain_ids();
    image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
        .zip(chains)
        .map(|((d, diff), chain)| LayerRef {
            diff_id: diff.clone(),
            blob: d.digest.clone(),
            blob_size: d.size,
            media_type: match d.media_type.as_str() {
                media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.to_string(),
                media::DOCKER_LAYER => media::OCI_LAYER.to_string(),
                other => other.to_string(),
            },
            diff_size: store.layer_info(&chain).map(|i| i.size).unwrap_or(0),
        })
        .collect()
}

/// True when a layer's blob and unpacked dir are both still in the store
/// (a garbage collection may have taken a cached one).
pub fn present(store: &Store, parent_chain: Option<&Digest>, layer: &LayerRef) -> bool {
    let chain = match parent_chain {
        None => layer.diff_id.clone(),
        Some(p) => {
            crate::image::manifest::chain_ids(&[p.clone(), layer.diff_id.clone()])[1].clone()
        }
    };
    store.has_blob(&layer.blob) && store.has_layer(&chain)
}

/// Stores an uncompressed layer tar on top of the chain `parent`.
pub fn store_layer(
    store: &Store,
    tar: impl std::io::Read,
    parent: Option<&Digest>,
) -> Result<LayerRef, ImportError> {
    let _guard = store.writer_guard()?;
    let expect = LayerExpectation {
        blob: None,
        diff_id: None,
        parent_chain: parent,
    };
    let l = ingest_layer(store, tar, &expect, true, None)?;
    Ok(LayerRef {
        diff_id: l.diff_id,
        blob: l.blob,
        blob_size: l.blob_size,
        media_type: l.compression.oci_media_type().to_string(),
        diff_size: l.diff_size,
    })
}

/// A record for `config` over `layers` without storing anything: what a
/// build step's container runs on. Its id is the config's digest.
pub fn working_record(config: &ImageConfig, layers: &[LayerRef]) -> ImageRecord {
    let bytes = serde_json::to_vec(config).expect("config serialises");
    let id = Digest::of(&bytes);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, id.clone(), bytes.len() as u64),
        layers: layers.iter().map(LayerRef::descriptor).collect(),
        annotations: None,
    };
    let manifest_digest = Digest::of(&serde_json::to_vec(&manifest).expect("manifest serialises"));
    ImageRecord {
        manifest_digest,
        manifest_media_type: media::OCI_MANIFEST.into(),
        manifest,
        id,
        config: config.clone(),
        names: Vec::new(),
        repo_digests: Vec::new(),
        size: layers.iter().map(|l| l.diff_size).sum(),
        added: None,
    }
}

/// Records `config` over `layers` as an image of the store, named `names`
/// (the first takes the image; the others are tags).
pub fn record(
    store: &Store,
    config: &ImageConfig,
    layers: &[LayerRef],
    names: &[Reference],
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> Result<ImageRecord, StoreError> {
    let size = layers.iter().map(|l| l.diff_size).sum();
    let descs = layers.iter().map(LayerRef::descriptor).collect();
    let img = record_annotated(store, config, descs, names.first(), size, annotations)?;
    for n in names.iter().skip(1) {
        store.tag(&img, n)?;
    }
    Ok(img)
}

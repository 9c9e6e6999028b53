//! `import`: a root filesystem tarball (plain, gzip or zstd) becomes a
//! one-layer image, streamed into the store in one pass.

use super::changes;
use super::ingest::{ingest_layer, IngestError, LayerExpectation};
use super::manifest::{
    media, ContainerConfig, Descriptor, History, ImageConfig, Manifest, Platform, RootFs,
};
use super::reference::Reference;
use super::store::{ImageRecord, Store, StoreError};
use std::io::Read;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Change(#[from] changes::ChangeError),
}

/// What `import` records besides the layer.
#[derive(Default)]
pub struct ImportOptions {
    pub name: Option<Reference>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<Platform>,
}

/// Imports a tarball stream as a new image.
pub fn import(
    store: &Store,
    input: impl Read,
    opts: &ImportOptions,
) -> Result<ImageRecord, ImportError> {
    let mut cfg = ContainerConfig::default();
    changes::apply(&mut cfg, &opts.changes)?;
    store.clean_stale_temp();
    let _guard = store.writer_guard()?;
    let expect = LayerExpectation {
        blob: None,
        diff_id: None,
        parent_chain: None,
    };
    let layer = ingest_layer(store, input, &expect, true, None)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let config = ImageConfig {
        created: Some(now.clone()),
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(cfg),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(now),
            created_by: Some("berth import".into()),
            comment: opts.message.clone(),
            ..Default::default()
        }],
    };
    let layers = vec![Descriptor::new(
        layer.compression.oci_media_type(),
        layer.blob.clone(),
        layer.blob_size,
    )];
    Ok(record_image(
        store,
        &config,
        layers,
        opts.name.as_ref(),
        layer.diff_size,
    )?)
}

/// Writes an image's config and OCI manifest as blobs and records it in
/// the store's index (with `name`, if any); returns its record. Shared by
/// `import` and `commit`, whose layers are already stored.
pub fn record_image(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
    name: Option<&Reference>,
    size: u64,
) -> Result<ImageRecord, StoreError> {
    record_annotated(store, config, layers, name, size, None)
}

/// `record_image` with annotations on the manifest (`build --annotation`).
pub fn record_annotated(
    store: &Store,
    config: &ImageConfig,
    layers: Vec<Descriptor>,
    name: Option<&Reference>,
    size: u64,
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> Result<ImageRecord, StoreError> {
    let config_bytes = serde_json::to_vec(config).expect("config serialises");
    let config_digest = store.write_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers,
        annotations,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let manifest_digest = store.write_blob(&manifest_bytes)?;
    let desc = Descriptor::new(
        media::OCI_MANIFEST,
        manifest_digest.clone(),
        manifest_bytes.len() as u64,
    );
    store.add_image(&desc, name, None, size)?;
    store
        .images()?
        .into_iter()
        .find(|i| i.manifest_digest == manifest_digest)
        .ok_or_else(|| StoreError::Corrupt("the new image vanished from the index".into()))
}

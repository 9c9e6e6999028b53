//! `commit`: a new image from an image and one more layer (a container's
//! changes), with the base image's config carried over, `--change`
//! instructions applied and a history entry added.

use super::changes;
use super::import::{record_image, ImportError};
use super::ingest::{ingest_layer, LayerExpectation};
use super::manifest::{media, Descriptor, History};
use super::reference::Reference;
use super::store::{ImageRecord, Store};
use std::io::Read;

/// What `commit` records besides the layer.
#[derive(Default)]
pub struct CommitOptions {
    pub name: Option<Reference>,
    /// Dockerfile instructions (`CMD ["x"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// What the history says made the layer (the container's command).
    pub created_by: String,
    /// `--squash`: `layer` is the whole tree, the image's only layer.
    pub squash: bool,
}

/// The OCI media type for a layer of a Docker manifest (the same bytes).
fn oci_layer_type(t: &str) -> &str {
    match t {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP,
        media::DOCKER_LAYER => media::OCI_LAYER,
        other => other,
    }
}

/// Stores `layer` (a tar stream) on top of `base` and records the image.
pub fn commit(
    store: &Store,
    base: &ImageRecord,
    layer: impl Read,
    opts: &CommitOptions,
) -> Result<ImageRecord, ImportError> {
    let mut config = base.config.clone();
    let mut cfg = config.config.clone().unwrap_or_default();
    changes::apply(&mut cfg, &opts.changes)?;
    store.clean_stale_temp();
    let _guard = store.writer_guard()?;
    let parent = if opts.squash {
        None
    } else {
        base.chain_ids().last().cloned()
    };
    let expect = LayerExpectation {
        blob: None,
        diff_id: None,
        parent_chain: parent.as_ref(),
    };
    let layer = ingest_layer(store, layer, &expect, true, None)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    config.created = Some(now.clone());
    if opts.author.is_some() {
        config.author = opts.author.clone();
    }
    config.config = Some(cfg);
    if opts.squash {
        config.rootfs.diff_ids.clear();
        for h in config.history.iter_mut() {
            h.empty_layer = Some(true);
        }
    }
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    config.history.push(History {
        created: Some(now),
        created_by: Some(opts.created_by.clone()),
        author: opts.author.clone(),
        comment: opts.message.clone(),
        empty_layer: None,
    });
    let kept = if opts.squash {
        0
    } else {
        base.manifest.layers.len()
    };
    let mut layers: Vec<Descriptor> = base.manifest.layers[..kept]
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.media_type = oci_layer_type(&d.media_type).to_string();
            d
        })
        .collect();
    layers.push(Descriptor::new(
        layer.compression.oci_media_type(),
        layer.blob.clone(),
        layer.blob_size,
    ));
    Ok(record_image(
        store,
        &config,
        layers,
        opts.name.as_ref(),
        if opts.squash {
            layer.diff_size
        } else {
            base.size + layer.diff_size
        },
    )?)
}

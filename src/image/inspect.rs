//! The JSON `berth image inspect` prints, with podman's field names so
//! scripts written for `podman image inspect` keep working.

use super::store::{ImageRecord, Store};
use serde_json::{json, Value};

/// podman-compatible inspect document for one image.
pub fn image_json(store: &Store, img: &ImageRecord) -> Value {
    let cfg = img.config.config.clone().unwrap_or_default();
    let lower: Vec<String> = img
        .chain_ids()
        .iter()
        .rev()
        .map(|c| store.layer_diff(c).display().to_string())
        .collect();
    let created = img
        .config
        .created
        .clone()
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    json!({
        "Id": img.id.hex(),
        "Digest": img.manifest_digest.to_string(),
        "RepoTags": img.names.iter().filter(|n| !n.contains('@')).collect::<Vec<_>>(),
        "RepoDigests": img.repo_digests,
        "Parent": "",
        "Comment": img.config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": created,
        "Config": cfg,
        "Version": "",
        "Author": img.config.author.clone().unwrap_or_default(),
        "Architecture": img.config.architecture,
        "Os": img.config.os,
        "Variant": img.config.variant.clone().unwrap_or_default(),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lower.join(":") }
        },
        "RootFS": {
            "Type": "layers",
            "Layers": img.config.rootfs.diff_ids,
        },
        "Labels": cfg.labels.clone().unwrap_or_default(),
        "Annotations": img.manifest.annotations.clone().unwrap_or_default(),
        "ManifestType": img.manifest_media_type,
        "User": cfg.user.clone().unwrap_or_default(),
        "History": img.config.history,
        "NamesHistory": img.names,
    })
}

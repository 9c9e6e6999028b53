//! `pull`: from a name the user typed to an image in the store. Resolves
//! short names and registries.conf endpoints, picks the platform out of an
//! index, then fetches config and layers (layers in parallel, each in one
//! streaming pass) and records the image only when everything is in place.

use super::auth;
use super::ingest::{ingest_layer, IngestError, LayerExpectation};
use super::manifest::{
    chain_ids, media, Descriptor, ImageConfig, Index, Manifest, Platform, PlatformError,
};
use super::progress::Progress;
use super::reference::{Parsed, Reference, ReferenceError};
use super::registries_conf::{ConfError, Endpoint, RegistriesConf};
use super::registry::{Client, RegistryError};
use super::store::{ImageRecord, Store, StoreError};
use crate::util::digest::Digest;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Layers fetched at once.
const PARALLEL_LAYERS: usize = 4;
/// Largest config blob berth accepts.
const MAX_CONFIG: u64 = 16 << 20;

/// When `run`, `create` or `build` pull an image (`--pull`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when it is not in the store (podman's default).
    #[default]
    Missing,
    /// Every time (`--pull`, `--pull=always`, `newer`).
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// Parses podman's `--pull` values (true/false as always/missing).
    pub fn parse(v: Option<&str>) -> Option<PullPolicy> {
        Some(match v {
            None | Some("missing") | Some("false") => PullPolicy::Missing,
            Some("always") | Some("true") | Some("newer") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            Some(_) => return None,
        })
    }
}

/// Options of `berth pull` (and of `run` when it pulls).
#[derive(Clone, Debug)]
pub struct PullOptions {
    pub platform: Platform,
    /// `--tls-verify=false` makes every endpoint insecure.
    pub tls_verify: bool,
    pub authfile: Option<PathBuf>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            tls_verify: true,
            authfile: None,
        }
    }
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("{what}: {why}")]
    BadImage { what: String, why: String },
    #[error("{0}")]
    NotFoundAnywhere(String),
}

/// The outcome: the image and the name it was stored under.
pub struct Pulled {
    pub name: Reference,
    pub image: ImageRecord,
}

/// Pulls what the user typed, trying each candidate name and endpoint.
pub fn pull(
    store: &Store,
    conf: &RegistriesConf,
    query: &str,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled, PullError> {
    let parsed = Parsed::parse(query)?;
    let candidates = conf.candidates(&parsed);
    if candidates.is_empty() {
        return Err(PullError::NotFoundAnywhere(format!(
            "short name {query:?} did not resolve to an alias and no unqualified-search registries are defined in registries.conf: use a fully qualified name such as docker.io/library/{query}"
        )));
    }
    let mut not_found = Vec::new();
    for reference in &candidates {
        let endpoints = conf.endpoints(reference)?;
        let last = endpoints.len() - 1;
        for (i, mut ep) in endpoints.into_iter().enumerate() {
            if !opts.tls_verify {
                ep.insecure = true;
            }
            progress.message(&format!("Trying to pull {reference}..."));
            match pull_from(store, &ep, reference, opts, progress) {
                Ok(image) => {
                    return Ok(Pulled {
                        name: reference.clone(),
                        image,
                    })
                }
                Err(PullError::Registry(RegistryError::NotFound { what, code })) => {
                    not_found.push(format!("{what} ({}: {code})", ep.host));
                }
                Err(e) if i < last => {
                    tracing::warn!(
                        "{reference} from {}: {e}; trying the next location",
                        ep.host
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
    let tried = candidates
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(PullError::NotFoundAnywhere(format!(
        "{query}: image not known: no registry has it (tried {tried}; {})",
        not_found.join("; ")
    )))
}

fn fetch_small(client: &Client, d: &Digest, size: u64, what: &str) -> Result<Vec<u8>, PullError> {
    if size > MAX_CONFIG {
        return Err(PullError::BadImage {
            what: what.into(),
            why: format!("config blob of {size} bytes is larger than berth accepts"),
        });
    }
    let (mut r, _) = client.blob(d)?;
    let mut buf = Vec::new();
    r.by_ref()
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RegistryError::Connect {
            host: client.host().into(),
            detail: format!("reading {what}: {e}"),
        })?;
    let actual = Digest::of(&buf);
    if &actual != d {
        return Err(IngestError::DigestMismatch {
            expected: d.clone(),
            actual,
            size: buf.len() as u64,
        }
        .into());
    }
    Ok(buf)
}

fn pull_from(
    store: &Store,
    ep: &Endpoint,
    reference: &Reference,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<ImageRecord, PullError> {
    // Credentials go only to the host they were given for: a mirror
    // with none of its own gets none of the registry's.
    let creds = match auth::lookup(&ep.host, &ep.repository, opts.authfile.as_deref())? {
        Some(c) => Some(c),
        None if ep.host == reference.registry => auth::lookup(
            &reference.registry,
            &reference.repository,
            opts.authfile.as_deref(),
        )?,
        None => None,
    };
    let client = Client::new(ep.clone(), creds);
    let what = reference.to_string();
    let top = client.manifest(&reference.manifest_ref(), &what)?;
    let repo_digest = top.digest.clone();
    let (manifest_bytes, manifest_type, manifest_digest) = if media::is_index(&top.media_type) {
        let index: Index = serde_json::from_slice(&top.bytes).map_err(|e| PullError::BadImage {
            what: what.clone(),
            why: format!("image index cannot be parsed: {e}"),
        })?;
        let chosen = index.select(&opts.platform)?;
        let m = client.manifest(&chosen.digest.to_string(), &what)?;
        if m.digest != chosen.digest {
            return Err(PullError::BadImage {
                what,
                why: format!("manifest {} does not match its digest", chosen.digest),
            });
        }
        (m.bytes, m.media_type, m.digest)
    } else {
        (top.bytes, top.media_type, top.digest)
    };
    if !media::is_manifest(&manifest_type) {
        return Err(PullError::BadImage {
            what,
            why: format!("unsupported manifest type {manifest_type:?} (berth reads OCI and Docker schema 2 images)"),
        });
    }
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| PullError::BadImage {
            what: what.clone(),
            why: format!("manifest cannot be parsed: {e}"),
        })?;
    if manifest.config.media_type != media::OCI_CONFIG
        && manifest.config.media_type != media::DOCKER_CONFIG
    {
        return Err(PullError::BadImage {
            what,
            why: format!(
                "not a container image: its config has media type {:?}",
                manifest.config.media_type
            ),
        });
    }
    let name = if reference.digest.is_some() {
        Reference {
            tag: None,
            ..reference.clone()
        }
    } else {
        reference.clone()
    };
    store.clean_stale_temp();
    let _guard = store.writer_guard()?;

    // Config first: it names the layers' diff ids and so their chain ids.
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_blob(&manifest.config.digest)?
    } else {
        let p = progress.blob(
            "config",
            &manifest.config.digest,
            Some(manifest.config.size),
        );
        let b = fetch_small(
            &client,
            &manifest.config.digest,
            manifest.config.size,
            &what,
        )?;
        store.write_blob(&b)?;
        p.done(false);
        b
    };
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| PullError::BadImage {
            what: what.clone(),
            why: format!("image config cannot be parsed: {e}"),
        })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(PullError::BadImage {
            what,
            why: format!(
                "manifest lists {} layers but the config {}",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    fetch_layers(store, &client, &manifest.layers, &config, &chains, progress)?;

    store.write_blob(&manifest_bytes)?;
    let mut size = 0;
    for c in &chains {
        size += store.layer_info(c)?.size;
    }
    let desc = Descriptor::new(
        &manifest_type,
        manifest_digest.clone(),
        manifest_bytes.len() as u64,
    );
    progress.message("Writing manifest to image destination");
    store.add_image(&desc, Some(&name), Some(&repo_digest), size)?;
    let image = store
        .images()?
        .into_iter()
        .find(|i| i.manifest_digest == manifest_digest)
        .ok_or_else(|| StoreError::Corrupt("image vanished right after it was stored".into()))?;
    Ok(image)
}

fn fetch_layers(
    store: &Store,
    client: &Client,
    layers: &[Descriptor],
    config: &ImageConfig,
    chains: &[Digest],
    progress: &dyn Progress,
) -> Result<(), PullError> {
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<PullError>> = Mutex::new(None);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= layers.len() || first_error.lock().unwrap().is_some() {
            return;
        }
        if let Err(e) = fetch_layer(store, client, &layers[i], config, chains, i, progress) {
            first_error.lock().unwrap().get_or_insert(e);
            return;
        }
    };
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_LAYERS.min(layers.len()).max(1) {
            s.spawn(work);
        }
    });
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    layer: &Descriptor,
    config: &ImageConfig,
    chains: &[Digest],
    i: usize,
    progress: &dyn Progress,
) -> Result<(), PullError> {
    let have_blob = store.has_blob(&layer.digest);
    let have_layer = store.has_layer(&chains[i]);
    let p = progress.blob("blob", &layer.digest, Some(layer.size));
    if have_blob && have_layer {
        p.done(true);
        return Ok(());
    }
    let expect = LayerExpectation {
        blob: Some((&layer.digest, Some(layer.size))),
        diff_id: Some(&config.rootfs.diff_ids[i]),
        parent_chain: if i == 0 { None } else { Some(&chains[i - 1]) },
    };
    let tick = p.clone();
    let on_progress = Box::new(move |n: u64| tick.update(n));
    if have_blob {
        let f = std::fs::File::open(store.blob_path(&layer.digest)).map_err(
            super::store::io_err(format!("reading blob {}", layer.digest)),
        )?;
        ingest_layer(store, f, &expect, false, Some(on_progress))?;
    } else {
        if layer.urls.is_some() && layer.media_type.contains("foreign") {
            tracing::debug!("foreign layer {}: fetching from the registry", layer.digest);
        }
        let (body, _) = client.blob(&layer.digest)?;
        ingest_layer(store, body, &expect, true, Some(on_progress))?;
    }
    p.done(false);
    Ok(())
}

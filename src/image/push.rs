//! `push`: an image of the store to a registry. Each blob is checked with
//! HEAD first, then mounted from the repository it was pulled from when
//! that is on the same registry, and only then uploaded (in chunks when
//! large). Stored layers go as they are unless they are uncompressed (a
//! build's or commit's) or another compression is asked for; then the
//! compressed copy is made once, in the store's tmp, before the upload.

use super::auth::{self, AuthError, Credentials};
use super::manifest::{media, Descriptor, Manifest};
use super::progress::Progress;
use super::reference::{Reference, ReferenceError};
use super::registries_conf::{endpoint_for, RegistriesConf};
use super::registry::{Client, RegistryError};
use super::store::{ImageRecord, Store, StoreError};
use crate::util::digest::Digest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PushError {
    let what = what.into();
    move |source| PushError::Io { what, source }
}

/// A layer compression to push with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

/// How to push.
#[derive(Clone, Default)]
pub struct PushOptions {
    /// `--tls-verify=false`: plain http is allowed.
    pub insecure: bool,
    pub authfile: Option<PathBuf>,
    /// `--creds USER:PASSWORD`
    pub creds: Option<Credentials>,
    /// `--format docker` (else OCI).
    pub docker: bool,
    /// `--compression-format`; None keeps compressed layers as they are.
    pub compression: Option<Compression>,
    /// `--compression-level`
    pub level: Option<i32>,
    /// Store the manifest under its digest instead of a tag (the members
    /// of a manifest list).
    pub by_digest: bool,
}

/// A blob to send: where its bytes are, and its descriptor.
struct Outgoing {
    path: PathBuf,
    desc: Descriptor,
    /// Removed after the push (a compressed copy).
    temp: bool,
}

fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        media::OCI_LAYER_GZIP | media::DOCKER_LAYER_GZIP => Some(Compression::Gzip),
        media::OCI_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

fn layer_type(c: Compression, docker: bool) -> &'static str {
    match (c, docker) {
        (Compression::Gzip, true) => media::DOCKER_LAYER_GZIP,
        (Compression::Gzip, false) => media::OCI_LAYER_GZIP,
        (Compression::Zstd, _) => media::OCI_LAYER_ZSTD,
    }
}

/// Compresses (after decompressing, if it was compressed otherwise) a
/// stored layer blob into a temp file; returns its descriptor.
fn recompress(
    store: &Store,
    blob: &Path,
    from: Option<Compression>,
    to: Compression,
    level: Option<i32>,
    docker: bool,
) -> Result<Outgoing, PushError> {
    let tmp = store.temp_path("push")?;
    let path = tmp.path().to_path_buf();
    tmp.keep();
    let input = std::io::BufReader::new(std::fs::File::open(blob).map_err(io("reading a layer"))?);
    let mut raw: Box<dyn Read> = match from {
        None => Box::new(input),
        Some(Compression::Gzip) => Box::new(flate2::read::GzDecoder::new(input)),
        Some(Compression::Zstd) => {
            Box::new(zstd::Decoder::new(input).map_err(io("reading a layer"))?)
        }
    };
    let out = std::fs::File::create(&path).map_err(io("compressing a layer"))?;
    let mut counting = CountingWriter::new(std::io::BufWriter::new(out));
    match to {
        Compression::Gzip => {
            let lvl = flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32);
            let mut enc = flate2::write::GzEncoder::new(&mut counting, lvl);
            std::io::copy(&mut raw, &mut enc).map_err(io("compressing a layer"))?;
            enc.finish().map_err(io("compressing a layer"))?;
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(&mut counting, level.unwrap_or(3))
                .map_err(io("compressing a layer"))?;
            std::io::copy(&mut raw, &mut enc).map_err(io("compressing a layer"))?;
            enc.finish().map_err(io("compressing a layer"))?;
        }
    }
    counting.flush().map_err(io("compressing a layer"))?;
    let (digest, size) = counting.finish();
    Ok(Outgoing {
        path,
        desc: Descriptor::new(layer_type(to, docker), digest, size),
        temp: true,
    })
}

/// A writer that hashes and counts what passes through.
struct CountingWriter<W: Write> {
    inner: W,
    hasher: sha2::Sha256,
    n: u64,
}

impl<W: Write> CountingWriter<W> {
    fn new(inner: W) -> Self {
        CountingWriter {
            inner,
            hasher: Default::default(),
            n: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.n)
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The destination: DEST (with or without `docker://`), else `default`
/// (the image's or list's own name). A name on localhost/ has no registry
/// to go to.
pub fn destination(default: Option<&str>, dest: Option<&str>) -> Result<Reference, PushError> {
    let transport = dest.and_then(|d| d.split_once(':')).map(|(t, _)| t);
    if let Some(t) = transport.filter(|t| {
        matches!(
            *t,
            "oci"
                | "oci-archive"
                | "docker-archive"
                | "dir"
                | "containers-storage"
                | "docker-daemon"
        )
    }) {
        return Err(PushError::Usage(format!(
            "push to {t}: is not supported: berth pushes to registries (docker://); use `berth save` for archives"
        )));
    }
    let name = match dest {
        Some(d) => d.strip_prefix("docker://").unwrap_or(d).to_string(),
        None => default
            .map(String::from)
            .ok_or_else(|| PushError::Usage("the image has no name: give a destination, e.g. `berth push IMAGE registry.example.com/repo:tag`".into()))?,
    };
    let r = Reference::local(&name)?;
    if r.registry == "localhost" {
        return Err(PushError::Usage(format!(
            "{r} names no registry: push to REGISTRY/REPOSITORY[:TAG], e.g. `berth push {name} 127.0.0.1:5000/{}`",
            r.repository
        )));
    }
    Ok(r)
}

/// A registry client that may push to `dest`, with the credentials the
/// options or the auth file give, mounting blobs from `sources`.
pub fn push_client(
    conf: &RegistriesConf,
    dest: &Reference,
    opts: &PushOptions,
    sources: Vec<String>,
) -> Result<Client, PushError> {
    let endpoint = endpoint_for(
        &dest.name(),
        opts.insecure || conf.is_insecure(&dest.registry),
    );
    let creds = match &opts.creds {
        Some(c) => Some(c.clone()),
        None => auth::lookup(&dest.registry, &dest.repository, opts.authfile.as_deref())?,
    };
    Ok(Client::for_push(endpoint, creds, sources))
}

/// Pushes `image` to `dest`; returns the pushed manifest's descriptor
/// (its digest differs from the stored one when layers were recompressed
/// or the format changed).
pub fn push(
    store: &Store,
    conf: &RegistriesConf,
    image: &ImageRecord,
    dest: &Reference,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Descriptor, PushError> {
    if image.manifest.layers.len() != image.config.rootfs.diff_ids.len() {
        return Err(PushError::Usage(
            "the image's manifest and config disagree on its layers".into(),
        ));
    }
    // Repositories on the same registry the image came from: blobs there
    // can be mounted instead of uploaded.
    let sources: Vec<String> = image
        .repo_digests
        .iter()
        .chain(image.names.iter())
        .filter_map(|n| Reference::parse(n.split('@').next().unwrap_or(n)).ok())
        .filter(|r| r.registry == dest.registry && r.repository != dest.repository)
        .map(|r| r.repository)
        .collect();
    let client = push_client(conf, dest, opts, sources.clone())?;
    progress.message("Getting image source signatures");
    let mut outgoing = Vec::new();
    let result = (|| -> Result<Descriptor, PushError> {
        for d in &image.manifest.layers {
            let blob = store.blob_path(&d.digest);
            if !blob.exists() {
                return Err(PushError::Usage(format!(
                    "layer {} is not in the store (was it removed?); pull or build the image again",
                    d.digest
                )));
            }
            let have = layer_compression(&d.media_type);
            let want = opts.compression.or(have).unwrap_or(Compression::Gzip);
            let out = if have == Some(want) && !(opts.docker && want == Compression::Zstd) {
                let media_type = layer_type(want, opts.docker);
                Outgoing {
                    path: blob,
                    desc: Descriptor::new(media_type, d.digest.clone(), d.size),
                    temp: false,
                }
            } else {
                if opts.docker && want == Compression::Zstd {
                    return Err(PushError::Usage(
                        "--format docker cannot carry zstd layers: use --compression-format gzip"
                            .into(),
                    ));
                }
                recompress(store, &blob, have, want, opts.level, opts.docker)?
            };
            outgoing.push(out);
        }
        for o in &outgoing {
            send_blob(&client, &o.path, &o.desc, &sources, "blob", progress)?;
        }
        let config_type = if opts.docker {
            media::DOCKER_CONFIG
        } else {
            media::OCI_CONFIG
        };
        let config = Descriptor::new(
            config_type,
            image.manifest.config.digest.clone(),
            image.manifest.config.size,
        );
        send_blob(
            &client,
            &store.blob_path(&config.digest),
            &config,
            &sources,
            "config",
            progress,
        )?;
        let manifest_type = if opts.docker {
            media::DOCKER_MANIFEST
        } else {
            media::OCI_MANIFEST
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest_type.into()),
            config,
            layers: outgoing.iter().map(|o| o.desc.clone()).collect(),
            annotations: if opts.docker {
                None
            } else {
                image.manifest.annotations.clone()
            },
        };
        let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        progress.message("Writing manifest to image destination");
        let reference = if opts.by_digest {
            Digest::of(&bytes).to_string()
        } else {
            dest.manifest_ref()
        };
        let digest = client.put_manifest(&reference, manifest_type, &bytes)?;
        Ok(Descriptor::new(manifest_type, digest, bytes.len() as u64))
    })();
    for o in outgoing.iter().filter(|o| o.temp) {
        let _ = std::fs::remove_file(&o.path);
    }
    result
}

/// One blob: skipped when the registry has it, mounted when it can be,
/// else uploaded.
fn send_blob(
    client: &Client,
    path: &Path,
    desc: &Descriptor,
    sources: &[String],
    kind: &str,
    progress: &dyn Progress,
) -> Result<(), PushError> {
    let bar = progress.blob(kind, &desc.digest, Some(desc.size));
    if client.has_blob(&desc.digest)? {
        bar.done(true);
        return Ok(());
    }
    let mut session = None;
    for from in sources {
        match client.mount_blob(&desc.digest, from)? {
            Ok(()) => {
                bar.done(true);
                return Ok(());
            }
            Err(upload) => session = Some(upload),
        }
    }
    client.upload_blob(&desc.digest, path, desc.size, session, &|n| bar.update(n))?;
    bar.done(false);
    Ok(())
}

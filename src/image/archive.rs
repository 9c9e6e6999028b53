//! `save` and `load`: images to and from the two archive formats podman,
//! docker and skopeo exchange: docker-archive (`manifest.json` + config +
//! uncompressed layer tars) and oci-archive (a tarred OCI image layout).

use super::ingest::{ingest_layer, IngestError, LayerExpectation};
use super::manifest::{
    chain_ids, media, Compression, Descriptor, ImageConfig, Index, Manifest, Platform,
};
use super::reference::{Parsed, Reference};
use super::store::{io_err, ImageRecord, Store, StoreError, REF_NAME};
use super::unpack::clean_components;
use crate::util::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The two archive formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

/// Why save or load failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Io(String),
    #[error(
        "payload does not match any of the supported image formats: not an image archive: {0}"
    )]
    NotArchive(String),
    #[error("archive is damaged: {0}")]
    Bad(String),
}

fn ioe(ctx: &str) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |e| ArchiveError::Io(format!("{ctx}: {e}"))
}

/// One entry of a docker-archive's manifest.json.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(ioe("writing archive"))
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    file: &Path,
) -> Result<(), ArchiveError> {
    let mut f = File::open(file).map_err(ioe("reading blob"))?;
    let len = f.metadata().map_err(ioe("reading blob"))?.len();
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, &mut f)
        .map_err(ioe("writing archive"))
}

/// Writes `images` (each with the names to record) to `out`.
pub fn save<W: Write>(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    format: Format,
    out: W,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    match format {
        Format::OciArchive => {
            append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            let mut written = BTreeSet::new();
            let mut index = Index {
                schema_version: 2,
                media_type: Some(media::OCI_INDEX.into()),
                ..Default::default()
            };
            for (img, names) in images {
                let mut blobs = vec![img.manifest_digest.clone(), img.id.clone()];
                blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
                for b in blobs {
                    if written.insert(b.clone()) {
                        append_file(
                            &mut tar,
                            &format!("blobs/sha256/{}", b.hex()),
                            &store.blob_path(&b),
                        )?;
                    }
                }
                let size = std::fs::metadata(store.blob_path(&img.manifest_digest))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let base =
                    Descriptor::new(&img.manifest_media_type, img.manifest_digest.clone(), size);
                if names.is_empty() {
                    index.manifests.push(base.clone());
                }
                for n in names {
                    let mut d = base.clone();
                    d.annotations = Some([(REF_NAME.to_string(), n.clone())].into_iter().collect());
                    index.manifests.push(d);
                }
            }
            append_bytes(
                &mut tar,
                "index.json",
                &serde_json::to_vec(&index).expect("index serialises"),
            )?;
        }
        Format::DockerArchive => {
            let mut entries = Vec::new();
            let mut written = BTreeSet::new();
            for (img, names) in images {
                let config_name = format!("{}.json", img.id.hex());
                if written.insert(config_name.clone()) {
                    append_file(&mut tar, &config_name, &store.blob_path(&img.id))?;
                }
                let mut layer_names = Vec::new();
                for (layer, diff) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
                    let name = format!("{}.tar", diff.hex());
                    if written.insert(name.clone()) {
                        append_layer_uncompressed(store, &mut tar, &name, &layer.digest, diff)?;
                    }
                    layer_names.push(name);
                }
                entries.push(DockerEntry {
                    config: config_name,
                    repo_tags: Some(names.clone()),
                    layers: layer_names,
                });
            }
            append_bytes(
                &mut tar,
                "manifest.json",
                &serde_json::to_vec(&entries).expect("manifest serialises"),
            )?;
        }
    }
    tar.into_inner()
        .map_err(ioe("writing archive"))?
        .flush()
        .map_err(ioe("writing archive"))
}

/// docker-archive layers are uncompressed tars named by diff id.
fn append_layer_uncompressed<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    name: &str,
    blob: &Digest,
    diff: &Digest,
) -> Result<(), ArchiveError> {
    let path = store.blob_path(blob);
    let mut head = [0u8; 4];
    let n = File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(ioe("reading blob"))?;
    let compression = Compression::sniff(&head[..n]);
    if compression == Compression::None {
        return append_file(tar, name, &path);
    }
    let tmp = store.temp_path("save")?;
    {
        let f = BufReader::new(File::open(&path).map_err(ioe("reading blob"))?);
        let mut dec: Box<dyn Read> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
            _ => Box::new(zstd::Decoder::with_buffer(f).map_err(ioe("decompressing layer"))?),
        };
        let mut out = File::create(tmp.path()).map_err(io_err("writing a temp layer"))?;
        let mut hashing = crate::util::digest::TeeHasher::new(&mut dec, &mut out);
        io::copy(&mut hashing, &mut io::sink()).map_err(ioe("decompressing layer"))?;
        let (d, _, _) = hashing.finish();
        if &d != diff {
            return Err(ArchiveError::Bad(format!(
                "stored layer {blob} does not decompress to {diff}"
            )));
        }
    }
    append_file(tar, name, tmp.path())
}

/// Extracts the regular files of an archive into `dir` (paths cleaned, no
/// links), the only form in which load reads them.
fn extract(input: impl Read, dir: &Path) -> Result<(), ArchiveError> {
    let mut a = tar::Archive::new(input);
    let entries = a
        .entries()
        .map_err(|e| ArchiveError::NotArchive(e.to_string()))?;
    let mut any = false;
    for e in entries {
        let mut e = e.map_err(|e| ArchiveError::NotArchive(format!("not a tar file: {e}")))?;
        any = true;
        let raw = e.path_bytes().into_owned();
        let comps = clean_components(&raw);
        if comps.is_empty() || e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let rel: PathBuf = comps
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let dest = dir.join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(io_err("extracting archive"))?;
        }
        let mut f = File::create(&dest).map_err(io_err("extracting archive"))?;
        io::copy(&mut e, &mut f).map_err(io_err("extracting archive"))?;
    }
    if !any {
        return Err(ArchiveError::NotArchive("the input is empty".into()));
    }
    Ok(())
}

/// Loads every image of an archive stream; returns what was loaded (names,
/// or ids for unnamed images).
pub fn load(
    store: &Store,
    input: impl Read,
    platform: &Platform,
) -> Result<Vec<String>, ArchiveError> {
    store.clean_stale_temp();
    let _guard = store.writer_guard()?;
    let tmp = store.temp_path("load")?;
    let reader = Compression::decoding(BufReader::new(input)).map_err(ioe("reading archive"))?;
    extract(reader, tmp.path())?;
    let dir = tmp.path();
    if dir.join("manifest.json").exists() {
        load_docker(store, dir)
    } else if dir.join("index.json").exists() {
        load_oci(store, dir, platform)
    } else {
        Err(ArchiveError::NotArchive(
            "no manifest.json (docker-archive) or index.json (oci-archive) inside".into(),
        ))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<(Vec<u8>, T), ArchiveError> {
    let data = std::fs::read(p).map_err(|e| ArchiveError::Bad(format!("{}: {e}", p.display())))?;
    let v = serde_json::from_slice(&data)
        .map_err(|e| ArchiveError::Bad(format!("{}: {e}", p.display())))?;
    Ok((data, v))
}

/// Stores the layers of one image from files in the extracted archive.
fn store_layers(
    store: &Store,
    files: &[(PathBuf, Option<Descriptor>)],
    config: &ImageConfig,
) -> Result<(Vec<Descriptor>, u64), ArchiveError> {
    if files.len() != config.rootfs.diff_ids.len() {
        return Err(ArchiveError::Bad(format!(
            "{} layers but the config lists {}",
            files.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut descs = Vec::new();
    let mut size = 0;
    for (i, (path, desc)) in files.iter().enumerate() {
        let f = File::open(path)
            .map_err(|e| ArchiveError::Bad(format!("layer {}: {e}", path.display())))?;
        let expect = LayerExpectation {
            blob: desc.as_ref().map(|d| (&d.digest, Some(d.size))),
            diff_id: Some(&config.rootfs.diff_ids[i]),
            parent_chain: if i == 0 { None } else { Some(&chains[i - 1]) },
        };
        let l = ingest_layer(store, f, &expect, true, None)?;
        size += l.diff_size;
        descs.push(match desc {
            Some(d) => d.clone(),
            None => Descriptor::new(
                if l.compression == Compression::Gzip {
                    media::DOCKER_LAYER_GZIP
                } else {
                    media::DOCKER_LAYER
                },
                l.blob,
                l.blob_size,
            ),
        });
    }
    Ok((descs, size))
}

fn name_of(s: &str) -> Option<Reference> {
    let p = Parsed::parse(s).ok()?;
    if p.is_short_name() && !s.contains(':') && !s.contains('/') {
        return None; // a bare tag such as "latest" names nothing
    }
    Some(p.qualify_default())
}

/// A path that manifest.json names, confined to the extracted archive:
/// `/dev/zero` or `../../etc/shadow` name files inside it (which the
/// archive did not have), never the host's. The extraction made only
/// regular files and directories, so no link inside leads out either.
fn inside(dir: &Path, rel: &str) -> PathBuf {
    let clean: PathBuf = clean_components(rel.as_bytes())
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    dir.join(clean)
}

fn load_docker(store: &Store, dir: &Path) -> Result<Vec<String>, ArchiveError> {
    let (_, entries): (_, Vec<DockerEntry>) = read_json(&dir.join("manifest.json"))?;
    let mut loaded = Vec::new();
    for e in entries {
        let (config_bytes, config): (_, ImageConfig) = read_json(&inside(dir, &e.config))?;
        let files: Vec<(PathBuf, Option<Descriptor>)> =
            e.layers.iter().map(|l| (inside(dir, l), None)).collect();
        let (layers, size) = store_layers(store, &files, &config)?;
        let config_digest = store.write_blob(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            config: Descriptor::new(
                media::DOCKER_CONFIG,
                config_digest.clone(),
                config_bytes.len() as u64,
            ),
            layers,
            annotations: None,
        };
        let mb = serde_json::to_vec(&manifest).expect("manifest serialises");
        let md = store.write_blob(&mb)?;
        let desc = Descriptor::new(media::DOCKER_MANIFEST, md, mb.len() as u64);
        let names: Vec<Reference> = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| name_of(t))
            .collect();
        if names.is_empty() {
            store.add_image(&desc, None, None, size)?;
            loaded.push(config_digest.to_string());
        }
        for n in names {
            store.add_image(&desc, Some(&n), None, size)?;
            loaded.push(n.to_string());
        }
    }
    Ok(loaded)
}

fn blob_file(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

fn verified_blob(dir: &Path, d: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let data = std::fs::read(blob_file(dir, d))
        .map_err(|e| ArchiveError::Bad(format!("blob {d}: {e}")))?;
    if &Digest::of(&data) != d {
        return Err(ArchiveError::Bad(format!(
            "blob {d} does not match its digest"
        )));
    }
    Ok(data)
}

fn load_oci(store: &Store, dir: &Path, platform: &Platform) -> Result<Vec<String>, ArchiveError> {
    let (_, index): (_, Index) = read_json(&dir.join("index.json"))?;
    let mut loaded = Vec::new();
    for top in &index.manifests {
        let name = top
            .annotation(REF_NAME)
            .or_else(|| top.annotation("io.containerd.image.name"))
            .and_then(name_of);
        let mut desc = top.clone();
        if media::is_index(&desc.media_type) {
            let inner: Index = serde_json::from_slice(&verified_blob(dir, &desc.digest)?)
                .map_err(|e| ArchiveError::Bad(format!("nested index: {e}")))?;
            desc = inner
                .select(platform)
                .map_err(|e| ArchiveError::Bad(e.to_string()))?
                .clone();
        }
        let mb = verified_blob(dir, &desc.digest)?;
        let manifest: Manifest =
            serde_json::from_slice(&mb).map_err(|e| ArchiveError::Bad(format!("manifest: {e}")))?;
        let cb = verified_blob(dir, &manifest.config.digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&cb).map_err(|e| ArchiveError::Bad(format!("config: {e}")))?;
        let files: Vec<(PathBuf, Option<Descriptor>)> = manifest
            .layers
            .iter()
            .map(|l| (blob_file(dir, &l.digest), Some(l.clone())))
            .collect();
        let (_, size) = store_layers(store, &files, &config)?;
        store.write_blob(&cb)?;
        let md = store.write_blob(&mb)?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| desc.media_type.clone());
        let d = Descriptor::new(&media_type, md, mb.len() as u64);
        store.add_image(&d, name.as_ref(), None, size)?;
        loaded.push(
            name.map(|n| n.to_string())
                .unwrap_or_else(|| manifest.config.digest.to_string()),
        );
    }
    Ok(loaded)
}

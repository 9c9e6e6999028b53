//! The local image store: an OCI image layout (so skopeo and umoci can read
//! it) plus one unpacked directory per layer, keyed by chain id and shared by
//! every image and container that uses it.
//!
//! ```text
//! ROOT/oci/{oci-layout,index.json,blobs/sha256/HEX}
//! ROOT/layers/CHAINHEX/{diff/,layer.json}
//! ROOT/tmp/PID-...          in-progress downloads and unpacks
//! ROOT/store.lock           short metadata edits (index.json)
//! ROOT/gc.lock              shared by writers, exclusive for garbage collection
//! ```

use super::manifest::{chain_ids, media, Descriptor, ImageConfig, Index, Manifest};
use super::reference::{Parsed, Reference, LOCALHOST};
use crate::util::digest::Digest;
use crate::util::fsutil::{self, atomic_write, remove_any, unique_name};
use crate::util::lock::FileLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Annotation holding an image's name in index.json (OCI layout convention).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation holding the digest the registry served (for RepoDigests).
pub const REPO_DIGEST: &str = "io.berth.repo-digest";
/// Annotation holding the unpacked size, so `images` reads no layer dirs.
pub const SIZE: &str = "io.berth.size";
/// Annotation holding when the image entered the store (RFC 3339).
pub const ADDED: &str = "io.berth.added";
/// Annotation holding the image id (its config digest), so a lookup by
/// name or id reads index.json alone, not every image's manifest.
pub const IMAGE_ID: &str = "io.berth.image-id";

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}: image not known")]
    NotKnown(String),
    #[error("{0} matches more than one image: {1}; use a longer id or the full name")]
    Ambiguous(String, String),
    #[error("store is damaged: {0}; run `berth system check` for details")]
    Corrupt(String),
    #[error(transparent)]
    Reference(#[from] super::reference::ReferenceError),
    #[error("no space left on device while writing {0}: free some space (e.g. `berth rmi` unused images) and retry")]
    NoSpace(String),
}

/// Wraps an io error with what berth was doing, turning ENOSPC into its own message.
pub fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    move |source| {
        let context = context.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            StoreError::NoSpace(context)
        } else {
            StoreError::Io { context, source }
        }
    }
}

/// Bookkeeping stored beside an unpacked layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub size: u64,
}

/// An image as the store knows it: manifest, config and names.
#[derive(Clone, Debug)]
pub struct ImageRecord {
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: Manifest,
    /// The image id, as podman and docker define it.
    pub id: Digest,
    pub config: ImageConfig,
    /// Names (`registry/repo:tag`), empty for a dangling image.
    pub names: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    pub added: Option<String>,
}

impl ImageRecord {
    /// Chain ids of this image's layers, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.config.rootfs.diff_ids)
    }
}

/// A temp file or dir under the store's tmp/ that is removed unless kept.
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the guard from removing the path (it has been renamed away).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_any(&self.path);
        }
    }
}

/// Handle on a store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// Rootless stores mark opaque dirs with `user.overlay.*` xattrs.
    pub rootless: bool,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path, rootless: bool) -> Result<Store, StoreError> {
        let s = Store {
            root: root.to_path_buf(),
            rootless,
        };
        for d in [s.blobs_dir(), s.layers_dir(), s.tmp_dir()] {
            fsutil::create_dir_all_mode(&d, 0o700)
                .map_err(io_err(format!("creating {}", d.display())))?;
        }
        let layout = s.oci_dir().join("oci-layout");
        if !layout.exists() {
            atomic_write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644)
                .map_err(io_err("writing oci-layout"))?;
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI image layout directory (readable by skopeo as `oci:DIR`).
    pub fn oci_dir(&self) -> PathBuf {
        self.root.join("oci")
    }

    fn blobs_dir(&self) -> PathBuf {
        self.oci_dir().join("blobs/sha256")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the metadata lock; hold it only for short index edits.
    pub fn lock(&self) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.root.join("store.lock")).map_err(io_err("locking the store"))
    }

    /// Taken shared by every operation that writes blobs or layers before it
    /// records them in index.json, so garbage collection cannot race it.
    pub fn writer_guard(&self) -> Result<FileLock, StoreError> {
        FileLock::shared(&self.root.join("gc.lock")).map_err(io_err("locking the store"))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Reads a small blob (manifest, config) and checks its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let data = fs::read(self.blob_path(d)).map_err(io_err(format!("reading blob {d}")))?;
        if Digest::of(&data) != *d {
            return Err(StoreError::Corrupt(format!(
                "blob {d} does not match its digest"
            )));
        }
        Ok(data)
    }

    /// Stores a small in-memory blob under its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(data);
        if !self.has_blob(&d) {
            let tmp = self.temp_path("blob")?;
            fs::write(tmp.path(), data).map_err(io_err(format!("writing blob {d}")))?;
            self.commit_blob(tmp, &d)?;
        }
        Ok(d)
    }

    /// Moves a verified temp file into the blob directory.
    pub fn commit_blob(&self, tmp: TempPath, d: &Digest) -> Result<(), StoreError> {
        let f = fs::File::open(tmp.path()).map_err(io_err(format!("syncing blob {d}")))?;
        f.sync_all().map_err(io_err(format!("syncing blob {d}")))?;
        fs::rename(tmp.path(), self.blob_path(d)).map_err(io_err(format!("storing blob {d}")))?;
        tmp.keep();
        Ok(())
    }

    /// A fresh path under tmp/, named after this process so a later run can
    /// tell leftovers of a killed process from work in progress.
    pub fn temp_path(&self, what: &str) -> Result<TempPath, StoreError> {
        Ok(TempPath {
            path: self.tmp_dir().join(unique_name(&format!("{what}-"))),
            keep: false,
        })
    }

    /// Removes tmp/ entries whose process is gone (killed mid-pull).
    pub fn clean_stale_temp(&self) {
        for (path, _) in self.stale_temp() {
            let _ = remove_any(&path);
        }
    }

    fn stale_temp(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.tmp_dir()) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                out.push((e.path(), name));
            }
        }
        out
    }

    /// The unpacked root of a layer (an overlay lower dir).
    pub fn layer_diff(&self, chain: &Digest) -> PathBuf {
        self.layers_dir().join(chain.hex()).join("diff")
    }

    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.layers_dir()
            .join(chain.hex())
            .join("layer.json")
            .exists()
    }

    /// Bookkeeping of an unpacked layer.
    pub fn layer_info(&self, chain: &Digest) -> Result<LayerInfo, StoreError> {
        let p = self.layers_dir().join(chain.hex()).join("layer.json");
        let data = fs::read(&p).map_err(io_err(format!("reading {}", p.display())))?;
        serde_json::from_slice(&data)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display())))
    }

    /// Publishes an unpacked layer: `tmp` holds `diff/`; layer.json is written
    /// last, then the whole dir is renamed into place. If another process
    /// published the same layer first, ours is discarded.
    pub fn commit_layer(
        &self,
        tmp: TempPath,
        chain: &Digest,
        info: &LayerInfo,
    ) -> Result<(), StoreError> {
        let meta = serde_json::to_vec(info).expect("layer info serialises");
        atomic_write(&tmp.path().join("layer.json"), &meta, 0o644)
            .map_err(io_err("writing layer.json"))?;
        let dest = self.layers_dir().join(chain.hex());
        match fs::rename(tmp.path(), &dest) {
            Ok(()) => {
                tmp.keep();
                Ok(())
            }
            Err(_) if self.has_layer(chain) => Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::ENOTEMPTY)
                    || e.raw_os_error() == Some(libc::EEXIST) =>
            {
                // A half-published dir from a killed process: replace it.
                remove_any(&dest).map_err(io_err("replacing a stale layer dir"))?;
                fs::rename(tmp.path(), &dest).map_err(io_err("publishing layer"))?;
                tmp.keep();
                Ok(())
            }
            Err(e) => Err(io_err("publishing layer")(e)),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.oci_dir().join("index.json")
    }

    /// Reads index.json (empty when no image was ever stored).
    pub fn load_index(&self) -> Result<Index, StoreError> {
        match fs::read(self.index_path()) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| StoreError::Corrupt(format!("index.json cannot be parsed: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
                schema_version: 2,
                media_type: Some(media::OCI_INDEX.into()),
                ..Default::default()
            }),
            Err(e) => Err(io_err("reading index.json")(e)),
        }
    }

    fn save_index(&self, idx: &Index) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(idx).expect("index serialises");
        atomic_write(&self.index_path(), &data, 0o644).map_err(io_err("writing index.json"))
    }

    /// Reads and edits index.json under the metadata lock.
    pub fn edit_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> Result<T, StoreError> {
        let _l = self.lock()?;
        let mut idx = self.load_index()?;
        let out = f(&mut idx);
        self.save_index(&idx)?;
        Ok(out)
    }

    /// Records an image whose blobs and layers are all in place, under
    /// `name` (taken away from any image that had it), or dangling.
    pub fn add_image(
        &self,
        manifest: &Descriptor,
        name: Option<&Reference>,
        repo_digest: Option<&Digest>,
        size: u64,
    ) -> Result<(), StoreError> {
        let name = name.map(|n| n.to_string());
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let id = self
            .read_blob(&manifest.digest)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .map(|m| m.config.digest.to_string());
        self.edit_index(|idx| {
            if let Some(n) = &name {
                untag_in(idx, n);
            }
            let mine = |d: &Descriptor| d.digest == manifest.digest;
            let existing_added = idx
                .manifests
                .iter()
                .find(|d| mine(d))
                .and_then(|d| d.annotation(ADDED).map(String::from));
            let already = idx
                .manifests
                .iter()
                .any(|d| mine(d) && d.annotation(REF_NAME) == name.as_deref());
            if already {
                return;
            }
            let dangling = idx
                .manifests
                .iter()
                .position(|d| mine(d) && d.annotation(REF_NAME).is_none());
            let mut entry =
                Descriptor::new(&manifest.media_type, manifest.digest.clone(), manifest.size);
            let mut ann = BTreeMap::new();
            if let Some(n) = &name {
                ann.insert(REF_NAME.to_string(), n.clone());
            }
            if let Some(r) = repo_digest {
                ann.insert(REPO_DIGEST.to_string(), r.to_string());
            }
            ann.insert(SIZE.to_string(), size.to_string());
            ann.insert(ADDED.to_string(), existing_added.unwrap_or(now));
            if let Some(id) = &id {
                ann.insert(IMAGE_ID.to_string(), id.clone());
            }
            entry.annotations = Some(ann);
            match (dangling, &name) {
                (Some(i), _) => idx.manifests[i] = entry,
                (None, None) if idx.manifests.iter().any(mine) => {}
                _ => idx.manifests.push(entry),
            }
        })
    }

    /// Adds another name to an image.
    pub fn tag(&self, image: &ImageRecord, name: &Reference) -> Result<(), StoreError> {
        let desc = Descriptor::new(&image.manifest_media_type, image.manifest_digest.clone(), 0);
        let size = image.size;
        let repo_digest = image
            .repo_digests
            .first()
            .and_then(|r| r.split_once('@'))
            .and_then(|(_, d)| d.parse::<Digest>().ok());
        let manifest_size = fs::metadata(self.blob_path(&image.manifest_digest))
            .map(|m| m.len())
            .unwrap_or(0);
        let desc = Descriptor {
            size: manifest_size,
            ..desc
        };
        self.add_image(&desc, Some(name), repo_digest.as_ref(), size)
    }

    /// Removes one name; the image stays (dangling if it was its last name).
    pub fn untag(&self, name: &str) -> Result<bool, StoreError> {
        self.edit_index(|idx| untag_in(idx, name))
    }

    /// Removes every index entry of an image (its blobs go at the next gc).
    pub fn remove_image(&self, manifest_digest: &Digest) -> Result<(), StoreError> {
        self.edit_index(|idx| idx.manifests.retain(|d| &d.digest != manifest_digest))
    }

    /// Every image in the store, one record per manifest.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let idx = self.load_index()?;
        grouped(&idx).iter().map(|g| self.record(g)).collect()
    }

    fn record(&self, entries: &[&Descriptor]) -> Result<ImageRecord, StoreError> {
        let first = entries[0];
        let manifest: Manifest = serde_json::from_slice(&self.read_blob(&first.digest)?)
            .map_err(|e| StoreError::Corrupt(format!("manifest {}: {e}", first.digest)))?;
        let config: ImageConfig = serde_json::from_slice(&self.read_blob(&manifest.config.digest)?)
            .map_err(|e| StoreError::Corrupt(format!("config {}: {e}", manifest.config.digest)))?;
        let (names, repo_digests) = names_and_repo_digests(entries);
        Ok(ImageRecord {
            manifest_digest: first.digest.clone(),
            manifest_media_type: first.media_type.clone(),
            id: manifest.config.digest.clone(),
            manifest,
            config,
            names,
            repo_digests,
            size: first
                .annotation(SIZE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            added: first.annotation(ADDED).map(String::from),
        })
    }

    /// Finds the image a user means: a (unique prefix of an) image id, a
    /// full name, or a short name matched against stored names the way
    /// podman does (`busybox` finds `docker.io/library/busybox:latest`).
    /// Reads index.json and the found image's manifest and config only,
    /// so a start does not slow down as the store grows (images stored
    /// before the id annotation existed are read the long way).
    pub fn find(&self, query: &str) -> Result<ImageRecord, StoreError> {
        let idx = self.load_index()?;
        let groups = grouped(&idx);
        let keys: Option<Vec<ImageKeys>> =
            groups.iter().map(|g| ImageKeys::from_index(g)).collect();
        match keys {
            Some(keys) => self.record(&groups[match_image(&keys, query)?]),
            None => find_in(self.images()?, query),
        }
    }

    /// Deletes blobs and layer dirs that no image references any more, and
    /// leftovers of killed processes. `in_use` are chain ids containers still
    /// need. Waits for in-flight pulls to record their images first.
    pub fn gc(&self, in_use: &BTreeSet<Digest>) -> Result<GcReport, StoreError> {
        let _gc =
            FileLock::exclusive(&self.root.join("gc.lock")).map_err(io_err("locking the store"))?;
        let _l = self.lock()?;
        self.clean_stale_temp();
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers: BTreeSet<Digest> = in_use.clone();
        for img in self.images()? {
            keep_blobs.insert(img.manifest_digest.clone());
            keep_blobs.insert(img.id.clone());
            keep_blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
            keep_layers.extend(img.chain_ids());
        }
        let mut report = GcReport::default();
        if let Ok(rd) = fs::read_dir(self.blobs_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let keep = format!("sha256:{name}")
                    .parse::<Digest>()
                    .is_ok_and(|d| keep_blobs.contains(&d));
                if !keep {
                    remove_any(&e.path()).map_err(io_err(format!("removing blob {name}")))?;
                    report.blobs += 1;
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.layers_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let keep = format!("sha256:{name}")
                    .parse::<Digest>()
                    .is_ok_and(|d| keep_layers.contains(&d));
                if !keep {
                    remove_any(&e.path()).map_err(io_err(format!("removing layer {name}")))?;
                    report.layers += 1;
                }
            }
        }
        Ok(report)
    }

    /// Verifies the whole store: every blob matches its digest, every image
    /// has its manifest, config, layer blobs and unpacked layers, and no
    /// leftovers of interrupted work remain. Returns the problems found.
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        for (_, name) in self.stale_temp() {
            problems.push(format!(
                "leftover temporary file tmp/{name} from an interrupted operation"
            ));
        }
        if let Ok(rd) = fs::read_dir(self.blobs_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                match format!("sha256:{name}").parse::<Digest>() {
                    Err(_) => problems.push(format!("stray file in blobs: {name}")),
                    Ok(d) => match hash_file(&e.path()) {
                        Ok(actual) if actual == d => {}
                        Ok(_) => problems.push(format!("blob {d} does not match its digest")),
                        Err(err) => problems.push(format!("blob {d} cannot be read: {err}")),
                    },
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.layers_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if !e.path().join("layer.json").exists() || !e.path().join("diff").is_dir() {
                    problems.push(format!("layer {name} is incomplete"));
                }
            }
        }
        let idx = match self.load_index() {
            Ok(i) => i,
            Err(e) => {
                problems.push(e.to_string());
                return Ok(problems);
            }
        };
        for entry in &idx.manifests {
            let label = entry.annotation(REF_NAME).unwrap_or("<none>").to_string();
            let Ok(img) = self.record(&[entry]) else {
                problems.push(format!(
                    "image {label}: manifest or config {} missing or corrupt",
                    entry.digest
                ));
                continue;
            };
            for l in &img.manifest.layers {
                if !self.has_blob(&l.digest) {
                    problems.push(format!("image {label}: layer blob {} missing", l.digest));
                }
            }
            if img.manifest.layers.len() != img.config.rootfs.diff_ids.len() {
                problems.push(format!(
                    "image {label}: manifest and config disagree on the number of layers"
                ));
            }
            for c in img.chain_ids() {
                if !self.has_layer(&c) {
                    problems.push(format!(
                        "image {label}: unpacked layer {} missing",
                        c.short()
                    ));
                }
            }
        }
        Ok(problems)
    }
}

/// What garbage collection removed.
#[derive(Debug, Default)]
pub struct GcReport {
    pub blobs: usize,
    pub layers: usize,
}

fn untag_in(idx: &mut Index, name: &str) -> bool {
    let Some(pos) = idx
        .manifests
        .iter()
        .position(|d| d.annotation(REF_NAME) == Some(name))
    else {
        return false;
    };
    let digest = idx.manifests[pos].digest.clone();
    let others = idx.manifests.iter().filter(|d| d.digest == digest).count();
    if others > 1 {
        idx.manifests.remove(pos);
    } else if let Some(a) = idx.manifests[pos].annotations.as_mut() {
        a.remove(REF_NAME);
        a.remove(REPO_DIGEST);
    }
    true
}

fn hash_file(p: &Path) -> io::Result<Digest> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_hasher(h))
}

fn is_id_prefix(q: &str) -> bool {
    let hex = q.strip_prefix("sha256:").unwrap_or(q);
    hex.len() >= 3
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Resolves a user's image query against a list of images (see `Store::find`).
pub fn find_in(images: Vec<ImageRecord>, query: &str) -> Result<ImageRecord, StoreError> {
    let keys: Vec<ImageKeys> = images.iter().map(ImageKeys::from_record).collect();
    let i = match_image(&keys, query)?;
    Ok(images.into_iter().nth(i).expect("an index into images"))
}

/// What a lookup needs of an image: its id, manifest digest and names.
pub struct ImageKeys {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub names: Vec<String>,
    pub repo_digests: Vec<String>,
}

impl ImageKeys {
    fn from_record(r: &ImageRecord) -> ImageKeys {
        ImageKeys {
            id: r.id.clone(),
            manifest_digest: r.manifest_digest.clone(),
            names: r.names.clone(),
            repo_digests: r.repo_digests.clone(),
        }
    }

    /// From index.json's entries of one manifest; None when they lack the
    /// image id (stored before it was recorded there).
    fn from_index(entries: &[&Descriptor]) -> Option<ImageKeys> {
        let id = entries
            .iter()
            .find_map(|d| d.annotation(IMAGE_ID))?
            .parse()
            .ok()?;
        let (names, repo_digests) = names_and_repo_digests(entries);
        Some(ImageKeys {
            id,
            manifest_digest: entries[0].digest.clone(),
            names,
            repo_digests,
        })
    }
}

/// index.json's entries grouped by manifest, in the order first seen.
fn grouped(idx: &Index) -> Vec<Vec<&Descriptor>> {
    let mut order: Vec<&Digest> = Vec::new();
    let mut by_manifest: BTreeMap<&Digest, Vec<&Descriptor>> = BTreeMap::new();
    for d in &idx.manifests {
        if !by_manifest.contains_key(&d.digest) {
            order.push(&d.digest);
        }
        by_manifest.entry(&d.digest).or_default().push(d);
    }
    order
        .into_iter()
        .map(|m| by_manifest.remove(m).unwrap_or_default())
        .collect()
}

/// The names of one manifest's entries, and `name@digest` for those the
/// registry served under a digest.
fn names_and_repo_digests(entries: &[&Descriptor]) -> (Vec<String>, Vec<String>) {
    let names = entries
        .iter()
        .filter_map(|d| d.annotation(REF_NAME).map(String::from))
        .collect();
    let mut repo_digests = BTreeSet::new();
    for d in entries {
        if let (Some(n), Some(rd)) = (d.annotation(REF_NAME), d.annotation(REPO_DIGEST)) {
            if let Ok(r) = Reference::parse(n) {
                repo_digests.insert(format!("{}@{rd}", r.name()));
            }
        }
    }
    (names, repo_digests.into_iter().collect())
}

/// The image a user means among `images`, as its index: a (unique prefix
/// of an) id, `name@digest`, or a name ranked by [`name_rank`].
pub fn match_image(images: &[ImageKeys], query: &str) -> Result<usize, StoreError> {
    if is_id_prefix(query) {
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        let hits: Vec<usize> = (0..images.len())
            .filter(|&i| images[i].id.hex().starts_with(hex))
            .collect();
        match hits.len() {
            1 => return Ok(hits[0]),
            0 => {}
            _ => {
                let ids: BTreeSet<&str> = hits.iter().map(|&i| images[i].id.short()).collect();
                if ids.len() > 1 {
                    return Err(StoreError::Ambiguous(
                        query.into(),
                        ids.into_iter().collect::<Vec<_>>().join(", "),
                    ));
                }
                return Ok(hits[0]);
            }
        }
    }
    let parsed = Parsed::parse(query)?;
    if let Some(d) = &parsed.digest {
        // name@digest: the manifest digest or the digest the registry served.
        let wanted = format!("@{d}");
        return images
            .iter()
            .position(|i| {
                &i.manifest_digest == d || i.repo_digests.iter().any(|r| r.ends_with(&wanted))
            })
            .ok_or_else(|| StoreError::NotKnown(query.into()));
    }
    let mut hits: Vec<(u8, usize)> = images
        .iter()
        .enumerate()
        .filter_map(|(i, img)| {
            img.names
                .iter()
                .filter_map(|n| name_rank(n, &parsed))
                .min()
                .map(|r| (r, i))
        })
        .collect();
    hits.sort_by_key(|h| h.0);
    hits.first()
        .map(|h| h.1)
        .ok_or_else(|| StoreError::NotKnown(query.into()))
}

/// The stored name of `img` that `query` refers to (the name podman shows
/// as a container's ImageName): `x` is `localhost/x:latest` when that is
/// what matched. An id (or an unparsable query) gives the image's first name.
pub fn matched_name(img: &ImageRecord, query: &str) -> Option<String> {
    let best = Parsed::parse(query).ok().and_then(|q| {
        img.names
            .iter()
            .filter_map(|n| name_rank(n, &q).map(|r| (r, n)))
            .min_by_key(|h| h.0)
            .map(|h| h.1.clone())
    });
    best.or_else(|| img.names.first().cloned())
}

/// Whether a stored name answers to what the user typed, and how well
/// (lower is better): a qualified name must match exactly; a short name
/// matches any repository ending in it, preferring localhost, then docker.io.
pub fn name_rank(name: &str, query: &Parsed) -> Option<u8> {
    let r = Reference::parse(name).ok()?;
    let tag = query.tag.clone().unwrap_or_else(|| "latest".into());
    if r.tag.as_deref() != Some(tag.as_str()) {
        return None;
    }
    if !query.is_short_name() {
        return (query.qualify_default().name() == r.name()).then_some(0);
    }
    let repo_match = r.repository == query.path
        || r.repository == format!("library/{}", query.path)
        || r.repository.ends_with(&format!("/{}", query.path));
    if !repo_match {
        return None;
    }
    Some(if r.registry == LOCALHOST {
        0
    } else if r.registry == super::reference::DOCKER_HUB {
        1
    } else {
        2
    })
}

/// True when the stored `name` is what `query` refers to.
pub fn find_in_names(name: &str, query: &str) -> bool {
    Parsed::parse(query)
        .ok()
        .and_then(|p| name_rank(name, &p))
        .is_some()
}

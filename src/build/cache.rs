//! The layer cache: a step's key (its parent's key, the instruction and
//! everything it depends on) -> what the step made. One file per key under
//! `ROOT/build-cache/`, so a lookup is one read: the image store is never
//! scanned, and nothing is copied to decide a hit.

use crate::image::layer_stack::LayerRef;
use crate::util::digest::Digest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a step made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Its layer, if it made one (RUN, COPY, ADD).
    pub layer: Option<LayerRef>,
    /// When it was first made: its history entry's time, so a rebuild
    /// with every step cached gives the same image.
    pub created: String,
}

/// The cache of one store.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache under the store `root`.
    pub fn new(root: &Path) -> Cache {
        Cache {
            dir: root.join("build-cache"),
        }
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// What the step with `key` made, if it ran before.
    pub fn get(&self, key: &Digest) -> Option<Entry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Remembers what a step made (a failure to write only costs a hit).
    pub fn put(&self, key: &Digest, entry: &Entry) {
        let _ = std::fs::create_dir_all(&self.dir);
        if let Ok(b) = serde_json::to_vec(entry) {
            if let Err(e) = crate::util::fsutil::atomic_write(&self.path(key), &b, 0o600) {
                tracing::debug!("cannot write the build cache: {e}");
            }
        }
    }

    /// Where content digests of context files are remembered.
    pub fn stat_cache_path(&self) -> PathBuf {
        self.dir.join("stat-cache.json")
    }
}

//! How long-running image work reports progress, without knowing whether a
//! terminal, plain lines or nothing at all is on the other side (the CLI
//! decides).

use crate::util::digest::Digest;
use std::sync::Arc;

/// Progress of one blob transfer.
pub trait BlobProgress: Send + Sync {
    /// Bytes transferred so far.
    fn update(&self, bytes: u64);
    /// The blob is stored (or was already there, when `skipped`).
    fn done(&self, skipped: bool);
}

/// Receives progress of a pull, import or load.
pub trait Progress: Send + Sync {
    /// A status line, e.g. "Trying to pull docker.io/library/busybox:latest...".
    fn message(&self, line: &str);
    /// A blob transfer begins; `kind` is "blob" or "config".
    fn blob(&self, kind: &str, digest: &Digest, size: Option<u64>) -> Arc<dyn BlobProgress>;
}

/// Reports nothing (`--quiet`, and library callers that do not care).
pub struct Silent;

struct SilentBlob;

impl BlobProgress for SilentBlob {
    fn update(&self, _: u64) {}
    fn done(&self, _: bool) {}
}

impl Progress for Silent {
    fn message(&self, _: &str) {}
    fn blob(&self, _: &str, _: &Digest, _: Option<u64>) -> Arc<dyn BlobProgress> {
        Arc::new(SilentBlob)
    }
}

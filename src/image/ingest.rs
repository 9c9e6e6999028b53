//! One streaming pass per layer: the bytes are hashed and written to the
//! blob file, decompressed, hashed again (the diff id) and untarred into a
//! fresh layer dir. No second read of the data; nothing enters the store
//! until both digests check out.

use super::manifest::{chain_ids, Compression};
use super::store::{io_err, LayerInfo, Store, StoreError};
use super::unpack::{unpack, UnpackError, UnpackOptions, UnpackStats};
use crate::util::digest::{Digest, TeeHasher};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

/// Why a layer could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("blob {expected} does not match its digest (got {actual}, {size} bytes): the download was corrupted or the registry content was tampered with; nothing was stored")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("layer {blob}: its uncompressed content {actual} does not match the image config's diff_id {expected}; nothing was stored")]
    DiffMismatch {
        blob: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {0}: expected {1} bytes, got {2}; nothing was stored")]
    SizeMismatch(Digest, u64, u64),
    #[error("layer {blob}: {source}")]
    Unpack {
        blob: String,
        #[source]
        source: UnpackError,
    },
    #[error("layer {blob}: reading the stream failed: {msg}")]
    Read { blob: String, msg: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the caller knows about the layer before it arrives.
pub struct LayerExpectation<'a> {
    /// Digest and size the manifest promised, if any (import has none).
    pub blob: Option<(&'a Digest, Option<u64>)>,
    /// diff_id the config promised, if any.
    pub diff_id: Option<&'a Digest>,
    /// Chain id of the layers below this one (None for the bottom layer).
    pub parent_chain: Option<&'a Digest>,
}

/// What was stored.
#[derive(Debug, Clone)]
pub struct IngestedLayer {
    pub blob: Digest,
    pub blob_size: u64,
    pub diff_id: Digest,
    pub diff_size: u64,
    pub chain: Digest,
    pub compression: Compression,
    pub stats: UnpackStats,
}

fn chain_of(parent: Option<&Digest>, diff: &Digest) -> Digest {
    match parent {
        None => diff.clone(),
        Some(p) => chain_ids(&[p.clone(), diff.clone()])[1].clone(),
    }
}

/// Streams `input` into the store: the blob (unless `store_blob` is false)
/// and the unpacked layer (unless it is already there).
pub fn ingest_layer(
    store: &Store,
    input: impl Read,
    expect: &LayerExpectation<'_>,
    store_blob: bool,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
) -> Result<IngestedLayer, IngestError> {
    let label = expect
        .blob
        .map(|(d, _)| d.short().to_string())
        .unwrap_or_else(|| "input".into());
    let known_chain = expect.diff_id.map(|d| chain_of(expect.parent_chain, d));
    let need_unpack = known_chain.as_ref().is_none_or(|c| !store.has_layer(c));

    let blob_tmp = store.temp_path("blob")?;
    let sink: Box<dyn Write> = if store_blob {
        let f = File::create(blob_tmp.path()).map_err(io_err("creating a temp blob"))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    } else {
        Box::new(io::sink())
    };
    let mut tee = TeeHasher::new(input, sink);
    if let Some(p) = progress {
        tee = tee.on_progress(p);
    }
    let layer_tmp = store.temp_path("layer")?;
    let mut complete = true;
    let mut outcome: Result<(Digest, u64, Compression, UnpackStats), IngestError> = Ok((
        Digest::of(b""),
        0,
        Compression::None,
        UnpackStats::default(),
    ));
    {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut tee);
        let read_err = |e: io::Error| IngestError::Read {
            blob: label.clone(),
            msg: e.to_string(),
        };
        let compression = match buffered.fill_buf() {
            Ok(head) => Compression::sniff(head),
            Err(e) => {
                outcome = Err(read_err(e));
                Compression::None
            }
        };
        if outcome.is_ok() && need_unpack {
            outcome = (|| {
                let decoder: Box<dyn Read + '_> = match compression {
                    Compression::None => Box::new(&mut buffered),
                    Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut buffered)),
                    Compression::Zstd => {
                        Box::new(zstd::Decoder::with_buffer(&mut buffered).map_err(read_err)?)
                    }
                };
                let bound = expansion_bound(layer_tmp.path());
                let mut diff = TeeHasher::new(Bounded::new(decoder, bound), io::sink());
                let dest = layer_tmp.path().join("diff");
                crate::util::fsutil::create_dir_all_mode(&dest, 0o755)
                    .map_err(io_err("creating a layer dir"))?;
                let stats = unpack(
                    &mut diff,
                    &dest,
                    UnpackOptions {
                        rootless: store.rootless,
                        ..Default::default()
                    },
                )
                .map_err(|source| IngestError::Unpack {
                    blob: label.clone(),
                    source,
                })?;
                diff.drain().map_err(read_err)?;
                let (diff_id, diff_size, _) = diff.finish();
                Ok((diff_id, diff_size, compression, stats))
            })();
        }
        // Whatever happened, hash the rest of the raw stream: a digest
        // mismatch explains a broken gzip or tar better than the symptom.
        let drained = io::copy(&mut buffered, &mut io::sink());
        match (drained, &outcome) {
            (Err(e), Ok(_)) => outcome = Err(read_err(e)),
            (Err(_), Err(_)) => complete = false,
            _ => {}
        }
    }
    let outcome = outcome.map_err(|e| {
        if has_enospc(&e) {
            IngestError::Store(StoreError::NoSpace(format!("layer {label}")))
        } else {
            e
        }
    });
    if !complete {
        // The stream could not be read to its end: its digest says nothing.
        return Err(outcome.expect_err("incomplete only after an error"));
    }
    let (blob, blob_size, sink) = tee.finish();
    if let Some((expected, size)) = expect.blob {
        if &blob != expected {
            return Err(IngestError::DigestMismatch {
                expected: expected.clone(),
                actual: blob,
                size: blob_size,
            });
        }
        if let Some(s) = size {
            if s != blob_size {
                return Err(IngestError::SizeMismatch(blob, s, blob_size));
            }
        }
    }
    let (diff_id, diff_size, compression, stats) = outcome?;
    if stats.skipped_devices > 0 {
        tracing::warn!(
            "layer {label}: skipped {} device node(s): a rootless user cannot create them",
            stats.skipped_devices
        );
    }
    sink.into_inner_flush()?;

    let (diff_id, diff_size, chain) = if need_unpack {
        if let Some(exp) = expect.diff_id {
            if exp != &diff_id {
                return Err(IngestError::DiffMismatch {
                    blob,
                    expected: exp.clone(),
                    actual: diff_id,
                });
            }
        }
        let chain = chain_of(expect.parent_chain, &diff_id);
        store.commit_layer(
            layer_tmp,
            &chain,
            &LayerInfo {
                diff_id: diff_id.clone(),
                size: diff_size,
            },
        )?;
        (diff_id, diff_size, chain)
    } else {
        let chain = known_chain.expect("known when no unpack is needed");
        let info = store.layer_info(&chain)?;
        (info.diff_id, info.size, chain)
    };
    if store_blob {
        store.commit_blob(blob_tmp, &blob)?;
    }
    Ok(IngestedLayer {
        blob,
        blob_size,
        diff_id,
        diff_size,
        chain,
        compression,
        stats,
    })
}

trait FlushInto {
    fn into_inner_flush(self) -> Result<(), StoreError>;
}

impl FlushInto for Box<dyn Write> {
    fn into_inner_flush(mut self) -> Result<(), StoreError> {
        self.flush().map_err(io_err("writing a blob"))
    }
}

/// Room a layer may take once decompressed: the free space of the
/// store's file system, less a reserve, so that a compression bomb (a
/// few kilobytes of gzip that expand to terabytes) fails cleanly before
/// it fills the disk, and the layer's temp dir is removed with it.
fn expansion_bound(dir: &std::path::Path) -> u64 {
    let probe = dir.parent().unwrap_or(dir);
    match nix::sys::statvfs::statvfs(probe) {
        Ok(st) => {
            let unit = st.fragment_size();
            // Left free: 64 MiB, or a twentieth of a small file system.
            let reserve = (64u64 << 20).min(st.blocks().saturating_mul(unit) / 20);
            st.blocks_available()
                .saturating_mul(unit)
                .saturating_sub(reserve)
        }
        Err(_) => u64::MAX,
    }
}

/// A decompressed stream that fails once it has given more than its bound.
struct Bounded<R> {
    inner: R,
    left: u64,
    bound: u64,
}

impl<R: Read> Bounded<R> {
    fn new(inner: R, bound: u64) -> Self {
        Bounded {
            inner,
            left: bound,
            bound,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "the layer expands to more than {} bytes, the free space of the store: refused (a compression bomb, or free some space)",
                self.bound
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// True when a no-space error hides anywhere in the error chain.
pub fn has_enospc(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.raw_os_error() == Some(libc::ENOSPC) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if has_enospc(inner) {
                    return true;
                }
            }
        }
        if err.to_string().contains("No space left on device") {
            return true;
        }
        cur = err.source();
    }
    false
}

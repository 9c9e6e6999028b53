//! Content digests (`sha256:<hex>`), the one identity of every blob in the
//! store, and a reader that hashes what passes through it so downloads are
//! verified in the same pass that writes them.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// Why a string is not a digest berth can use.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 hex characters>")]
    Invalid(String),
    #[error("unsupported digest algorithm in {0:?}: only sha256 is supported")]
    Algorithm(String),
}

impl Digest {
    /// Digest of an in-memory byte string.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// Finishes a running hash into a digest.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex(&h.finalize()),
        }
    }

    /// The 64 hex characters without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as podman shows image ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Parses a bare 64-hex id (as users type image ids) or a full digest.
    pub fn parse_loose(s: &str) -> Result<Digest, DigestError> {
        if s.len() == 64 && !s.contains(':') {
            return format!("sha256:{s}").parse();
        }
        s.parse()
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Invalid(s.to_string()))?;
        if alg != "sha256" {
            return Err(DigestError::Algorithm(s.to_string()));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Invalid(s.to_string()));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// Reads from an inner reader while hashing every byte, counting them and
/// (optionally) copying them to a sink, so one pass downloads, stores and
/// verifies a blob.
pub struct TeeHasher<R, W> {
    inner: R,
    sink: W,
    hasher: Sha256,
    count: u64,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
}

impl<R: Read, W: Write> TeeHasher<R, W> {
    pub fn new(inner: R, sink: W) -> Self {
        TeeHasher {
            inner,
            sink,
            hasher: Sha256::new(),
            count: 0,
            progress: None,
        }
    }

    /// Calls `f` with the number of bytes read so far after every read.
    pub fn on_progress(mut self, f: Box<dyn FnMut(u64) + Send>) -> Self {
        self.progress = Some(f);
        self
    }

    /// Reads what is left (padding after a tar end marker, a gzip trailer)
    /// so the digest covers the whole stream.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// The digest and length of everything read, and the sink.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.count, self.sink)
    }
}

impl<R: Read, W: Write> Read for TeeHasher<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.sink.write_all(&buf[..n])?;
            self.hasher.update(&buf[..n]);
            self.count += n as u64;
            if let Some(p) = self.progress.as_mut() {
                p(self.count);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:e3b0c44298fc1c149afbf4c8996fb924"
            .parse::<Digest>()
            .is_err());
        assert!(Digest::parse_loose(d.hex()).is_ok());
        let upper = format!("sha256:{}", d.hex().to_uppercase());
        assert!(upper.parse::<Digest>().is_err());
    }

    #[test]
    fn tee_hashes_and_copies() {
        let mut out = Vec::new();
        let mut t = TeeHasher::new(&b"hello"[..], &mut out);
        let mut s = String::new();
        t.read_to_string(&mut s).unwrap();
        let (d, n, _) = t.finish();
        assert_eq!(n, 5);
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(out, b"hello");
    }
}

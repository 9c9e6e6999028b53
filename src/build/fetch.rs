//! `ADD URL`: downloads a source into the store's tmp, hashing it on the
//! way, so the step's cache key is the content (an unchanged file at the
//! URL is a cache hit, a changed one a miss), as docker and buildah key it.

use crate::util::digest::Digest;
use sha2::Digest as _;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// A downloaded source.
pub struct Fetched {
    /// The name the file gets when the destination is a directory: the
    /// URL path's last segment.
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    /// From Last-Modified, when the server sent it.
    pub mtime: Option<i64>,
}

/// Whether an ADD source is a URL rather than a context path.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The last path segment of a URL (no query or fragment).
pub fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let (_, path) = path.split_once('/')?;
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(String::from)
}

/// Downloads `url` into `out`. The error is one line saying what failed.
pub fn fetch(url: &str, out: &Path) -> Result<Fetched, String> {
    let name = url_file_name(url).unwrap_or_default();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .redirects(5)
        .build();
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => format!("the server answered {code} {}", r.status_text()),
        ureq::Error::Transport(t) => format!(
            "{}{}: is the network reachable from here? Otherwise fetch the file into the context and COPY it",
            t.kind(),
            t.message().map(|m| format!(" ({m})")).unwrap_or_default()
        ),
    })?;
    let mtime = resp
        .header("Last-Modified")
        .and_then(|h| chrono::DateTime::parse_from_rfc2822(h).ok())
        .map(|t| t.timestamp());
    let mut body = resp.into_reader();
    let mut file = std::fs::File::create(out).map_err(|e| format!("writing the download: {e}"))?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| format!("reading the download: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("writing the download: {e}"))?;
        size += n as u64;
    }
    Ok(Fetched {
        name,
        digest: Digest::from_hasher(hasher),
        size,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_url_path() {
        assert_eq!(
            url_file_name("http://h:80/a/b/file.tar.gz?x=1#y").as_deref(),
            Some("file.tar.gz")
        );
        assert_eq!(url_file_name("https://h/").as_deref(), None);
        assert_eq!(url_file_name("https://h").as_deref(), None);
        assert_eq!(url_file_name("https://h/a/..").as_deref(), None);
        assert!(is_url("https://h/x") && !is_url("./http"));
    }
}

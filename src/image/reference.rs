//! Image references as docker and podman read them: `busybox` is
//! `docker.io/library/busybox:latest`, `host:port/repo:tag` names another
//! registry, and `@sha256:` pins a digest.

use crate::util::digest::Digest;
use std::fmt;

/// The registry docker's short names point at.
pub const DOCKER_HUB: &str = "docker.io";
/// The registry name podman gives to images made locally (import, load).
pub const LOCALHOST: &str = "localhost";

/// A fully qualified image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// What the user typed, before short names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The registry when the user named one (`quay.io/x`), else None.
    pub registry: Option<String>,
    /// Repository path as typed (no `library/` added yet).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format {0:?}: {1}")]
    Invalid(String, &'static str),
}

fn invalid(s: &str, why: &'static str) -> ReferenceError {
    ReferenceError::Invalid(s.to_string(), why)
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

impl Parsed {
    /// Parses what a user typed, checking the docker reference grammar.
    pub fn parse(s: &str) -> Result<Parsed, ReferenceError> {
        if s.is_empty() {
            return Err(invalid(s, "empty reference"));
        }
        if s.len() > 4096 {
            return Err(invalid(s, "reference too long"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(
                    d.parse::<Digest>()
                        .map_err(|_| invalid(s, "digest must be sha256:<64 hex characters>"))?,
                ),
            ),
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let t = &name_tag[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(invalid(
                        s,
                        "tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                    ));
                }
                (&name_tag[..last_slash + i], Some(t.to_string()))
            }
            None => (name_tag, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == LOCALHOST
                    || first.starts_with('[') =>
            {
                if !valid_domain(first) {
                    return Err(invalid(s, "registry host is not a valid host[:port]"));
                }
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        if path.is_empty() {
            return Err(invalid(s, "repository name is empty"));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(s, "repository name must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(
                s,
                "repository path components must be lowercase letters, digits and single separators (. _ __ -)",
            ));
        }
        let parsed = Parsed {
            registry,
            path: path.to_string(),
            tag,
            digest,
        };
        // Docker's limit is on the name as it qualifies it
        // (docker.io/library/NAME), so a name that parses always qualifies.
        let q = parsed.qualify_default();
        if q.registry.len() + 1 + q.repository.len() > 255 {
            return Err(invalid(s, "repository name longer than 255 characters"));
        }
        Ok(parsed)
    }

    /// True when no registry was given, so registries.conf decides where it lives.
    pub fn is_short_name(&self) -> bool {
        self.registry.is_none()
    }

    /// Qualifies the reference with `registry`, as docker does for docker.io.
    pub fn qualify(&self, registry: &str) -> Reference {
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        };
        let tag = match (&self.tag, &self.digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.clone(),
        };
        Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest: self.digest.clone(),
        }
    }

    /// The docker default: short names live on docker.io.
    pub fn qualify_default(&self) -> Reference {
        let reg = self
            .registry
            .clone()
            .unwrap_or_else(|| DOCKER_HUB.to_string());
        self.qualify(&reg)
    }
}

impl Reference {
    /// The name a locally made image gets: podman puts short names under
    /// localhost/ (`build -t app`, `tag`, `commit`).
    pub fn local(s: &str) -> Result<Reference, ReferenceError> {
        let p = Parsed::parse(s)?;
        Ok(if p.is_short_name() {
            p.qualify("localhost")
        } else {
            p.qualify_default()
        })
    }

    /// Parses and qualifies a reference the docker way (short names -> docker.io).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        Ok(Parsed::parse(s)?.qualify_default())
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest to ask the registry for.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same name with another digest and no tag (a RepoDigest).
    pub fn with_digest(&self, d: &Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(d.clone()),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        // Found by the fuzz target: 255 characters as typed, 273 qualified.
        let long = "a".repeat(255);
        assert!(Parsed::parse(&long).is_err());
        let fits = "a".repeat(255 - "docker.io/library/".len());
        assert!(Parsed::parse(&fits).is_ok());
        assert!(
            Reference::parse(&Parsed::parse(&fits).unwrap().qualify_default().to_string()).is_ok()
        );
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            n("index.docker.io/library/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(n("127.0.0.1:5000/x/y:v1"), "127.0.0.1:5000/x/y:v1");
        assert_eq!(n("localhost/img"), "localhost/img:latest");
        assert_eq!(n("quay.io/a/b/c"), "quay.io/a/b/c:latest");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            n(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            n(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
        assert_eq!(n("localhost:5000/a"), "localhost:5000/a:latest");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:123",
            "busybox@md5:abc",
            "-lead",
            "a b",
            "host:port/x",
            "bad..dots",
            ":tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn short_names_are_reported() {
        assert!(Parsed::parse("busybox").unwrap().is_short_name());
        assert!(Parsed::parse("library/busybox").unwrap().is_short_name());
        assert!(!Parsed::parse("docker.io/busybox").unwrap().is_short_name());
    }
}

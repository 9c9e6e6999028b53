//! A client for the registry v2 API: manifests and blobs for one
//! repository, with Bearer-token and Basic authentication, plain-http
//! fallback for insecure registries, and retries with backoff for transient
//! failures.

use super::auth::Credentials;
use super::manifest::media;
use super::registries_conf::Endpoint;
use crate::util::digest::Digest;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// How many times a transient failure is retried.
const RETRIES: u32 = 3;
/// Largest manifest berth accepts (registries cap them at 4 MiB).
const MAX_MANIFEST: u64 = 8 << 20;

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{what}: image not known (the registry answered 404 {code})")]
    NotFound { what: String, code: String },
    #[error("{host}: authentication required or credentials rejected ({detail}); log in with `berth login {host}`")]
    Unauthorized { host: String, detail: String },
    #[error("{host}: access denied to {what} ({detail})")]
    Denied {
        host: String,
        what: String,
        detail: String,
    },
    #[error("{host}: registry answered {status} for {what} after {tries} tries: {detail}")]
    Server {
        host: String,
        what: String,
        status: u16,
        tries: u32,
        detail: String,
    },
    #[error("cannot reach registry {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error("{host}: {detail}")]
    Protocol { host: String, detail: String },
}

#[derive(Default)]
struct AuthState {
    /// `Authorization` header to send, once a challenge told us which.
    header: Option<String>,
}

/// A client for one repository on one registry endpoint.
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    scheme: Mutex<Option<&'static str>>,
    /// Ask tokens for push too, and for pulling from these repositories
    /// (the sources of cross-repository mounts).
    push: bool,
    mount_sources: Vec<String>,
}

/// What a request sends.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset` (read again on each retry).
    File {
        path: &'a std::path::Path,
        offset: u64,
        len: u64,
    },
}

/// Blobs up to this size go in one PUT; larger ones in chunks of it.
const CHUNK: u64 = 32 << 20;

/// A fetched manifest or index, with its bytes and digest.
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .redirects(5)
        .build()
}

/// Whether a bearer challenge's `realm` may be sent the registry's Basic
/// credentials: the registry's own host (any port or scheme), or over
/// https a host of the same domain (registry-1.docker.io -> auth.docker.io).
/// A registry cannot send the user's password to a host of its choosing,
/// nor anywhere over plain http.
pub fn realm_may_get_credentials(registry_host: &str, realm: &str) -> bool {
    let Ok(url) = url_parts(realm) else {
        return false;
    };
    let (scheme, host_port) = url;
    let host_only = |h: &str| -> String {
        let h = h.trim_start_matches('[');
        match h.rsplit_once(']') {
            Some((ip6, _)) => ip6.to_string(),
            None => h.split(':').next().unwrap_or("").to_string(),
        }
        .to_ascii_lowercase()
    };
    let (a, b) = (host_only(registry_host), host_only(&host_port));
    if a == b {
        return true; // the same host, whatever its port
    }
    if scheme != "https" {
        return false;
    }
    let domain = |h: &str| -> Option<String> {
        if h.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let labels: Vec<&str> = h.split('.').collect();
        (labels.len() >= 2).then(|| labels[labels.len() - 2..].join("."))
    };
    matches!((domain(&a), domain(&b)), (Some(x), Some(y)) if x == y)
}

/// The scheme and host[:port] of an http(s) URL.
fn url_parts(u: &str) -> Result<(String, String), ()> {
    let (scheme, rest) = u.split_once("://").ok_or(())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // user:password@ in a realm is ignored for the comparison's sake.
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        return Err(());
    }
    Ok((scheme, host.to_string()))
}

/// Parses a `WWW-Authenticate` header into its scheme and parameters.
pub fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(end) => (&stripped[..end], &stripped[end + 1..]),
                None => (stripped, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.push((k, v.to_string()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_lowercase(), params)
}

fn error_detail(resp: ureq::Response) -> (String, String) {
    let mut body = String::new();
    let _ = resp.into_reader().take(4096).read_to_string(&mut body);
    // Registry errors: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
            let code = e
                .get("code")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_lowercase()
                .replace('_', " ");
            let msg = e
                .get("message")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string();
            return (code, msg);
        }
    }
    let line = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    (String::new(), line)
}

impl Client {
    /// A client for `endpoint`, authenticating with `creds` when asked.
    pub fn new(endpoint: Endpoint, creds: Option<Credentials>) -> Client {
        Client {
            agent: agent(),
            endpoint,
            creds,
            auth: Mutex::new(AuthState::default()),
            scheme: Mutex::new(None),
            push: false,
            mount_sources: Vec::new(),
        }
    }

    /// A client that may push, and mount blobs from `sources` on the same
    /// registry.
    pub fn for_push(
        endpoint: Endpoint,
        creds: Option<Credentials>,
        sources: Vec<String>,
    ) -> Client {
        Client {
            push: true,
            mount_sources: sources,
            ..Client::new(endpoint, creds)
        }
    }

    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    pub fn repository(&self) -> &str {
        &self.endpoint.repository
    }

    /// Chooses https, or (for insecure registries only) plain http when the
    /// https attempt fails at the transport level.
    fn scheme(&self) -> Result<&'static str, RegistryError> {
        if let Some(s) = *self.scheme.lock().unwrap() {
            return Ok(s);
        }
        let chosen = if self.endpoint.insecure {
            let url = format!("https://{}/v2/", self.endpoint.host);
            match self.agent.get(&url).timeout(Duration::from_secs(5)).call() {
                Ok(_) | Err(ureq::Error::Status(..)) => "https",
                Err(ureq::Error::Transport(_)) => "http",
            }
        } else {
            "https"
        };
        *self.scheme.lock().unwrap() = Some(chosen);
        Ok(chosen)
    }

    fn url(&self, path: &str) -> Result<String, RegistryError> {
        Ok(format!(
            "{}://{}/v2/{}",
            self.scheme()?,
            self.endpoint.host,
            path
        ))
    }

    /// Answers a 401 challenge: fetches a bearer token or prepares Basic auth.
    fn authenticate(&self, challenge: &str) -> Result<(), RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
        };
        let header = match scheme.as_str() {
            "basic" => {
                let Some(c) = &self.creds else {
                    return Err(self.unauthorized("no credentials found"));
                };
                use base64::Engine as _;
                let enc = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password));
                format!("Basic {enc}")
            }
            "bearer" => {
                let realm =
                    get("realm").ok_or_else(|| self.protocol("bearer challenge without realm"))?;
                let mut req = self.agent.get(&realm);
                if let Some(s) = get("service") {
                    req = req.query("service", &s);
                }
                let actions = if self.push { "pull,push" } else { "pull" };
                let scope = format!("repository:{}:{actions}", self.endpoint.repository);
                req = req.query("scope", &scope);
                for s in &self.mount_sources {
                    req = req.query("scope", &format!("repository:{s}:pull"));
                }
                let trusted = realm_may_get_credentials(&self.endpoint.host, &realm);
                if !trusted && self.creds.is_some() {
                    tracing::warn!(
                        "{}: the token server {realm} is another host and not https: credentials are not sent to it",
                        self.endpoint.host
                    );
                }
                if let Some(c) = self.creds.as_ref().filter(|_| trusted) {
                    use base64::Engine as _;
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", c.username, c.password));
                    req = req.set("Authorization", &format!("Basic {enc}"));
                }
                let resp = match req.call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(401 | 403, r)) => {
                        return Err(self.rejected("token server: ", r))
                    }
                    Err(ureq::Error::Status(code, r)) => {
                        let (_, msg) = error_detail(r);
                        return Err(self.protocol(&format!("token server answered {code}: {msg}")));
                    }
                    Err(ureq::Error::Transport(t)) => {
                        return Err(RegistryError::Connect {
                            host: realm,
                            detail: t.to_string(),
                        })
                    }
                };
                let v: serde_json::Value = resp
                    .into_json()
                    .map_err(|e| self.protocol(&format!("token server sent no JSON: {e}")))?;
                let tok = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| self.protocol("token server answer has no token"))?;
                format!("Bearer {tok}")
            }
            other => {
                return Err(self.protocol(&format!("unsupported authentication scheme {other:?}")))
            }
        };
        self.auth.lock().unwrap().header = Some(header);
        Ok(())
    }

    fn unauthorized(&self, detail: &str) -> RegistryError {
        RegistryError::Unauthorized {
            host: self.endpoint.host.clone(),
            detail: detail.to_string(),
        }
    }

    /// A 401/403 after we answered the challenge: say whether credentials
    /// were missing or wrong, with the registry's own message.
    fn rejected(&self, prefix: &str, resp: ureq::Response) -> RegistryError {
        let (_, msg) = error_detail(resp);
        let why = if self.creds.is_some() {
            "invalid username or password"
        } else {
            "no credentials found"
        };
        let detail = if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        };
        self.unauthorized(&format!("{prefix}{why}{detail}"))
    }

    fn protocol(&self, detail: &str) -> RegistryError {
        RegistryError::Protocol {
            host: self.endpoint.host.clone(),
            detail: detail.to_string(),
        }
    }

    /// GET with authentication and retries. `what` names the object for errors.
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        let url = self.url(path)?;
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        self.send("GET", &url, &headers, &Body::Empty, what)
    }

    /// A request with authentication and retries of transient failures.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        let url = url.to_string();
        let mut authed_once = false;
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(h) = &self.auth.lock().unwrap().header {
                req = req.set("Authorization", h);
            }
            let backoff = || std::thread::sleep(Duration::from_millis(200 << (tries - 1)));
            let sent = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File { path, offset, len } => {
                    use std::io::Seek;
                    let mut f = std::fs::File::open(path).map_err(|e| RegistryError::Connect {
                        host: self.endpoint.host.clone(),
                        detail: format!("reading {}: {e}", path.display()),
                    })?;
                    f.seek(std::io::SeekFrom::Start(*offset)).map_err(|e| {
                        RegistryError::Connect {
                            host: self.endpoint.host.clone(),
                            detail: format!("reading {}: {e}", path.display()),
                        }
                    })?;
                    req.set("Content-Length", &len.to_string())
                        .send(f.take(*len))
                }
            };
            match sent {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if !authed_once => {
                    authed_once = true;
                    tries -= 1;
                    let ch = r.header("www-authenticate").map(String::from);
                    match ch {
                        Some(c) => self.authenticate(&c)?,
                        None => return Err(self.unauthorized("401 without a challenge")),
                    }
                }
                Err(ureq::Error::Status(401, r)) => return Err(self.rejected("", r)),
                Err(ureq::Error::Status(403, r)) => {
                    let (_, msg) = error_detail(r);
                    return Err(RegistryError::Denied {
                        host: self.endpoint.host.clone(),
                        what: what.into(),
                        detail: msg,
                    });
                }
                Err(ureq::Error::Status(404, r)) => {
                    let (code, msg) = error_detail(r);
                    let code = if code.is_empty() { msg } else { code };
                    return Err(RegistryError::NotFound {
                        what: what.into(),
                        code,
                    });
                }
                Err(ureq::Error::Status(status, r))
                    if (status == 429 || status >= 500) && tries < RETRIES =>
                {
                    drop(r);
                    tracing::debug!(status, tries, "retrying {url}");
                    backoff();
                }
                Err(ureq::Error::Status(status, r)) => {
                    let (code, msg) = error_detail(r);
                    return Err(RegistryError::Server {
                        host: self.endpoint.host.clone(),
                        what: what.into(),
                        status,
                        tries,
                        detail: if msg.is_empty() { code } else { msg },
                    });
                }
                Err(ureq::Error::Transport(t))
                    if tries < RETRIES && !is_tls_failure(&t.to_string()) =>
                {
                    tracing::debug!(tries, "retrying {url}: {t}");
                    backoff();
                }
                Err(ureq::Error::Transport(t)) => {
                    let detail = t
                        .source()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| t.to_string());
                    return Err(RegistryError::Connect {
                        host: self.endpoint.host.clone(),
                        detail: simplify_transport(&detail),
                    });
                }
            }
        }
    }

    /// Checks that the registry answers and that our credentials work.
    pub fn ping(&self) -> Result<(), RegistryError> {
        self.get("", None, "the registry").map(|_| ())
    }

    /// Fetches a manifest or index by tag or digest.
    pub fn manifest(&self, reference: &str, what: &str) -> Result<FetchedManifest, RegistryError> {
        let path = format!("{}/manifests/{}", self.endpoint.repository, reference);
        let resp = self.get(&path, Some(media::MANIFEST_ACCEPT), what)?;
        let header_type = resp
            .header("content-type")
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Connect {
                host: self.endpoint.host.clone(),
                detail: format!("reading manifest: {e}"),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(self.protocol("manifest larger than 8 MiB"));
        }
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != digest {
                return Err(self.protocol(&format!(
                    "manifest {expected} does not match its digest (got {digest})"
                )));
            }
        }
        // The document's own mediaType wins over a generic Content-Type.
        let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
                    .or_else(|| {
                        if v.get("manifests").is_some() {
                            Some(media::OCI_INDEX.to_string())
                        } else if v.get("layers").is_some() {
                            Some(media::OCI_MANIFEST.to_string())
                        } else {
                            None
                        }
                    })
            });
        let media_type = body_type.unwrap_or(header_type);
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Resolves an upload `Location` (often relative) to a URL.
    fn location(&self, resp: &ureq::Response) -> Result<String, RegistryError> {
        let loc = resp
            .header("location")
            .ok_or_else(|| self.protocol("upload answered without a Location"))?;
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Ok(loc.to_string());
        }
        Ok(format!("{}://{}{loc}", self.scheme()?, self.endpoint.host))
    }

    /// Whether the repository already has the blob.
    pub fn has_blob(&self, d: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("{}/blobs/{d}", self.endpoint.repository))?;
        match self.send("HEAD", &url, &[], &Body::Empty, &format!("blob {d}")) {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Asks the registry to link a blob it has in `from` (another
    /// repository on it) into this one; true when it did. Otherwise the
    /// upload it opened instead is returned for the caller to use.
    pub fn mount_blob(&self, d: &Digest, from: &str) -> Result<Result<(), String>, RegistryError> {
        let url = self.url(&format!(
            "{}/blobs/uploads/?mount={d}&from={from}",
            self.endpoint.repository
        ))?;
        let resp = self.send(
            "POST",
            &url,
            &[("Content-Length", "0")],
            &Body::Empty,
            &format!("blob {d}"),
        )?;
        if resp.status() == 201 {
            return Ok(Ok(()));
        }
        Ok(Err(self.location(&resp)?))
    }

    /// Uploads `len` bytes of the file at `path` as blob `d`: one PUT for a
    /// small blob, chunks (PATCH) for a large one, each retried on
    /// transient failures. `session` is an upload already opened.
    pub fn upload_blob(
        &self,
        d: &Digest,
        path: &std::path::Path,
        len: u64,
        session: Option<String>,
        progress: &dyn Fn(u64),
    ) -> Result<(), RegistryError> {
        let what = format!("blob {d}");
        let mut loc = match session {
            Some(l) => l,
            None => {
                let url = self.url(&format!("{}/blobs/uploads/", self.endpoint.repository))?;
                let resp = self.send(
                    "POST",
                    &url,
                    &[("Content-Length", "0")],
                    &Body::Empty,
                    &what,
                )?;
                self.location(&resp)?
            }
        };
        let with_digest = |l: &str| {
            let sep = if l.contains('?') { '&' } else { '?' };
            format!("{l}{sep}digest={d}")
        };
        let octets = [("Content-Type", "application/octet-stream")];
        if len <= CHUNK {
            let body = Body::File {
                path,
                offset: 0,
                len,
            };
            self.send("PUT", &with_digest(&loc), &octets, &body, &what)?;
            progress(len);
            return Ok(());
        }
        let mut offset = 0;
        while offset < len {
            let n = CHUNK.min(len - offset);
            let range = format!("{offset}-{}", offset + n - 1);
            let headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range.as_str()),
            ];
            let body = Body::File {
                path,
                offset,
                len: n,
            };
            let resp = self.send("PATCH", &loc, &headers, &body, &what)?;
            loc = self.location(&resp)?;
            offset += n;
            progress(offset);
        }
        self.send(
            "PUT",
            &with_digest(&loc),
            &[("Content-Length", "0")],
            &Body::Empty,
            &what,
        )?;
        Ok(())
    }

    /// Stores a manifest under `reference` (a tag); returns its digest.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let url = self.url(&format!(
            "{}/manifests/{reference}",
            self.endpoint.repository
        ))?;
        self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            &Body::Bytes(bytes),
            &format!("manifest {reference}"),
        )?;
        Ok(Digest::of(bytes))
    }

    /// Opens a blob for streaming; the caller verifies the digest.
    pub fn blob(&self, d: &Digest) -> Result<(Box<dyn Read + Send>, Option<u64>), RegistryError> {
        let path = format!("{}/blobs/{d}", self.endpoint.repository);
        let resp = self.get(&path, None, &format!("blob {d}"))?;
        let len = resp.header("content-length").and_then(|l| l.parse().ok());
        Ok((Box::new(resp.into_reader()), len))
    }
}

/// TLS failures are not transient: retrying cannot help.
fn is_tls_failure(s: &str) -> bool {
    s.contains("InvalidContentType")
        || s.contains("corrupt message")
        || s.contains("certificate")
        || s.contains("tls")
}

fn simplify_transport(s: &str) -> String {
    if s.contains("Connection refused") {
        "connection refused (is the registry running and the address right?)".into()
    } else if is_tls_failure(s) {
        format!("TLS handshake failed ({s}); if this registry speaks plain http, mark it insecure in registries.conf or pass --tls-verify=false")
    } else {
        s.to_string()
    }
}

use std::error::Error as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(p[2].1, "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert!(realm_may_get_credentials(
            "127.0.0.1:5000",
            "http://127.0.0.1:5000/token"
        ));
        assert!(realm_may_get_credentials(
            "127.0.0.1:5000",
            "http://127.0.0.1:5001/token"
        ));
        assert!(!realm_may_get_credentials(
            "127.0.0.1:5000",
            "http://127.0.0.2:5000/token"
        ));
        assert!(!realm_may_get_credentials(
            "127.0.0.1:5000",
            "https://127.0.0.2/token"
        ));
        assert!(realm_may_get_credentials(
            "registry-1.docker.io",
            "https://auth.docker.io/token"
        ));
        assert!(!realm_may_get_credentials(
            "registry-1.docker.io",
            "http://auth.docker.io/token"
        ));
        assert!(!realm_may_get_credentials(
            "ghcr.io",
            "https://evil.example/token"
        ));
        assert!(!realm_may_get_credentials("ghcr.io", "ftp://ghcr.io/token"));
        assert_eq!(s, "basic");
        assert_eq!(p[0].1, "Registry Realm");
    }
}

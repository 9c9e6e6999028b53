//! Registry credentials where podman and docker keep them: podman's
//! auth.json (`$XDG_RUNTIME_DIR/containers/auth.json`, `--authfile`,
//! `REGISTRY_AUTH_FILE`), `~/.config/containers/auth.json`, and docker's
//! `~/.docker/config.json`.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A username and password (or identity token) for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading credentials from {0}: {1}")]
    Read(String, String),
    #[error("writing credentials to {0}: {1}")]
    Write(String, String),
    #[error("not logged into {0}")]
    NotLoggedIn(String),
}

/// The auth file `berth login` writes to, as podman chooses it.
pub fn default_auth_file(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(p);
    }
    if let Some(rt) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(rt).join("containers/auth.json");
    }
    // SAFETY: getuid never fails.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        PathBuf::from("/run/containers/0/auth.json")
    } else {
        PathBuf::from(format!("/run/user/{uid}/containers/auth.json"))
    }
}

/// Every file credentials are read from, first match wins.
fn lookup_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut files = vec![default_auth_file(explicit)];
    if explicit.is_none() && std::env::var_os("REGISTRY_AUTH_FILE").is_none() {
        if let Some(h) = std::env::var_os("HOME").map(PathBuf::from) {
            files.push(h.join(".config/containers/auth.json"));
            files.push(h.join(".docker/config.json"));
        }
    }
    files
}

/// The key docker and podman use for a registry in an auth file.
fn normalize_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, AuthError> {
    match std::fs::read(path) {
        Ok(data) if data.iter().all(|b| b.is_ascii_whitespace()) => Ok(None),
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| AuthError::Read(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::Read(path.display().to_string(), e.to_string())),
    }
}

fn decode_entry(v: &Value) -> Option<Credentials> {
    if let Some(tok) = v
        .get("identitytoken")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
    {
        return Some(Credentials {
            username: "<token>".into(),
            password: tok.into(),
        });
    }
    let auth = v.get("auth")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

/// Credentials for `registry` (as the user names it, e.g. `docker.io`)
/// and `repository` (podman also allows per-repository entries).
pub fn lookup(
    registry: &str,
    repository: &str,
    explicit: Option<&Path>,
) -> Result<Option<Credentials>, AuthError> {
    let want = normalize_key(registry);
    let full = format!("{want}/{repository}");
    for f in lookup_files(explicit) {
        let Some(json) = read_json(&f)? else { continue };
        let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        // The most specific key wins: registry/namespace/repo before registry.
        let mut best: Option<(usize, Credentials)> = None;
        for (k, v) in auths {
            let nk = normalize_key(k);
            let matches = nk == want || full == nk || full.starts_with(&format!("{nk}/"));
            if matches {
                if let Some(c) = decode_entry(v) {
                    if best.as_ref().is_none_or(|(len, _)| nk.len() > *len) {
                        best = Some((nk.len(), c));
                    }
                }
            }
        }
        if let Some((_, c)) = best {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn write_json(path: &Path, v: &Value) -> Result<(), AuthError> {
    let err = |e: std::io::Error| AuthError::Write(path.display().to_string(), e.to_string());
    if let Some(dir) = path.parent() {
        crate::util::fsutil::create_dir_all_mode(dir, 0o700).map_err(err)?;
    }
    let data = serde_json::to_vec_pretty(v).expect("json serialises");
    crate::util::fsutil::atomic_write(path, &data, 0o600).map_err(err)
}

/// Saves credentials for `registry`, keeping other entries of the file.
pub fn store(path: &Path, registry: &str, c: &Credentials) -> Result<(), AuthError> {
    let mut json = read_json(path)?.unwrap_or_else(|| Value::Object(Map::new()));
    let obj = json
        .as_object_mut()
        .ok_or_else(|| AuthError::Write(path.display().to_string(), "not a JSON object".into()))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let auths = auths.as_object_mut().ok_or_else(|| {
        AuthError::Write(
            path.display().to_string(),
            "\"auths\" is not an object".into(),
        )
    })?;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    auths.insert(
        normalize_key(registry),
        serde_json::json!({ "auth": encoded }),
    );
    write_json(path, &json)
}

/// Removes credentials for `registry`, or every entry when `registry` is None.
pub fn remove(path: &Path, registry: Option<&str>) -> Result<(), AuthError> {
    let Some(mut json) = read_json(path)? else {
        return match registry {
            Some(r) => Err(AuthError::NotLoggedIn(r.into())),
            None => Ok(()),
        };
    };
    let Some(auths) = json.get_mut("auths").and_then(|a| a.as_object_mut()) else {
        return match registry {
            Some(r) => Err(AuthError::NotLoggedIn(r.into())),
            None => Ok(()),
        };
    };
    match registry {
        None => auths.clear(),
        Some(r) => {
            let want = normalize_key(r);
            let before = auths.len();
            auths.retain(|k, _| normalize_key(k) != want);
            if auths.len() == before {
                return Err(AuthError::NotLoggedIn(r.into()));
            }
        }
    }
    write_json(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_prefers_specific_keys() {
        let dir = std::env::temp_dir().join(crate::util::fsutil::unique_name("berth-auth-"));
        let f = dir.join("auth.json");
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&f, "https://index.docker.io/v1/", &c).unwrap();
        assert_eq!(
            lookup("docker.io", "library/x", Some(&f)).unwrap(),
            Some(c.clone())
        );
        let c2 = Credentials {
            username: "team".into(),
            password: "t".into(),
        };
        store(&f, "docker.io/team", &c2).unwrap();
        assert_eq!(lookup("docker.io", "team/app", Some(&f)).unwrap(), Some(c2));
        assert_eq!(lookup("docker.io", "other/app", Some(&f)).unwrap(), Some(c));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        remove(&f, Some("docker.io")).unwrap();
        assert!(remove(&f, Some("docker.io")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

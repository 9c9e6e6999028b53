//! The build context: which of its files a COPY or ADD selects (globs,
//! directories copied by their contents, the ignore file), and a content
//! hash of exactly those files for the layer cache. The hash covers each
//! file's path below its source, type, permission bits, content and
//! symlink target; never times, owners or where the context lives, so a
//! `touch` or a moved context still hits. Unchanged files are not read
//! again: their digests are remembered by device, inode, size and mtime.

use super::ignore::Ignore;
use crate::util::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why sources could not be selected.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("COPY/ADD source {path:?} is not in the context{hint}")]
    Missing { path: String, hint: String },
    #[error("COPY/ADD source {0:?} is outside the build context")]
    Outside(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What kind of entry a selected path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// One entry to copy: where it is on the host, and its name below the
/// destination directory.
#[derive(Clone, Debug)]
pub struct Item {
    pub host: PathBuf,
    pub name: String,
    pub kind: Kind,
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    /// The directory the destination names (`COPY dir /app/all`): made
    /// for the copy, so `--chmod` leaves its mode alone, as buildah does.
    pub dest_dir: bool,
}

/// The remembered digests of unchanged files.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct StatCache {
    entries: BTreeMap<String, String>,
    #[serde(skip)]
    changed: bool,
}

impl StatCache {
    /// Reads the cache at `path` (empty when missing or damaged).
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes it back if it learned anything.
    pub fn save(&self, path: &Path) {
        if self.changed {
            if let Ok(b) = serde_json::to_vec(self) {
                let _ = crate::util::fsutil::atomic_write(path, &b, 0o600);
            }
        }
    }

    /// Takes in what another builder (a parallel job) learned.
    pub fn merge(&mut self, other: StatCache) {
        if !other.entries.is_empty() {
            self.entries.extend(other.entries);
            self.changed = true;
        }
    }

    fn digest(&mut self, path: &Path, m: &std::fs::Metadata) -> Result<String, ContextError> {
        let key = format!(
            "{}:{}:{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        );
        if let Some(d) = self.entries.get(&key) {
            return Ok(d.clone());
        }
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(io(path))?;
        let d = format!("{:x}", h.finalize());
        self.entries.insert(key, d.clone());
        self.changed = true;
        Ok(d)
    }
}

/// A build context directory and its ignore rules.
pub struct Context {
    pub root: PathBuf,
    pub ignore: Ignore,
}

/// Go's `filepath.Match` characters.
fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Context {
    /// Where a context path is on the host (None when it climbs out).
    pub fn path_of(&self, src: &str) -> Option<PathBuf> {
        clean_rel(src).map(|r| self.root.join(r))
    }

    /// The ignore file's pattern that excludes `rel`, if any.
    fn excluded(&self, rel: &str) -> Option<&str> {
        self.ignore.excluded_by(rel)
    }

    /// Context paths (relative, `/`-separated) that `src` names: itself,
    /// or the matches of a glob, in name order.
    fn expand(&self, src: &str) -> Result<Vec<String>, ContextError> {
        let clean = clean_rel(src).ok_or_else(|| ContextError::Outside(src.to_string()))?;
        if !is_glob(&clean) {
            return Ok(vec![clean]);
        }
        let mut found = Vec::new();
        let parts: Vec<&str> = clean.split('/').filter(|p| !p.is_empty()).collect();
        glob_walk(&self.root, "", &parts, &mut found);
        found.sort();
        Ok(found)
    }

    /// The items `sources` select, named below the destination: a
    /// directory contributes its contents; a file its base name, or
    /// `file_name` when the destination names the file itself.
    pub fn select(
        &self,
        sources: &[String],
        file_name: Option<&str>,
    ) -> Result<Vec<Item>, ContextError> {
        let mut items = Vec::new();
        for src in sources {
            let paths = self.expand(src)?;
            let mut any = false;
            for rel in paths {
                if let Some(p) = self.excluded(&rel).filter(|_| !rel.is_empty()) {
                    if !is_glob(src) {
                        return Err(ContextError::Missing {
                            path: src.clone(),
                            hint: format!(": the ignore file excludes it (pattern {p:?})"),
                        });
                    }
                    continue;
                }
                // A source that is a symlink is followed, as docker does,
                // but only inside the context.
                let named = rel.clone();
                let rel = self.follow(&rel, src)?;
                let host = self.root.join(&rel);
                let m = match std::fs::symlink_metadata(&host) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(&host)(e)),
                };
                any = true;
                if m.is_dir() {
                    // A directory's contents go into the destination; when
                    // the destination names it (`COPY src /app/all`), they
                    // go under that name.
                    let prefix = file_name.unwrap_or("");
                    if !prefix.is_empty() {
                        let mut top = item(host.clone(), prefix.to_string(), &m)?;
                        top.dest_dir = true;
                        items.push(top);
                    }
                    self.walk(&host, &rel, prefix, &mut items)?;
                } else {
                    // Named as the source was, not as its link's target.
                    let base = named.rsplit('/').next().unwrap_or(&named);
                    let name = file_name.unwrap_or(base).to_string();
                    items.push(item(host, name, &m)?);
                }
            }
            if !any {
                return Err(ContextError::Missing {
                    path: src.clone(),
                    hint: String::new(),
                });
            }
        }
        Ok(items)
    }

    /// `rel` with symlinks resolved inside the context (an absolute
    /// target is taken from the context's root); an error when one leads
    /// out of it.
    fn follow(&self, rel: &str, src: &str) -> Result<String, ContextError> {
        let mut cur = rel.to_string();
        for _ in 0..40 {
            let host = self.root.join(&cur);
            let Ok(m) = std::fs::symlink_metadata(&host) else {
                return Ok(cur);
            };
            if !m.file_type().is_symlink() {
                return Ok(cur);
            }
            let target = std::fs::read_link(&host).map_err(io(&host))?;
            let t = target.to_string_lossy();
            let joined = if t.starts_with('/') {
                t.to_string()
            } else {
                let parent = cur.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                format!("{parent}/{t}")
            };
            cur = clean_rel(&joined).ok_or_else(|| ContextError::Outside(src.to_string()))?;
        }
        Err(ContextError::Outside(src.to_string()))
    }

    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        name: &str,
        items: &mut Vec<Item>,
    ) -> Result<(), ContextError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for n in entries {
            let n = n.to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let child_name = if name.is_empty() {
                n.clone()
            } else {
                format!("{name}/{n}")
            };
            let excluded = self.excluded(&child_rel).is_some();
            let host = dir.join(&n);
            let m = std::fs::symlink_metadata(&host).map_err(io(&host))?;
            if excluded && !(m.is_dir() && self.ignore.has_exceptions()) {
                continue;
            }
            if m.is_dir() {
                if !excluded {
                    items.push(item(host.clone(), child_name.clone(), &m)?);
                }
                self.walk(&host, &child_rel, &child_name, items)?;
            } else if !excluded {
                items.push(item(host, child_name, &m)?);
            }
        }
        Ok(())
    }
}

fn item(host: PathBuf, name: String, m: &std::fs::Metadata) -> Result<Item, ContextError> {
    let kind = if m.is_dir() {
        Kind::Dir
    } else if m.file_type().is_symlink() {
        Kind::Symlink(std::fs::read_link(&host).map_err(io(&host))?)
    } else if m.is_file() {
        Kind::File
    } else {
        // Sockets, fifos and devices in a context are not copied (BuildKit).
        Kind::File
    };
    Ok(Item {
        kind,
        mode: m.permissions().mode() & 0o7777,
        mtime: m.mtime(),
        size: if m.is_file() { m.size() } else { 0 },
        name,
        host,
        dest_dir: false,
    })
}

/// `./a/../b` -> `b`; None when it climbs out of the context.
fn clean_rel(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Matches `parts` (glob components) below `dir`.
fn glob_walk(dir: &Path, rel: &str, parts: &[&str], found: &mut Vec<String>) {
    let Some((first, rest)) = parts.split_first() else {
        found.push(rel.to_string());
        return;
    };
    let join = |n: &str| {
        if rel.is_empty() {
            n.to_string()
        } else {
            format!("{rel}/{n}")
        }
    };
    if !is_glob(first) {
        let p = dir.join(first);
        if std::fs::symlink_metadata(&p).is_ok() {
            glob_walk(&p, &join(first), rest, found);
        }
        return;
    }
    let Ok(re) = regex::Regex::new(&glob_regex(first)) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if re.is_match(&n) {
            glob_walk(&dir.join(&n), &join(&n), rest, found);
        }
    }
}

/// One glob component as an anchored regex.
fn glob_regex(p: &str) -> String {
    let mut re = String::from("^");
    for c in p.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

/// The content hash of `items` for the cache key.
pub fn content_hash(items: &[Item], stats: &mut StatCache) -> Result<Digest, ContextError> {
    let mut h = Sha256::new();
    for it in items {
        h.update(it.name.as_bytes());
        h.update([0]);
        match &it.kind {
            Kind::Dir => h.update(b"d"),
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_os_str().as_encoded_bytes());
            }
            Kind::File => {
                h.update(b"f");
                let m = std::fs::symlink_metadata(&it.host).map_err(io(&it.host))?;
                h.update(stats.digest(&it.host, &m)?.as_bytes());
            }
        }
        h.update(format!(":{:o}\n", it.mode).as_bytes());
    }
    Ok(Digest::from_hasher(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_docker_and_the_hash_ignores_times_and_place() {
        let base = std::env::temp_dir().join(format!("berth-ctx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let ctx = base.join("ctx");
        std::fs::create_dir_all(ctx.join("site/css")).unwrap();
        std::fs::write(ctx.join("site/index.html"), "hi").unwrap();
        std::fs::write(ctx.join("site/css/a.css"), "a").unwrap();
        std::fs::write(ctx.join("a.txt"), "1").unwrap();
        std::fs::write(ctx.join("b.txt"), "2").unwrap();
        std::fs::write(ctx.join("secret.key"), "k").unwrap();
        let c = Context {
            root: ctx.clone(),
            ignore: Ignore::parse("*.key\n", ".containerignore").unwrap(),
        };
        let names = |items: &[Item]| items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        let site = c.select(&["site".into()], None).unwrap();
        assert_eq!(names(&site), ["css", "css/a.css", "index.html"]);
        let globbed = c.select(&["*.txt".into()], None).unwrap();
        assert_eq!(names(&globbed), ["a.txt", "b.txt"]);
        let renamed = c.select(&["a.txt".into()], Some("conf")).unwrap();
        assert_eq!(names(&renamed), ["conf"]);
        // A directory copied to a destination that names it.
        let named = c.select(&["site".into()], Some("all")).unwrap();
        assert_eq!(
            names(&named),
            ["all", "all/css", "all/css/a.css", "all/index.html"]
        );
        let e = c
            .select(&["secret.key".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ignore file excludes it"), "{e}");
        let e = c.select(&["nope".into()], None).unwrap_err().to_string();
        assert!(e.contains("\"nope\" is not in the context"), "{e}");
        assert!(c.select(&["../x".into()], None).is_err());
        // A symlink source is followed inside the context only.
        std::os::unix::fs::symlink("a.txt", ctx.join("to-a")).unwrap();
        std::os::unix::fs::symlink("/site", ctx.join("to-site")).unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", ctx.join("out")).unwrap();
        let followed = c.select(&["to-a".into()], None).unwrap();
        assert_eq!(names(&followed), ["to-a"]);
        assert_eq!(followed[0].kind, Kind::File);
        assert_eq!(
            names(&c.select(&["to-site".into()], None).unwrap()).len(),
            3
        );
        assert!(c.select(&["out".into()], None).is_err());
        for l in ["to-a", "to-site", "out"] {
            std::fs::remove_file(ctx.join(l)).unwrap();
        }

        let mut stats = StatCache::default();
        let h1 = content_hash(&site, &mut stats).unwrap();
        // touch: same hash
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(100);
        std::fs::File::options()
            .write(true)
            .open(ctx.join("site/index.html"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let site2 = c.select(&["site".into()], None).unwrap();
        assert_eq!(content_hash(&site2, &mut stats).unwrap(), h1);
        // moved: same hash
        let moved = base.join("moved");
        std::fs::rename(&ctx, &moved).unwrap();
        let c2 = Context {
            root: moved.clone(),
            ignore: Ignore::default(),
        };
        let site3 = c2.select(&["site".into()], None).unwrap();
        assert_eq!(content_hash(&site3, &mut stats).unwrap(), h1);
        // changed content: another hash
        std::fs::write(moved.join("site/index.html"), "ho").unwrap();
        let site4 = c2.select(&["site".into()], None).unwrap();
        assert_ne!(content_hash(&site4, &mut stats).unwrap(), h1);
        std::fs::remove_dir_all(&base).unwrap();
    }
}

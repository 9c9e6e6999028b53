//! The registries configuration a podman user already has
//! (containers-registries.conf(5)): search registries for short names,
//! aliases, `[[registry]]` prefix/location remapping, mirrors, insecure and
//! blocked registries. Read from the same files podman reads.

use super::reference::{Parsed, Reference, DOCKER_HUB};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("reading registries configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("registries configuration {path}: {source}")]
    Syntax {
        path: String,
        source: toml::de::Error,
    },
    #[error("registry {0} is blocked in registries.conf")]
    Blocked(String),
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RegistryEntry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    registries: Option<V1Tables>,
}

#[derive(Debug, Deserialize, Default)]
struct V1Tables {
    search: Option<V1List>,
    insecure: Option<V1List>,
    block: Option<V1List>,
}

#[derive(Debug, Deserialize, Default)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// One `[[registry]]` table.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryEntry {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub mirror_by_digest_only: bool,
    #[serde(default)]
    pub mirror: Vec<Mirror>,
}

/// One `[[registry.mirror]]` table.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Mirror {
    pub location: String,
    #[serde(default)]
    pub insecure: bool,
}

/// A place to fetch an image from: a registry host, the repository path
/// there, and whether plain http / unverified TLS is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub repository: String,
    pub insecure: bool,
}

/// The merged configuration.
#[derive(Debug, Default, Clone)]
pub struct RegistriesConf {
    pub search: Vec<String>,
    /// True when a file set `unqualified-search-registries` (even to []).
    pub search_set: bool,
    pub registries: Vec<RegistryEntry>,
    pub aliases: BTreeMap<String, String>,
    /// The files that were read, for `berth info` and error messages.
    pub sources: Vec<PathBuf>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn conf_files() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
        return vec![PathBuf::from(p)];
    }
    let mut files = Vec::new();
    let user = home().map(|h| h.join(".config/containers/registries.conf"));
    match user {
        Some(u) if u.exists() => files.push(u),
        _ => files.push(PathBuf::from("/etc/containers/registries.conf")),
    }
    let mut dirs = vec![PathBuf::from("/etc/containers/registries.conf.d")];
    if let Some(h) = home() {
        dirs.push(h.join(".config/containers/registries.conf.d"));
    }
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut drop_ins: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        drop_ins.sort();
        files.extend(drop_ins);
    }
    files
}

impl RegistriesConf {
    /// Loads the files podman would load, in podman's order.
    pub fn load() -> Result<RegistriesConf, ConfError> {
        let mut conf = RegistriesConf::default();
        for f in conf_files() {
            if f.exists() {
                conf.merge_file(&f)?;
            }
        }
        Ok(conf)
    }

    /// Merges one file: later files replace search lists and same-prefix
    /// registries, and add aliases.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.merge_str(&text).map_err(|source| ConfError::Syntax {
            path: path.display().to_string(),
            source,
        })?;
        self.sources.push(path.to_path_buf());
        Ok(())
    }

    /// Merges the text of one file.
    pub fn merge_str(&mut self, text: &str) -> Result<(), toml::de::Error> {
        let file: FileV2 = toml::from_str(text)?;
        if let Some(s) = file.unqualified_search_registries {
            self.search = s;
            self.search_set = true;
        }
        for mut r in file.registry {
            if r.prefix.is_empty() {
                r.prefix = r.location.clone();
            }
            if r.location.is_empty() && !r.prefix.starts_with("*.") {
                r.location = r.prefix.clone();
            }
            self.registries.retain(|x| x.prefix != r.prefix);
            self.registries.push(r);
        }
        self.aliases.extend(file.aliases);
        if let Some(v1) = file.registries {
            if let Some(s) = v1.search {
                self.search = s.registries;
                self.search_set = true;
            }
            for (list, insecure) in [(v1.insecure, true), (v1.block, false)] {
                for host in list.map(|l| l.registries).unwrap_or_default() {
                    let mut entry = self
                        .registries
                        .iter()
                        .find(|r| r.prefix == host)
                        .cloned()
                        .unwrap_or_else(|| RegistryEntry {
                            prefix: host.clone(),
                            location: host.clone(),
                            ..Default::default()
                        });
                    if insecure {
                        entry.insecure = true;
                    } else {
                        entry.blocked = true;
                    }
                    self.registries.retain(|r| r.prefix != host);
                    self.registries.push(entry);
                }
            }
        }
        Ok(())
    }

    /// The `[[registry]]` whose prefix matches `name` best (longest prefix).
    fn matching(&self, name: &str) -> Option<&RegistryEntry> {
        let host = name.split('/').next().unwrap_or("");
        self.registries
            .iter()
            .filter(|r| {
                if let Some(suffix) = r.prefix.strip_prefix("*.") {
                    host.ends_with(&format!(".{suffix}"))
                } else {
                    name == r.prefix
                        || name.starts_with(&format!("{}/", r.prefix))
                        || name.starts_with(&format!("{}:", r.prefix))
                        || name.starts_with(&format!("{}@", r.prefix))
                }
            })
            .max_by_key(|r| r.prefix.len())
    }

    /// Whether the registry host is marked insecure (plain http allowed).
    pub fn is_insecure(&self, host: &str) -> bool {
        self.matching(host).is_some_and(|r| r.insecure)
    }

    /// Where to fetch `r` from: mirrors first, then the (possibly remapped)
    /// location, as containers-registries.conf(5) describes.
    pub fn endpoints(&self, r: &Reference) -> Result<Vec<Endpoint>, ConfError> {
        let name = r.name();
        let Some(entry) = self.matching(&name) else {
            return Ok(vec![endpoint_for(&name, false)]);
        };
        if entry.blocked {
            return Err(ConfError::Blocked(name));
        }
        let rewrite = |location: &str| -> String {
            if entry.prefix.starts_with("*.") {
                name.clone()
            } else {
                format!("{location}{}", &name[entry.prefix.len()..])
            }
        };
        let mut out = Vec::new();
        if !entry.mirror_by_digest_only || r.digest.is_some() {
            for m in &entry.mirror {
                out.push(endpoint_for(&rewrite(&m.location), m.insecure));
            }
        }
        out.push(endpoint_for(&rewrite(&entry.location), entry.insecure));
        Ok(out)
    }

    /// The fully qualified candidates for what the user typed: the name
    /// itself when qualified; else an alias; else each search registry in
    /// order; else docker.io, as docker does.
    pub fn candidates(&self, p: &Parsed) -> Vec<Reference> {
        if !p.is_short_name() {
            return vec![p.qualify_default()];
        }
        if let Some(alias) = self.aliases.get(&p.path) {
            if let Ok(mut a) = Parsed::parse(alias) {
                a.tag = p.tag.clone().or(a.tag);
                a.digest = p.digest.clone().or(a.digest);
                return vec![a.qualify_default()];
            }
        }
        if self.search.is_empty() {
            if self.search_set {
                return Vec::new(); // explicitly no search registries: short names cannot resolve
            }
            return vec![p.qualify(DOCKER_HUB)];
        }
        self.search.iter().map(|reg| p.qualify(reg)).collect()
    }
}

/// The endpoint of `registry/repository` itself (docker.io's API host
/// for Docker Hub), with no mirror or remapping.
pub fn endpoint_for(name: &str, insecure: bool) -> Endpoint {
    let (host, repo) = name.split_once('/').unwrap_or((name, ""));
    let host = if host == DOCKER_HUB || host == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        host
    };
    Endpoint {
        host: host.to_string(),
        repository: repo.to_string(),
        insecure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["quay.io", "docker.io"]
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:6000/cache"
[[registry]]
prefix = "docker.io/library/blocked"
blocked = true
[[registry]]
location = "plain.example:5000"
insecure = true
[aliases]
"ubuntu" = "docker.io/library/ubuntu"
"#;

    fn conf() -> RegistriesConf {
        let mut c = RegistriesConf::default();
        c.merge_str(CONF).unwrap();
        c
    }

    #[test]
    fn remaps_with_mirrors_first() {
        let c = conf();
        let r = Reference::parse("ubuntu:22.04").unwrap();
        let eps = c.endpoints(&r).unwrap();
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].host, "127.0.0.1:6000");
        assert_eq!(eps[0].repository, "cache/library/ubuntu");
        assert_eq!(eps[1].host, "127.0.0.1:5000");
        assert_eq!(eps[1].repository, "library/ubuntu");
        assert!(eps[1].insecure);
        assert!(c.endpoints(&Reference::parse("blocked").unwrap()).is_err());
        let q = c
            .endpoints(&Reference::parse("quay.io/a/b").unwrap())
            .unwrap();
        assert_eq!(q, vec![endpoint_for("quay.io/a/b", false)]);
        assert!(c.is_insecure("plain.example:5000"));
        let hub = RegistriesConf::default()
            .endpoints(&Reference::parse("busybox").unwrap())
            .unwrap();
        assert_eq!(hub[0].host, "registry-1.docker.io");
    }

    #[test]
    fn short_names_use_aliases_then_search() {
        let c = conf();
        let a = c.candidates(&Parsed::parse("ubuntu").unwrap());
        assert_eq!(
            a.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["docker.io/library/ubuntu:latest"]
        );
        let s = c.candidates(&Parsed::parse("app:1").unwrap());
        assert_eq!(
            s.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["quay.io/app:1", "docker.io/library/app:1"]
        );
        let none = RegistriesConf::default().candidates(&Parsed::parse("busybox").unwrap());
        assert_eq!(none[0].to_string(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn later_files_override() {
        let mut c = conf();
        c.merge_str("unqualified-search-registries = [\"x.io\"]\n[[registry]]\nprefix=\"docker.io\"\nlocation=\"y.io\"\n")
            .unwrap();
        assert_eq!(c.search, ["x.io"]);
        let eps = c.endpoints(&Reference::parse("busybox").unwrap()).unwrap();
        assert_eq!(eps, vec![endpoint_for("y.io/library/busybox", false)]);
    }

    #[test]
    fn reads_v1_tables() {
        let mut c = RegistriesConf::default();
        c.merge_str("[registries.search]\nregistries=['a.io']\n[registries.insecure]\nregistries=['b.io:5000']\n")
            .unwrap();
        assert_eq!(c.search, ["a.io"]);
        assert!(c.is_insecure("b.io:5000"));
    }
}

//! OCI hooks configured by files, as podman reads them (`--hooks-dir`,
//! oci-hooks(5)): each `*.json` in the hooks dirs names a program, the
//! stages it runs at, and when it applies (always, a command or an
//! annotation matching a regular expression, or bind mounts present).
//! The matching hooks are written into the container's spec at create,
//! and the runtime runs them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where podman looks when `--hooks-dir` is not given; a file in a later
/// dir replaces one of the same name in an earlier dir.
pub const DEFAULT_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// A hook file was refused.
#[derive(Debug, thiserror::Error)]
pub enum HooksDirError {
    #[error("hook file {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("hook file {path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("reading hooks dir {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
struct HookFile {
    version: String,
    hook: serde_json::Value,
    #[serde(default)]
    when: When,
    stages: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct When {
    #[serde(default)]
    always: Option<bool>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    has_bind_mounts: Option<bool>,
}

const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// What a container offers to the `when` conditions.
pub struct Subject<'a> {
    /// The command's path (its first argument).
    pub command: &'a str,
    pub annotations: &'a BTreeMap<String, String>,
    pub has_bind_mounts: bool,
}

fn matches(re: &str, text: &str, path: &str) -> Result<bool, HooksDirError> {
    regex::Regex::new(re)
        .map(|r| r.is_match(text))
        .map_err(|e| HooksDirError::Invalid {
            path: path.into(),
            problem: format!("bad regular expression {re:?}: {e}"),
        })
}

impl HookFile {
    fn applies(&self, s: &Subject<'_>, path: &str) -> Result<bool, HooksDirError> {
        if self.when.always == Some(true) {
            return Ok(true);
        }
        if self.when.has_bind_mounts == Some(true) && s.has_bind_mounts {
            return Ok(true);
        }
        for re in &self.when.commands {
            if matches(re, s.command, path)? {
                return Ok(true);
            }
        }
        for (kre, vre) in &self.when.annotations {
            for (k, v) in s.annotations {
                if matches(kre, k, path)? && matches(vre, v, path)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn check(&self, path: &str) -> Result<(), HooksDirError> {
        let bad = |problem: String| HooksDirError::Invalid {
            path: path.into(),
            problem,
        };
        if self.version != "1.0.0" {
            return Err(bad(format!(
                "unknown version {:?} (berth reads 1.0.0)",
                self.version
            )));
        }
        if !self.hook.get("path").is_some_and(|p| p.is_string()) {
            return Err(bad("the hook has no path".into()));
        }
        if let Some(s) = self.stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
            return Err(bad(format!("unknown stage {s:?}")));
        }
        let w = &self.when;
        if w.always.is_none()
            && w.annotations.is_empty()
            && w.commands.is_empty()
            && w.has_bind_mounts.is_none()
        {
            return Err(bad("`when` sets no condition".into()));
        }
        Ok(())
    }
}

/// The hook files of `dirs`, by file name (later dirs win).
fn files(dirs: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>, HooksDirError> {
    let mut found = BTreeMap::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(HooksDirError::Read {
                    path: dir.display().to_string(),
                    source,
                })
            }
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                found.insert(name, e.path());
            }
        }
    }
    Ok(found)
}

/// The spec's `hooks` object for a container, from the hook files in
/// `dirs` whose conditions it meets (in file-name order); None when no
/// hook applies.
pub fn hooks_for(
    dirs: &[PathBuf],
    subject: &Subject<'_>,
) -> Result<Option<serde_json::Value>, HooksDirError> {
    let mut by_stage: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for path in files(dirs)?.values() {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| HooksDirError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: HookFile =
            serde_json::from_slice(&text).map_err(|source| HooksDirError::Parse {
                path: shown.clone(),
                source,
            })?;
        file.check(&shown)?;
        if !file.applies(subject, &shown)? {
            continue;
        }
        for stage in &file.stages {
            let key = STAGES.iter().find(|s| *s == stage).expect("checked");
            by_stage.entry(key).or_default().push(file.hook.clone());
        }
    }
    if by_stage.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::json!(by_stage)))
}

/// The dirs to read: `--hooks-dir` values, else podman's defaults.
pub fn dirs(flag: &[PathBuf]) -> Vec<PathBuf> {
    if flag.is_empty() {
        DEFAULT_DIRS.iter().map(PathBuf::from).collect()
    } else {
        flag.to_vec()
    }
}

/// True when `path` exists: hook dirs named by the user must.
pub fn check_named(dirs: &[PathBuf]) -> Result<(), HooksDirError> {
    for d in dirs {
        if !Path::new(d).is_dir() {
            return Err(HooksDirError::Read {
                path: d.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-hooksd-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (n, t) in files {
            std::fs::write(d.join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn hooks_apply_by_their_conditions_and_stages() {
        let d = dir_with(&[
            (
                "a.json",
                r#"{"version":"1.0.0","hook":{"path":"/bin/a"},"when":{"always":true},"stages":["prestart","poststop"]}"#,
            ),
            (
                "b.json",
                r#"{"version":"1.0.0","hook":{"path":"/bin/b"},"when":{"commands":[".*/sh"]},"stages":["createContainer"]}"#,
            ),
            (
                "c.json",
                r#"{"version":"1.0.0","hook":{"path":"/bin/c"},"when":{"annotations":{"^gpu$":"yes"}},"stages":["prestart"]}"#,
            ),
        ]);
        let none = BTreeMap::new();
        let s = Subject {
            command: "/bin/sh",
            annotations: &none,
            has_bind_mounts: false,
        };
        let h = hooks_for(std::slice::from_ref(&d), &s).unwrap().unwrap();
        assert_eq!(h["prestart"][0]["path"], "/bin/a");
        assert_eq!(h["prestart"].as_array().unwrap().len(), 1);
        assert_eq!(h["poststop"][0]["path"], "/bin/a");
        assert_eq!(h["createContainer"][0]["path"], "/bin/b");
        let gpu: BTreeMap<String, String> = [("gpu".to_string(), "yes".to_string())].into();
        let s = Subject {
            command: "/bin/true",
            annotations: &gpu,
            has_bind_mounts: false,
        };
        let h = hooks_for(std::slice::from_ref(&d), &s).unwrap().unwrap();
        assert_eq!(h["prestart"].as_array().unwrap().len(), 2);
        assert!(h.get("createContainer").is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_hook_files_are_refused_with_their_path() {
        for (text, want) in [
            (
                r#"{"version":"2","hook":{"path":"/x"},"when":{"always":true},"stages":["prestart"]}"#,
                "unknown version",
            ),
            (
                r#"{"version":"1.0.0","hook":{"path":"/x"},"when":{"always":true},"stages":["later"]}"#,
                "unknown stage",
            ),
            (
                r#"{"version":"1.0.0","hook":{"path":"/x"},"when":{},"stages":["prestart"]}"#,
                "no condition",
            ),
            (
                r#"{"version":"1.0.0","hook":{},"when":{"always":true},"stages":["prestart"]}"#,
                "no path",
            ),
            ("{", "bad.json"),
        ] {
            let d = dir_with(&[("bad.json", text)]);
            let none = BTreeMap::new();
            let s = Subject {
                command: "/x",
                annotations: &none,
                has_bind_mounts: false,
            };
            let e = hooks_for(std::slice::from_ref(&d), &s)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("bad.json"), "{e}");
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}

//! `--userns keep-id` (rootless): the container gets a user namespace of
//! its own, nested in the store's, where the user's own uid and gid are the
//! same as on the host, so files the container writes to bind mounts belong
//! to the user. Container ids below the user's map to the store ids one up,
//! the user's id to store id 0 (the user), the rest to themselves, as in
//! podman.
//!
//! Image files are stored with their image ids as store ids, which this map
//! would show shifted (root's files as the user's). As podman does, the
//! container gets copies of the image's layers with owners moved to where
//! the map expects them, made once per layer and map and kept with the
//! layer (`ROOT/layers/CHAIN/mapped/KEY/diff`), so `rmi` removes them too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One line of an id map: container ids `inside..inside+count` are store
/// ids `outside..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMapLine {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The mapping for one user: the id kept, and how many store ids exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepId {
    pub uid: u32,
    pub gid: u32,
    uids: u32,
    gids: u32,
}

/// The host id of the store namespace's 0 and how many ids it maps, from
/// a `/proc/self/{uid,gid}_map` text.
fn store_map(text: &str) -> Option<(u32, u32)> {
    let mut host = None;
    let mut size = 0u32;
    for l in text.lines() {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, count] = f[..] {
            if inside == 0 {
                host = Some(outside);
            }
            size = size.max(inside.saturating_add(count));
        }
    }
    Some((host?, size))
}

/// Why `--userns keep-id` cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum KeepIdError {
    #[error("--userns keep-id is for rootless containers only (as root, the ids are already the host's)")]
    RootOnly,
    #[error("unsupported --userns {0:?}: keep-id takes no options in berth")]
    Options(String),
    #[error("unsupported --userns {0:?}: use keep-id (rootless) or leave it out")]
    Mode(String),
    #[error("cannot read this user's id map from {0}")]
    NoMap(&'static str),
    #[error("preparing the image for --userns keep-id: {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("preparing the image for --userns keep-id: copying {0} failed")]
    Copy(String),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> KeepIdError {
    let what = what.to_string();
    move |source| KeepIdError::Io { what, source }
}

impl KeepId {
    /// The mapping for the user berth runs for (call inside the store's
    /// user namespace).
    pub fn current() -> Result<KeepId, KeepIdError> {
        let read = |f: &'static str| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|t| store_map(&t))
                .ok_or(KeepIdError::NoMap(f))
        };
        let (uid, uids) = read("/proc/self/uid_map")?;
        let (gid, gids) = read("/proc/self/gid_map")?;
        Ok(KeepId {
            uid,
            gid,
            uids,
            gids,
        })
    }

    fn lines(keep: u32, size: u32) -> Vec<IdMapLine> {
        if size <= 1 {
            // No subordinate ids: only the user exists in the container.
            return vec![IdMapLine {
                inside: keep,
                outside: 0,
                count: 1,
            }];
        }
        let below = keep.min(size - 1);
        let mut v = Vec::new();
        if below > 0 {
            v.push(IdMapLine {
                inside: 0,
                outside: 1,
                count: below,
            });
        }
        v.push(IdMapLine {
            inside: keep,
            outside: 0,
            count: 1,
        });
        if keep + 1 < size {
            v.push(IdMapLine {
                inside: keep + 1,
                outside: keep + 1,
                count: size - keep - 1,
            });
        }
        v
    }

    /// The container's uid map (container id, store id, count).
    pub fn uid_map(&self) -> Vec<IdMapLine> {
        Self::lines(self.uid, self.uids)
    }

    /// The container's gid map.
    pub fn gid_map(&self) -> Vec<IdMapLine> {
        Self::lines(self.gid, self.gids)
    }

    /// The store id that shows as container id `id` (None: unmapped).
    fn to_store(map: &[IdMapLine], id: u32) -> Option<u32> {
        map.iter()
            .find(|l| id >= l.inside && id - l.inside < l.count)
            .map(|l| l.outside + (id - l.inside))
    }

    /// Names the mapped copies of layers.
    fn key(&self) -> String {
        format!(
            "keep-id-{}-{}-{}-{}",
            self.uid, self.gid, self.uids, self.gids
        )
    }

    /// The store owner a file of image owner `(uid, gid)` gets, so the
    /// container sees the image's owner (unmapped ids go to the overflow).
    pub fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            Self::to_store(&self.uid_map(), uid).unwrap_or(uid),
            Self::to_store(&self.gid_map(), gid).unwrap_or(gid),
        )
    }

    /// Lower dirs for this map: the mapped copy of each layer, made if
    /// missing. `lowers` are `ROOT/layers/CHAIN/diff` dirs.
    pub fn mapped_lowers(&self, lowers: &[PathBuf]) -> Result<Vec<PathBuf>, KeepIdError> {
        if self.uids <= 1 && self.gids <= 1 {
            return Ok(lowers.to_vec()); // every file is the user's anyway
        }
        lowers.iter().map(|l| self.mapped_layer(l)).collect()
    }

    fn mapped_layer(&self, diff: &Path) -> Result<PathBuf, KeepIdError> {
        let layer = diff
            .parent()
            .ok_or_else(|| KeepIdError::Copy(diff.display().to_string()))?;
        let base = layer.join("mapped");
        let target = base.join(self.key()).join("diff");
        if target.is_dir() {
            return Ok(target);
        }
        let tmp = base.join(format!(".tmp-{}", crate::util::names::random_hex()));
        let made = (|| {
            std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(diff)
                .arg(tmp.join("diff"))
                .status()
                .map_err(io("running cp"))?;
            if !st.success() {
                return Err(KeepIdError::Copy(diff.display().to_string()));
            }
            self.chown_tree(&tmp.join("diff"), &mut Default::default())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Another run may have finished the same copy first: keep that one.
        if std::fs::rename(&tmp, base.join(self.key())).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(target)
    }

    /// Moves owners in a copied tree; `seen` keeps hard-linked files
    /// (one inode, several names) from being moved twice.
    fn chown_tree(
        &self,
        dir: &Path,
        seen: &mut std::collections::HashSet<u64>,
    ) -> Result<(), KeepIdError> {
        let meta = std::fs::symlink_metadata(dir).map_err(io(dir.display()))?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
            return Ok(());
        }
        let (uid, gid) = self.owner(meta.uid(), meta.gid());
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
            .map_err(io(format!("chown {}", dir.display())))?;
        if meta.is_file() && meta.mode() & 0o6000 != 0 {
            // chown clears set-id bits; the image's mode stays.
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.mode()));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(dir).map_err(io(dir.display()))? {
                let e = e.map_err(io(dir.display()))?;
                self.chown_tree(&e.path(), seen)?;
            }
        }
        Ok(())
    }
}

/// The image's /etc/passwd with a line for the user added when it has
/// none, and the home it names (the host's, as podman gives it): so names
/// and `$HOME` resolve for the kept id. None when the image knows the id.
pub fn passwd_with_user(k: &KeepId, image_passwd: &str) -> Option<(String, String)> {
    let known = image_passwd
        .lines()
        .any(|l| l.split(':').nth(2) == Some(k.uid.to_string().as_str()));
    if known {
        return None;
    }
    let host = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(k.uid))
        .ok()
        .flatten();
    let name = host
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| "user".into());
    let home = host
        .map(|u| u.dir.display().to_string())
        .unwrap_or_else(|| "/".into());
    let mut text = image_passwd.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "{name}:*:{}:{}:{name}:{home}:/bin/sh\n",
        k.uid, k.gid
    ));
    Some((text, home))
}

/// `--userns`: None for the default (the store's namespace), the keep-id
/// mapping, or an error for modes berth does not have.
pub fn parse(mode: Option<&str>, rootless: bool) -> Result<Option<KeepId>, KeepIdError> {
    match mode.unwrap_or("") {
        "" | "host" => Ok(None),
        "keep-id" if !rootless => Err(KeepIdError::RootOnly),
        "keep-id" => KeepId::current().map(Some),
        m if m.starts_with("keep-id:") => Err(KeepIdError::Options(m.to_string())),
        other => Err(KeepIdError::Mode(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_user_and_shifts_the_ids_below() {
        let k = KeepId {
            uid: 1001,
            gid: 1001,
            uids: 65537,
            gids: 65537,
        };
        let m = k.uid_map();
        assert_eq!(
            m,
            vec![
                IdMapLine {
                    inside: 0,
                    outside: 1,
                    count: 1001
                },
                IdMapLine {
                    inside: 1001,
                    outside: 0,
                    count: 1
                },
                IdMapLine {
                    inside: 1002,
                    outside: 1002,
                    count: 64535
                },
            ]
        );
        assert_eq!(k.owner(0, 0), (1, 1));
        assert_eq!(k.owner(1001, 1001), (0, 0));
        assert_eq!(k.owner(5000, 0), (5000, 1));
        assert_eq!(store_map("0 1001 1\n1 100000 65536\n"), Some((1001, 65537)));
    }
}

//! Resolves `-u user[:group]` and the image's `User` against the image's own
//! /etc/passwd and /etc/group, as docker does.

use std::path::Path;

/// The ids a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// Why a user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in the image's /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in the image's /etc/group")]
    NoGroup(String),
}

/// The first `rel` found in `dirs`, read as the container would see it
/// but never outside a dir (a symlinked /etc/passwd in an image must not
/// make berth read a host file, nor a device make it read forever).
pub fn read_first(dirs: &[&Path], rel: &str) -> String {
    dirs.iter()
        .find_map(|d| crate::util::secure_path::read_file_in_root(d, rel))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, or empty for
/// root) using the first `etc/passwd`/`etc/group` found in `dirs` (the
/// rootfs layers, top first).
pub fn resolve(spec: &str, dirs: &[&Path]) -> Result<Ids, UserError> {
    let passwd = read_first(dirs, "etc/passwd");
    let group = read_first(dirs, "etc/group");
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == user)
        .or_else(|| entries.iter().find(|f| f[2] == user));
    let (uid, mut gid, name, home) = match (found, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[0].to_string()),
            f.get(5).map(|h| h.to_string()),
        ),
        (None, Ok(n)) => (n, n, None, None),
        (None, Err(_)) => return Err(UserError::NoUser(user.into())),
    };
    let groups_table: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    if let Some(g) = grp {
        gid = match groups_table.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| UserError::NoGroup(g.into()))?,
        };
    }
    let mut groups = Vec::new();
    if let Some(n) = &name {
        for f in &groups_table {
            if f.get(3).is_some_and(|m| m.split(',').any(|x| x == n)) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid {
                        groups.push(g);
                    }
                }
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_ids_and_groups() {
        let d = std::env::temp_dir().join(crate::util::fsutil::unique_name("berth-user-"));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nwheel:x:10:user\n",
        )
        .unwrap();
        let dirs = [d.as_path()];
        assert_eq!(resolve("", &dirs).unwrap().uid, 0);
        let u = resolve("user", &dirs).unwrap();
        assert_eq!((u.uid, u.gid, u.groups.clone()), (1000, 1000, vec![10]));
        assert_eq!(resolve("user:wheel", &dirs).unwrap().gid, 10);
        assert_eq!(
            resolve("4242:99", &dirs).unwrap(),
            Ids {
                uid: 4242,
                gid: 99,
                groups: vec![],
                home: None
            }
        );
        assert!(resolve("nobody", &dirs).is_err());
        assert!(resolve("user:nogroup", &dirs).is_err());
        std::fs::remove_dir_all(d).unwrap();
    }
}

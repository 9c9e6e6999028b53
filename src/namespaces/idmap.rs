//! Subordinate id ranges from /etc/subuid and /etc/subgid, which decide how
//! many ids a rootless user's containers (and image layers) can use.

use std::path::Path;

/// One `name:start:count` range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// Ranges for a user, matched by name or numeric id, as shadow-utils does.
pub fn ranges_for(file: &Path, user: &str, id: u32) -> Vec<IdRange> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    parse_ranges(&text, user, id)
}

/// Parses the text of a subuid/subgid file.
pub fn parse_ranges(text: &str, user: &str, id: u32) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let mut it = l.split(':');
            let (who, start, count) = (it.next()?, it.next()?, it.next()?);
            if who != user && who != id.to_string() {
                return None;
            }
            Some(IdRange {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            })
        })
        .filter(|r| r.count > 0)
        .collect()
}

/// The login name of a uid, from /etc/passwd.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_name_and_id() {
        let t = "# c\nalice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            parse_ranges(t, "alice", 1000),
            vec![IdRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            parse_ranges(t, "carol", 1001),
            vec![IdRange {
                start: 200000,
                count: 1000
            }]
        );
        assert!(parse_ranges(t, "bob", 1002).is_empty());
    }
}

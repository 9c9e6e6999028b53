//! Name resolution on user-defined networks: each container's /etc/hosts
//! ends with the names and aliases of the containers it shares a network
//! with, rewritten in place (the file is bind-mounted, so its inode stays)
//! whenever one joins or leaves. A container started later is found too.

use super::config::{Network, Networks};
use super::state::{self, Attachment};
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::path::PathBuf;

/// Where the peers section starts; everything above is the container's own.
pub const MARKER: &str = "# containers on the same networks (kept current by berth)";

/// The peers lines of a container's hosts file.
fn peer_lines(me: &str, networks: &[(Network, Vec<Attachment>)]) -> String {
    let mut lines = String::new();
    for (net, atts) in networks {
        if !net.dns_enabled || !atts.iter().any(|a| a.container_id == me) {
            continue;
        }
        for a in atts.iter().filter(|a| a.container_id != me) {
            let mut names = vec![
                a.name.clone(),
                a.container_id[..12.min(a.container_id.len())].to_string(),
            ];
            names.extend(a.aliases.iter().cloned());
            lines.push_str(&format!("{}\t{}\n", a.ip, names.join(" ")));
        }
    }
    lines
}

/// Rewrites a hosts file in place (it is bind-mounted: the inode stays)
/// from its own part and its peers section; either is kept when None.
fn rewrite(path: &std::path::Path, own: Option<&str>, peers: Option<&str>) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path)?;
    let (old_own, old_peers) = old.split_once(MARKER).unwrap_or((&old, ""));
    let own = own.unwrap_or(old_own).trim_end();
    let peers = peers.unwrap_or(old_peers.trim_start_matches('\n'));
    let new = format!("{own}\n{MARKER}\n{peers}");
    if new == old {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(0)?;
    f.rewind()?;
    f.write_all(new.as_bytes())
}

/// Replaces the container's own lines (its address once it has one),
/// keeping the peers.
pub fn set_own(path: &std::path::Path, own: &str) -> std::io::Result<()> {
    rewrite(path, Some(own), None)
}

/// Brings every live container's hosts file up to date (call with the
/// network lock held, after a container joined or left).
pub fn refresh(nets: &Networks) {
    let all = state::all_live(nets);
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (_, atts) in &all {
        for a in atts {
            if let Some(f) = &a.hosts_file {
                files.insert(a.container_id.clone(), f.clone());
            }
        }
    }
    for (id, file) in files {
        let _ = rewrite(&file, None, Some(&peer_lines(&id, &all)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_listed_and_rewritten_in_place() {
        let net = Network {
            name: "n".into(),
            id: String::new(),
            driver: "bridge".into(),
            network_interface: "b".into(),
            created: String::new(),
            subnet: "10.0.0.0/24".into(),
            gateway: "10.0.0.1".into(),
            internal: false,
            labels: Default::default(),
            dns_enabled: true,
        };
        let att = |id: &str, name: &str, ip: &str| Attachment {
            container_id: id.repeat(12),
            name: name.into(),
            aliases: vec!["db".into()],
            ip: ip.parse().unwrap(),
            holder: crate::util::process::ProcessId::current().unwrap(),
            ports: vec![],
            hosts_file: None,
            host_interface: String::new(),
        };
        let all = vec![(
            net,
            vec![att("a", "web", "10.0.0.2"), att("b", "sql", "10.0.0.3")],
        )];
        let lines = peer_lines(&"a".repeat(12), &all);
        assert_eq!(lines, "10.0.0.3\tsql bbbbbbbbbbbb db\n");
        let p = std::env::temp_dir().join(format!("berth-hosts-{}", std::process::id()));
        std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&p).unwrap().ino();
        rewrite(&p, None, Some(&lines)).unwrap();
        rewrite(&p, None, Some("")).unwrap();
        rewrite(&p, None, Some(&lines)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            format!("127.0.0.1 localhost\n{MARKER}\n10.0.0.3\tsql bbbbbbbbbbbb db\n")
        );
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino, "same inode");
        // The own part changes (the container's address) and the peers stay.
        set_own(&p, "127.0.0.1 localhost\n10.0.0.2\tweb\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!(
                "127.0.0.1 localhost\n10.0.0.2\tweb\n{MARKER}\n10.0.0.3\tsql bbbbbbbbbbbb db\n"
            )
        );
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino, "same inode");
        std::fs::remove_file(&p).unwrap();
    }
}

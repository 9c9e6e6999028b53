//! The files a container gets in /etc from berth (hosts, hostname,
//! resolv.conf), written into its userdata dir and bound over the image's.

use super::request::RunOptions;
use std::path::{Path, PathBuf};

pub(super) fn write_etc_files(
    dir: &Path,
    hostname: &str,
    name: &str,
    network_host: bool,
    slirp: bool,
    o: &RunOptions,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let w = |p: &Path, s: &str| {
        std::fs::write(p, s)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let hosts = dir.join("hosts");
    if network_host {
        let host = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        w(&hosts, &host)?;
    } else {
        // With a bridge network, the own line gets the container's address at start.
        let mut text = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname} {name}\n");
        for h in &o.add_host {
            if let Some((n, ip)) = h.split_once(':') {
                text.push_str(&format!("{ip}\t{n}\n"));
            }
        }
        w(&hosts, &text)?;
    }
    let hn = dir.join("hostname");
    w(&hn, &format!("{hostname}\n"))?;
    let resolv = dir.join("resolv.conf");
    w(&resolv, &resolv_conf(o, slirp))?;
    Ok(vec![
        ("/etc/hosts".into(), hosts),
        ("/etc/hostname".into(), hn),
        ("/etc/resolv.conf".into(), resolv),
    ])
}

/// What /run/.containerenv says of a `--privileged` container (others get
/// an empty file, as in podman: a program may learn it runs in a
/// container, but not which).
pub(super) struct ContainerEnv<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub image: &'a str,
    pub image_id: &'a str,
    pub rootless: bool,
}

/// Writes the container's /run/.containerenv into its userdata dir and
/// returns its (destination, source) for the spec.
pub(super) fn container_env(
    dir: &Path,
    about: Option<ContainerEnv<'_>>,
) -> std::io::Result<(String, PathBuf)> {
    let text = match about {
        None => String::new(),
        Some(c) => format!(
            "engine=\"berth-{}\"\nname=\"{}\"\nid=\"{}\"\nimage=\"{}\"\nimageid=\"{}\"\nrootless={}\n",
            env!("CARGO_PKG_VERSION"),
            c.name,
            c.id,
            c.image,
            c.image_id,
            u8::from(c.rootless)
        ),
    };
    let p = dir.join("containerenv");
    std::fs::write(&p, text)?;
    Ok(("/run/.containerenv".into(), p))
}

/// The container's resolv.conf: --dns/--dns-search/--dns-option over the
/// host's (whose loopback resolvers cannot be reached from a container).
fn resolv_conf(o: &RunOptions, slirp: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut servers: Vec<String> = o.dns.clone();
    if servers.is_empty() && slirp {
        // slirp4netns answers there with the host's resolvers.
        servers.push("10.0.2.3".into());
    }
    if servers.is_empty() {
        servers = host
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .filter(|s| o.network.as_deref() == Some("host") || !s.starts_with("127."))
            .collect();
    }
    let mut out = String::new();
    let search: Vec<String> = if o.dns_search.is_empty() {
        host.lines()
            .filter_map(|l| l.strip_prefix("search"))
            .flat_map(|s| s.split_whitespace().map(String::from))
            .collect()
    } else {
        o.dns_search.iter().filter(|s| *s != ".").cloned().collect()
    };
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    for l in host.lines().filter(|l| l.starts_with("options")) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

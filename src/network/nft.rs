//! NAT for root networks, in nftables table `ip berth` of berth's own:
//! masquerade for traffic leaving each network, DNAT for published ports
//! (from other hosts and from the host itself; a port published on
//! 127.0.0.1 only for packets that arrive on `lo`, moby#41872), forwarding
//! into a network only for published ports, replies and its own
//! containers (moby#45610), and drops for `--internal` networks. The table is rebuilt whole from the
//! networks' state in one atomic `nft -f` transaction whenever it changes,
//! so it never drifts from what runs, and removing it is one command
//! (`nft delete table ip berth`). Host rules are never touched.

use super::config::Network;
use super::error::{io, NetworkError};
use super::state::Attachment;
use std::io::Write;
use std::process::{Command, Stdio};

/// The table's name.
pub const TABLE: &str = "berth";

/// The ruleset for these networks and their live attachments.
pub fn ruleset(networks: &[(Network, Vec<Attachment>)]) -> String {
    let mut post = String::new();
    let mut ports = String::new();
    let mut forward = String::new();
    for (net, atts) in networks {
        let (sub, br) = (&net.subnet, &net.network_interface);
        if net.internal {
            forward.push_str(&format!(
                "    iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop\n"
            ));
        } else {
            // ip_forward is on: a neighbour that routes the subnet through
            // this host must reach only published ports (DNAT), never a
            // container's other ports (moby#45610). Containers on the same
            // bridge, replies and the host itself (not forwarded) pass.
            forward.push_str(&format!(
                "    oifname \"{br}\" iifname \"{br}\" accept\n    oifname \"{br}\" ct state established,related accept\n    oifname \"{br}\" ct status dnat accept\n    oifname \"{br}\" drop\n"
            ));
            post.push_str(&format!(
                "    ip saddr {sub} ip daddr != {sub} masquerade\n"
            ));
        }
        // Connections the host makes to a published port on 127.0.0.1 reach
        // the container with the bridge's address as their source.
        post.push_str(&format!(
            "    ip saddr 127.0.0.0/8 oifname \"{br}\" masquerade\n"
        ));
        for a in atts {
            for p in &a.ports {
                let daddr = p
                    .host_ip
                    .map(|ip| format!("ip daddr {ip} "))
                    .unwrap_or_default();
                ports.push_str(&format!(
                    "    {daddr}{proto} dport {hp} dnat to {ip}:{cp}\n",
                    proto = p.protocol,
                    hp = p.host_port,
                    ip = a.ip,
                    cp = p.container_port
                ));
            }
        }
    }
    format!(
        "table ip {TABLE} {{
  chain ports {{
{ports}  }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname != \"lo\" ip daddr 127.0.0.0/8 return
    fib daddr type local jump ports
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
{post}  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
{forward}  }}
}}
"
    )
}

/// Replaces berth's table with `rules` in one transaction.
pub fn apply(rules: &str) -> Result<(), NetworkError> {
    // Declaring the table first makes the delete valid when it is absent.
    let script = format!("table ip {TABLE}\ndelete table ip {TABLE}\n{rules}");
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(
            "running nft (root networks need nftables: apt-get install nftables)",
        ))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(io("writing to nft"))?;
    let out = child.wait_with_output().map_err(io("running nft"))?;
    if !out.status.success() {
        return Err(NetworkError::Helper {
            tool: "nft (berth's rules)",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Removes berth's table (nothing runs on a network any more).
pub fn remove() {
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", TABLE])
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::parse;

    #[test]
    fn rules_for_networks_and_ports() {
        let net = Network {
            name: "berth".into(),
            id: String::new(),
            driver: "bridge".into(),
            network_interface: "berth0".into(),
            created: String::new(),
            subnet: "10.88.0.0/16".into(),
            gateway: "10.88.0.1".into(),
            internal: false,
            labels: Default::default(),
            dns_enabled: false,
        };
        let mut internal = net.clone();
        internal.internal = true;
        internal.network_interface = "berth1".into();
        internal.subnet = "10.89.1.0/24".into();
        let a = Attachment {
            container_id: "c".into(),
            name: "web".into(),
            aliases: vec![],
            ip: "10.88.0.2".parse().unwrap(),
            holder: crate::util::process::ProcessId::current().unwrap(),
            ports: parse("127.0.0.1:8080:80").unwrap(),
            hosts_file: None,
            host_interface: String::new(),
        };
        let r = ruleset(&[(net, vec![a]), (internal, vec![])]);
        assert!(
            r.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.88.0.2:80"),
            "{r}"
        );
        assert!(r.contains("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade"));
        assert!(
            !r.contains("ip saddr 10.89.1.0/24 ip daddr"),
            "internal: no NAT out"
        );
        assert!(r.contains("iifname \"berth1\" oifname != \"berth1\" drop"));
        assert!(r.contains("iifname != \"lo\" ip daddr 127.0.0.0/8 return"));
        assert!(r.contains("oifname \"berth0\" ct status dnat accept\n    oifname \"berth0\" drop"));
    }
}

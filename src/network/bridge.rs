//! Root networks: a Linux bridge per network on the host, a veth pair per
//! container (its end moved into the container's network namespace as
//! eth0, eth1, ...), addresses from the network's state, a default route
//! via the bridge, then NAT rules and peers' hosts files brought up to
//! date. The veth pair disappears with the container's network namespace,
//! so a killed berth leaves no interface behind; its addresses and ports
//! are freed by the next change (dead holders are dropped).

use super::config::{Network, Networks};
use super::error::{io, NetworkError};
use super::netlink::Netlink;
use super::ports::PortMapping;
use super::rootless_netns;
use super::state::{self, Attachment};
use crate::util::process::ProcessId;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// One network a container joins.
#[derive(Clone, Debug)]
pub struct Join {
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
}

/// What to connect.
pub struct Request<'a> {
    pub container_id: &'a str,
    pub name: &'a str,
    pub joins: &'a [Join],
    /// Published ports (host ports already reserved); they lead to the
    /// container's address on the first network.
    pub ports: &'a [PortMapping],
    pub hosts_file: Option<PathBuf>,
    /// The process the attachments live with (None: this one).
    pub holder: Option<ProcessId>,
    /// Index of the first new interface (eth0, or ethN for `network connect`).
    pub first_interface: usize,
}

fn sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == value => Ok(()),
        _ => std::fs::write(path, value).map_err(io(format!("setting {path}"))),
    }
}

/// Creates the network's bridge if missing; returns its index.
fn ensure_bridge(nl: &mut Netlink, net: &Network) -> Result<u32, NetworkError> {
    let br = &net.network_interface;
    if let Some(i) = nl.link_index(br)? {
        return Ok(i);
    }
    match nl.create_bridge(br) {
        Ok(()) => {}
        Err(e) if e.errno() == Some(libc::EEXIST) => {}
        Err(e) => {
            return Err(NetworkError::Helper {
                tool: "the kernel (root networks need the bridge and veth modules)",
                detail: e.to_string(),
            })
        }
    }
    let idx = nl.link_index(br)?.ok_or(NetworkError::Gone(
        "the bridge vanished after it was created",
    ))?;
    let subnet = net.subnet()?;
    nl.add_address(idx, net.gateway(), subnet.prefix)?;
    nl.set_up(idx, None)?;
    // Published ports on 127.0.0.1 are DNATed onto the bridge.
    sysctl(&format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"), "1")?;
    Ok(idx)
}

/// The host end's name: unique per container and network, ≤ 15 bytes.
pub fn host_end(id: &str, i: usize) -> String {
    format!("vb{}{i}", &id[..10.min(id.len())])
}

/// Runs `f` where the store's bridges are: the host's network namespace
/// (root) or the rootless one (started when `start` is set; skipped when
/// it does not exist). Afterwards a rootless namespace nobody uses stops.
fn at_bridges<T: Send + Default>(
    nets: &Networks,
    start: bool,
    f: impl FnOnce() -> Result<T, NetworkError> + Send,
) -> Result<T, NetworkError> {
    if !rootless_netns::rootless() {
        return f();
    }
    let ns = if start {
        Some(rootless_netns::ensure(nets)?)
    } else {
        rootless_netns::existing(nets)
    };
    let result = match ns {
        Some(ns) => rootless_netns::inside(&ns, f),
        None => Ok(T::default()),
    };
    rootless_netns::stop_if_unused(nets);
    result
}

/// Connects the container whose first process is `pid`; returns its
/// attachments (address per network). Undone by `disconnect`.
pub fn connect(
    nets: &Networks,
    r: &Request<'_>,
    pid: i32,
) -> Result<Vec<Attachment>, NetworkError> {
    let netns: OwnedFd = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(io("opening the container's network namespace"))?
        .into();
    let _lock = state::lock(nets)?;
    at_bridges(nets, true, || connect_here(nets, r, &netns))
}

fn connect_here(
    nets: &Networks,
    r: &Request<'_>,
    netns: &OwnedFd,
) -> Result<Vec<Attachment>, NetworkError> {
    let mut nl = Netlink::open()?;
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    let holder = match r.holder {
        Some(h) => h,
        None => ProcessId::current().ok_or(NetworkError::Gone("reading berth's own process id"))?,
    };
    let mut made = Vec::new();
    for (k, j) in r.joins.iter().enumerate() {
        let i = r.first_interface + k;
        let net = nets.get(&j.network)?;
        let mut live = state::load(nets, &net.name);
        let ip = state::allocate(&net, &live, j.ip)?;
        let bridge = ensure_bridge(&mut nl, &net)?;
        let host = host_end(r.container_id, i);
        let peer = format!("eth{i}");
        nl.create_veth(&host, &peer, Some(mac_for(ip)), netns.as_raw_fd())?;
        let hidx = nl
            .link_index(&host)?
            .ok_or(NetworkError::Gone("the container's veth vanished"))?;
        nl.set_up(hidx, Some(bridge))?;
        let prefix = net.subnet()?.prefix;
        let (gw, route) = (net.gateway(), i == 0 && !net.internal);
        rootless_netns::inside(netns, || {
            let mut inner = Netlink::open()?;
            let idx = inner.link_index(&peer)?.ok_or(NetworkError::Gone(
                "the veth's end is missing in the container",
            ))?;
            inner.add_address(idx, ip, prefix)?;
            // Announce the address when the link comes up: peers that
            // still hold a removed container's MAC for it (addresses are
            // reused) update at once instead of after up to a minute.
            let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{peer}/arp_notify"), "1");
            inner.set_up(idx, None)?;
            // podman's default: ping works without CAP_NET_RAW (ICMP sockets).
            let _ = std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
            if route {
                inner.add_default_route(gw)?;
            }
            Ok(())
        })?;
        let a = Attachment {
            container_id: r.container_id.into(),
            name: r.name.into(),
            aliases: j.aliases.clone(),
            ip,
            holder,
            ports: if i == 0 { r.ports.to_vec() } else { Vec::new() },
            hosts_file: r.hosts_file.clone(),
            host_interface: host,
        };
        live.retain(|x| x.container_id != r.container_id);
        live.push(a.clone());
        state::save(nets, &net.name, &live)?;
        made.push(a);
    }
    sync_rules(nets)?;
    super::hosts::refresh(nets);
    Ok(made)
}

/// The container end's MAC, made from its address as docker makes it
/// (02:42 and the four octets): a peer that still holds a removed
/// container's entry for a reused address reaches the new one at once
/// (a gratuitous ARP within a second of the last use is ignored, so the
/// announcement alone does not always help).
fn mac_for(ip: std::net::Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Removes a network's bridge (root) and state; its rules go too.
pub fn remove_bridge(nets: &Networks, net: &Network) -> Result<(), NetworkError> {
    let _lock = state::lock(nets)?;
    let _ = std::fs::remove_file(nets.dir().join(format!("{}.state.json", net.name)));
    at_bridges(nets, false, || {
        if let Ok(mut nl) = Netlink::open() {
            if let Ok(Some(idx)) = nl.link_index(&net.network_interface) {
                nl.delete_link(idx)?;
            }
        }
        // Rules are rebuilt without it once the definition is gone; do it
        // now for the networks that remain.
        let all: Vec<_> = state::all_live(nets)
            .into_iter()
            .filter(|(n, _)| n.name != net.name)
            .collect();
        super::nft::apply(&super::nft::ruleset(&all))
    })
}

/// Takes a container off one network (`network disconnect`): its veth
/// pair is deleted and the network's state updated.
pub fn disconnect_one(
    nets: &Networks,
    container_id: &str,
    network: &str,
) -> Result<(), NetworkError> {
    let _lock = state::lock(nets)?;
    let live = state::load(nets, network);
    let (gone, kept): (Vec<Attachment>, Vec<Attachment>) = live
        .into_iter()
        .partition(|a| a.container_id == container_id);
    state::save(nets, network, &kept)?;
    at_bridges(nets, false, || {
        let mut nl = Netlink::open()?;
        for a in &gone {
            if let Ok(Some(idx)) = nl.link_index(&a.host_interface) {
                nl.delete_link(idx)?;
            }
        }
        sync_rules(nets)
    })?;
    super::hosts::refresh(nets);
    Ok(())
}

/// Forgets a container's attachments and brings NAT rules and peers'
/// hosts files up to date. Its veth pairs go with its network namespace.
pub fn disconnect(nets: &Networks, container_id: &str, interfaces: &[String]) {
    let Ok(_lock) = state::lock(nets) else { return };
    for net in nets.list() {
        let live = state::load(nets, &net.name);
        if live.iter().any(|a| a.container_id == container_id) {
            let kept: Vec<Attachment> = live
                .into_iter()
                .filter(|a| a.container_id != container_id)
                .collect();
            let _ = state::save(nets, &net.name, &kept);
        }
    }
    // Normally gone already; a process that outlived the container (or a
    // kept network namespace) would keep them.
    let _ = at_bridges(nets, false, || {
        if let Ok(mut nl) = Netlink::open() {
            for i in interfaces {
                if let Ok(Some(idx)) = nl.link_index(i) {
                    let _ = nl.delete_link(idx);
                }
            }
        }
        sync_rules(nets)
    });
    super::hosts::refresh(nets);
}

/// Applies the NAT table when what it should hold changed (the last
/// applied ruleset is remembered in the runtime dir of the store).
fn sync_rules(nets: &Networks) -> Result<(), NetworkError> {
    let all = state::all_live(nets);
    let wanted = super::nft::ruleset(&all);
    let stamp = nets.dir().join("nft.applied");
    // (Asked over netlink: /sys shows the host's interfaces even from
    // the rootless network namespace.)
    let mut nl = Netlink::open()?;
    let bridges_up = all
        .iter()
        .all(|(n, a)| a.is_empty() || matches!(nl.link_index(&n.network_interface), Ok(Some(_))));
    if bridges_up && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && table_present() {
        return Ok(());
    }
    super::nft::apply(&wanted)?;
    let _ = std::fs::write(&stamp, &wanted);
    Ok(())
}

/// Whether berth's table exists (it does not after a reboot or a flush).
fn table_present() -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "ip", super::nft::TABLE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

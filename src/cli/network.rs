//! `berth network ...` (podman's network commands) and `berth port`.

use super::format::columns;
use super::{CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::netsetup;
use crate::engine::record::NetworkRequest;
use crate::engine::Engine;
use crate::network::config::{Network, Networks, DEFAULT_NETWORK};
use crate::network::NetworkError;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `berth network ...`
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a bridge network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON
    Inspect(InspectArgs),
    /// Remove networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove networks no container uses
    Prune(PruneArgs),
    /// Join a container to a network
    Connect(ConnectArgs),
    /// Take a container off a network
    Disconnect(DisconnectArgs),
    /// Whether a network exists (exit 0 if it does, 1 if not)
    Exists(ExistsArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: Option<String>,
    /// IPv4 subnet in CIDR form (default: a free 10.89.N.0/24)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first address)
    #[arg(long)]
    pub gateway: Option<String>,
    /// No route out of the network
    #[arg(long)]
    pub internal: bool,
    /// KEY=VALUE
    #[arg(long)]
    pub label: Vec<String>,
    /// Driver (bridge only)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Do nothing if it exists
    #[arg(long)]
    pub ignore: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(short, long)]
    pub quiet: bool,
    /// name=, label=, driver=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// json, table, or a template such as {{.Name}}
    #[arg(long)]
    pub format: Option<String>,
    /// Leave out the header row
    #[arg(long, alias = "noheading", short = 'n')]
    pub no_heading: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub names: Vec<String>,
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    pub names: Vec<String>,
    /// Remove the containers using it first
    #[arg(short, long)]
    pub force: bool,
    /// With -f: seconds to wait after the stop signal before killing those containers
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask (berth never asks; kept for podman compatibility)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    pub network: String,
    pub container: String,
    #[arg(long)]
    pub alias: Vec<String>,
    #[arg(long)]
    pub ip: Option<String>,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    pub network: String,
    pub container: String,
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ExistsArgs {
    pub name: String,
}

/// `berth port`
#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: Option<String>,
    /// PRIVATE_PORT[/PROTO] to show
    pub port: Option<String>,
    /// Every running container
    #[arg(short, long)]
    pub all: bool,
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::with_code(e.to_string(), 125)
}

fn users(cs: &Containers, name: &str) -> Vec<crate::engine::container::ContainerRecord> {
    cs.list()
        .into_iter()
        .filter(|c| c.net.mode == "bridge" && c.net.networks.iter().any(|n| n.name == name))
        .collect()
}

fn value(n: &Network, cs: &Containers) -> Value {
    let mut containers = serde_json::Map::new();
    for c in users(cs, &n.name).iter().filter(|c| c.is_running()) {
        let ip = c
            .net
            .addresses
            .iter()
            .find(|(net, _)| net == &n.name)
            .map(|(_, ip)| ip.to_string())
            .unwrap_or_default();
        containers.insert(c.id.clone(), json!({"name": c.name, "ip": ip}));
    }
    json!({
        "name": n.name,
        "id": n.id,
        "driver": n.driver,
        "network_interface": n.network_interface,
        "created": n.created,
        "subnets": [{"subnet": n.subnet, "gateway": n.gateway}],
        "ipv6_enabled": false,
        "internal": n.internal,
        "dns_enabled": n.dns_enabled,
        "labels": n.labels,
        "ipam_options": {"driver": "host-local"},
        "containers": containers,
    })
}

fn rootless_refusal(engine: &Engine) -> Result<(), Failure> {
    if engine.paths.rootless {
        return Err(Failure::with_code(
            "rootless containers cannot join bridge networks on this version of berth: they use pasta (--network pasta, the default)",
            125,
        ));
    }
    Ok(())
}

/// Dispatches `berth network ...`.
pub fn network(engine: &Engine, c: NetworkCommand) -> CliResult {
    let nets = Networks::new(engine.store.root());
    let cs = Containers::new(engine.store.root());
    match c {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                return Err(fail(format!(
                    "unsupported network driver {:?}: berth has the bridge driver only",
                    a.driver
                )));
            }
            let name = match a.name {
                Some(n) => n,
                None => (1..)
                    .map(|i| format!("berth{i}"))
                    .find(|n| nets.get(n).is_err())
                    .expect("a free name"),
            };
            let labels = crate::engine::volumes::pairs(&a.label);
            match nets.create(
                &name,
                a.subnet.as_deref(),
                a.gateway.as_deref(),
                a.internal,
                labels,
            ) {
                Ok(n) => println!("{}", n.name),
                Err(crate::network::config::ConfigError::Exists(_)) if a.ignore => {
                    println!("{name}")
                }
                Err(e) => return Err(fail(e)),
            }
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let mut list = nets.list();
            for f in &a.filter {
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| fail(format!("invalid filter {f:?}: expected KEY=VALUE")))?;
                match k {
                    "name" => list.retain(|n| n.name.contains(v)),
                    "driver" => list.retain(|n| n.driver == v),
                    "label" => list.retain(|n| match v.split_once('=') {
                        Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                        None => n.labels.contains_key(v),
                    }),
                    other => {
                        return Err(fail(format!(
                            "invalid filter {other:?}: use name=, driver=, label="
                        )))
                    }
                }
            }
            if a.quiet {
                for n in &list {
                    println!("{}", n.name);
                }
                return Ok(0);
            }
            let values: Vec<Value> = list.iter().map(|n| value(n, &cs)).collect();
            match a.format.as_deref() {
                Some("json") => {
                    println!("{}", serde_json::to_string_pretty(&values).expect("json"))
                }
                Some(t) if t != "table" => {
                    // podman's template fields are capitalised.
                    let caps: Vec<Value> = list
                        .iter()
                        .map(|n| json!({"Name": n.name, "ID": &n.id[..12], "Driver": n.driver, "Subnets": n.subnet, "Internal": n.internal}))
                        .collect();
                    print!("{}", super::format::template_table(t, &caps, a.no_heading)?)
                }
                _ => {
                    let mut rows = Vec::new();
                    if !a.no_heading {
                        rows.push(vec![
                            "NETWORK ID".to_string(),
                            "NAME".into(),
                            "DRIVER".into(),
                        ]);
                    }
                    rows.extend(
                        list.iter().map(|n| {
                            vec![n.id[..12].to_string(), n.name.clone(), n.driver.clone()]
                        }),
                    );
                    print!("{}", columns(&rows));
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            if a.names.is_empty() {
                return Err(fail("network inspect needs a network name"));
            }
            let mut out = Vec::new();
            for n in &a.names {
                out.push(value(&nets.get(n).map_err(fail)?, &cs));
            }
            super::format::print_inspect(&out, a.format.as_deref())?;
            Ok(0)
        }
        NetworkCommand::Rm(a) => {
            let mut code = 0;
            for name in &a.names {
                if name == DEFAULT_NETWORK {
                    eprintln!("Error: the default network {DEFAULT_NETWORK:?} cannot be removed");
                    code = 125;
                    continue;
                }
                if let Err(e) = nets.get(name) {
                    eprintln!("Error: {e}");
                    code = code.max(1);
                    continue;
                }
                let using = users(&cs, name);
                if !using.is_empty() && !a.force {
                    let names: Vec<String> = using.iter().map(|c| c.name.clone()).collect();
                    eprintln!(
                        "Error: network {name:?} is being used by container(s) {}: remove them first, or use -f",
                        names.join(", ")
                    );
                    code = 125;
                    continue;
                }
                for c in using {
                    let o = crate::engine::lifecycle::RemoveOptions {
                        force: true,
                        stop_timeout: a.time,
                        ..Default::default()
                    };
                    crate::engine::lifecycle::remove(&cs, &c.id, o)?;
                }
                remove_network(&nets, name).map_err(fail)?;
                println!("{name}");
            }
            Ok(code)
        }
        NetworkCommand::Prune(_) => {
            for n in nets.list() {
                if n.name != DEFAULT_NETWORK && users(&cs, &n.name).is_empty() {
                    remove_network(&nets, &n.name).map_err(fail)?;
                    println!("{}", n.name);
                }
            }
            Ok(0)
        }
        NetworkCommand::Connect(a) => {
            rootless_refusal(engine)?;
            nets.get(&a.network).map_err(fail)?;
            let c = cs.find(&a.container)?;
            let req = NetworkRequest {
                name: a.network.clone(),
                aliases: a.alias.clone(),
                ip: a
                    .ip
                    .as_deref()
                    .map(|i| i.parse().map_err(|_| fail(format!("invalid --ip {i:?}"))))
                    .transpose()?,
            };
            netsetup::connect(engine.store.root(), &cs, &c.id, req)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            rootless_refusal(engine)?;
            let c = cs.find(&a.container)?;
            netsetup::disconnect(engine.store.root(), &cs, &c.id, &a.network)?;
            Ok(0)
        }
        NetworkCommand::Exists(a) => Ok(if nets.get(&a.name).is_ok() { 0 } else { 1 }),
    }
}

/// Removes a network's definition, state and (root) bridge.
fn remove_network(nets: &Networks, name: &str) -> Result<(), NetworkError> {
    let n = nets.get(name)?;
    crate::network::bridge::remove_bridge(nets, &n)?;
    Ok(nets.remove(name)?)
}

/// Lists a container's published ports, as podman's `port`.
pub fn port(engine: &Engine, a: PortArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    let list = if a.all {
        cs.list().into_iter().filter(|c| c.is_running()).collect()
    } else {
        let name = a
            .container
            .as_deref()
            .ok_or_else(|| fail("port needs a container name (or --all)"))?;
        vec![cs.find(name)?]
    };
    let want = a.port.as_deref().map(|p| {
        let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (n.to_string(), proto.to_string())
    });
    for c in list {
        if !c.is_running() {
            continue;
        }
        for p in &c.net.published {
            let host = format!(
                "{}:{}",
                p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                p.host_port
            );
            match &want {
                Some((n, proto)) if *n == p.container_port.to_string() && *proto == p.protocol => {
                    println!("{host}")
                }
                Some(_) => {}
                None if a.all => println!(
                    "{}\t{}/{} -> {host}",
                    &c.id[..12],
                    p.container_port,
                    p.protocol
                ),
                None => println!("{}/{} -> {host}", p.container_port, p.protocol),
            }
        }
    }
    Ok(0)
}

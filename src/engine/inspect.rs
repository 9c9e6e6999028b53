//! The JSON `berth inspect` prints for a container, with podman's field
//! names (State.Status, State.Running, State.Pid, State.ExitCode,
//! State.OOMKilled, Config, HostConfig, Mounts, ...).

use super::container::{ContainerRecord, Containers};
use serde_json::{json, Value};

/// The status podman would show: running only while the monitor lives.
pub fn status(r: &ContainerRecord) -> &'static str {
    r.status().as_str()
}

/// podman-compatible inspect document for one container.
pub fn container_json(containers: &Containers, r: &ContainerRecord) -> Value {
    let dir = containers.dir(&r.id);
    let spec: Option<oci_spec::runtime::Spec> = std::fs::read(dir.join("userdata/config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok());
    let spec_json: Value = spec
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let process = &spec_json["process"];
    let resources = &spec_json["linux"]["resources"];
    let running = r.is_running();
    // The user's mounts (-v, --mount, --tmpfs), as podman lists them.
    let mounts: Vec<Value> = r
        .mounts
        .iter()
        .map(|m| {
            // A volume is a bind of ROOT/volumes/NAME/_data.
            let p = std::path::Path::new(&m.source);
            let volume = (p.file_name().is_some_and(|n| n == "_data")
                && p.parent()
                    .and_then(|d| d.parent())
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n == "volumes"))
            .then(|| p.parent().and_then(|d| d.file_name()))
            .flatten()
            .map(|n| n.to_string_lossy().into_owned());
            let opts: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| *o != crate::runtime::plan::COPY_UP)
                .collect();
            json!({
                "Type": if volume.is_some() { "volume" } else { m.kind.as_str() },
                "Name": volume.unwrap_or_default(),
                "Source": m.source,
                "Destination": m.destination,
                "Mode": "",
                "RW": !opts.contains(&"ro"),
                "Propagation": "rprivate",
                "Options": opts,
            })
        })
        .collect();
    let args: Vec<String> = r.command.clone();
    let caps = process["capabilities"]["bounding"].clone();
    let nano_cpus = resources["cpu"]["quota"]
        .as_i64()
        .map(|q| q * 10_000)
        .unwrap_or(0);
    let network = match r.net.mode.as_str() {
        "" => match spec_json["linux"]["namespaces"].as_array() {
            Some(ns) if ns.iter().any(|n| n["type"] == "network") => "private".to_string(),
            _ => "host".to_string(),
        },
        "bridge" => r
            .net
            .networks
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
            .join(","),
        m => m.to_string(),
    };
    // podman's Ports map: "80/tcp" -> [{HostIp, HostPort}].
    let mut ports = serde_json::Map::new();
    for p in r.net.published.iter().filter(|_| running) {
        let e = ports
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    // Every network it is on; the address only while it runs, as podman.
    let mut networks = serde_json::Map::new();
    for n in &r.net.networks {
        let ip = r
            .net
            .addresses
            .iter()
            .find(|(name, _)| *name == n.name)
            .filter(|_| running)
            .map(|(_, ip)| ip.to_string())
            .unwrap_or_default();
        networks.insert(
            n.name.clone(),
            json!({"IPAddress": ip, "Aliases": n.aliases}),
        );
    }
    let first_ip = r
        .net
        .addresses
        .first()
        .filter(|_| running)
        .map(|(_, ip)| ip.to_string())
        .unwrap_or_default();
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "OciVersion": spec_json["ociVersion"],
            "Status": status(r),
            "Running": running,
            "Paused": r.status() == super::record::State::Paused,
            "Restarting": false,
            "StoppedByUser": r.stopped_by_user,
            "OOMKilled": r.oom_killed,
            "Dead": false,
            "Pid": if running { r.pid.unwrap_or(0) } else { 0 },
            "ConmonPid": if running { r.monitor.map(|m| m.pid).unwrap_or(0) } else { 0 },
            "ExitCode": r.exit_code.unwrap_or(0),
            "Error": "",
            "StartedAt": r.started_at.clone().unwrap_or_default(),
            "FinishedAt": r.finished_at.clone().unwrap_or_default(),
        },
        "Image": r.image_id,
        "ImageName": r.image,
        "ImageDigest": r.image_digest,
        "Rootfs": "",
        "NetworkSettings": {
            "IPAddress": first_ip,
            "Ports": ports,
            "Networks": networks,
        },
        "ResolvConfPath": dir.join("userdata/resolv.conf"),
        "HostnamePath": dir.join("userdata/hostname"),
        "HostsPath": dir.join("userdata/hosts"),
        "LogPath": dir.join("userdata/ctr.log"),
        "Name": r.name,
        "RestartCount": r.restart_count,
        "Driver": "overlay",
        "Mounts": mounts,
        "Config": {
            "Hostname": spec_json["hostname"],
            "User": format!("{}:{}", process["user"]["uid"], process["user"]["gid"]),
            "Env": process["env"],
            "Cmd": args,
            "Image": r.image,
            "WorkingDir": process["cwd"],
            "Tty": process["terminal"],
            "StopSignal": r.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
            "StopTimeout": r.stop_timeout.unwrap_or(10),
            "Labels": r.labels,
            "Annotations": spec_json["annotations"],
        },
        "HostConfig": {
            "Memory": resources["memory"]["limit"].as_i64().unwrap_or(0),
            "NanoCpus": nano_cpus,
            "PidsLimit": resources["pids"]["limit"].as_i64().unwrap_or(0),
            "CapAdd": caps,
            "Privileged": false,
            "NetworkMode": network,
            "AutoRemove": r.remove,
            "ReadonlyRootfs": spec_json["root"]["readonly"],
            "CgroupParent": r.cgroup.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
            "LogConfig": log_config(r, &dir),
        },
    })
}

/// HostConfig.LogConfig as podman shows it: the driver as given, the log
/// file (none without a log) and the rotation size in podman's units.
fn log_config(r: &ContainerRecord, dir: &std::path::Path) -> serde_json::Value {
    let driver = r.log_driver.clone().unwrap_or_else(|| "k8s-file".into());
    let path = match driver.as_str() {
        "none" | "passthrough" => String::new(),
        _ => dir.join("userdata/ctr.log").display().to_string(),
    };
    let size = r
        .log_max_size
        .map(crate::util::human::size_compact)
        .unwrap_or_else(|| "0B".into());
    json!({"Type": driver, "Path": path, "Size": size})
}

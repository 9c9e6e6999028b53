//! Networks, published ports and name resolution, as root (a bridge and
//! veth pairs, NAT in berth's own nftables table) and as an unprivileged
//! user (pasta). Every test runs in a network namespace of its own, so
//! host interfaces and rules are never changed and no traffic leaves.

mod common;

use common::http::{eventually, fetch, fetch_eventually, get};
use common::{busybox_image, As, Env, NETNS_HOST_IP};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A web root on the host, readable by the test user, for busybox httpd.
fn web_root(env: &Env, text: &str) -> String {
    let dir = env.dir.path().join("home/www");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), text).unwrap();
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(env.dir.path().join("home"))
        .status();
    dir.display().to_string()
}

/// A listener held by another program in the test namespace.
fn squat(env: &Env, port: u16) -> Child {
    let c = env
        .in_netns(&["/bin/busybox", "nc", "-l", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c
}

fn published_ports(env: &Env) {
    let img = busybox_image(env);
    let www = web_root(env, "hello from berth\n");
    let vol = format!("{www}:/www:ro");
    let id = env
        .berth(&[
            "run", "-d", "--name", "web", "-p", "8080:80", "-v", &vol, img, "httpd", "-f", "-p",
            "80", "-h", "/www",
        ])
        .ok()
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    // From the host itself (loopback) and on the namespace's own address.
    assert_eq!(
        fetch_eventually(env, "http://127.0.0.1:8080/"),
        "hello from berth\n"
    );
    assert_eq!(
        fetch_eventually(env, &format!("http://{NETNS_HOST_IP}:8080/")),
        "hello from berth\n"
    );
    let ps = env.berth(&["ps"]);
    assert!(
        ps.ok().contains("0.0.0.0:8080->80/tcp"),
        "PORTS column: {}",
        ps.stdout
    );
    assert_eq!(env.berth(&["port", "web"]).ok(), "80/tcp -> 0.0.0.0:8080\n");
    assert_eq!(env.berth(&["port", "web", "80"]).ok(), "0.0.0.0:8080\n");
    // The same port again: refused at start (126, as podman), naming the holder.
    env.berth(&["run", "--name", "clash", "-p", "8080:80", img, "true"])
        .fails(126, "already published by container web");
    let mut nc = squat(env, 9099);
    let r = env.berth(&["run", "--name", "busy", "-p", "9099:80", img, "true"]);
    r.fails(126, "port 9099/tcp is already in use");
    if env.who == As::Root {
        // (Rootless berth cannot look into the processes of other users' namespaces.)
        assert!(
            r.stderr.contains("by pid") && r.stderr.contains("busybox"),
            "names the holder: {}",
            r.stderr
        );
    }
    let _ = nc.kill();
    let _ = nc.wait();
    assert!(!env.berth(&["ps", "-a"]).ok().contains("clash"));
    assert!(!env.berth(&["ps", "-a"]).ok().contains("busy "));
    // Removing the container releases the port and every rule.
    env.berth(&["rm", "-f", "web"]).ok();
    assert!(fetch(env, "http://127.0.0.1:8080/").is_none());
    let nc = squat(env, 8080);
    let mut nc = nc;
    assert!(nc.try_wait().unwrap().is_none(), "port 8080 is free again");
    let _ = nc.kill();
    let _ = nc.wait();
    // -P publishes the image's EXPOSE ports on free host ports.
    env.berth(&[
        "run", "-d", "--name", "any", "-P", "-v", &vol, "exposed", "httpd", "-f", "-p", "80", "-h",
        "/www",
    ])
    .ok();
    let mapping = env
        .berth(&["port", "any", "80/tcp"])
        .ok()
        .trim()
        .to_string();
    let port = mapping.rsplit(':').next().unwrap();
    assert!(port.parse::<u16>().unwrap() > 0, "{mapping}");
    assert_eq!(
        fetch_eventually(env, &format!("http://127.0.0.1:{port}/")),
        "hello from berth\n"
    );
    env.berth(&["rm", "-f", "any"]).ok();
    env.berth(&["run", "--rm", "-p", "70000:80", img, "true"])
        .fails(125, "invalid -p");
    // With no network of its own, podman drops the ports and says so.
    let none = env.berth(&["run", "--rm", "--network", "none", "-p", "80", img, "true"]);
    none.ok();
    assert!(
        none.stderr.contains("Port mappings have been discarded"),
        "{}",
        none.stderr
    );
}

fn exposed_image(env: &Env) {
    let tar = env.dir.path().join("home/busybox.tar");
    env.berth(&[
        "import",
        "-q",
        "-c",
        "EXPOSE 80",
        "-c",
        "CMD [\"/bin/sh\"]",
        tar.to_str().unwrap(),
        "exposed",
    ])
    .ok();
}

#[test]
fn published_ports_as_root() {
    let env = Env::networked(As::Root, "published_ports_as_root").unwrap();
    busybox_image(&env);
    exposed_image(&env);
    published_ports(&env);
    // Nothing is left in berth's table once the containers are gone.
    let rules = env
        .in_netns(&["nft", "list", "table", "ip", "berth"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains("dnat to"), "{rules}");
    assert!(
        rules.contains("masquerade"),
        "the network's NAT stays: {rules}"
    );
}

/// A networked env for the test user, or None (a skip) when pasta cannot
/// run for users here.
fn rootless_networked(test: &str) -> Option<Env> {
    if let Err(why) = common::tun_usable_by_users() {
        common::skip(test, &why);
        return None;
    }
    Env::networked(As::User, test)
}

#[test]
fn published_ports_rootless() {
    let Some(env) = rootless_networked("published_ports_rootless") else {
        return;
    };
    busybox_image(&env);
    exposed_image(&env);
    published_ports(&env);
    let pastas = || {
        let out = std::process::Command::new("pgrep")
            .args(["-u", "berthtest", "-f", &env.store().display().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|p| {
                running(p.parse().unwrap_or(0))
                    && std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.starts_with("pasta") || c.starts_with("passt"))
            })
            .count()
    };
    assert_eq!(pastas(), 0, "pasta left running");
    // A monitor killed with -9 takes its pasta with it; rm frees the port.
    let www = web_root(&env, "k\n");
    let vol = format!("{www}:/www:ro");
    env.berth(&[
        "run", "-d", "--name", "k", "-p", "8181:80", "-v", &vol, "busybox", "httpd", "-f", "-p",
        "80", "-h", "/www",
    ])
    .ok();
    assert_eq!(fetch_eventually(&env, "http://127.0.0.1:8181/"), "k\n");
    assert_eq!(pastas(), 1);
    let mon: i32 = env
        .berth(&["inspect", "--format", "{{.State.ConmonPid}}", "k"])
        .ok()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: killing the test's own container monitor.
    unsafe { libc::kill(mon, libc::SIGKILL) };
    eventually("pasta outlived its monitor", 10, || {
        (pastas() == 0).then_some(()).ok_or_else(String::new)
    });
    env.berth(&["rm", "-f", "k"]).ok();
    assert!(fetch(&env, "http://127.0.0.1:8181/").is_none());
}

/// True while `pid` runs (zombies are gone: this machine's init reaps late).
fn running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn networks_rootless() {
    let Some(env) = rootless_networked("networks_rootless") else {
        return;
    };
    let img = busybox_image(&env);
    let www = web_root(&env, "rootless page\n");
    let vol = format!("{www}:/www:ro");
    env.berth(&["network", "create", "front"]).ok();
    let web = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "front"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", &vol, img, "httpd", "-f", "-p", "80", "-h", "/www"]);
        env.berth(&args).ok();
    };
    web("db", &["--network-alias", "sql", "-p", "8088:80"]);
    // By name and by alias, from a container started after it.
    let both = format!("{} && {}", get("db", 80), get("sql", 80));
    let out = env.berth(&["run", "--rm", "--network", "front", img, "sh", "-c", &both]);
    assert_eq!(out.ok(), "rootless page\nrootless page\n");
    // A container started later is found by the earlier one.
    web("late", &[]);
    eventually("db never reached late by name", 30, || {
        let out = env.berth(&["exec", "db", "sh", "-c", &get("late", 80)]);
        (out.stdout == "rootless page\n")
            .then_some(())
            .ok_or(out.stderr)
    });
    // The published port, from the host (loopback and its address).
    assert_eq!(
        fetch_eventually(&env, "http://127.0.0.1:8088/"),
        "rootless page\n"
    );
    assert_eq!(
        fetch_eventually(&env, &format!("http://{NETNS_HOST_IP}:8088/")),
        "rootless page\n"
    );
    assert!(env.berth(&["ps"]).ok().contains("0.0.0.0:8088->80/tcp"));
    env.berth(&[
        "run",
        "--rm",
        "--network",
        "front",
        "-p",
        "53:53/udp",
        img,
        "true",
    ])
    .fails(125, "TCP ports only");
    // Outbound: through pasta, the gateway address is the host itself.
    let mut outside = env
        .in_netns(&[
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "127.0.0.1:8000",
            "-h",
            &www,
        ])
        .spawn()
        .unwrap();
    // (A first try may race httpd's start; pasta does not always pass the
    // refusal on, so each try is bounded.)
    let outbound = get("192.168.77.254", 8000).replace("| nc", "| timeout 5 nc");
    eventually("no way out through pasta", 20, || {
        let out = env.berth(&["exec", "db", "sh", "-c", &outbound]);
        (out.stdout == "rootless page\n")
            .then_some(())
            .ok_or(format!("{}{}", out.stdout, out.stderr))
    });
    let _ = outside.kill();
    let _ = outside.wait();
    // The namespace's holder lives while containers are attached ...
    let record = env.store().join("networks/rootless-netns.json");
    let holder: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).expect("a rootless netns")).unwrap();
    let pid = holder["holder"]["pid"].as_i64().unwrap();
    assert!(running(pid));
    env.berth(&["network", "rm", "front"])
        .fails(125, "being used by container(s)");
    env.berth(&["rm", "-f", "db", "late"]).ok();
    // ... and goes with the last, taking its pasta, bridges and rules along.
    assert!(fetch(&env, "http://127.0.0.1:8088/").is_none());
    eventually("the rootless netns holder stayed", 10, || {
        (!running(pid)).then_some(()).ok_or_else(String::new)
    });
    assert!(!record.exists());
    env.berth(&["network", "rm", "front"]).ok();
    assert!(common::mounts_under(&env.store()).is_empty());
}

#[test]
fn networks_names_and_isolation_as_root() {
    let env = Env::networked(As::Root, "networks_names_and_isolation_as_root").unwrap();
    let img = busybox_image(&env);
    let www = web_root(&env, "db page\n");
    let vol = format!("{www}:/www:ro");
    env.berth(&["network", "create", "--subnet", "10.77.0.0/24", "front"])
        .ok();
    env.berth(&["network", "create", "front"])
        .fails(125, "already exists");
    env.berth(&["network", "create", "--subnet", "10.77.0.128/25", "x"])
        .fails(125, "overlaps");
    env.berth(&["network", "create", "--subnet", "10.1.2/33", "y"])
        .fails(125, "invalid subnet");
    let ls = env.berth(&["network", "ls"]);
    assert!(
        ls.ok().starts_with("NETWORK ID") && ls.stdout.contains("front"),
        "{}",
        ls.stdout
    );
    env.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "front",
        "--network-alias",
        "sql",
        "--ip",
        "10.77.0.50",
        "-v",
        &vol,
        img,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    assert_eq!(
        env.berth(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "db"
        ])
        .ok()
        .trim(),
        "10.77.0.50"
    );
    // By name and by alias, from a container started after it.
    let both = format!("{} && {}", get("db", 80), get("sql", 80));
    let out = env.berth(&["run", "--rm", "--network", "front", img, "sh", "-c", &both]);
    assert_eq!(out.ok(), "db page\ndb page\n");
    // A container started later is found by the earlier one.
    env.berth(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "front",
        "-v",
        &vol,
        img,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    eventually("db never reached late by name", 30, || {
        let out = env.berth(&["exec", "db", "sh", "-c", &get("late", 80)]);
        let hosts = env.berth(&["exec", "db", "cat", "/etc/hosts"]).stdout;
        (out.stdout == "db page\n").then_some(()).ok_or(format!(
            "{}{}\n/etc/hosts:\n{hosts}",
            out.stdout, out.stderr
        ))
    });
    // Outbound traffic leaves through NAT: "the host" sees the bridge's
    // gateway side, not the container's private address.
    let mut outside = env
        .in_netns(&[
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            &format!("{NETNS_HOST_IP}:8000"),
            "-h",
            &www,
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        env.berth(&["run", "--rm", img, "sh", "-c", &get(NETNS_HOST_IP, 8000)])
            .ok(),
        "db page\n"
    );
    // --internal: no route out.
    env.berth(&["network", "create", "--internal", "inner"])
        .ok();
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "inner",
        img,
        "sh",
        "-c",
        &format!(
            "ip route; {} | grep -q page && echo REACHED",
            get(NETNS_HOST_IP, 8000)
        ),
    ]);
    assert!(
        !out.stdout.contains("default") && !out.stdout.contains("REACHED"),
        "{}",
        out.stdout
    );
    let _ = outside.kill();
    let _ = outside.wait();
    // --network none: loopback only.
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        img,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out.ok(), "lo\n");
    // container: shares another container's network namespace.
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        img,
        "sh",
        "-c",
        &get("127.0.0.1", 80),
    ]);
    assert_eq!(out.ok(), "db page\n");
    // connect / disconnect a running container.
    env.berth(&["network", "connect", "inner", "late"]).ok();
    let addrs = env
        .berth(&["exec", "late", "ip", "-4", "-o", "addr"])
        .ok()
        .to_string();
    assert!(addrs.contains("eth1"), "{addrs}");
    env.berth(&["network", "disconnect", "inner", "late"]).ok();
    let addrs = env
        .berth(&["exec", "late", "ip", "-4", "-o", "addr"])
        .ok()
        .to_string();
    assert!(!addrs.contains("eth1"), "{addrs}");
    // A network in use is kept; -f removes its containers.
    let rm = env.berth(&["network", "rm", "front"]);
    assert_eq!(rm.code, 125, "{}", rm.stderr);
    assert!(
        rm.stderr.contains("being used by container(s)"),
        "{}",
        rm.stderr
    );
    env.berth(&["network", "rm", "berth"])
        .fails(125, "cannot be removed");
    env.berth(&["network", "rm", "-f", "front"]).ok();
    assert!(env.berth(&["ps", "-aq"]).ok().trim().is_empty());
    env.berth(&["network", "prune"]).ok();
    assert_eq!(env.berth(&["network", "ls", "-q"]).ok(), "berth\n");
    env.berth(&["run", "--rm", "--network", "nowhere", img, "true"])
        .fails(125, "no such network");
    // Every veth went with its container.
    let links = env.in_netns(&["ip", "-o", "link"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("vb"),
        "veth left"
    );
    assert!(common::mounts_under(&env.store()).is_empty());
}

/// The host's mariadb client, in the test's network namespace.
fn sql(env: &Env, query: &str) -> std::process::Output {
    env.in_netns(&[
        "mariadb",
        "-h",
        "127.0.0.1",
        "-P",
        "3306",
        "-u",
        "test",
        "-ppw",
        "--batch",
        "--skip-column-names",
        "-e",
        query,
    ])
    .output()
    .expect("the mariadb client is installed (`make test-deps`)")
}

fn sql_eventually(env: &Env, query: &str) -> String {
    eventually("MariaDB never answered", 120, || {
        let out = sql(env, query);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
}

/// The day-one example: `run -d -p 3306:3306 --name db -v dbdata:/var/lib/mysql`
/// with a MariaDB image built from Debian packages; the host's client
/// writes a row through the published port; the row outlives the container.
fn mariadb_day_one(who: As, test: &str) {
    let tar = match common::fixtures::mariadb_rootfs_tar() {
        Ok(t) => t,
        Err(why) => {
            common::skip(test, &why);
            return;
        }
    };
    let Some(env) = Env::networked(who, test) else {
        return;
    };
    // The image is imported from a copy the test user can read.
    let copy = env.dir.path().join("home/mariadb.tar");
    std::fs::copy(&tar, &copy).unwrap();
    let _ = std::process::Command::new("chmod")
        .arg("644")
        .arg(&copy)
        .status();
    env.berth(&[
        "import",
        "-q",
        "-c",
        "CMD [\"/usr/local/bin/start-db\"]",
        "-c",
        "EXPOSE 3306",
        copy.to_str().unwrap(),
        "mariadb",
    ])
    .ok();
    let run = [
        "run",
        "-d",
        "-p",
        "3306:3306",
        "--name",
        "db",
        "-v",
        "dbdata:/var/lib/mysql",
        "mariadb",
    ];
    env.berth(&run).ok();
    sql_eventually(&env, "SELECT 1");
    let out = sql(
        &env,
        "CREATE DATABASE shop; CREATE TABLE shop.items (name TEXT); INSERT INTO shop.items VALUES ('anchor');",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.berth(&["rm", "-f", "db"]).ok();
    assert!(
        !sql(&env, "SELECT 1").status.success(),
        "the port closed with the container"
    );
    // A new container on the same volume still has the row.
    env.berth(&run).ok();
    assert_eq!(
        sql_eventually(&env, "SELECT name FROM shop.items"),
        "anchor\n"
    );
    env.berth(&["rm", "-f", "db"]).ok();
    env.berth(&["volume", "rm", "dbdata"]).ok();
    assert!(common::mounts_under(&env.store()).is_empty());
}

#[test]
fn mariadb_with_a_published_port_and_a_volume() {
    mariadb_day_one(As::Root, "mariadb_with_a_published_port_and_a_volume");
}

#[test]
fn mariadb_rootless() {
    if let Err(why) = common::tun_usable_by_users() {
        common::skip("mariadb_rootless", &why);
        return;
    }
    mariadb_day_one(As::User, "mariadb_rootless");
}

/// 50 containers on one bridge, started and removed ten at a time: every
/// address distinct, and afterwards no veth, rule, allocation or mount.
#[test]
fn fifty_containers_on_one_bridge_in_parallel() {
    let Some(env) = Env::networked(As::Root, "fifty_containers_on_one_bridge_in_parallel") else {
        return;
    };
    let img = busybox_image(&env);
    env.berth(&["network", "create", "--subnet", "10.66.0.0/24", "crowd"])
        .ok();
    let names: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let in_parallel = |f: &(dyn Fn(&str) + Sync)| {
        std::thread::scope(|s| {
            for chunk in names.chunks(5) {
                s.spawn(move || chunk.iter().for_each(|n| f(n)));
            }
        });
    };
    in_parallel(&|n| {
        env.berth(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "crowd",
            img,
            "httpd",
            "-f",
            "-p",
            "80",
        ])
        .ok();
    });
    let mut ips: Vec<String> = names
        .iter()
        .map(|n| {
            env.berth(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", n])
                .ok()
                .trim()
                .to_string()
        })
        .collect();
    assert!(ips.iter().all(|ip| ip.starts_with("10.66.0.")), "{ips:?}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "duplicate addresses");
    // Each one really holds its address: the last reaches the first.
    let first = env
        .berth(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            "c0",
        ])
        .ok()
        .trim()
        .to_string();
    let page = env.berth(&["exec", "c49", "sh", "-c", &get(&first, 80)]);
    assert!(
        page.ok().contains("HTML"),
        "c49 did not reach c0: {}",
        page.stdout
    );
    in_parallel(&|n| {
        env.berth(&["rm", "-f", "-t", "0", n]).ok();
    });
    assert!(env.berth(&["ps", "-aq"]).ok().is_empty());
    let links = env.in_netns(&["ip", "-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("vb"), "veth left: {links}");
    let state =
        std::fs::read_to_string(env.store().join("networks/crowd.state.json")).unwrap_or_default();
    assert!(!state.contains("10.66."), "allocations left: {state}");
    let rules = env
        .in_netns(&["nft", "list", "table", "ip", "berth"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("dnat to"),
        "port rules left"
    );
    env.berth(&["network", "rm", "crowd"]).ok();
    let rules = env
        .in_netns(&["nft", "list", "table", "ip", "berth"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("10.66."),
        "the network's rules stayed"
    );
    let links = env.in_netns(&["ip", "-o", "link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains("berth1"));
    assert!(common::mounts_under(&env.store()).is_empty());
}

/// `--network slirp4netns` (rootless, the mode podman used before pasta):
/// a tap with slirp's address, ports through its API, DNS at 10.0.2.3,
/// outbound to the host, and nothing left after rm.
#[test]
fn slirp4netns_rootless() {
    let Some(env) = rootless_networked("slirp4netns_rootless") else {
        return;
    };
    let img = busybox_image(&env);
    let www = web_root(&env, "via slirp\n");
    let vol = format!("{www}:/www:ro");
    env.berth(&[
        "run",
        "-d",
        "--name",
        "s",
        "--network",
        "slirp4netns",
        "-p",
        "8090:80",
        "-v",
        &vol,
        img,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .ok();
    assert_eq!(
        fetch_eventually(&env, "http://127.0.0.1:8090/"),
        "via slirp\n"
    );
    assert_eq!(
        fetch_eventually(&env, &format!("http://{NETNS_HOST_IP}:8090/")),
        "via slirp\n"
    );
    let addrs = env.berth(&["exec", "s", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.ok().contains("tap0") && addrs.stdout.contains("10.0.2.100"),
        "{}",
        addrs.stdout
    );
    let resolv = env.berth(&["exec", "s", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.ok().contains("nameserver 10.0.2.3"),
        "{}",
        resolv.stdout
    );
    let mut outside = env
        .in_netns(&[
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            &format!("{NETNS_HOST_IP}:8001"),
            "-h",
            &www,
        ])
        .spawn()
        .unwrap();
    let outbound = get(NETNS_HOST_IP, 8001).replace("| nc", "| timeout 5 nc");
    eventually("no way out through slirp4netns", 20, || {
        let out = env.berth(&["exec", "s", "sh", "-c", &outbound]);
        (out.stdout == "via slirp\n")
            .then_some(())
            .ok_or(format!("{}{}", out.stdout, out.stderr))
    });
    let _ = outside.kill();
    let _ = outside.wait();
    env.berth(&["network", "create", "x"]).ok();
    env.berth(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns:mtu=1500",
        img,
        "true",
    ])
    .fails(125, "options are not supported");
    env.berth(&["rm", "-f", "s"]).ok();
    assert!(fetch(&env, "http://127.0.0.1:8090/").is_none());
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("slirp4netns.*{}", env.store().display())])
        .output()
        .unwrap();
    let running_left: Vec<String> = String::from_utf8_lossy(&left.stdout)
        .lines()
        .filter(|p| running(p.parse().unwrap_or(0)))
        .map(String::from)
        .collect();
    assert!(
        running_left.is_empty(),
        "slirp4netns left: {running_left:?}"
    );
}

/// A neighbour on the LAN: the test namespace's veth peer moved into a
/// namespace of its own with an address beside NETNS_HOST_IP and a route
/// to the default network's subnet through "the host". Removed on drop.
struct Neighbour(String);

impl Neighbour {
    fn new(env: &Env) -> Neighbour {
        let host_ns = env.netns.as_ref().expect("a networked env");
        let name = format!("{host_ns}-nb");
        let run = common::ip;
        run(&["netns", "add", &name]);
        run(&["-n", host_ns, "link", "set", "h1", "netns", &name]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        run(&["-n", &name, "addr", "add", "192.168.77.2/24", "dev", "h1"]);
        run(&["-n", &name, "link", "set", "h1", "up"]);
        run(&[
            "-n",
            &name,
            "route",
            "add",
            "10.88.0.0/16",
            "via",
            NETNS_HOST_IP,
        ]);
        Neighbour(name)
    }

    /// An HTTP GET from the neighbour; None when nothing answers.
    fn get(&self, host: &str, port: u16) -> Option<String> {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.0))
            .args(["/bin/busybox", "sh", "-c", &get(host, port)])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        (!body.is_empty()).then_some(body)
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn neighbours_reach_only_published_ports() {
    let env = Env::networked(As::Root, "neighbours_reach_only_published_ports").unwrap();
    let img = busybox_image(&env);
    let www = web_root(&env, "published\n");
    let vol = format!("{www}:/www:ro");
    // 80 published on every address, 81 on loopback only, 82 not at all.
    env.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:8081:81",
        "-v",
        &vol,
        img,
        "sh",
        "-c",
        "httpd -p 80 -h /www; httpd -p 81 -h /www; httpd -f -p 82 -h /www",
    ])
    .ok();
    let inspect = env.berth(&["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(inspect.ok()).unwrap();
    let ip = v[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10.88."), "{ip}");
    // The host itself reaches all three.
    assert_eq!(
        fetch_eventually(&env, "http://127.0.0.1:8080/"),
        "published\n"
    );
    assert_eq!(
        fetch_eventually(&env, "http://127.0.0.1:8081/"),
        "published\n"
    );
    assert_eq!(
        fetch_eventually(&env, &format!("http://{ip}:82/")),
        "published\n"
    );
    let nb = Neighbour::new(&env);
    // A neighbour reaches the port published on the host's address...
    let got = eventually("the neighbour reaches the published port", 15, || {
        nb.get(NETNS_HOST_IP, 8080).ok_or_else(String::new)
    });
    assert_eq!(got, "published\n");
    // ...but not the container's other ports, though ip_forward is on and
    // it routes the subnet through the host (moby#45610), nor the one
    // published on loopback only (moby#41872).
    assert_eq!(nb.get(&ip, 82), None, "an unpublished port was reachable");
    assert_eq!(nb.get(&ip, 81), None);
    assert_eq!(nb.get(NETNS_HOST_IP, 8081), None);
    env.berth(&["rm", "-f", "web"]).ok();
}

/// An offline machine (here: a namespace with only `lo`) has no interface
/// pasta could copy: rootless containers fall back to slirp4netns, say so
/// in one line, and still publish ports on the host's loopback.
#[test]
fn rootless_ports_with_no_route_out() {
    let Some(env) = rootless_networked("rootless_ports_with_no_route_out") else {
        return;
    };
    let ns = env.netns.clone().unwrap();
    common::ip(&["-n", &ns, "link", "del", "h0"]);
    let img = busybox_image(&env);
    let www = web_root(&env, "offline\n");
    let vol = format!("{www}:/www:ro");
    let run = env.berth(&[
        "run", "-d", "--name", "o", "-p", "8097:80", "-v", &vol, img, "httpd", "-f", "-p", "80",
        "-h", "/www",
    ]);
    run.ok();
    assert!(
        run.stderr.contains("using slirp4netns") && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
    assert_eq!(
        fetch_eventually(&env, "http://127.0.0.1:8097/"),
        "offline\n"
    );
    let fg = env.berth(&["run", "--rm", img, "true"]);
    fg.ok();
    assert!(fg.stderr.contains("using slirp4netns"), "{}", fg.stderr);
    env.berth(&["rm", "-f", "o"]).ok();
    assert!(fetch(&env, "http://127.0.0.1:8097/").is_none());
}

/// An address is reused at once after its container goes: a peer that
/// talked to the old container within the last second (when the new
/// one's gratuitous ARP is ignored) still reaches the new one, because a
/// container's MAC follows its address (02:42 and the octets, as docker).
#[test]
fn a_reused_address_is_reachable_at_once() {
    let env = Env::networked(As::Root, "a_reused_address_is_reachable_at_once").unwrap();
    let img = busybox_image(&env);
    let www = web_root(&env, "page\n");
    let vol = format!("{www}:/www:ro");
    env.berth(&["network", "create", "--subnet", "10.78.0.0/24", "reuse"])
        .ok();
    let serve = |name: &str, ip: &str| {
        env.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "reuse",
            "--ip",
            ip,
            "-v",
            &vol,
            img,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .ok();
    };
    serve("peer", "10.78.0.10");
    serve("first", "10.78.0.20");
    let from_peer = || env.berth(&["exec", "peer", "sh", "-c", &get("10.78.0.20", 80)]);
    eventually("peer never reached first", 15, || {
        (from_peer().stdout == "page\n")
            .then_some(())
            .ok_or_else(String::new)
    });
    let mac = env
        .berth(&["exec", "first", "cat", "/sys/class/net/eth0/address"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(mac, "02:42:0a:4e:00:14");
    env.berth(&["rm", "-f", "-t", "0", "first"]).ok();
    serve("second", "10.78.0.20");
    // nc gives up after 3 s; with a stale neighbour entry it would time
    // out for half a minute.
    let r = from_peer();
    assert_eq!(r.stdout, "page\n", "{}", r.stderr);
    env.berth(&["rm", "-f", "-t", "0", "peer", "second"]).ok();
    env.berth(&["network", "rm", "reuse"]).ok();
}

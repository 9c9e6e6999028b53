//! `top`: the processes of a running container as podman shows them, with
//! its format descriptors (`user,pid,ppid,pcpu,etime,tty,time,args` by
//! default; AIX `%U %p ...` too). Read from /proc on the host: ids are
//! translated into the container's view through its uid/gid maps, and
//! names come from the container's own /etc/passwd and /etc/group.

use std::collections::HashMap;

/// podman's default descriptors.
pub const DEFAULT: &[&str] = &[
    "user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args",
];

/// Every descriptor with its column header.
const DESCRIPTORS: &[(&str, &str)] = &[
    ("args", "COMMAND"),
    ("capamb", "AMBIENT CAPS"),
    ("capbnd", "BOUNDING CAPS"),
    ("capeff", "EFFECTIVE CAPS"),
    ("capinh", "INHERITED CAPS"),
    ("capprm", "PERMITTED CAPS"),
    ("comm", "COMMAND"),
    ("etime", "ELAPSED"),
    ("group", "GROUP"),
    ("hgroup", "HGROUP"),
    ("hpid", "HPID"),
    ("huser", "HUSER"),
    ("nice", "NI"),
    ("pcpu", "%CPU"),
    ("pgid", "PGID"),
    ("pid", "PID"),
    ("ppid", "PPID"),
    ("rgroup", "RGROUP"),
    ("ruser", "RUSER"),
    ("seccomp", "SECCOMP"),
    ("state", "STATE"),
    ("stime", "STIME"),
    ("time", "TIME"),
    ("tty", "TTY"),
    ("user", "USER"),
    ("vsz", "VSZ"),
];

/// AIX format descriptors and the names they stand for.
const AIX: &[(&str, &str)] = &[
    ("%C", "pcpu"),
    ("%G", "group"),
    ("%P", "ppid"),
    ("%U", "user"),
    ("%a", "args"),
    ("%c", "comm"),
    ("%g", "rgroup"),
    ("%n", "nice"),
    ("%p", "pid"),
    ("%r", "pgid"),
    ("%t", "etime"),
    ("%u", "ruser"),
    ("%x", "time"),
    ("%y", "tty"),
    ("%z", "vsz"),
];

/// A `top` descriptor berth does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown top descriptor {given:?}: use one of {known}")]
pub struct UnknownDescriptor {
    pub given: String,
    known: String,
}

/// Checks and normalises descriptors (podman also accepts them
/// comma-separated in one argument).
pub fn descriptors(args: &[String]) -> Result<Vec<String>, UnknownDescriptor> {
    let mut out = Vec::new();
    for a in args
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|a| !a.is_empty())
    {
        let name = AIX
            .iter()
            .find(|(k, _)| *k == a)
            .map(|(_, v)| *v)
            .unwrap_or(a);
        if !DESCRIPTORS.iter().any(|(d, _)| *d == name) {
            let known: Vec<&str> = DESCRIPTORS.iter().map(|(d, _)| *d).collect();
            return Err(UnknownDescriptor {
                given: a.to_string(),
                known: known.join(", "),
            });
        }
        out.push(name.to_string());
    }
    if out.is_empty() {
        out = DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    Ok(out)
}

/// The column header of a descriptor.
pub fn header(d: &str) -> &'static str {
    DESCRIPTORS
        .iter()
        .find(|(k, _)| *k == d)
        .map(|(_, h)| *h)
        .unwrap_or("?")
}

/// Formats seconds as Go's time.Duration does ("1m2.5s"), as podman prints.
pub fn go_duration(secs: f64) -> String {
    if secs <= 0.0 {
        return "0s".into();
    }
    let h = (secs / 3600.0).floor();
    let m = ((secs - h * 3600.0) / 60.0).floor();
    let s = secs - h * 3600.0 - m * 60.0;
    let s = format!("{s:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match (h as u64, m as u64) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// An id map line set (/proc/PID/uid_map): host id -> container id.
fn map_to_inside(map: &str, host: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (inside, outside, count) = (*f.first()?, *f.get(1)?, *f.get(2)?);
        let h = u64::from(host);
        (h >= outside && h < outside + count).then(|| (inside + h - outside) as u32)
    })
}

/// name:x:id:... files (passwd, group) as id -> name.
fn names(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((id, name.to_string()))
        })
        .collect()
}

fn cap_names(hex: &str) -> String {
    let Ok(bits) = u64::from_str_radix(hex.trim(), 16) else {
        return hex.to_string();
    };
    if bits == 0 {
        return "none".into();
    }
    let all = caps::all();
    if all.iter().all(|c| bits & c.bitmask() != 0) {
        return "full".into();
    }
    let mut v: Vec<(u8, String)> = all
        .iter()
        .filter(|c| bits & c.bitmask() != 0)
        .map(|c| {
            (
                c.index(),
                c.to_string().trim_start_matches("CAP_").to_string(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect::<Vec<_>>().join(",")
}

/// The processes sharing `pid`'s PID namespace, one row per process with
/// a value per descriptor.
pub fn rows(pid: i32, descriptors: &[String]) -> Vec<Vec<String>> {
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let target = ns(pid);
    let root = format!("/proc/{pid}/root");
    let root = std::path::Path::new(&root);
    let users = names(&super::user::read_first(&[root], "etc/passwd"));
    let groups = names(&super::user::read_first(&[root], "etc/group"));
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
    let gid_map = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap_or_default();
    // SAFETY: sysconf with a constant argument.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let boot = chrono::Utc::now().timestamp() as f64 - uptime;
    let mut procs: Vec<i32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    procs.sort();
    let mut out = Vec::new();
    for p in procs {
        if ns(p) != target {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): state is 3rd.
        let after: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let stat_field = |n: usize| after.get(n - 3).copied().unwrap_or("0");
        let status_field = |k: &str, i: usize| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().nth(i))
                .unwrap_or("")
                .to_string()
        };
        let inside_pid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last())
            .unwrap_or("")
            .to_string();
        let inside_ppid = || {
            let pp: i32 = stat_field(4).parse().unwrap_or(0);
            std::fs::read_to_string(format!("/proc/{pp}/status"))
                .ok()
                .filter(|_| ns(pp) == target)
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("NSpid:"))
                        .and_then(|v| v.split_whitespace().last().map(String::from))
                })
                .unwrap_or_else(|| "0".into())
        };
        let cpu_secs = (stat_field(14).parse::<f64>().unwrap_or(0.0)
            + stat_field(15).parse::<f64>().unwrap_or(0.0))
            / ticks;
        let started = stat_field(22).parse::<f64>().unwrap_or(0.0) / ticks;
        let elapsed = (uptime - started).max(0.0);
        let id_name = |host: &str, map: &str, table: &HashMap<u32, String>| {
            let h: u32 = host.parse().unwrap_or(0);
            match map_to_inside(map, h) {
                Some(i) => table.get(&i).cloned().unwrap_or_else(|| i.to_string()),
                None => h.to_string(),
            }
        };
        let row = descriptors
            .iter()
            .map(|d| match d.as_str() {
                "args" => {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&cmd)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                }
                "comm" => std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                "capamb" => cap_names(&status_field("CapAmb:", 0)),
                "capbnd" => cap_names(&status_field("CapBnd:", 0)),
                "capeff" => cap_names(&status_field("CapEff:", 0)),
                "capinh" => cap_names(&status_field("CapInh:", 0)),
                "capprm" => cap_names(&status_field("CapPrm:", 0)),
                "etime" => go_duration(elapsed),
                "group" => id_name(&status_field("Gid:", 1), &gid_map, &groups),
                "rgroup" => id_name(&status_field("Gid:", 0), &gid_map, &groups),
                "user" => id_name(&status_field("Uid:", 1), &uid_map, &users),
                "ruser" => id_name(&status_field("Uid:", 0), &uid_map, &users),
                "huser" => {
                    let u = status_field("Uid:", 1);
                    u.parse()
                        .ok()
                        .and_then(crate::namespaces::idmap::user_name)
                        .unwrap_or(u)
                }
                "hgroup" => status_field("Gid:", 1),
                "hpid" => p.to_string(),
                "nice" => stat_field(19).to_string(),
                "pcpu" => {
                    let pct = if elapsed > 0.0 {
                        100.0 * cpu_secs / elapsed
                    } else {
                        0.0
                    };
                    format!("{pct:.3}")
                }
                "pgid" => stat_field(5).to_string(),
                "pid" => inside_pid.clone(),
                "ppid" => inside_ppid(),
                "seccomp" => match status_field("Seccomp:", 0).as_str() {
                    "1" => "strict".into(),
                    "2" => "filter".into(),
                    _ => "disabled".into(),
                },
                "state" => stat_field(3).to_string(),
                "stime" => chrono::DateTime::from_timestamp((boot + started) as i64, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S %z").to_string())
                    .unwrap_or_default(),
                "time" => go_duration(cpu_secs.floor()),
                "tty" => {
                    let nr: u32 = stat_field(7).parse().unwrap_or(0);
                    let (major, minor) = ((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
                    match major {
                        0 => "?".into(),
                        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
                        5 if minor == 1 => "console".into(),
                        _ => format!("{major}:{minor}"),
                    }
                }
                "vsz" => (stat_field(23).parse::<u64>().unwrap_or(0) / 1024).to_string(),
                _ => String::new(),
            })
            .collect();
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_and_headers() {
        let d = descriptors(&["pid,%C".into(), "user".into()]).unwrap();
        assert_eq!(d, vec!["pid", "pcpu", "user"]);
        assert_eq!(header("pcpu"), "%CPU");
        assert_eq!(descriptors(&[]).unwrap().len(), 8);
        assert_eq!(descriptors(&["bogus".into()]).unwrap_err().given, "bogus");
    }

    #[test]
    fn durations_and_id_maps() {
        assert_eq!(go_duration(0.0), "0s");
        assert_eq!(go_duration(62.5), "1m2.5s");
        assert_eq!(go_duration(3600.0 + 1.0), "1h0m1s");
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(map_to_inside(map, 1000), Some(0));
        assert_eq!(map_to_inside(map, 100005), Some(6));
        assert_eq!(map_to_inside(map, 5), None);
        assert_eq!(cap_names("0000000000000000"), "none");
        assert_eq!(cap_names("0000000000000003"), "CHOWN,DAC_OVERRIDE");
    }
}

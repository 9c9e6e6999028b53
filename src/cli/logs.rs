//! `berth logs`: a container's k8s-file log, stdout and stderr apart.

use super::{CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::Engine;
use clap::Args;

/// `berth logs`
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Containers; with more than one, each line starts with its container's id
    #[arg(required_unless_present = "latest")]
    pub containers: Vec<String>,
    #[command(flatten)]
    pub latest: super::Latest,
    /// Keep printing new output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long)]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only output after this time (RFC 3339, or a duration such as 10m, 2h)
    #[arg(long)]
    pub since: Option<String>,
    /// Only output before this time (RFC 3339, or a duration such as 10m)
    #[arg(long)]
    pub until: Option<String>,
}

/// RFC 3339 or "how long ago" (30s, 10m, 2h) into a UTC time.
pub(super) fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num.parse().map_err(|_| {
        Failure::with_code(
            format!("invalid time {s:?}: use RFC 3339 or a duration such as 10m"),
            125,
        )
    })?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(Failure::with_code(
                format!("invalid time {s:?}: units are s, m, h"),
                125,
            ))
        }
    };
    Ok(chrono::Utc::now() - chrono::Duration::seconds(secs))
}

/// Prints log entries, each line after `prefix` (a container's id, when
/// `logs` shows several).
fn print_entries(entries: &[crate::monitor::logfile::Entry], timestamps: bool, prefix: &str) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn std::io::Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        let _ = w.write_all(prefix.as_bytes());
        if timestamps {
            let _ = write!(w, "{} ", e.timestamp);
        }
        let _ = w.write_all(&e.content);
        if e.full {
            let _ = w.write_all(b"\n");
        }
        let _ = w.flush();
    }
}

/// Prints containers' logs, stdout to stdout and stderr to stderr; with
/// `-f`, follows them all until every one has exited.
pub fn logs(engine: &Engine, mut a: LogsArgs) -> CliResult {
    a.containers = a.latest.pick(engine, std::mem::take(&mut a.containers))?;
    let cs = Containers::new(engine.store.root());
    let mut targets = Vec::new();
    for name in &a.containers {
        let c = cs.find(name)?;
        if matches!(c.log_driver.as_deref(), Some("none") | Some("passthrough")) {
            return Err(Failure::with_code(
                format!(
                    "{}: this container is using the '{}' log driver, cannot read logs: run it with --log-driver k8s-file to keep its output",
                    c.name,
                    c.log_driver.as_deref().unwrap_or_default()
                ),
                125,
            ));
        }
        targets.push(c);
    }
    let since = a.since.as_deref().map(parse_time).transpose()?;
    let until = a.until.as_deref().map(parse_time).transpose()?;
    let in_window = |e: &crate::monitor::logfile::Entry| {
        let t = chrono::DateTime::parse_from_rfc3339(&e.timestamp)
            .map(|d| d.with_timezone(&chrono::Utc))
            .ok();
        since.is_none_or(|s| t.is_some_and(|t| t >= s))
            && until.is_none_or(|u| t.is_some_and(|t| t <= u))
    };
    let many = targets.len() > 1;
    let prefix = |c: &crate::engine::container::ContainerRecord| {
        if many {
            format!("{} ", &c.id[..12])
        } else {
            String::new()
        }
    };
    // How many entries of each log were printed.
    let mut seen = Vec::new();
    for c in &targets {
        let all = crate::monitor::logfile::read_all(&cs.log_path(&c.id))?;
        seen.push(all.len());
        let all: Vec<_> = all.into_iter().filter(|e| in_window(e)).collect();
        let skip = a
            .tail
            .map(|n| all.iter().filter(|e| e.full).count().saturating_sub(n))
            .unwrap_or(0);
        let mut full_seen = 0;
        let start = all.iter().position(|e| {
            let ok = full_seen >= skip;
            if e.full {
                full_seen += 1;
            }
            ok
        });
        let first = start.unwrap_or(all.len());
        print_entries(&all[first..], a.timestamps, &prefix(c));
    }
    if !a.follow {
        return Ok(0);
    }
    loop {
        let mut running = false;
        // New entries of every log, in time order across containers.
        let mut fresh = Vec::new();
        for (i, c) in targets.iter().enumerate() {
            running |= cs.find(&c.id).map(|r| r.is_running()).unwrap_or(false);
            let now = crate::monitor::logfile::read_all(&cs.log_path(&c.id)).unwrap_or_default();
            if now.len() > seen[i] {
                fresh.extend(now.into_iter().skip(seen[i]).map(|e| (i, e)));
            }
        }
        fresh.sort_by(|x, y| x.1.timestamp.cmp(&y.1.timestamp));
        for (i, e) in fresh {
            seen[i] += 1;
            print_entries(std::slice::from_ref(&e), a.timestamps, &prefix(&targets[i]));
        }
        if !running {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

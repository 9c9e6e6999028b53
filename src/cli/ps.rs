//! `berth ps`: podman's columns, filters and formats, from the container
//! records alone.

use super::format::columns;
use super::{CliResult, Failure};
use crate::engine::container::{ContainerRecord, Containers};
use crate::engine::Engine;
use crate::util::human;
use clap::Args;

/// `berth ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,
    /// Print only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids or commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the N most recently created containers (all states)
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the most recently created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter: name=, status=, exited=, ancestor=, id=, label=KEY[=VALUE], restart-policy=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json, or a Go template such as '{{.Names}} {{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Also list containers made by other tools in the store (berth's store has none)
    #[arg(long)]
    pub external: bool,
    /// Print no header line
    #[arg(long)]
    pub noheading: bool,
    /// Sort by command, created, id, image, names, runningfor, size or status
    #[arg(long, value_name = "FIELD", default_value = "created")]
    pub sort: String,
}

fn ps_value(
    c: &ContainerRecord,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(now)
    };
    let created = parse(&c.created);
    let status = crate::engine::inspect::status(c);
    let status_text = match status {
        "running" | "stopping" => format!(
            "Up {}",
            human::duration(
                (now - parse(c.started_at.as_deref().unwrap_or(&c.created)))
                    .num_seconds()
                    .max(0) as u64
            )
        ),
        "created" => "Created".to_string(),
        "exited" if c.state.has_process() => "Exited (unknown): berth was killed".to_string(),
        "paused" | "removing" => status.to_string(),
        _ => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            human::ago(parse(c.finished_at.as_deref().unwrap_or(&c.created)), now)
        ),
    };
    let mut cmd = c.command.join(" ");
    if cmd.chars().count() > 20 && !no_trunc {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    serde_json::json!({
        "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
        "Id": c.id,
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": cmd,
        "CreatedAt": c.created,
        "Created": created.timestamp(),
        "CreatedSince": human::ago(created, now),
        "RunningFor": human::ago(created, now),
        "State": status,
        "Status": status_text,
        "Ports": if c.is_running() {
            crate::engine::netsetup::ports_column(&c.net.published)
        } else {
            String::new()
        },
        "Names": c.name,
        "Labels": c.labels,
        "Pid": c.pid.filter(|_| c.is_running()).unwrap_or(0),
        "ExitCode": c.exit_code.unwrap_or(0),
        "Exited": status == "exited",
    })
}

/// Parses `--filter KEY=VALUE` options.
pub(super) fn parse_filters(list: &[String]) -> Result<Vec<(String, String)>, Failure> {
    list.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Failure::with_code(format!("invalid filter {f:?}: expected KEY=VALUE"), 125)
                })
        })
        .collect()
}

/// Whether a container passes podman's container filters (also used by
/// `start --filter`). Values of one key are alternatives.
pub(super) fn ps_matches(
    c: &ContainerRecord,
    filters: &[(String, String)],
) -> Result<bool, Failure> {
    let mut by_key: std::collections::BTreeMap<&str, Vec<bool>> = Default::default();
    for (k, v) in filters {
        by_key.entry(k).or_default().push(one_filter(c, k, v)?);
    }
    Ok(by_key.values().all(|hits| hits.iter().any(|h| *h)))
}

fn one_filter(c: &ContainerRecord, k: &str, v: &str) -> Result<bool, Failure> {
    let status = crate::engine::inspect::status(c);
    Ok(match k {
        "name" => c.name.contains(v),
        "id" => c.id.starts_with(v),
        "status" => status == v || (v == "stopped" && status == "exited"),
        "exited" => status == "exited" && c.exit_code.map(|e| e.to_string()).as_deref() == Some(v),
        "ancestor" => {
            c.image == *v
                || c.image_id.starts_with(v)
                || crate::image::store::find_in_names(&c.image, v)
        }
        "label" => match v.split_once('=') {
            Some((k, val)) => c.labels.get(k).is_some_and(|x| x == val),
            None => c.labels.contains_key(v),
        },
        "restart-policy" => {
            let policy = c.restart.as_deref().unwrap_or("no");
            let policy = policy.split(':').next().unwrap_or("no");
            match v {
                "none" | "no" => policy == "no" || policy.is_empty(),
                "always" | "on-failure" | "unless-stopped" => policy == v,
                _ => return Err(Failure::with_code(format!("{v} invalid restart policy"), 125)),
            }
        }
        other => {
            return Err(Failure::with_code(
                format!("invalid filter {other:?}: use name=, id=, status=, exited=, ancestor=, label=, restart-policy="),
                125,
            ))
        }
    })
}

/// Orders the list as `--sort FIELD` asks; newest first for `created`, as podman.
fn sort(list: &mut [ContainerRecord], field: &str) -> Result<(), Failure> {
    match field {
        "created" | "runningfor" => list.sort_by(|x, y| y.created.cmp(&x.created)),
        "id" => list.sort_by(|x, y| x.id.cmp(&y.id)),
        "image" => list.sort_by(|x, y| x.image.cmp(&y.image)),
        "names" => list.sort_by(|x, y| x.name.cmp(&y.name)),
        "command" => list.sort_by(|x, y| x.command.cmp(&y.command)),
        "status" => list.sort_by(|x, y| {
            crate::engine::inspect::status(x).cmp(crate::engine::inspect::status(y))
        }),
        "size" => {}
        other => {
            return Err(Failure::with_code(
                format!("invalid --sort {other:?}: use command, created, id, image, names, runningfor, size or status"),
                125,
            ))
        }
    }
    Ok(())
}

/// Lists containers with podman's columns. Reads one small record per
/// container and nothing else, so it stays fast with thousands of them.
pub fn ps(engine: &Engine, a: PsArgs) -> CliResult {
    let filters = parse_filters(&a.filter)?;
    let mut list = Containers::new(engine.store.root()).list();
    sort(&mut list, &a.sort)?;
    let limit = if a.latest { Some(1) } else { a.last };
    if !a.all && limit.is_none() && !filters.iter().any(|(k, _)| k == "status" || k == "exited") {
        list.retain(|c| c.is_running());
    }
    let mut kept = Vec::new();
    for c in list {
        if ps_matches(&c, &filters)? {
            kept.push(c);
        }
    }
    if let Some(n) = limit {
        kept.truncate(n);
    }
    let now = chrono::Utc::now();
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if a.quiet {
        for c in &kept {
            let _ = writeln!(out, "{}", if a.no_trunc { &c.id[..] } else { &c.id[..12] });
        }
        return Ok(0);
    }
    let values: Vec<serde_json::Value> =
        kept.iter().map(|c| ps_value(c, a.no_trunc, now)).collect();
    match a.format.as_deref() {
        Some("json") => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&values).expect("json")
            );
        }
        Some(t) if t != "table" => {
            let _ = write!(
                out,
                "{}",
                super::format::template_table(t, &values, a.noheading)?
            );
        }
        _ => {
            let mut rows = vec![[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]
            .map(String::from)
            .to_vec()];
            if a.noheading {
                rows.clear();
            }
            for v in &values {
                rows.push(
                    [
                        "ID",
                        "Image",
                        "Command",
                        "CreatedSince",
                        "Status",
                        "Ports",
                        "Names",
                    ]
                    .iter()
                    .map(|k| super::format::go_string(&v[*k]))
                    .collect(),
                );
            }
            let _ = write!(out, "{}", columns(&rows));
        }
    }
    Ok(0)
}

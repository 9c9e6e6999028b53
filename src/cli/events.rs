//! `berth events`: what berth's commands did, read from the store's
//! journal (see `util::events`), filtered and printed as podman does,
//! and followed as other berth processes append to it.

use super::{CliResult, Failure};
use crate::engine::Engine;
use crate::util::events::{journal_path, parse, Event};
use crate::util::human;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

/// `berth events`
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter: container=, event=, image=, label=KEY=VALUE, type=, volume=,
    /// network= (the same key twice: either matches)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// json, or a Go template over ID, Image, Name, Status, Time, Type, Attributes
    #[arg(long)]
    pub format: Option<String>,
    /// Only events at or after this time (RFC 3339, or 10m ago)
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Keep printing new events (false: print what is there and end)
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub stream: bool,
    /// Full ids (false: 12 characters) in the default output
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub no_trunc: bool,
}

/// Filters by key; values of one key are alternatives.
struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(list: &[String]) -> Result<Filters, Failure> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in list {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Failure::with_code(format!("invalid filter {f:?}: expected KEY=VALUE"), 125)
            })?;
            let k = if k == "status" { "event" } else { k };
            if ![
                "container",
                "event",
                "image",
                "label",
                "type",
                "volume",
                "network",
            ]
            .contains(&k)
            {
                return Err(Failure::with_code(
                    format!("invalid filter {f:?}: use container=, event=, image=, label=, type=, volume= or network="),
                    125,
                ));
            }
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Filters(m))
    }

    fn matches(&self, e: &Event) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "container" => {
                    e.kind == "container" && (e.name == *v || e.id.starts_with(v.as_str()))
                }
                "volume" | "network" => {
                    e.kind == *k && (e.name == *v || e.id.starts_with(v.as_str()))
                }
                "event" => e.status == *v,
                "image" => {
                    e.image == *v
                        || (e.kind == "image" && (e.name == *v || e.id.starts_with(v.as_str())))
                }
                "type" => e.kind == *v,
                "label" => {
                    let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                    e.attributes
                        .as_ref()
                        .and_then(|a| a.get(lk))
                        .is_some_and(|x| lv.is_empty() || x == lv)
                }
                _ => false,
            })
        })
    }
}

fn time_of(e: &Event) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// podman's line for an event.
fn line(e: &Event, no_trunc: bool) -> String {
    let t = human::go_time(time_of(e));
    let id = if no_trunc || e.id.len() < 12 {
        &e.id[..]
    } else {
        &e.id[..12]
    };
    match e.kind.as_str() {
        "container" | "pod" => {
            let labels: String = e
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| format!(", {k}={v}"))
                .collect();
            format!(
                "{t} {} {} {id} (image={}, name={}{labels})",
                e.kind, e.status, e.image, e.name
            )
        }
        _ => format!("{t} {} {} {id} {}", e.kind, e.status, e.name),
    }
}

/// Prints the journal's events that pass the filters, then follows it.
pub fn events(engine: &Engine, a: EventsArgs, backend: &str) -> CliResult {
    if backend == "none" {
        return Err(Failure::with_code(
            "cannot read events with the \"none\" backend: use --events-backend file",
            125,
        ));
    }
    let filters = Filters::parse(&a.filter)?;
    let since = a
        .since
        .as_deref()
        .map(super::logs::parse_time)
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(super::logs::parse_time)
        .transpose()?;
    let fmt = a.format.as_deref();
    let print = |e: &Event| -> Result<bool, Failure> {
        let t = time_of(e);
        if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) || !filters.matches(e) {
            return Ok(true);
        }
        let text = match fmt {
            Some("json") => serde_json::to_string(e).expect("plain data"),
            Some(tpl) => {
                let mut v = serde_json::to_value(e).expect("plain data");
                v["Time"] = serde_json::Value::String(human::go_time(t));
                super::format::render(tpl, &v)?
            }
            None => line(e, a.no_trunc),
        };
        let mut out = std::io::stdout().lock();
        Ok(writeln!(out, "{text}").and_then(|_| out.flush()).is_ok())
    };
    let path = journal_path(engine.store.root());
    let mut file = std::fs::File::open(&path).ok();
    let mut pending = String::new();
    let mut offset = 0u64;
    loop {
        if let Some(f) = file.as_mut() {
            // A journal that was rotated is read again from its start.
            if f.metadata().map(|m| m.len()).unwrap_or(0) < offset {
                offset = 0;
                let _ = f.seek(std::io::SeekFrom::Start(0));
            }
            let mut chunk = String::new();
            if let Ok(n) = f.read_to_string(&mut chunk) {
                offset += n as u64;
            }
            pending.push_str(&chunk);
            if let Some(end) = pending.rfind('\n') {
                let complete: String = pending.drain(..=end).collect();
                for e in parse(&complete) {
                    if !print(&e)? {
                        return Ok(0);
                    }
                }
            }
        }
        if !a.stream || until.is_some_and(|u| chrono::Utc::now() >= u) {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
    }
}

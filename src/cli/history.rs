//! `berth history` / `image history` and `berth untag`: podman's forms.

use super::format::{columns, template_table};
use super::{CliResult, Failure};
use crate::engine::Engine;
use clap::Args;
use serde_json::json;

/// `berth history [flags] IMAGE`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    /// Do not truncate the CREATED BY column or ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show times as RFC 3339 instead of "N ago"
    #[arg(short = 'H', long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub human: String,
    /// Output format: json, or a Go template (.ID .Created .CreatedBy .Size .Comment)
    #[arg(long)]
    pub format: Option<String>,
}

/// One row of the history, newest first, as podman reports it.
fn rows(engine: &Engine, image: &str) -> Result<Vec<serde_json::Value>, Failure> {
    let img = engine.store.find(image)?;
    let chains = img.chain_ids();
    let mut layer_sizes = chains
        .iter()
        .map(|c| engine.store.layer_info(c).map(|i| i.size).unwrap_or(0));
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for h in &img.config.history {
        let empty = h.empty_layer.unwrap_or(false);
        let size = if empty {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        let created = h
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        out.push(json!({
            "ID": "<missing>",
            "Created": h.created.clone().unwrap_or_default(),
            "CreatedAt": created.map(crate::util::human::go_time).unwrap_or_default(),
            "CreatedSince": created.map(|t| crate::util::human::ago(t, now)).unwrap_or_default(),
            "CreatedBy": h.created_by.clone().unwrap_or_default(),
            "Size": size,
            "Comment": h.comment.clone().unwrap_or_default(),
        }));
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top["ID"] = json!(img.id.hex());
    }
    Ok(out)
}

/// Runs `berth history`.
pub fn history(engine: &Engine, a: HistoryArgs) -> CliResult {
    let rows = rows(engine, &a.image)?;
    let short = |id: &str| {
        if a.no_trunc || id == "<missing>" {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", short(r["ID"].as_str().unwrap_or("")));
        }
        return Ok(0);
    }
    let human = a.human != "false";
    match a.format.as_deref() {
        Some("json") => {
            // podman's JSON keys for history entries.
            let entries: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r["ID"], "created": r["Created"], "CreatedBy": r["CreatedBy"],
                        "size": r["Size"], "comment": r["Comment"],
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&entries).expect("json"));
            return Ok(0);
        }
        Some(t) => {
            // In templates, as podman: .Created is "N ago" (RFC 3339 with
            // --human=false), .Size is human-readable.
            let shown: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if human {
                        r["Created"] = r["CreatedSince"].clone();
                    }
                    r["Size"] = json!(crate::util::human::size(r["Size"].as_u64().unwrap_or(0)));
                    r
                })
                .collect();
            print!("{}", template_table(t, &shown, false)?);
            return Ok(0);
        }
        None => {}
    }
    let mut table = vec![vec![
        "ID".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for r in &rows {
        let by = r["CreatedBy"].as_str().unwrap_or("").replace('\n', " ");
        let by = if !a.no_trunc && by.chars().count() > 45 {
            format!("{}...", by.chars().take(42).collect::<String>())
        } else {
            by
        };
        let created = if human {
            &r["CreatedSince"]
        } else {
            &r["Created"]
        };
        table.push(vec![
            short(r["ID"].as_str().unwrap_or("")),
            created.as_str().unwrap_or("").to_string(),
            by,
            crate::util::human::size(r["Size"].as_u64().unwrap_or(0)),
            r["Comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    print!("{}", columns(&table));
    Ok(0)
}

/// `berth untag IMAGE [NAME...]`
#[derive(Args, Debug)]
pub struct UntagArgs {
    pub image: String,
    /// Names to remove (default: all of the image's names)
    pub names: Vec<String>,
}

/// Runs `berth untag`: the image stays, without the names.
pub fn untag(engine: &Engine, a: UntagArgs) -> CliResult {
    let img = engine.store.find(&a.image)?;
    let names: Vec<String> = if a.names.is_empty() {
        img.names.clone()
    } else {
        let mut v = Vec::new();
        for n in &a.names {
            let r = crate::image::reference::Reference::local(n)?;
            let full = r.to_string();
            // `repo:tag@digest` names the image by `repo@digest`.
            let by_digest = r.digest.as_ref().map(|d| format!("{}@{d}", r.name()));
            let found = img
                .names
                .iter()
                .find(|x| **x == full || **x == *n || Some(*x) == by_digest.as_ref())
                .cloned()
                .ok_or_else(|| Failure::with_code(format!("{n}: tag not known"), 125))?;
            v.push(found);
        }
        v
    };
    for n in names {
        engine.store.untag(&n)?;
        crate::engine::images::note(&engine.store, "untag", &img, &n);
    }
    Ok(0)
}

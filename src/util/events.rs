//! berth's event journal: one JSON line per event (a container started,
//! an image was tagged) in `events/events.log` under the storage root,
//! read back by `berth events`. There is no daemon to ask, so every berth
//! process appends its own lines; each line is one `write` with
//! `O_APPEND`, so lines from concurrent processes never interleave.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Past this size the journal is rotated to `events.log.1` (one kept).
const MAX_SIZE: u64 = 4 << 20;

static DISABLED: AtomicBool = AtomicBool::new(false);

/// `--events-backend none`: this process records nothing.
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// One event, in podman's journal shape.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Event {
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Time")]
    pub time: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Event {
    /// An event of `kind` (container, image, volume, network) happening now.
    pub fn now(kind: &str, status: &str, id: &str, name: &str) -> Event {
        Event {
            id: id.to_string(),
            name: name.to_string(),
            status: status.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            kind: kind.to_string(),
            ..Event::default()
        }
    }
}

/// The journal file of a store.
pub fn journal_path(store_root: &Path) -> PathBuf {
    store_root.join("events").join("events.log")
}

/// Appends `e` to the store's journal. Recording is best effort: a
/// command never fails because its event could not be written.
pub fn record(store_root: &Path, e: &Event) {
    if DISABLED.load(Ordering::Relaxed) {
        return;
    }
    let path = journal_path(store_root);
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_SIZE) {
        let _ = std::fs::rename(&path, path.with_extension("log.1"));
    }
    let Ok(mut line) = serde_json::to_vec(e) else {
        return;
    };
    line.push(b'\n');
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(&line);
    }
}

/// Parses journal lines, skipping any that are not events.
pub fn parse(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("berth-events-{}", std::process::id()));
        let mut e = Event::now("container", "start", "abc", "web");
        e.attributes = Some(BTreeMap::from([("image".into(), "busybox".into())]));
        record(&dir, &e);
        record(&dir, &Event::now("image", "tag", "def", "x:1"));
        let text = std::fs::read_to_string(journal_path(&dir)).unwrap();
        let got = parse(&format!("{text}not json\n"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].status, "start");
        assert_eq!(got[1].name, "x:1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

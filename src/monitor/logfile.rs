//! Container logs in the k8s-file format podman uses: one line per chunk,
//! `TIMESTAMP STREAM F|P CONTENT`, where P marks a partial line (no newline
//! yet), so stdout and stderr stay told apart and lines are rebuilt exactly.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;

/// Appends container output to a log file.
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter { file })
    }

    /// Logs `data` read from `stream` ("stdout" or "stderr").
    pub fn write(&mut self, stream: &str, data: &[u8]) -> io::Result<()> {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut out = Vec::with_capacity(data.len() + 64);
        for chunk in data.split_inclusive(|b| *b == b'\n') {
            let (body, mark) = match chunk.strip_suffix(b"\n") {
                Some(b) => (b, "F"),
                None => (chunk, "P"),
            };
            out.extend_from_slice(format!("{ts} {stream} {mark} ").as_bytes());
            out.extend_from_slice(body);
            out.push(b'\n');
        }
        self.file.write_all(&out)
    }
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub timestamp: String,
    pub stream: String,
    /// True when the content ended a line (F), false for a partial (P).
    pub full: bool,
    pub content: Vec<u8>,
}

/// Parses one k8s-file line.
pub fn parse(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let stream = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let mark = parts.next()?;
    let content = parts.next().unwrap_or(b"").to_vec();
    Some(Entry {
        timestamp: ts,
        stream,
        full: mark == b"F",
        content,
    })
}

/// Reads every entry of a log file.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in io::BufReader::new(f).split(b'\n') {
        if let Some(e) = parse(&line?) {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_full_and_partial_lines() {
        let p = std::env::temp_dir().join(crate::util::fsutil::unique_name("berth-log-"));
        let mut w = LogWriter::open(&p).unwrap();
        w.write("stdout", b"one\ntwo").unwrap();
        w.write("stderr", b"err\n").unwrap();
        let e = read_all(&p).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].stream.as_str(), e[0].full, e[0].content.as_slice()),
            ("stdout", true, &b"one"[..])
        );
        assert_eq!((e[1].full, e[1].content.as_slice()), (false, &b"two"[..]));
        assert_eq!(
            (e[2].stream.as_str(), e[2].content.as_slice()),
            ("stderr", &b"err"[..])
        );
        std::fs::remove_file(p).unwrap();
    }
}

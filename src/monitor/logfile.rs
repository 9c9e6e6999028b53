//! Container logs in the k8s-file format podman uses: one line per chunk,
//! `TIMESTAMP STREAM F|P CONTENT`, where P marks a partial line (no newline
//! yet), so stdout and stderr stay told apart and lines are rebuilt exactly.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;

/// Appends container output to a log file; with a size bound, the file
/// is rotated to `PATH.1` when it would grow past it (so at most twice the
/// bound is kept); with no file at all (`--log-driver none`) output is
/// dropped.
pub struct LogWriter {
    file: Option<File>,
    path: std::path::PathBuf,
    max_size: Option<u64>,
    size: u64,
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        Self::with_limit(path, None)
    }

    /// A writer that rotates past `max_size` bytes.
    pub fn with_limit(path: &Path, max_size: Option<u64>) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file: Some(file),
            path: path.to_path_buf(),
            max_size,
            size,
        })
    }

    /// A writer that keeps nothing.
    pub fn discard() -> LogWriter {
        LogWriter {
            file: None,
            path: std::path::PathBuf::new(),
            max_size: None,
            size: 0,
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        let old = self.path.with_extension("log.1");
        std::fs::rename(&self.path, old)?;
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }

    /// Logs `data` read from `stream` ("stdout" or "stderr"), one record
    /// per line (P marks a piece of a line that has not ended yet).
    pub fn write(&mut self, stream: &str, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut out = Vec::with_capacity(data.len() + 64);
        for chunk in data.split_inclusive(|b| *b == b'\n') {
            let (body, mark) = match chunk.strip_suffix(b"\n") {
                Some(b) => (b, "F"),
                None => (chunk, "P"),
            };
            let len = ts.len() + stream.len() + body.len() + 5;
            if let Some(max) = self.max_size {
                let pending = self.size + out.len() as u64;
                if pending > 0 && pending + len as u64 > max {
                    self.flush(&mut out)?;
                    if self.size + len as u64 > max {
                        self.rotate()?;
                    }
                }
            }
            out.extend_from_slice(format!("{ts} {stream} {mark} ").as_bytes());
            out.extend_from_slice(body);
            out.push(b'\n');
        }
        self.flush(&mut out)
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        self.size += out.len() as u64;
        let r = self.file.as_mut().expect("checked by write").write_all(out);
        out.clear();
        r
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

/// Reads every entry of a log, the rotated part (`PATH.1`) first.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let mut out = read_one(&path.with_extension("log.1"))?;
    out.extend(read_one(path)?);
    Ok(out)
}

fn read_one(path: &Path) -> io::Result<Vec<Entry>> {
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

    #[test]
    fn rotation_keeps_the_log_bounded() {
        let dir = std::env::temp_dir().join(crate::util::fsutil::unique_name("berth-logs-"));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctr.log");
        let mut w = LogWriter::with_limit(&p, Some(1000)).unwrap();
        for i in 0..200 {
            w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        let total: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(total <= 2000, "kept {total} bytes");
        let e = read_all(&p).unwrap();
        assert_eq!(e.last().unwrap().content, b"line 199");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Progress output for pulls: live bars on a terminal, one plain line per
//! step otherwise (CI logs, pipes), nothing with --quiet.

use crate::image::progress::{BlobProgress, Progress, Silent};
use crate::util::digest::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;

/// Chooses the progress display for stderr.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        })
    } else {
        Box::new(Lines)
    }
}

/// Plain lines, as podman prints them when stderr is not a terminal.
struct Lines;

struct LineBlob {
    label: String,
}

impl BlobProgress for LineBlob {
    fn update(&self, _: u64) {}
    fn done(&self, skipped: bool) {
        if skipped {
            eprintln!("{} skipped: already exists", self.label);
        } else {
            eprintln!("{} done", self.label);
        }
    }
}

impl Progress for Lines {
    fn message(&self, line: &str) {
        eprintln!("{line}");
    }
    fn blob(&self, kind: &str, digest: &Digest, _: Option<u64>) -> Arc<dyn BlobProgress> {
        Arc::new(LineBlob {
            label: format!("Copying {kind} {}", digest.short()),
        })
    }
}

/// One live bar per blob on a terminal.
struct Bars {
    multi: MultiProgress,
}

struct BarBlob {
    bar: ProgressBar,
}

impl BlobProgress for BarBlob {
    fn update(&self, n: u64) {
        self.bar.set_position(n);
    }
    fn done(&self, skipped: bool) {
        if skipped {
            self.bar.finish_with_message("skipped: already exists");
        } else {
            let len = self.bar.length().unwrap_or(0);
            self.bar.set_position(len.max(self.bar.position()));
            self.bar.finish_with_message("done");
        }
    }
}

impl Progress for Bars {
    fn message(&self, line: &str) {
        let _ = self.multi.println(line);
    }
    fn blob(&self, kind: &str, digest: &Digest, size: Option<u64>) -> Arc<dyn BlobProgress> {
        let bar = self.multi.add(ProgressBar::new(size.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template("{prefix} {bar:30} {bytes:>10} / {total_bytes:<10} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("Copying {kind} {}", digest.short()));
        Arc::new(BarBlob { bar })
    }
}

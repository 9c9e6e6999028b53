//! The live view of a build on a terminal, in the style of BuildKit's:
//! each step on one line that ends as `=> [n/m] INSTRUCTION  1.2s` or
//! `=> CACHED [n/m] INSTRUCTION`, with the last lines a RUN step prints
//! shown under it while it runs and cleared when it ends. Without a
//! terminal the builder prints podman's plain lines instead; this module
//! is not used.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many lines of a RUN step's output stay on screen.
const TAIL: usize = 5;

/// The screen state shared with the thread that shows RUN output.
#[derive(Default)]
struct Screen {
    /// Lines drawn under the current step (erased when it ends).
    drawn: usize,
}

/// The live view of one build.
pub struct LiveView {
    screen: Arc<Mutex<Screen>>,
    current: Option<(String, Instant, bool)>,
}

/// The terminal's width in columns (80 when it cannot be told).
fn width() -> usize {
    // SAFETY: a zeroed winsize is a valid out-parameter for TIOCGWINSZ.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above; fd 1 is this process's stdout.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 20 {
        ws.ws_col as usize
    } else {
        80
    }
}

fn terminal() -> std::io::Stdout {
    std::io::stdout()
}

/// Erases the `drawn` lines under the cursor's step line and the line
/// itself, leaving the cursor at its start.
fn erase(out: &mut impl Write, drawn: usize) {
    let _ = write!(out, "\r");
    if drawn > 0 {
        let _ = write!(out, "\x1b[{drawn}A");
    }
    let _ = write!(out, "\x1b[J");
}

impl LiveView {
    pub fn new() -> LiveView {
        LiveView {
            screen: Arc::new(Mutex::new(Screen::default())),
            current: None,
        }
    }

    /// A step begins (the previous one ends). Its line is cut to the
    /// terminal's width, so erasing it erases one line.
    pub fn begin(&mut self, label: String) {
        self.end();
        let label: String = label.chars().take(width().saturating_sub(16)).collect();
        let mut out = terminal();
        let _ = write!(out, "[+] {label}");
        let _ = out.flush();
        self.current = Some((label, Instant::now(), false));
    }

    /// The current step came from the cache.
    pub fn cached(&mut self) {
        if let Some(c) = self.current.as_mut() {
            c.2 = true;
        }
    }

    /// A line that is not a step (a warning, the final COMMIT and id).
    pub fn line(&mut self, text: &str) {
        self.end();
        let mut out = terminal();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Ends the current step's line with its duration or CACHED.
    pub fn end(&mut self) {
        let Some((label, started, cached)) = self.current.take() else {
            return;
        };
        let mut screen = self.screen.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = terminal();
        erase(&mut out, screen.drawn);
        screen.drawn = 0;
        if cached {
            let _ = writeln!(out, "=> CACHED {label}");
        } else {
            let _ = writeln!(out, "=> {label}  {:.1}s", started.elapsed().as_secs_f64());
        }
        let _ = out.flush();
    }

    /// While the returned guard lives, this process's stdout and stderr
    /// (which a RUN step's container writes to) go to a pipe whose last
    /// lines are drawn under the current step.
    pub fn capture(&self) -> Capture {
        Capture::start(
            self.screen.clone(),
            self.current.as_ref().map(|c| c.0.clone()),
        )
    }
}

impl Drop for LiveView {
    /// A build that failed during a step leaves that step marked.
    fn drop(&mut self) {
        if let Some((label, _, _)) = self.current.take() {
            let drawn = self.screen.lock().map(|s| s.drawn).unwrap_or(0);
            let mut out = terminal();
            erase(&mut out, drawn);
            let _ = writeln!(out, "=> ERROR {label}");
            let _ = out.flush();
        }
    }
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView::new()
    }
}

/// fds 1 and 2 redirected into a pipe drawn by a thread; restored on drop.
pub struct Capture {
    saved: Option<(i32, i32)>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Tells the reader to stop once the pipe is drained, even if a
    /// process that outlived the step still holds its write end.
    stop: Arc<AtomicBool>,
}

impl Capture {
    fn start(screen: Arc<Mutex<Screen>>, label: Option<String>) -> Capture {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills the array; dup/dup2 on fds this process owns.
        let saved = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return Capture {
                    saved: None,
                    reader: None,
                    stop: Default::default(),
                };
            }
            let out = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
            let err = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
            libc::dup2(fds[1], 1);
            libc::dup2(fds[1], 2);
            libc::close(fds[1]);
            (out, err)
        };
        // SAFETY: fds[0] is the pipe's read end, owned by nobody else.
        let read_end = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: a second descriptor of the saved terminal, for the thread.
        let term = unsafe { libc::fcntl(saved.0, libc::F_DUPFD_CLOEXEC, 3) };
        let cols = width().saturating_sub(4);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        // The reader starts with every signal blocked, so that a signal
        // meant for the builder (the SIGCHLD its container monitor waits
        // for on a signalfd) is never taken, and lost, by this thread.
        use nix::sys::signal::{SigSet, SigmaskHow};
        let old = SigSet::all().thread_swap_mask(SigmaskHow::SIG_BLOCK).ok();
        let reader = std::thread::spawn(move || {
            // SAFETY: `term` is a fresh descriptor this thread now owns.
            let mut term = unsafe { std::fs::File::from_raw_fd(term) };
            let mut pipe = std::fs::File::from(read_end);
            let mut lines: Vec<String> = Vec::new();
            let mut partial = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let mut pfd = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&pipe),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
                if ready <= 0 {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    continue;
                }
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                partial.extend_from_slice(&buf[..n]);
                while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=i).collect();
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    lines.push(
                        text.chars()
                            .filter(|c| !c.is_control())
                            .take(cols)
                            .collect(),
                    );
                    if lines.len() > TAIL {
                        lines.remove(0);
                    }
                }
                let mut screen = screen.lock().unwrap_or_else(|e| e.into_inner());
                erase(&mut term, screen.drawn);
                let _ = write!(term, "[+] {}", label.as_deref().unwrap_or(""));
                for l in &lines {
                    let _ = write!(term, "\n\x1b[2m  {l}\x1b[0m");
                }
                screen.drawn = lines.len();
                let _ = term.flush();
            }
        });
        if let Some(old) = old {
            let _ = old.thread_set_mask();
        }
        Capture {
            saved: Some(saved),
            reader: Some(reader),
            stop,
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some((out, err)) = self.saved.take() {
            // SAFETY: restoring the saved descriptors closes the pipe's
            // last write ends, so the reader sees end of file.
            unsafe {
                libc::dup2(out, 1);
                libc::dup2(err, 2);
                libc::close(out);
                libc::close(err);
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

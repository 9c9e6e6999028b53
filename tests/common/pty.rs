//! Drives berth through a real pseudo-terminal, as a person at a terminal
//! would: berth's stdin/stdout/stderr are the pty slave and its
//! controlling terminal; the test types into the master and reads it.

use nix::pty::{openpty, Winsize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A berth process on a pty.
pub struct PtySession {
    pub master: std::fs::File,
    pub slave: OwnedFd,
    pub child: Child,
    pub output: String,
}

impl PtySession {
    /// Spawns `cmd` with a pty of `rows` x `cols` as its terminal.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let ws = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&ws), None).unwrap();
        let slave_raw = pty.slave.as_raw_fd();
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(io(&pty.slave))
            .stdout(io(&pty.slave))
            .stderr(io(&pty.slave));
        // SAFETY: async-signal-safe calls only.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                libc::ioctl(slave_raw, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(pty.master);
        // SAFETY: setting O_NONBLOCK on our master.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        PtySession {
            master,
            slave: pty.slave,
            child,
            output: String::new(),
        }
    }

    /// Types bytes into the terminal.
    pub fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    fn pump(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.output.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => break,
            }
        }
    }

    /// Waits until the output contains `needle`; panics with the output after `secs`.
    pub fn expect(&mut self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            self.pump();
            if self.output.contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {needle:?}; terminal showed:\n{}",
            self.output
        );
    }

    /// Waits for berth to exit; returns its exit code.
    pub fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            self.pump();
            if let Some(s) = self.child.try_wait().unwrap() {
                self.pump();
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("berth did not exit; terminal showed:\n{}", self.output);
    }

    /// The terminal's local-mode flags (ECHO, ICANON, ...), to check they are restored.
    pub fn local_flags(&self) -> nix::sys::termios::LocalFlags {
        nix::sys::termios::tcgetattr(&self.slave)
            .unwrap()
            .local_flags
    }
}

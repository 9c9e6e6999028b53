//! The caller's terminal: raw mode for `-it` (restored on every exit path,
//! including errors), and window-size copying to the container's pty.

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::os::fd::{AsFd, BorrowedFd, RawFd};

/// Puts a terminal in raw mode until dropped.
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal; None otherwise.
    pub fn enable(fd: RawFd) -> Option<RawMode> {
        // SAFETY: fd is a valid open descriptor for the life of this guard (stdin).
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(b, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: as in enable.
        let b = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(b, SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of terminal `from` to pty `to`.
pub fn copy_winsize(from: RawFd, to: impl AsFd) {
    // SAFETY: zeroed winsize is valid; ioctls with valid pointers.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&to.as_fd()),
                libc::TIOCSWINSZ,
                &ws,
            );
        }
    }
}

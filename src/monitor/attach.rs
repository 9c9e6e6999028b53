//! The attach socket of a detached container: a SOCK_SEQPACKET unix socket
//! in the container's directory through which `attach`, `start -a` and
//! `run -d -it` + `attach` see the container's output live and feed its
//! stdin, terminal size and signals. One packet is one message: a kind
//! byte, then its payload.

use nix::sys::socket::{
    accept4, bind, connect, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Output the container wrote to stdout (or its terminal).
pub const STDOUT: u8 = 1;
/// Output the container wrote to stderr.
pub const STDERR: u8 = 2;
/// Bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// The client's terminal size: rows, cols as little-endian u16.
pub const RESIZE: u8 = 3;
/// The client's stdin ended.
pub const STDIN_EOF: u8 = 4;
/// The container exited: its exit code as little-endian i32. Last message.
pub const EXIT: u8 = 5;
/// A signal for the container (sig-proxy): its number as a byte.
pub const SIGNAL: u8 = 6;

/// Largest payload of one packet.
pub const MAX_PAYLOAD: usize = 32 * 1024;

/// The socket's path is reached through an open directory descriptor
/// (`/proc/self/fd/N/attach`) so long store paths do not hit the 108-byte
/// limit of unix socket addresses.
fn address(dir: &Path) -> std::io::Result<(std::fs::File, UnixAddr)> {
    let d = std::fs::File::open(dir)?;
    let addr = UnixAddr::new(format!("/proc/self/fd/{}/attach", d.as_raw_fd()).as_str())
        .map_err(std::io::Error::from)?;
    Ok((d, addr))
}

fn seqpacket() -> std::io::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(std::io::Error::from)
}

/// Sends one message; errors mean the peer is gone.
pub fn send_msg(fd: impl AsFd, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut pkt = Vec::with_capacity(payload.len() + 1);
    pkt.push(kind);
    pkt.extend_from_slice(payload);
    send(fd.as_fd().as_raw_fd(), &pkt, MsgFlags::MSG_NOSIGNAL)
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// Receives one message into `buf`; None when the peer closed.
pub fn recv_msg(fd: impl AsFd, buf: &mut [u8]) -> Option<(u8, usize)> {
    match recv(fd.as_fd().as_raw_fd(), buf, MsgFlags::empty()) {
        Ok(0) | Err(_) => None,
        Ok(n) => Some((buf[0], n - 1)),
    }
}

/// The monitor's side: a listening socket and the clients attached now.
pub struct AttachServer {
    listener: OwnedFd,
    /// Attached clients; a client that cannot keep up is dropped.
    pub clients: Vec<OwnedFd>,
}

impl AttachServer {
    /// Creates the socket `DIR/attach` (replacing a stale one).
    pub fn bind(dir: &Path) -> std::io::Result<AttachServer> {
        let _ = std::fs::remove_file(dir.join("attach"));
        let (_d, addr) = address(dir)?;
        let listener = seqpacket()?;
        bind(listener.as_raw_fd(), &addr).map_err(std::io::Error::from)?;
        listen(&listener, Backlog::new(16).expect("valid backlog"))
            .map_err(std::io::Error::from)?;
        Ok(AttachServer {
            listener,
            clients: Vec::new(),
        })
    }

    /// The descriptor to poll for new clients.
    pub fn listener(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Accepts a waiting client.
    pub fn accept(&mut self) {
        if let Ok(fd) = accept4(self.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // SAFETY: accept4 returned a new descriptor that we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // A client that stops reading must not stall the container's output.
            let tv = nix::sys::time::TimeVal::new(2, 0);
            let _ = nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::SendTimeout, &tv);
            self.clients.push(fd);
        }
    }

    /// Waits up to `timeout_ms` for the first client (`start -a`, so no
    /// output is missed); false when none came.
    pub fn accept_first(&mut self, timeout_ms: u16) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        if matches!(poll(&mut fds, PollTimeout::from(timeout_ms)), Ok(n) if n > 0) {
            self.accept();
        }
        !self.clients.is_empty()
    }

    /// Sends output to every client, dropping those that are gone.
    pub fn broadcast(&mut self, kind: u8, data: &[u8]) {
        for chunk in data.chunks(MAX_PAYLOAD) {
            self.clients.retain(|c| send_msg(c, kind, chunk).is_ok());
        }
    }

    /// Tells every client how the container ended and lets them go.
    pub fn exited(&mut self, code: i32) {
        self.broadcast(EXIT, &code.to_le_bytes());
        self.clients.clear();
    }
}

/// The client's side: connects to a container's socket.
pub fn connect_to(dir: &Path) -> std::io::Result<OwnedFd> {
    let (_d, addr) = address(dir)?;
    let fd = seqpacket()?;
    connect(fd.as_raw_fd(), &addr).map_err(std::io::Error::from)?;
    Ok(fd)
}

/// A `--detach-keys` value berth cannot read.
#[derive(Debug, thiserror::Error)]
#[error("invalid detach key {0:?}: use keys such as \"ctrl-p,ctrl-q\", or \"\" to disable")]
pub struct BadDetachKey(pub String);

/// Parses podman's `--detach-keys` ("ctrl-p,ctrl-q"; "" disables).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, BadDetachKey> {
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b] if b.is_ascii_alphabetic() => Ok(b.to_ascii_lowercase() - b'a' + 1),
                    b"@" => Ok(0),
                    b"[" => Ok(27),
                    b"\\" => Ok(28),
                    b"]" => Ok(29),
                    b"^" => Ok(30),
                    b"_" => Ok(31),
                    _ => Err(BadDetachKey(k.to_string())),
                }
            } else if k.len() == 1 {
                Ok(k.as_bytes()[0])
            } else {
                Err(BadDetachKey(k.to_string()))
            }
        })
        .collect()
}

/// Finds the detach sequence in typed input, remembering a partial match
/// across reads.
pub struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, matched: 0 }
    }

    /// Returns the bytes to forward, and whether the sequence completed
    /// (the rest is then dropped). Bytes of a partial match are held back
    /// until it fails.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// How an attached session should behave (podman's `attach` flags).
pub struct ClientOptions {
    /// The container has a terminal: raw mode, resizes, detach keys.
    pub tty: bool,
    /// Forward our stdin (`attach` without `--no-stdin`, `start -i`).
    pub stdin: bool,
    /// The detach sequence (empty: none).
    pub detach_keys: Vec<u8>,
    /// Forward signals sent to berth to the container (`--sig-proxy`).
    pub sig_proxy: bool,
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys (or a signal ended us without sig-proxy).
    Detached,
    /// The monitor closed the socket without an exit status.
    Lost,
}

fn winsize_payload() -> Option<[u8; 4]> {
    // SAFETY: zeroed winsize is valid; TIOCGWINSZ with a valid pointer.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            let mut p = [0u8; 4];
            p[..2].copy_from_slice(&ws.ws_row.to_le_bytes());
            p[2..].copy_from_slice(&ws.ws_col.to_le_bytes());
            return Some(p);
        }
    }
    None
}

/// Relays our terminal or stdio to an attached container until it exits,
/// the user detaches, or the monitor goes away.
pub fn client(conn: OwnedFd, o: ClientOptions) -> std::io::Result<Ended> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::Signal;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::io::{IsTerminal, Read, Write};
    let set = super::forwarded_and(&[Signal::SIGWINCH]);
    set.thread_block()?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = if o.tty && o.stdin && std::io::stdin().is_terminal() {
        super::tty::RawMode::enable(0)
    } else {
        None
    };
    if o.tty {
        if let Some(p) = winsize_payload() {
            send_msg(&conn, RESIZE, &p)?;
        }
    }
    let mut detach = DetachMatcher::new(if o.tty { o.detach_keys } else { Vec::new() });
    let mut stdin_open = o.stdin;
    let mut buf = vec![0u8; MAX_PAYLOAD + 1];
    let ended = loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = super::ready(fds);
        if ready[0] {
            let mut stop = false;
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(p) = winsize_payload() {
                        let _ = send_msg(&conn, RESIZE, &p);
                    }
                } else if o.sig_proxy {
                    let _ = send_msg(&conn, SIGNAL, &[sig as u8]);
                } else {
                    stop = true;
                }
            }
            if stop {
                break Ended::Detached;
            }
        }
        if ready[1] {
            match recv_msg(&conn, &mut buf) {
                None => break Ended::Lost,
                Some((EXIT, 4)) => {
                    break Ended::Exited(i32::from_le_bytes(
                        buf[1..5].try_into().expect("four bytes"),
                    ))
                }
                Some((STDERR, n)) => {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(&buf[1..1 + n]);
                    let _ = e.flush();
                }
                Some((_, n)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[1..1 + n]);
                    let _ = out.flush();
                }
            }
        }
        if stdin_open && ready.get(2).copied().unwrap_or(false) {
            let mut input = vec![0u8; MAX_PAYLOAD];
            match std::io::stdin().lock().read(&mut input) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = send_msg(&conn, STDIN_EOF, &[]);
                }
                Ok(n) => {
                    let (pass, detached) = detach.feed(&input[..n]);
                    if !pass.is_empty() && send_msg(&conn, STDIN, &pass).is_err() {
                        break Ended::Lost;
                    }
                    if detached {
                        break Ended::Detached;
                    }
                }
            }
        }
    };
    let _ = set.thread_unblock();
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_detach_keys("a,ctrl-[").unwrap(), vec![b'a', 27]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }

    #[test]
    fn detach_sequence_found_across_reads() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(m.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(m.feed(b"\x11rest"), (Vec::new(), true));
        let mut off = DetachMatcher::new(Vec::new());
        assert_eq!(off.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }

    #[test]
    fn messages_cross_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("berth-attach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = AttachServer::bind(&dir).unwrap();
        let client = connect_to(&dir).unwrap();
        assert!(server.accept_first(1000));
        server.broadcast(STDERR, b"oops");
        server.exited(3);
        let mut buf = vec![0u8; MAX_PAYLOAD + 1];
        assert_eq!(recv_msg(&client, &mut buf), Some((STDERR, 4)));
        assert_eq!(&buf[1..5], b"oops");
        assert_eq!(recv_msg(&client, &mut buf), Some((EXIT, 4)));
        assert_eq!(i32::from_le_bytes(buf[1..5].try_into().unwrap()), 3);
        assert_eq!(recv_msg(&client, &mut buf), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

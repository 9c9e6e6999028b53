//! Advisory file locks (flock). The store uses one exclusive lock for short
//! metadata edits and a shared/exclusive pair so garbage collection never
//! deletes what an unfinished pull has just written.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// A held flock, released on drop.
pub struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    /// Blocks until an exclusive lock on `path` is held.
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        Self::take(path, FlockArg::LockExclusive)
    }

    /// Blocks until a shared lock on `path` is held.
    pub fn shared(path: &Path) -> io::Result<FileLock> {
        Self::take(path, FlockArg::LockShared)
    }

    fn take(path: &Path, arg: FlockArg) -> io::Result<FileLock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let lock = Flock::lock(f, arg).map_err(|(_, e)| io::Error::from(e))?;
        Ok(FileLock { _lock: lock })
    }
}

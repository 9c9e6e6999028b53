//! The process that watches a running container: owns its terminal or
//! stdio, forwards signals, and collects the exit status. For `run` in the
//! foreground this is berth itself.

pub mod attach;
pub mod detached;
pub mod foreground;
pub mod logfile;
pub mod tty;

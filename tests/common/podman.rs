//! podman as a peer in tests: its own store in a temp dir (vfs, so it
//! leaves no mount), runc and this machine's hard rlimits (MACHINE.md),
//! no events journal.

use super::TempDir;
use std::process::{Command, Output};

/// A podman with a store of its own, removed with it.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    /// A fresh podman store, or None (with the reason) when podman is
    /// not installed.
    pub fn new() -> Result<Podman, String> {
        Command::new("podman")
            .arg("--version")
            .output()
            .map_err(|e| format!("podman is not installed: {e}"))?;
        let dir = TempDir::new("podman");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        Ok(Podman { dir })
    }

    /// Runs podman with `args` against this store.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "none"])
            .args(args)
            .output()
            .expect("podman runs")
    }

    /// Runs podman and returns its stdout; panics with its stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["system", "reset", "-f"]);
    }
}

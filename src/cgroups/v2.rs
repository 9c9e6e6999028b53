//! cgroup v2: one directory in the unified hierarchy, controllers enabled
//! down the path from the root.

use super::{io_err, kill_listed, remove_dir, write, Cgroup, CgroupError, Resources};
use std::path::{Path, PathBuf};

/// A container's cgroup in the unified hierarchy.
pub struct V2Cgroup {
    dir: PathBuf,
    rel: String,
}

fn enable_controllers(dir: &Path) {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let wanted: Vec<String> = ["cpu", "memory", "pids", "io", "cpuset"]
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !wanted.is_empty() {
        // Fails harmlessly when processes live in `dir` (no internal processes rule).
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "));
    }
}

impl V2Cgroup {
    pub fn create(
        root: &Path,
        parent: &str,
        name: &str,
        res: &Resources,
    ) -> Result<V2Cgroup, CgroupError> {
        let rel = format!("{parent}/{name}");
        let mut cur = root.to_path_buf();
        enable_controllers(&cur);
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            cur = cur.join(part);
            if !cur.exists() {
                std::fs::create_dir(&cur).map_err(io_err(&cur))?;
            }
            enable_controllers(&cur);
        }
        let dir = cur.join(name);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let cg = V2Cgroup { dir, rel };
        if let Err(e) = cg.apply(res) {
            cg.destroy();
            return Err(e);
        }
        Ok(cg)
    }

    fn apply(&self, res: &Resources) -> Result<(), CgroupError> {
        if let Some(m) = res.memory {
            write(&self.dir.join("memory.max"), &m.to_string())?;
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, "0")?;
            }
        }
        if let Some(q) = res.cpu_quota {
            write(
                &self.dir.join("cpu.max"),
                &format!("{q} {}", res.cpu_period),
            )?;
        }
        if let Some(p) = res.pids {
            write(&self.dir.join("pids.max"), &p.to_string())?;
        }
        if let Some(rules) = &res.devices {
            super::devices::apply_v2(&self.dir, rules)?;
        }
        Ok(())
    }
}

impl Cgroup for V2Cgroup {
    fn add(&self, pid: i32) -> Result<(), CgroupError> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.dir.join("memory.events"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    }

    fn kill_all(&self) {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() && std::fs::write(&kill, "1").is_ok() {
            return;
        }
        kill_listed(&self.dir.join("cgroup.procs"));
    }

    fn destroy(&self) {
        self.kill_all();
        remove_dir(&self.dir);
    }

    fn path(&self) -> String {
        format!("/{}", self.rel)
    }
}

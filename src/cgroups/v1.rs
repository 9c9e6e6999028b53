//! cgroup v1: one directory per controller. Every container is in the pids
//! and freezer hierarchies (tracking, kill-all, pause) and, unless it may
//! use every device, in the devices hierarchy; memory and cpu only
//! when it has limits there, because moving a task into a v1 memory cgroup
//! costs ~10 ms of the start time.

use super::{io_err, kill_listed, remove_dir, write, Cgroup, CgroupError, Resources};
use std::path::{Path, PathBuf};

const ALWAYS: [&str; 2] = ["pids", "freezer"];

/// A container's cgroup in each v1 controller that is mounted.
pub struct V1Cgroup {
    dirs: Vec<(String, PathBuf)>,
    rel: String,
}

impl V1Cgroup {
    pub fn create(
        root: &Path,
        parent: &str,
        name: &str,
        res: &Resources,
    ) -> Result<V1Cgroup, CgroupError> {
        let rel = format!("{parent}/{name}");
        let mut dirs = Vec::new();
        let mut wanted: Vec<&str> = ALWAYS.to_vec();
        if res.memory.is_some() {
            wanted.push("memory");
        }
        if res.cpu_quota.is_some() {
            wanted.push("cpu");
        }
        if res.devices.is_some() {
            wanted.push("devices");
        }
        for c in wanted {
            let base = root.join(c);
            if !base.join("cgroup.procs").exists() {
                continue;
            }
            // cpu and cpuacct are often one mount under two names.
            let canonical = std::fs::canonicalize(&base).unwrap_or(base.clone());
            if dirs
                .iter()
                .any(|(_, d): &(String, PathBuf)| d.starts_with(&canonical))
            {
                continue;
            }
            let dir = canonical.join(&rel);
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            dirs.push((c.to_string(), dir));
        }
        let cg = V1Cgroup { dirs, rel };
        if let Err(e) = cg.apply(res) {
            cg.destroy();
            return Err(e);
        }
        Ok(cg)
    }

    fn dir(&self, controller: &str) -> Option<&PathBuf> {
        self.dirs
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, d)| d)
    }

    fn apply(&self, res: &Resources) -> Result<(), CgroupError> {
        if let (Some(m), Some(d)) = (res.memory, self.dir("memory")) {
            write(&d.join("memory.limit_in_bytes"), &m.to_string())?;
            let swap = d.join("memory.memsw.limit_in_bytes");
            if swap.exists() {
                write(&swap, &m.to_string())?;
            }
        }
        if let (Some(q), Some(d)) = (res.cpu_quota, self.dir("cpu")) {
            write(&d.join("cpu.cfs_period_us"), &res.cpu_period.to_string())?;
            write(&d.join("cpu.cfs_quota_us"), &q.to_string())?;
        }
        if let (Some(p), Some(d)) = (res.pids, self.dir("pids")) {
            write(&d.join("pids.max"), &p.to_string())?;
        }
        if let Some(rules) = &res.devices {
            let d = self.dir("devices").ok_or_else(|| CgroupError::Io {
                path: "/sys/fs/cgroup/devices".into(),
                source: std::io::Error::other(
                    "the devices controller is not mounted: containers cannot be kept from host devices",
                ),
            })?;
            super::devices::apply_v1(d, rules)?;
        }
        Ok(())
    }
}

impl Cgroup for V1Cgroup {
    fn add(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, d) in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn oom_killed(&self) -> bool {
        let Some(d) = self.dir("memory") else {
            return false;
        };
        std::fs::read_to_string(d.join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    }

    fn kill_all(&self) {
        if let Some((_, d)) = self.dirs.first() {
            kill_listed(&d.join("cgroup.procs"));
        }
    }

    fn destroy(&self) {
        self.kill_all();
        for (_, d) in &self.dirs {
            remove_dir(d);
        }
    }

    fn path(&self) -> String {
        format!("/{}", self.rel)
    }
}

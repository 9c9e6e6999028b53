//! The last steps before exec, in the container's first process: user and
//! groups, rlimits, capabilities, no_new_privs, the seccomp filter, and the
//! lookup of the command in the container's PATH.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::unix::fs::DirBuilderExt;
use std::str::FromStr;

use super::child_error::{ChildError, Step};
use super::SpecProblem;

fn fail(step: Step, reason: impl Into<String>) -> ChildError {
    ChildError::new(step, reason)
}

/// Everything exec needs, prepared in the parent (no allocation after fork
/// is needed to build it).
pub struct ExecPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub path_dirs: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    pub no_new_privileges: bool,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
}

fn capset(set: &Option<oci_spec::runtime::Capabilities>) -> CapsHashSet {
    set.as_ref()
        .map(|s| {
            s.iter()
                // The spec's serialised name is the kernel's (CAP_CHOWN).
                .filter_map(|c| serde_json::to_value(c).ok())
                .filter_map(|v| v.as_str().and_then(|n| Capability::from_str(n).ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        _ => return None,
    })
}

impl ExecPlan {
    /// Prepares exec from the spec's process section.
    pub fn from_process(p: &Process) -> Result<ExecPlan, SpecProblem> {
        let args: Vec<CString> = p
            .args()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|a| CString::new(a).map_err(|_| SpecProblem::NulInArgs))
            .collect::<Result<_, _>>()?;
        if args.is_empty() {
            return Err(SpecProblem::NoCommand);
        }
        let env_strings = p.env().clone().unwrap_or_default();
        let path = env_strings
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let env = env_strings
            .into_iter()
            .map(|e| CString::new(e).map_err(|_| SpecProblem::NulInEnv))
            .collect::<Result<_, _>>()?;
        let caps = p.capabilities().clone().unwrap_or_default();
        let rlimits = p
            .rlimits()
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                rlimit_resource(
                    &format!("{:?}", r.typ())
                        .to_uppercase()
                        .replace("RLIMIT", "RLIMIT_"),
                )
                .map(|res| (res, r.soft(), r.hard()))
            })
            .collect();
        Ok(ExecPlan {
            args,
            env,
            path_dirs: path
                .split(':')
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect(),
            cwd: p.cwd().display().to_string(),
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            bounding: capset(caps.bounding()),
            effective: capset(caps.effective()),
            permitted: capset(caps.permitted()),
            inheritable: capset(caps.inheritable()),
            ambient: capset(caps.ambient()),
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            rlimits,
        })
    }

    /// Finds the executable as execvp would, in the container's PATH.
    fn resolve(&self) -> Result<CString, ChildError> {
        let cmd = self.args[0].to_string_lossy().into_owned();
        if cmd.contains('/') {
            return Ok(self.args[0].clone());
        }
        for d in &self.path_dirs {
            let candidate = format!("{d}/{cmd}");
            if let Ok(m) = std::fs::metadata(&candidate) {
                if m.is_file() {
                    return CString::new(candidate).map_err(|_| fail(Step::NotFound, "bad path"));
                }
            }
        }
        Err(fail(
            Step::NotFound,
            format!("executable file `{cmd}` not found in $PATH: No such file or directory"),
        ))
    }

    /// Sets limits, identity, capabilities and seccomp, then execs the
    /// command. Returns only on failure.
    pub fn exec(&self, seccomp: Option<&[u8]>) -> ChildError {
        for (res, soft, hard) in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: *soft,
                rlim_max: *hard,
            };
            // SAFETY: valid pointer.
            if unsafe { libc::setrlimit(*res, &lim) } < 0 {
                return fail(
                    Step::Rlimit,
                    format!("setrlimit: {}", std::io::Error::last_os_error()),
                );
            }
        }
        // A missing working directory is made (as runc and crun do; a
        // build's WORKDIR relies on it); anything else in the way fails.
        if std::fs::symlink_metadata(&self.cwd).is_err() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&self.cwd);
        }
        if let Err(e) = std::env::set_current_dir(&self.cwd) {
            return fail(
                Step::WorkDir,
                format!("cannot change to working directory {}: {e}", self.cwd),
            );
        }
        let exe = match self.resolve() {
            Ok(e) => e,
            Err(f) => return f,
        };
        // Drop bounding-set capabilities while we still have CAP_SETPCAP.
        for c in caps::all() {
            if !self.bounding.contains(&c) {
                let _ = caps::drop(None, CapSet::Bounding, c);
            }
        }
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        let groups: Vec<libc::gid_t> = self.groups.clone();
        // SAFETY: valid pointer and length.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } < 0 && !groups.is_empty() {
            return fail(
                Step::Identity,
                format!("setgroups: {}", std::io::Error::last_os_error()),
            );
        }
        // SAFETY: plain id syscalls.
        if unsafe { libc::setresgid(self.gid, self.gid, self.gid) } < 0 {
            return fail(
                Step::Identity,
                format!(
                    "setting gid {}: {}",
                    self.gid,
                    std::io::Error::last_os_error()
                ),
            );
        }
        // SAFETY: plain id syscalls.
        if unsafe { libc::setresuid(self.uid, self.uid, self.uid) } < 0 {
            return fail(
                Step::Identity,
                format!(
                    "setting uid {}: {}",
                    self.uid,
                    std::io::Error::last_os_error()
                ),
            );
        }
        // The filter is loaded while CAP_SYS_ADMIN is still effective (or
        // with no_new_privs), then the final capability sets are applied.
        if let Err(e) = caps::set(None, CapSet::Effective, &caps::all()).or_else(|_| {
            caps::set(
                None,
                CapSet::Effective,
                &caps::read(None, CapSet::Permitted).unwrap_or_default(),
            )
        }) {
            return fail(Step::Capabilities, format!("capabilities: {e}"));
        }
        if self.no_new_privileges {
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        }
        if let Some(f) = seccomp {
            if let Err(e) = super::seccomp::load(f) {
                return fail(Step::Seccomp, format!("loading the seccomp filter: {e}"));
            }
        }
        // Only what this process holds can be kept (a host may lack some,
        // as this project's machines lack CAP_SYS_RESOURCE); effective is
        // narrowed before permitted so it always stays a subset.
        let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
        let apply = || -> Result<(), caps::errors::CapsError> {
            caps::set(
                None,
                CapSet::Effective,
                &self.effective.intersection(&held).copied().collect(),
            )?;
            caps::set(
                None,
                CapSet::Inheritable,
                &self.inheritable.intersection(&held).copied().collect(),
            )?;
            caps::set(
                None,
                CapSet::Permitted,
                &self.permitted.intersection(&held).copied().collect(),
            )?;
            caps::clear(None, CapSet::Ambient)?;
            for c in &self.ambient {
                caps::raise(None, CapSet::Ambient, *c)?;
            }
            Ok(())
        };
        if let Err(e) = apply() {
            return fail(Step::Capabilities, format!("setting capabilities: {e}"));
        }
        let argv: Vec<*const libc::c_char> = self
            .args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = self
            .env
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: NULL-terminated arrays of valid C strings.
        unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = std::io::Error::last_os_error();
        let name = self.args[0].to_string_lossy();
        match e.raw_os_error() {
            Some(libc::ENOENT) => {
                fail(Step::NotFound, format!("{name}: no such file or directory"))
            }
            Some(libc::EACCES) | Some(libc::ENOEXEC) | Some(libc::EISDIR) | Some(libc::EPERM) => {
                fail(
                    Step::CannotExecute,
                    format!("exec {name}: permission denied: the file cannot be executed ({e})"),
                )
            }
            _ => fail(Step::CannotExecute, format!("{name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(v: serde_json::Value) -> Process {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_exec_plan_is_read_from_the_spec() {
        let p = process(serde_json::json!({
            "user": {"uid": 1000, "gid": 100, "additionalGids": [10, 20]},
            "args": ["sh", "-c", "true"],
            "env": ["PATH=/opt/bin::/bin", "A=1"],
            "cwd": "/srv",
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_CHOWN", "CAP_KILL"],
                "inheritable": [],
                "ambient": []
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
            "noNewPrivileges": true
        }));
        let plan = ExecPlan::from_process(&p).unwrap();
        assert_eq!(plan.args.len(), 3);
        assert_eq!(plan.path_dirs, ["/opt/bin", "/bin"]);
        assert_eq!(
            (plan.uid, plan.gid, plan.groups.clone()),
            (1000, 100, vec![10, 20])
        );
        assert_eq!(plan.cwd, "/srv");
        assert!(plan.bounding.contains(&Capability::CAP_CHOWN));
        assert_eq!(plan.effective.len(), 1);
        assert!(plan.ambient.is_empty() && plan.no_new_privileges);
        assert_eq!(plan.rlimits, vec![(libc::RLIMIT_NOFILE, 1024, 4096)]);
    }

    #[test]
    fn a_spec_that_cannot_run_is_refused_before_fork() {
        let no_args = process(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": []
        }));
        assert!(matches!(
            ExecPlan::from_process(&no_args),
            Err(SpecProblem::NoCommand)
        ));
        let nul = process(serde_json::json!({
            "user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["a\u{0}b"]
        }));
        assert!(matches!(
            ExecPlan::from_process(&nul),
            Err(SpecProblem::NulInArgs)
        ));
    }
}

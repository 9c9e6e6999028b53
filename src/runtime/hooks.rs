//! The spec's hooks (OCI runtime spec, "POSIX-platform Hooks"): programs
//! run at fixed points of a container's life with its state as JSON on
//! their stdin. `prestart` and `createRuntime` run in berth's namespaces
//! once the container's exist; `createContainer` runs in the container's
//! namespaces before pivot_root and `startContainer` just before the
//! command (both by the container's own process); `poststart` after the
//! command started; `poststop` once the container is gone. A hook that
//! fails or overruns its timeout stops the container, except poststart and
//! poststop, whose failures are only warned about.

use oci_spec::runtime::{Hook, Hooks, Spec};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

/// The points of a container's life where hooks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    /// The spec's name of the stage.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }

    fn of(self, hooks: &Hooks) -> Option<&Vec<Hook>> {
        #[allow(deprecated)]
        match self {
            Stage::Prestart => hooks.prestart().as_ref(),
            Stage::CreateRuntime => hooks.create_runtime().as_ref(),
            Stage::CreateContainer => hooks.create_container().as_ref(),
            Stage::StartContainer => hooks.start_container().as_ref(),
            Stage::Poststart => hooks.poststart().as_ref(),
            Stage::Poststop => hooks.poststop().as_ref(),
        }
    }
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("{stage} hook {path}: {source}")]
    Spawn {
        stage: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{stage} hook {path} failed ({status})")]
    Status {
        stage: &'static str,
        path: String,
        status: std::process::ExitStatus,
    },
    #[error("{stage} hook {path} did not finish within {seconds} s and was killed")]
    Timeout {
        stage: &'static str,
        path: String,
        seconds: i64,
    },
}

/// What a hook reads on its stdin: the container's state.
pub fn state_json(spec: &Spec, id: &str, status: &str, pid: Option<i32>, bundle: &Path) -> String {
    let mut v = serde_json::json!({
        "ociVersion": spec.version(),
        "id": id,
        "status": status,
        "bundle": bundle,
        "annotations": spec.annotations().clone().unwrap_or_default(),
    });
    if let Some(p) = pid {
        v["pid"] = p.into();
    }
    v.to_string()
}

/// The hooks a spec has for `stage` (none when it has no hooks).
pub fn of(spec: &Spec, stage: Stage) -> Vec<Hook> {
    spec.hooks()
        .as_ref()
        .and_then(|h| stage.of(h))
        .cloned()
        .unwrap_or_default()
}

/// Runs `hooks` in order, each with `state` on stdin; stops at the first
/// that fails.
pub fn run(stage: Stage, hooks: &[Hook], state: &str) -> Result<(), HookFailure> {
    hooks.iter().try_for_each(|h| run_one(stage, h, state))
}

/// Runs the hooks of a stage whose failures do not stop anything
/// (poststart, poststop): each failure is a warning.
pub fn run_warning(stage: Stage, hooks: &[Hook], state: &str) {
    for h in hooks {
        if let Err(e) = run_one(stage, h, state) {
            tracing::warn!("{e}");
        }
    }
}

fn run_one(stage: Stage, hook: &Hook, state: &str) -> Result<(), HookFailure> {
    let path = hook.path().display().to_string();
    let spawn_err = |source| HookFailure::Spawn {
        stage: stage.name(),
        path: path.clone(),
        source,
    };
    let mut cmd = std::process::Command::new(hook.path());
    if let Some(args) = hook.args().as_ref().filter(|a| !a.is_empty()) {
        cmd.arg0(&args[0]).args(&args[1..]);
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is not a failure.
        let _ = stdin.write_all(state.as_bytes());
    }
    let timeout = hook.timeout().filter(|t| *t > 0);
    if let Some(seconds) = timeout {
        if !exits_within(child.id() as i32, seconds) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookFailure::Timeout {
                stage: stage.name(),
                path,
                seconds,
            });
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(HookFailure::Status {
            stage: stage.name(),
            path,
            status,
        });
    }
    Ok(())
}

/// Waits up to `seconds` for the process to exit, without reaping it.
fn exits_within(pid: i32, seconds: i64) -> bool {
    // SAFETY: pidfd_open on our own child; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true; // no pidfd (old kernel): wait without a timeout
    }
    // SAFETY: the kernel returned a new fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = (seconds.saturating_mul(1000)).min(i32::MAX as i64) as i32;
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return r > 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut v = serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", script],
            "env": ["HOOK_ENV=set"],
        });
        if let Some(t) = timeout {
            v["timeout"] = t.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_hook_reads_the_state_and_only_its_own_environment() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!(
            "cat > {0}; echo \"$HOOK_ENV:$HOME\" > {0}.env",
            out.display()
        );
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "annotations": {"a": "b"}
        }))
        .unwrap();
        let state = state_json(&spec, "c1", "created", Some(42), Path::new("/b"));
        run(Stage::CreateRuntime, &[hook(&script, None)], &state).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let env = std::fs::read_to_string(dir.join("out.env")).unwrap();
        assert_eq!(v["id"], "c1");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["status"], "created");
        assert_eq!(v["bundle"], "/b");
        assert_eq!(v["annotations"]["a"], "b");
        assert_eq!(env.trim(), "set:", "only the hook's env is passed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_or_slow_hook_stops_the_stage() {
        let e = run(
            Stage::Prestart,
            &[hook("exit 3", None), hook("touch /nonexistent/x", None)],
            "{}",
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                HookFailure::Status {
                    stage: "prestart",
                    ..
                }
            ),
            "{e}"
        );
        let e = run(Stage::CreateContainer, &[hook("sleep 30", Some(1))], "{}").unwrap_err();
        assert!(matches!(e, HookFailure::Timeout { seconds: 1, .. }), "{e}");
        run(Stage::Poststart, &[hook("exit 0", Some(5))], "{}").unwrap();
    }
}

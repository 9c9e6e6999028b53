//! `exec`: another command in a running container, with the container's
//! namespaces, cgroup, capabilities and seccomp filter.

use super::container::Containers;
use super::run::RunError;
use super::Engine;
use crate::monitor::foreground::{relay, IoMode};
use crate::runtime::exec::{spawn, ExecInto};

/// What `berth exec` was asked to do.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub container: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
    /// `--preserve-fds N`
    pub preserve_fds: u32,
}

fn usage(s: impl Into<String>) -> RunError {
    RunError::Usage(s.into())
}

/// Runs the command; returns its exit code (0 right away with -d).
pub fn exec(engine: &Engine, o: ExecOptions) -> Result<i32, RunError> {
    let containers = Containers::new(engine.store.root());
    let record = containers.find(&o.container)?;
    record
        .allows(super::record::Action::Exec)
        .map_err(super::lifecycle::LifecycleError::from)?;
    let Some(pid) = record.pid else {
        return Err(usage(format!(
            "container {} has no process yet (it is restarting): try again",
            record.name
        )));
    };
    if o.command.is_empty() {
        return Err(usage("exec needs a command to run"));
    }
    let spec: oci_spec::runtime::Spec =
        std::fs::read(containers.dir(&record.id).join("userdata/config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or_else(|| {
                usage(format!(
                    "the config of container {} is missing or damaged",
                    record.name
                ))
            })?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| usage("the container's config has no process"))?;
    let mut env = process.env().clone().unwrap_or_default();
    for e in &o.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), std::env::var(e).unwrap_or_default()),
        };
        env.retain(|x| x.split('=').next() != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    process.set_env(Some(env));
    process.set_args(Some(o.command.clone()));
    process.set_terminal(Some(o.tty));
    if let Some(w) = &o.workdir {
        if !w.starts_with('/') {
            return Err(usage(format!(
                "invalid --workdir {w:?}: must be an absolute path"
            )));
        }
        process.set_cwd(w.into());
    }
    if let Some(u) = &o.user {
        // The container's own /etc/passwd, as it is now.
        let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
        let ids = super::user::resolve(u, &[root.as_path()])?;
        let mut user = process.user().clone();
        user.set_uid(ids.uid);
        user.set_gid(ids.gid);
        user.set_additional_gids(Some(ids.groups));
        process.set_user(user);
    }
    let mut seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    if o.privileged {
        let all: Vec<String> = super::spec::all_caps();
        let caps: oci_spec::runtime::Capabilities =
            serde_json::from_value(serde_json::json!(all)).map_err(|e| usage(e.to_string()))?;
        let mut c = process.capabilities().clone().unwrap_or_default();
        c.set_bounding(Some(caps.clone()));
        c.set_effective(Some(caps.clone()));
        c.set_permitted(Some(caps));
        process.set_capabilities(Some(c));
        seccomp = None;
    }
    let bpf = match &seccomp {
        Some(s) => Some(
            crate::runtime::seccomp::bpf(s, Some(&engine.paths.runroot.join("seccomp")))
                .map_err(crate::runtime::RuntimeError::from)?,
        ),
        None => None,
    };
    let cgroup_procs = record
        .cgroup
        .as_ref()
        .map(|(p, n)| crate::cgroups::procs_files(p, n))
        .unwrap_or_default();
    let x = ExecInto {
        pid,
        process: &process,
        seccomp: bpf,
        cgroup_procs,
        detach: o.detach,
    };
    if o.detach {
        spawn(
            &x,
            crate::runtime::Stdio {
                console: None,
                null_stdin: true,
                output: None,
                input: None,
                preserve_fds: 0,
            },
        )?;
        return Ok(0);
    }
    let ptmx = std::path::PathBuf::from(format!("/proc/{pid}/root/dev/pts/ptmx"));
    Ok(relay(
        IoMode {
            preserve_fds: o.preserve_fds,
            ..IoMode::plain(o.tty, o.interactive)
        },
        Some(&ptmx),
        None,
        |stdio| spawn(&x, stdio),
    )?)
}

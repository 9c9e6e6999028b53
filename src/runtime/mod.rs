//! The low-level runtime: given an OCI runtime spec and a rootfs mount
//! point, create the container's first process in new namespaces and run
//! the setup plan in it. Knows nothing of images or registries (the engine
//! prepares the spec) and nothing of terminals or logs (the monitor does).

mod child;
pub mod child_error;
pub mod copyup;
pub mod exec;
pub mod fuse_mount;
pub mod hooks;
pub mod mounts;
pub mod plan;
pub mod process;
pub mod seccomp;
pub mod session;
pub mod step_error;

use crate::cgroups::Cgroup;
use crate::namespaces::container::{NamespaceError, NamespacePlan};
pub use child_error::{ChildError, Step};
use hooks::Stage;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// A runtime spec berth cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecProblem {
    #[error("the spec has no process")]
    NoProcess,
    #[error("no command given")]
    NoCommand,
    #[error("an argument contains a NUL byte")]
    NulInArgs,
    #[error("the environment contains a NUL byte")]
    NulInEnv,
}

/// Wraps an I/O error with what the runtime was doing, for `map_err`.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
}

/// Why a prestart hook failed (the engine's own error, passed through).
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Why the container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Spec(#[from] SpecProblem),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    /// Setup or exec failed in the container process (its step decides
    /// podman's exit code: 125 setup, 126 cannot invoke, 127 not found).
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A setup step run in berth's own process (`cp` of a stopped
    /// container mounts its rootfs).
    #[error(transparent)]
    Step(#[from] step_error::StepError),
    /// The prestart hook (network set-up) failed.
    #[error(transparent)]
    Hook(HookError),
    /// A hook of the spec failed.
    #[error(transparent)]
    SpecHook(#[from] hooks::HookFailure),
}

impl RuntimeError {
    /// The exit code podman gives when the container's command could not
    /// run (126, 127, or 125 for setup), if that is what happened.
    pub fn container_code(&self) -> Option<i32> {
        match self {
            RuntimeError::Child(e) => Some(e.exit_code()),
            _ => None,
        }
    }
}

/// How the container's stdio is connected.
pub struct Stdio {
    /// The pty slave (and its path, for /dev/console) when `-t`.
    pub console: Option<(OwnedFd, PathBuf)>,
    /// Replace stdin with /dev/null (no `-i`).
    pub null_stdin: bool,
    /// Write ends of pipes for stdout and stderr (detached containers,
    /// whose monitor writes them to the log); the container gets its own
    /// session so no terminal signal reaches it.
    pub output: Option<(OwnedFd, OwnedFd)>,
    /// Read end of a pipe for stdin (detached `-i`: the monitor feeds it
    /// from attached clients).
    pub input: Option<OwnedFd>,
    /// `--preserve-fds N`: berth's inherited descriptors 3..3+N pass into
    /// the container as they are (berth's own are close-on-exec anyway).
    pub preserve_fds: u32,
}

/// What to start.
pub struct Launch<'a> {
    pub spec: &'a Spec,
    /// The container's id and the directory of its config.json, for the
    /// state the spec's hooks read.
    pub id: &'a str,
    pub bundle: PathBuf,
    /// Where the rootfs is mounted inside the new mount namespace.
    pub rootfs: PathBuf,
    pub stdio: Stdio,
    /// True when berth runs inside a user namespace (rootless).
    pub userns: bool,
    /// Where compiled seccomp filters are cached.
    pub cache: Option<PathBuf>,
    /// Runs in berth once the container's process and namespaces exist but
    /// before its setup starts (OCI's createRuntime hook): network set-up
    /// that needs the container's network namespace, e.g. a veth moved in
    /// or pasta attached. An error stops the container.
    pub prestart: Option<&'a dyn Fn(Pid) -> Result<(), HookError>>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Sys("pipe", e))
}

/// The cgroup a spec asks for: `linux.cgroupsPath` as (parent, name),
/// and the limits of `linux.resources`.
pub fn cgroup_of(spec: &Spec) -> Option<(String, String, crate::cgroups::Resources)> {
    let linux = spec.linux().as_ref()?;
    let (parent, name) =
        crate::cgroups::split_cgroups_path(&linux.cgroups_path().as_ref()?.display().to_string())?;
    let res = linux
        .resources()
        .as_ref()
        .map(crate::cgroups::Resources::from_oci)
        .unwrap_or_default();
    Some((parent, name, res))
}

/// Reports a failure to the parent and exits; used only in the child.
pub(crate) fn die(err_fd: RawFd, err: ChildError) -> ! {
    let bytes = err.encode();
    // SAFETY: writing a buffer to a pipe we own, then _exit.
    unsafe {
        libc::write(err_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(err.exit_code())
    }
}

/// Reads what the child reported on its error pipe (nothing once it exec'd).
pub(crate) fn child_report(err_r: OwnedFd) -> Option<ChildError> {
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut report);
    ChildError::decode(&report)
}

/// Creates the container's first process and runs its setup. Returns once
/// the command has been exec'd (or setup failed). The cgroup, if any, is
/// joined before the process does anything.
pub fn start(l: &Launch<'_>, cgroup: Option<&dyn Cgroup>) -> Result<Pid, RuntimeError> {
    create(l, cgroup)?.start()
}

/// Everything the container's first process will do, read from the
/// spec: namespaces (with `joins`, the fds of those named by path),
/// stdio, the mount plan, identity and capabilities, the seccomp filter
/// and its hooks. Pure data, so a test can read it with no privileges.
fn child_plan(
    l: &Launch<'_>,
    namespaces: &NamespacePlan,
    joins: Vec<(RawFd, nix::sched::CloneFlags, String)>,
    devnull: Option<RawFd>,
) -> Result<child::ChildPlan, RuntimeError> {
    let process = l.spec.process().as_ref().ok_or(SpecProblem::NoProcess)?;
    let seccomp = match l.spec.linux().as_ref().and_then(|x| x.seccomp().clone()) {
        Some(s) => Some(seccomp::bpf(&s, l.cache.as_deref())?),
        None => None,
    };
    let output = l.stdio.output.as_ref();
    Ok(child::ChildPlan {
        own_userns: namespaces.id_maps.is_some(),
        joins,
        cgroupns: namespaces.cgroupns,
        stdio: session::StdFds {
            console: l.stdio.console.as_ref().map(|(fd, _)| fd.as_raw_fd()),
            stdin: l.stdio.input.as_ref().map(|i| i.as_raw_fd()).or(devnull),
            stdout: output.map(|(o, _)| o.as_raw_fd()),
            stderr: output.map(|(_, e)| e.as_raw_fd()),
        },
        console_path: l.stdio.console.as_ref().map(|(_, p)| p.clone()),
        preserve_fds: l.stdio.preserve_fds,
        rootfs: l.rootfs.clone(),
        userns: l.userns,
        mounts: plan::build(l.spec, &l.rootfs, l.stdio.console.is_some())?,
        exec: process::ExecPlan::from_process(process)?,
        seccomp,
        create_hooks: hooks::of(l.spec, Stage::CreateContainer),
        start_hooks: hooks::of(l.spec, Stage::StartContainer),
    })
}

/// Creates the container's first process and runs its whole setup; it
/// then waits, before exec, until `Created::start` (runc's create and
/// start). The cgroup, if any, is joined before the process does anything.
pub fn create(l: &Launch<'_>, cgroup: Option<&dyn Cgroup>) -> Result<Created, RuntimeError> {
    let namespaces = NamespacePlan::from_spec(l.spec)?;
    let flags = namespaces.clone_flags;
    let joined = namespaces.open_joins()?;
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (start_r, start_w) = pipe()?;
    let devnull = if l.stdio.null_stdin {
        Some(std::fs::File::open("/dev/null").map_err(io("opening /dev/null"))?)
    } else {
        None
    };
    let joins = joined
        .iter()
        .map(|(f, flag, what)| (f.as_raw_fd(), *flag, what.clone()))
        .collect();
    let plan = child_plan(
        l,
        &namespaces,
        joins,
        devnull.as_ref().map(|n| n.as_raw_fd()),
    )?;
    let maps = namespaces.id_maps;
    let child_has_hooks = !plan.create_hooks.is_empty() || !plan.start_hooks.is_empty();
    let pipes = child::ChildPipes {
        parent_ends: [sync_w.as_raw_fd(), err_r.as_raw_fd(), start_w.as_raw_fd()],
        sync: sync_r.as_raw_fd(),
        report: err_w.as_raw_fd(),
        start: start_r.as_raw_fd(),
    };
    let child = move || -> isize { plan.run(&pipes) };
    let mut stack = vec![0u8; 1 << 20];
    // SAFETY: the child runs `child` on its own stack; the parent is single-threaded here.
    let pid = unsafe { nix::sched::clone(Box::new(child), &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|e| RuntimeError::Sys("creating the container process (clone)", e))?;
    drop(sync_r);
    drop(err_w);
    drop(start_r);
    let fail_early = |e: RuntimeError| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    if let Some(cg) = cgroup {
        cg.add(pid.as_raw()).map_err(|e| fail_early(e.into()))?;
    }
    if let Some((uids, gids)) = &maps {
        let write = |f: &str, text: &str| {
            std::fs::write(format!("/proc/{pid}/{f}"), text).map_err(|e| {
                fail_early(io(format!(
                    "writing the container's {f} ({})",
                    text.trim().replace('\n', ", ")
                ))(e))
            })
        };
        write("uid_map", uids)?;
        write("gid_map", gids)?;
    }
    if let Some(hook) = l.prestart {
        hook(pid).map_err(|e| fail_early(RuntimeError::Hook(e)))?;
    }
    let state = |status| hooks::state_json(l.spec, l.id, status, Some(pid.as_raw()), &l.bundle);
    for stage in [Stage::Prestart, Stage::CreateRuntime] {
        let list = hooks::of(l.spec, stage);
        if !list.is_empty() {
            hooks::run(stage, &list, &state("creating")).map_err(|e| fail_early(e.into()))?;
        }
    }
    drop(joined);
    let told = if child_has_hooks {
        state("created").into_bytes()
    } else {
        b"1".to_vec()
    };
    nix::unistd::write(&sync_w, &told)
        .map_err(|e| fail_early(RuntimeError::Sys("starting the container", e)))?;
    drop(sync_w);
    // The child sets itself up; it reports CREATED, or a failure.
    let mut err = std::fs::File::from(err_r);
    let mut first = [0u8; 1];
    match err.read(&mut first) {
        Ok(1) if first[0] == child::CREATED => Ok(Created {
            pid,
            start: start_w,
            report: err.into(),
            poststart: hooks::of(l.spec, Stage::Poststart),
            state: state("running"),
        }),
        _ => {
            let mut rest = Vec::new();
            let _ = err.read_to_end(&mut rest);
            let _ = nix::sys::wait::waitpid(pid, None);
            let mut report = first.to_vec();
            report.extend(rest);
            Err(ChildError::decode(&report)
                .unwrap_or_else(|| {
                    ChildError::new(Step::Sync, "the container process died during its setup")
                })
                .into())
        }
    }
}

/// A container process whose setup is done, waiting to exec its command
/// (runc's `create`; `start` lets it go).
pub struct Created {
    /// The container's first process.
    pub pid: Pid,
    start: OwnedFd,
    report: OwnedFd,
    poststart: Vec<oci_spec::runtime::Hook>,
    /// The state the poststart hooks read.
    state: String,
}

impl Created {
    /// Lets the process exec its command; returns once it did (or could
    /// not: the command is missing, or not executable).
    pub fn start(self) -> Result<Pid, RuntimeError> {
        nix::unistd::write(&self.start, b"1")
            .map_err(|e| RuntimeError::Sys("starting the container", e))?;
        drop(self.start);
        if let Some(e) = child_report(self.report) {
            let _ = nix::sys::wait::waitpid(self.pid, None);
            return Err(e.into());
        }
        hooks::run_warning(Stage::Poststart, &self.poststart, &self.state);
        Ok(self.pid)
    }
}

/// In a new container process: no signal blocked and every disposition at
/// its default (berth blocks signals for its relay, and Rust ignores
/// SIGPIPE; neither may leak into the container).
pub(crate) fn reset_signals() {
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    for s in 1..32 {
        if s != libc::SIGKILL && s != libc::SIGSTOP {
            // SAFETY: resetting a disposition to default.
            unsafe { libc::signal(s, libc::SIG_DFL) };
        }
    }
}

/// True when this process is inside a user namespace (rootless berth).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Mounts a container's root filesystem at `rootfs` as its plan would,
/// in the caller's mount namespace, which the caller has just made its
/// own (unshare(CLONE_NEWNS)): how `cp` reaches a stopped container's files
/// without leaving a mount on the host.
pub fn mount_rootfs_here(
    spec: &Spec,
    rootfs: &std::path::Path,
    userns: bool,
) -> Result<(), RuntimeError> {
    let steps = plan::build(spec, rootfs, false)?;
    let mut ctx = mounts::MountCtx {
        rootfs: rootfs.to_path_buf(),
        rootfs_fd: None,
        userns,
        console: None,
    };
    // The plan starts with privatising mounts, then the root filesystem.
    for step in steps.iter().take(2) {
        mounts::run_step(step, &mut ctx)?;
    }
    Ok(())
}

/// Mounts the root filesystem `spec` describes at `target` in the
/// caller's mount namespace and leaves it there (`berth mount`): only the
/// root step of the plan, nothing made private, nothing else mounted.
/// A spec whose root is a plain directory (the vfs driver) needs no mount:
/// its path is returned instead of `target`.
pub fn mount_root_at(
    spec: &Spec,
    target: &std::path::Path,
    userns: bool,
) -> Result<std::path::PathBuf, RuntimeError> {
    let steps = plan::build(spec, target, false)?;
    match steps.get(1) {
        Some(plan::Step::BindRootfs { source, .. }) => Ok(source.clone()),
        Some(step) => {
            let mut ctx = mounts::MountCtx {
                rootfs: target.to_path_buf(),
                rootfs_fd: None,
                userns,
                console: None,
            };
            mounts::run_step(step, &mut ctx)?;
            Ok(target.to_path_buf())
        }
        None => Ok(target.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole plan of a container's first process, read from a spec
    /// with no privileges: every step the child will take is there.
    #[test]
    fn the_child_plan_is_read_from_the_spec_alone() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 1000, "gid": 100, "additionalGids": [10]},
                "args": ["sh", "-c", "true"],
                "env": ["PATH=/bin"],
                "cwd": "/work",
                "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]},
                "noNewPrivileges": true,
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
            },
            "root": {"path": "/unused"},
            "hostname": "box",
            "mounts": [
                {"destination": "/", "type": "overlay", "source": "overlay", "options": ["lowerdir=/l", "upperdir=/u", "workdir=/w"]},
                {"destination": "/proc", "type": "proc", "source": "proc"}
            ],
            "hooks": {
                "createContainer": [{"path": "/bin/a"}],
                "startContainer": [{"path": "/bin/b"}, {"path": "/bin/c"}],
                "poststop": [{"path": "/bin/d"}]
            },
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}],
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
            }
        }))
        .unwrap();
        let l = Launch {
            spec: &spec,
            id: "c1",
            bundle: "/b".into(),
            rootfs: "/r".into(),
            stdio: Stdio {
                console: None,
                null_stdin: true,
                output: None,
                input: None,
                preserve_fds: 0,
            },
            userns: false,
            cache: None,
            prestart: None,
        };
        let ns = NamespacePlan::from_spec(&spec).unwrap();
        assert!(ns
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWUSER));
        let plan = child_plan(&l, &ns, Vec::new(), Some(9)).unwrap();
        assert!(plan.own_userns && plan.cgroupns);
        assert_eq!(plan.stdio.stdin, Some(9), "no -i: stdin is /dev/null");
        assert_eq!(plan.stdio.stdout, None);
        assert_eq!(plan.mounts[0], plan::Step::PrivatizeMounts);
        assert!(matches!(
            &plan.mounts[1],
            plan::Step::Overlay { program: None, .. }
        ));
        assert!(plan.mounts.contains(&plan::Step::PivotRoot));
        assert!(plan.mounts.contains(&plan::Step::Hostname("box".into())));
        let x = &plan.exec;
        assert_eq!((x.uid, x.gid, x.groups.clone()), (1000, 100, vec![10]));
        assert_eq!(x.cwd, "/work");
        assert!(x.no_new_privileges);
        assert_eq!(x.bounding.len(), 1);
        assert_eq!(x.rlimits.len(), 1);
        assert_eq!(x.args[0].to_str().unwrap(), "sh");
        assert!(plan.seccomp.is_none());
        assert_eq!(plan.create_hooks.len(), 1);
        assert_eq!(plan.start_hooks.len(), 2);
    }
}

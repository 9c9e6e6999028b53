//! One supervisor for a container's run, whoever watches it: the
//! foreground `run` (its own terminal) and the detached monitor (pipes,
//! log, attach socket, restart policy). It reads the container's record
//! and spec, makes its cgroup and network session, records the start
//! (from the runtime's prestart hook, with the pid) and the end, and
//! undoes what it made. Every record change is an `update` under the
//! container's lock.

use super::container::{ContainerError, Containers};
use super::netsetup::{self, NetSession, NetSetupError};
use super::record::{ContainerRecord, ProcessId, State};
use super::Engine;
use crate::cgroups::{self, Cgroup, CgroupError};
use crate::runtime::hooks::{self, Stage};
use crate::runtime::HookError;
use nix::unistd::Pid;
use std::path::PathBuf;

/// Why a container could not be supervised.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("the container's config.json is missing or damaged")]
    Spec,
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Net(#[from] NetSetupError),
}

impl SuperviseError {
    /// podman's code for a container that could not start: 126 when a
    /// host port it publishes is taken, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            SuperviseError::Net(NetSetupError::PublishedBy { .. }) => 126,
            SuperviseError::Net(NetSetupError::Network(
                crate::network::NetworkError::PortInUse { .. },
            )) => 126,
            _ => 125,
        }
    }
}

/// What happens after the container's process ended.
pub enum AfterExit {
    /// Start it again (its restart policy; nobody asked it to stop).
    Restart,
    /// It is over: recorded as exited (or removed, with `--rm`).
    Finished,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A container being run, and what was made for it.
pub struct Supervisor {
    containers: Containers,
    /// The record as it was read when supervision began.
    pub record: ContainerRecord,
    /// The runtime spec (its network namespace path follows
    /// `container:NAME` at each start).
    pub spec: oci_spec::runtime::Spec,
    cgroup: Option<Box<dyn Cgroup>>,
    session: NetSession,
    restarts: u32,
}

impl Supervisor {
    /// Reads the container and makes its cgroup and network session.
    pub fn prepare(engine: &Engine, id: &str) -> Result<Supervisor, SuperviseError> {
        let containers = Containers::new(engine.store.root());
        let record = containers.find(id)?;
        let spec = std::fs::read(containers.dir(id).join("userdata/config.json"))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .ok_or(SuperviseError::Spec)?;
        Supervisor::prepare_with(engine, record, spec)
    }

    /// Like `prepare`, with the record and spec its caller has just
    /// written (a foreground `run`: nothing is read back).
    pub fn prepare_with(
        engine: &Engine,
        record: ContainerRecord,
        spec: oci_spec::runtime::Spec,
    ) -> Result<Supervisor, SuperviseError> {
        let containers = Containers::new(engine.store.root());
        let dir = containers.dir(&record.id);
        // The cgroup and its limits, as the spec asks (the record keeps
        // its path only to clean up after a berth that was killed).
        let target = crate::runtime::cgroup_of(&spec).or_else(|| {
            // A container made before specs named their cgroup.
            let (parent, name) = record.cgroup.clone()?;
            let res = spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .map(cgroups::Resources::from_oci)
                .unwrap_or_default();
            Some((parent, name, res))
        });
        let cgroup = match target {
            Some((parent, name, res)) => Some(cgroups::create(&parent, &name, &res)?),
            None => None,
        };
        let session = match NetSession::prepare(engine.store.root(), &record, &dir.join("userdata"))
        {
            Ok(s) => s,
            Err(e) => {
                if let Some(c) = &cgroup {
                    c.destroy();
                }
                return Err(e.into());
            }
        };
        Ok(Supervisor {
            containers,
            record,
            spec,
            cgroup,
            session,
            restarts: 0,
        })
    }

    /// The container's cgroup, for the runtime to put its process in.
    pub fn cgroup(&self) -> Option<&dyn Cgroup> {
        self.cgroup.as_deref()
    }

    /// The directory of its config.json (the OCI bundle).
    pub fn bundle(&self) -> PathBuf {
        self.containers.dir(&self.record.id).join("userdata")
    }

    /// Where its root filesystem is mounted.
    pub fn rootfs(&self) -> PathBuf {
        PathBuf::from(self.record.rootfs_mount.clone().unwrap_or_default())
    }

    /// Points the spec at the namespace a `container:NAME` network joins
    /// now (that container may have restarted). Call before each start.
    pub fn follow_joined_netns(&mut self) -> Result<(), NetSetupError> {
        if let Some(path) = netsetup::joined_netns(&self.containers, &self.record.net.mode)? {
            netsetup::point_spec_at(&mut self.spec, &path);
        }
        Ok(())
    }

    /// The runtime's prestart hook: wires the network of the new process
    /// and records it as running, with its pid (so `stop`, `kill`, `exec`
    /// and `top` reach it from now on).
    pub fn prestart(&self, pid: Pid) -> Result<(), HookError> {
        self.session.hook(pid)?;
        let (published, addresses) = self.session.given();
        let restarts = self.restarts;
        self.containers.update(&self.record.id, |r| {
            // A `stop` that came while it started keeps its word.
            if !matches!(r.state, State::Stopping | State::Removing) {
                r.state = State::Running;
            }
            // Started by a user (not by its policy): a later exit follows
            // the policy again.
            if restarts == 0 {
                r.stopped_by_user = false;
            }
            r.pid = Some(pid.as_raw());
            r.started_at = Some(now());
            r.monitor = ProcessId::current();
            r.restart_count = restarts;
            r.net.published = published;
            r.net.addresses = addresses;
        })?;
        self.containers.note(&self.record, "start");
        Ok(())
    }

    /// What the network set-up had to say to the user (a fallback taken).
    pub fn notes(&self) -> Vec<String> {
        self.session.notes()
    }

    /// The process ended with `code`: undoes its network, and decides
    /// (under the lock) whether its restart policy starts it again.
    /// `policy` is false for a foreground run, which never restarts.
    pub fn exited(&mut self, code: i32, policy: bool) -> (AfterExit, i32, bool) {
        self.session.teardown();
        let oom = self.cgroup.as_ref().is_some_and(|c| c.oom_killed());
        let code = if oom && code == 128 + libc::SIGKILL {
            137
        } else {
            code
        };
        if !policy {
            return (AfterExit::Finished, code, oom);
        }
        let restarts = self.restarts;
        // The networks of the record now, when it is to start again.
        let again = self.containers.update(&self.record.id, |r| {
            let asked_to_end =
                r.stopped_by_user || matches!(r.state, State::Stopping | State::Removing);
            if asked_to_end || !super::record::should_restart(r.restart.as_deref(), code, restarts)
            {
                return None;
            }
            r.exit_code = Some(code);
            r.pid = None;
            r.net.published.clear();
            r.net.addresses.clear();
            Some(r.net.networks.clone())
        });
        match again {
            Ok(Some(networks)) => {
                // Networks joined meanwhile (`network connect`) are kept.
                self.session.set_networks(networks);
                self.restarts += 1;
                (AfterExit::Restart, code, oom)
            }
            _ => (AfterExit::Finished, code, oom),
        }
    }

    /// Whether a container waiting to restart should still be started
    /// (nobody stopped or removed it during the back-off).
    pub fn still_wanted(&self) -> bool {
        self.containers
            .find(&self.record.id)
            .is_ok_and(|r| r.state == State::Running && !r.stopped_by_user)
    }

    /// How many times its policy restarted it.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Ends supervision: removes its cgroup, records how it ended (under
    /// the lock, so what other commands changed meanwhile stays) or removes
    /// a `--rm` container.
    pub fn finish(self, code: i32, oom: bool) {
        self.session.teardown();
        if let Some(c) = &self.cgroup {
            c.destroy();
        }
        let poststop = hooks::of(&self.spec, Stage::Poststop);
        if !poststop.is_empty() {
            let state =
                hooks::state_json(&self.spec, &self.record.id, "stopped", None, &self.bundle());
            hooks::run_warning(Stage::Poststop, &poststop, &state);
        }
        record_exit(&self.containers, &self.record, code, oom);
    }
}

/// `--rmi`: the removed container's image goes too (its name, when it
/// has others), unless another container still uses it (podman's rule).
fn remove_image_of(containers: &Containers, record: &ContainerRecord) {
    let Ok(store) = crate::image::store::Store::open(&containers.store_root(), false) else {
        return;
    };
    // By the name it was run as (another name of the image keeps it, as
    // with podman's rmi of a name), else by id.
    let by = if record.image.is_empty() {
        &record.image_id
    } else {
        &record.image
    };
    match super::images::remove(&store, by, false) {
        Ok(_) => {
            if let Err(e) = super::images::collect_garbage(&store) {
                tracing::warn!("--rmi: {e}");
            }
        }
        Err(super::images::RemoveError::InUse(_)) => {}
        Err(e) => tracing::warn!("--rmi: {e}"),
    }
}

/// Records that a container ended (or removes a `--rm` one). A full disk
/// (the log filled it) must not lose the exit status: the log's space is
/// given back and the record written again.
pub fn record_exit(containers: &Containers, record: &ContainerRecord, code: i32, oom: bool) {
    containers.note(record, "died");
    let ended = |r: &mut ContainerRecord| {
        r.state = State::Exited;
        r.exit_code = Some(code);
        r.oom_killed = oom;
        r.finished_at = Some(now());
        r.pid = None;
        r.net.published.clear();
        r.net.addresses.clear();
    };
    if record.remove {
        let _ = containers.remove(&record.id, &record.name);
        let vols = super::volumes::Volumes::new(&containers.store_root());
        super::volumes::remove_anonymous(&vols, containers, &record.anonymous_volumes);
        if record.remove_image {
            remove_image_of(containers, record);
        }
    } else if let Err(ContainerError::Io { .. }) = containers.update(&record.id, ended) {
        let log = containers.log_path(&record.id);
        for p in [log.with_extension("log.1"), log.clone()] {
            let _ = std::fs::write(&p, b"");
        }
        let _ = containers.update(&record.id, ended);
    }
}

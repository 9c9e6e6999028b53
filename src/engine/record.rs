//! A container's types, apart from the code that acts on them: its record
//! on disk, its state and the moves that state allows, its mounts and its
//! networking. Behaviour modules (run, lifecycle, netsetup, volumes, spec)
//! import these; none of them owns them.

use crate::network::ports::PortMapping;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

pub use crate::util::process::ProcessId;

/// Where a container is in its life (podman's states).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Made, never started (or made again by `create`).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process is frozen by `pause`.
    Paused,
    /// `stop` sent the stop signal and waits for it to end.
    Stopping,
    /// Its process ended; the record keeps the exit code.
    Exited,
    /// `rm` is taking it apart.
    Removing,
}

impl State {
    /// The word `ps`, `inspect` and errors use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Removing => "removing",
        }
    }

    /// A process exists (frozen, being stopped or being removed), as long
    /// as the berth that watches it lives.
    pub fn has_process(self) -> bool {
        matches!(
            self,
            State::Running | State::Paused | State::Stopping | State::Removing
        )
    }

    /// Whether `action` may happen now, with podman's refusal if not.
    pub fn allows(self, action: Action, name: &str) -> Result<(), StateError> {
        let ok = match action {
            Action::Start => matches!(self, State::Created | State::Exited),
            Action::Stop => !matches!(self, State::Paused | State::Removing),
            Action::Kill | Action::Exec | Action::Attach | Action::Top => {
                matches!(self, State::Running | State::Stopping)
                    || (action == Action::Kill && self == State::Paused)
            }
            Action::Pause => self == State::Running,
            Action::Unpause => self == State::Paused,
            Action::Remove => !self.has_process(),
        };
        if ok {
            Ok(())
        } else {
            Err(StateError {
                action,
                state: self,
                name: name.to_string(),
            })
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a command wants to do to a container, for `State::allows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Kill,
    Pause,
    Unpause,
    Remove,
    Exec,
    Attach,
    Top,
}

/// A command the container's state does not allow (podman's "container
/// state improper").
#[derive(Debug, thiserror::Error)]
pub struct StateError {
    pub action: Action,
    pub state: State,
    pub name: String,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, s) = (&self.name, self.state);
        match self.action {
            Action::Start => write!(f, "container {n} must be in Created or Stopped state to be started (it is {s}): container state improper"),
            Action::Stop => write!(f, "can only stop created or running containers. {n} is in state {s}: unpause it first: container state improper"),
            Action::Kill => write!(f, "can only kill running containers. {n} is in state {s}: container state improper"),
            Action::Pause if s == State::Paused => write!(f, "{n:?} is already paused: container state improper"),
            Action::Pause => write!(f, "{n:?} is not running, can't pause: container state improper"),
            Action::Unpause => write!(f, "{n:?} is not paused, can't unpause: container state improper"),
            Action::Remove => write!(f, "cannot remove container {n} as it is {s} - running or paused containers cannot be removed without force: container state improper"),
            Action::Exec => write!(f, "can only create exec sessions on running containers: {n} is {s}: container state improper"),
            Action::Attach => write!(f, "you can only attach to running containers: {n} is {s}; start it with `berth start -a {n}`: container state improper"),
            Action::Top => write!(f, "top can only be used on running containers: {n} is {s}: container state improper"),
        }
    }
}

/// A bind mount, tmpfs or volume the user asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMount {
    pub destination: String,
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// One network to join, as asked.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkRequest {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
}

/// A container's networking, as asked and (while it runs) as given.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NetConfig {
    /// bridge, pasta, slirp4netns, none, host, container:NAME, ns:PATH
    pub mode: String,
    #[serde(default)]
    pub networks: Vec<NetworkRequest>,
    /// Published ports as asked (host port 0: pick a free one).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// While running: published ports with their host ports.
    #[serde(default)]
    pub published: Vec<PortMapping>,
    /// While running: its address on each network.
    #[serde(default)]
    pub addresses: Vec<(String, Ipv4Addr)>,
}

/// What berth remembers about a container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    pub created: String,
    /// As last recorded; `status()` corrects it for a berth that died.
    pub state: State,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Unpacked layers the container's rootfs uses (kept by image gc).
    #[serde(default)]
    pub layers: Vec<String>,
    /// The berth process watching the container, and its start time (so a
    /// reused pid is not mistaken for it).
    #[serde(default)]
    pub monitor: Option<ProcessId>,
    /// The container's cgroup as (parent, name), to remove it if berth was
    /// killed before it could.
    #[serde(default)]
    pub cgroup: Option<(String, String)>,
    /// The container's first process, while it runs.
    #[serde(default)]
    pub pid: Option<i32>,
    /// Remove the container when it exits (`--rm`).
    #[serde(default)]
    pub remove: bool,
    /// Where its root filesystem is mounted (inside its mount namespace).
    #[serde(default)]
    pub rootfs_mount: Option<String>,
    /// Signal `stop` sends first.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `--restart` policy, carried out by the monitor.
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    /// `stop` or `kill` ended it on purpose: its restart policy leaves it
    /// down until it is started again (podman's StoppedByUser).
    #[serde(default)]
    pub stopped_by_user: bool,
    /// k8s-file (default), json-file (the same files) or none.
    #[serde(default)]
    pub log_driver: Option<String>,
    /// Rotate the log past this many bytes.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// The image's labels with `--label` on top.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The container has a terminal (`-t`); its monitor holds the master.
    #[serde(default)]
    pub tty: bool,
    /// Its stdin stays open for attached clients (`-i`).
    #[serde(default)]
    pub interactive: bool,
    /// Named and anonymous volumes it mounts (a volume in use is kept).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The anonymous ones, removed with it by `rm -v` and `--rm`.
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// Its -v/--mount/--tmpfs mounts as resolved (for `--volumes-from`).
    #[serde(default)]
    pub mounts: Vec<UserMount>,
    /// Its networking as asked, and while it runs, as given.
    #[serde(default)]
    pub net: NetConfig,
    /// The digest of its image's manifest (podman's ImageDigest).
    #[serde(default)]
    pub image_digest: String,
    /// Remove its image too when it is removed (`--rmi`).
    #[serde(default)]
    pub remove_image: bool,
}

impl ContainerRecord {
    /// The state as it is now: a record that says a process exists whose
    /// berth (monitor or foreground run) is gone was left by a berth that
    /// was killed, and counts as exited.
    pub fn status(&self) -> State {
        if self.state.has_process() && !self.monitor.is_some_and(|m| m.alive()) {
            State::Exited
        } else {
            self.state
        }
    }

    /// Its process exists (running, paused or stopping), with its berth
    /// process still alive.
    pub fn is_running(&self) -> bool {
        self.status().has_process()
    }

    /// Whether `action` may happen now (see `State::allows`).
    pub fn allows(&self, action: Action) -> Result<(), StateError> {
        // podman names the container by id when it refuses a removal.
        let who = if action == Action::Remove {
            &self.id
        } else {
            &self.name
        };
        self.status().allows(action, who)
    }
}

/// `--restart` policies: no, on-failure[:N], always, unless-stopped.
pub fn should_restart(policy: Option<&str>, code: i32, restarts: u32) -> bool {
    match policy.unwrap_or("no") {
        "always" | "unless-stopped" => true,
        p if p == "on-failure" || p.starts_with("on-failure:") => {
            let max: Option<u32> = p.strip_prefix("on-failure:").and_then(|n| n.parse().ok());
            code != 0 && max.is_none_or(|m| restarts < m)
        }
        _ => false,
    }
}

/// Checks a `--restart` value.
pub fn valid_restart(p: &str) -> bool {
    matches!(p, "no" | "always" | "unless-stopped" | "on-failure")
        || p.strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(!should_restart(None, 1, 0));
        assert!(should_restart(Some("always"), 0, 50));
        assert!(should_restart(Some("on-failure"), 1, 7));
        assert!(!should_restart(Some("on-failure"), 0, 0));
        assert!(should_restart(Some("on-failure:2"), 1, 1));
        assert!(!should_restart(Some("on-failure:2"), 1, 2));
        assert!(valid_restart("on-failure:3") && !valid_restart("sometimes"));
    }

    #[test]
    fn moves_each_state_allows() {
        use Action::*;
        use State::*;
        let table: [(State, &[Action]); 6] = [
            (Created, &[Start, Stop, Remove]),
            (Running, &[Stop, Kill, Pause, Exec, Attach, Top]),
            (Paused, &[Kill, Unpause]),
            (Stopping, &[Stop, Kill, Exec, Attach, Top]),
            (Exited, &[Start, Stop, Remove]),
            (Removing, &[]),
        ];
        let all = [Start, Stop, Kill, Pause, Unpause, Remove, Exec, Attach, Top];
        for (state, allowed) in table {
            for a in all {
                assert_eq!(
                    state.allows(a, "c").is_ok(),
                    allowed.contains(&a),
                    "{state} {a:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_read_as_podman_s() {
        let e = State::Exited.allows(Action::Kill, "web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "can only kill running containers. web is in state exited: container state improper"
        );
        let e = State::Running.allows(Action::Remove, "web").unwrap_err();
        assert!(e.to_string().starts_with(
            "cannot remove container web as it is running - running or paused containers cannot be removed without force"
        ));
        let e = State::Paused.allows(Action::Pause, "web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"web\" is already paused: container state improper"
        );
    }

    #[test]
    fn a_record_whose_berth_died_counts_as_exited() {
        let mut r = ContainerRecord {
            state: State::Running,
            ..Default::default()
        };
        assert_eq!(r.status(), State::Exited);
        r.monitor = ProcessId::current();
        assert_eq!(r.status(), State::Running);
        assert!(r.is_running());
        r.state = State::Paused;
        assert!(r.is_running() && r.allows(Action::Exec).is_err());
    }

    #[test]
    fn old_records_still_read() {
        let r: ContainerRecord = serde_json::from_str(
            r#"{"id":"x","name":"n","image":"i","image_id":"","command":[],"created":"","state":"exited","paused":false}"#,
        )
        .unwrap();
        assert_eq!(r.state, State::Exited);
    }
}

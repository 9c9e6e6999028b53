//! What a container process tells its parent when its setup fails: which
//! step failed and why, sent over the error pipe as one write (a step
//! byte, then the reason in UTF-8) just before it exits. The parent turns
//! it back into a `ChildError`, whose step decides podman's exit code.

/// The setup step of a container process that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// Waiting for the parent to finish its side (cgroup, id maps, hooks).
    Sync = 1,
    /// Becoming root in the container's own user namespace.
    UserNamespace,
    /// Joining a namespace the spec names by path.
    JoinNamespace,
    /// Creating the cgroup namespace.
    CgroupNamespace,
    /// A session, keyring and stdio of its own.
    Session,
    /// A `createContainer` or `startContainer` hook of the spec.
    Hook,
    /// A mount, device node or pivot_root of the plan.
    Mount,
    /// Resource limits.
    Rlimit,
    /// Changing to the working directory.
    WorkDir,
    /// Supplementary groups, gid and uid.
    Identity,
    /// Capability sets.
    Capabilities,
    /// Loading the seccomp filter.
    Seccomp,
    /// The command does not exist (podman's 127).
    NotFound,
    /// The command exists but cannot be run (podman's 126).
    CannotExecute,
}

impl Step {
    const ALL: [Step; 14] = [
        Step::Sync,
        Step::UserNamespace,
        Step::JoinNamespace,
        Step::CgroupNamespace,
        Step::Session,
        Step::Hook,
        Step::Mount,
        Step::Rlimit,
        Step::WorkDir,
        Step::Identity,
        Step::Capabilities,
        Step::Seccomp,
        Step::NotFound,
        Step::CannotExecute,
    ];

    fn from_byte(b: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == b)
    }
}

/// A container process's setup failed before its command ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ChildError {
    pub step: Step,
    pub reason: String,
}

impl ChildError {
    /// A failure of `step`, for the reason given.
    pub fn new(step: Step, reason: impl Into<String>) -> ChildError {
        ChildError {
            step,
            reason: reason.into(),
        }
    }

    /// podman's exit code: 127 command not found, 126 cannot be run, 125
    /// for every failure of the setup itself.
    pub fn exit_code(&self) -> i32 {
        match self.step {
            Step::NotFound => 127,
            Step::CannotExecute => 126,
            _ => 125,
        }
    }

    /// The bytes the child writes to the error pipe.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.reason.len());
        out.push(self.step as u8);
        out.extend_from_slice(self.reason.as_bytes());
        out
    }

    /// What the parent read from the error pipe; None when the child
    /// wrote nothing (its setup went through). A report berth does not
    /// understand counts as a setup failure, shown as it came.
    pub fn decode(bytes: &[u8]) -> Option<ChildError> {
        let (&first, rest) = bytes.split_first()?;
        Some(match Step::from_byte(first) {
            Some(step) => ChildError::new(step, String::from_utf8_lossy(rest)),
            None => ChildError::new(Step::Sync, String::from_utf8_lossy(bytes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_crosses_the_pipe_with_its_exit_code() {
        for step in Step::ALL {
            let e = ChildError::new(step, "why: it failed ✗");
            let back = ChildError::decode(&e.encode()).unwrap();
            assert_eq!(back, e);
            let code = match step {
                Step::NotFound => 127,
                Step::CannotExecute => 126,
                _ => 125,
            };
            assert_eq!(back.exit_code(), code, "{step:?}");
        }
        assert_eq!(ChildError::decode(b""), None);
        let odd = ChildError::decode(b"\xffgarbled").unwrap();
        assert_eq!(odd.exit_code(), 125);
    }
}

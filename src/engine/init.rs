//! The init for `--init`: PID 1 is catatonit (a small static init from
//! Debian's package of that name, what podman uses), which forwards
//! signals to the command, reaps every zombie and exits with the
//! command's status.
//!
//! It reaches the container as podman puts it there, through the OCI spec
//! alone: the host's binary bound read-only (nosuid, nodev) at
//! `/run/berth-init`, and the process's arguments prefixed with it. So it
//! runs with exactly the command's user, capabilities, no-new-privileges
//! and seccomp filter, and `/proc/1/exe` cannot be written through (the
//! class of CVE-2019-5736): the mount is read-only, and only a process
//! with CAP_SYS_ADMIN, which containers lack, could remount it.

use std::path::{Path, PathBuf};

/// Where the init is bound inside the container.
pub const PATH_IN_CONTAINER: &str = "/run/berth-init";

/// Where hosts keep catatonit (Debian, podman's libexec dir, local builds).
const CANDIDATES: [&str; 4] = [
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
    "/usr/local/bin/catatonit",
    "/usr/local/libexec/podman/catatonit",
];

/// The init binary on this host, if any.
pub fn find() -> Option<PathBuf> {
    CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

/// The process arguments with the init in front: `/run/berth-init -- ARGS`.
pub fn wrap(args: &[String]) -> Vec<String> {
    let mut v = vec![PATH_IN_CONTAINER.to_string(), "--".to_string()];
    v.extend(args.iter().cloned());
    v
}

/// The read-only bind mount that puts `host` at `/run/berth-init`.
pub fn mount(host: &Path) -> serde_json::Value {
    serde_json::json!({
        "destination": PATH_IN_CONTAINER,
        "type": "bind",
        "source": host,
        "options": ["bind", "rprivate", "ro", "nosuid", "nodev"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_runs_the_command_after_a_double_dash() {
        assert_eq!(
            wrap(&["sh".into(), "-c".into(), "x".into()]),
            ["/run/berth-init", "--", "sh", "-c", "x"]
        );
        let m = mount(Path::new("/usr/bin/catatonit"));
        assert_eq!(m["destination"], PATH_IN_CONTAINER);
        assert!(m["options"].as_array().unwrap().contains(&"ro".into()));
    }
}

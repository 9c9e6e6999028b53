//! Container setup as data: the parent turns an OCI runtime spec into an
//! ordered list of steps (mounts, devices, pivot_root, masking, hostname);
//! the child only executes them. Unit tests check plans without privileges.

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;
use std::path::PathBuf;

/// Mount option of a bind mount whose empty source receives the image's
/// content at its destination first (volumes).
pub const COPY_UP: &str = "berth.copyup";
/// Mount option `berth.chown=UID:GID`: the bind source (and everything in
/// it) is given to these ids first, after any copy-up (`-v ...:U`).
pub const CHOWN: &str = "berth.chown";

/// One setup step, run in order by the container's first process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// mount --make-rprivate / so nothing propagates back to the host.
    PrivatizeMounts,
    /// Mount the overlay that the spec's first mount (at `/`) names as
    /// the root: the kernel's overlayfs, or a FUSE program's.
    Overlay {
        target: PathBuf,
        options: String,
        program: Option<PathBuf>,
    },
    /// Bind a plain directory as the rootfs (`--rootfs`).
    BindRootfs {
        source: PathBuf,
        target: PathBuf,
    },
    /// Mount a filesystem at a path inside the rootfs.
    Mount {
        fstype: String,
        source: String,
        dest: String,
        flags: MsFlags,
        data: String,
    },
    /// Bind a host path onto a path inside the rootfs (then remount with flags).
    Bind {
        source: PathBuf,
        dest: String,
        flags: MsFlags,
        file: bool,
    },
    /// Copy the image's directory at `dest` into the empty volume `source`
    /// before it is bound there (mount option `berth.copyup`).
    CopyUp {
        source: PathBuf,
        dest: String,
    },
    /// Give a bind source tree to the container's ids (`:U`).
    Chown {
        source: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// A device node inside the rootfs (bound from the host's `source`
    /// when rootless, where mknod is not allowed).
    Device {
        dest: String,
        source: PathBuf,
        block: bool,
        major: u64,
        minor: u64,
        mode: u32,
    },
    /// A symlink inside the rootfs.
    Symlink {
        target: String,
        dest: String,
    },
    /// Bind the pty slave onto /dev/console.
    Console,
    /// pivot_root into the rootfs and detach the old root.
    PivotRoot,
    /// Set a namespaced kernel parameter (`linux.sysctl`), before /proc/sys
    /// is made read-only.
    Sysctl {
        key: String,
        value: String,
    },
    /// Hide a path: /dev/null over files, an empty read-only tmpfs over dirs.
    Mask(String),
    /// Make a path read-only.
    ReadOnly(String),
    /// Remount the root read-only (`--read-only`).
    RootReadOnly,
    Hostname(String),
    /// Bring up `lo` in a new network namespace.
    LoopbackUp,
}

/// Why a spec cannot be turned into a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid runtime spec: {0}")]
    Invalid(String),
}

/// The minimal /dev every container gets.
pub const DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The spec's own devices (`linux.devices`), made after the default
/// ones (bound from the host's node of the same path in a user namespace).
fn user_devices(spec: &Spec) -> Vec<Step> {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    devices
        .iter()
        .filter_map(|d| {
            let block = match d.typ() {
                oci_spec::runtime::LinuxDeviceType::B => true,
                oci_spec::runtime::LinuxDeviceType::C | oci_spec::runtime::LinuxDeviceType::U => {
                    false
                }
                _ => return None,
            };
            let dest = d.path().display().to_string();
            let source = d.path().clone();
            Some(Step::Device {
                source,
                dest,
                block,
                major: d.major() as u64,
                minor: d.minor() as u64,
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            })
        })
        .collect()
}

/// Turns mount options (`ro`, `nosuid`, `mode=755`, ...) into flags and data.
pub fn mount_options(options: &[String]) -> (MsFlags, String, bool) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = false;
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_REC;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "z" | "Z" => {}
            COPY_UP => {}
            o if o.starts_with(CHOWN) => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data.join(","), bind)
}

/// The root's overlay, when `m` is a mount at `/` of type `overlay` (the
/// kernel's) or `fuse.NAME` (mounted by the program named as its source).
fn root_overlay(m: &oci_spec::runtime::Mount) -> Option<impl FnOnce(PathBuf) -> Step> {
    if m.destination() != std::path::Path::new("/") {
        return None;
    }
    let options = m.options().clone().unwrap_or_default().join(",");
    let program = match m.typ().as_deref() {
        Some("overlay") => None,
        Some(t) if t.starts_with("fuse.") => Some(m.source().clone()?),
        _ => return None,
    };
    Some(move |target| Step::Overlay {
        target,
        options,
        program,
    })
}

/// Builds the plan for `spec`. `rootfs` is where the root is mounted;
/// `console` says whether a pty is attached.
pub fn build(spec: &Spec, rootfs: &std::path::Path, console: bool) -> Result<Vec<Step>, PlanError> {
    let mut steps = vec![Step::PrivatizeMounts];
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| PlanError::Invalid("no root".into()))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    match mounts.first().and_then(root_overlay) {
        Some(step) => {
            steps.push(step(rootfs.to_path_buf()));
            mounts.remove(0);
        }
        None => steps.push(Step::BindRootfs {
            source: root.path().clone(),
            target: rootfs.to_path_buf(),
        }),
    }
    let mut has_dev = false;
    for m in mounts {
        let dest = m.destination().display().to_string();
        let options = m.options().clone().unwrap_or_default();
        let (flags, data, bind) = mount_options(&options);
        let fstype = m.typ().clone().unwrap_or_else(|| "none".into());
        if bind || fstype == "bind" {
            let source = m
                .source()
                .clone()
                .ok_or_else(|| PlanError::Invalid(format!("bind mount {dest} without a source")))?;
            let file = std::fs::metadata(&source)
                .map(|md| !md.is_dir())
                .unwrap_or(false);
            if options.iter().any(|o| o == COPY_UP) && !file {
                steps.push(Step::CopyUp {
                    source: source.clone(),
                    dest: dest.clone(),
                });
            }
            if let Some((uid, gid)) = options
                .iter()
                .find_map(|o| o.strip_prefix(CHOWN)?.strip_prefix('=')?.split_once(':'))
            {
                let bad = || PlanError::Invalid(format!("bad {CHOWN} option for {dest}"));
                steps.push(Step::Chown {
                    source: source.clone(),
                    uid: uid.parse().map_err(|_| bad())?,
                    gid: gid.parse().map_err(|_| bad())?,
                });
            }
            steps.push(Step::Bind {
                source,
                dest,
                flags: flags | MsFlags::MS_BIND,
                file,
            });
        } else {
            if dest == "/dev" {
                has_dev = true;
            }
            steps.push(Step::Mount {
                fstype: fstype.clone(),
                source: m
                    .source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or(fstype),
                dest: dest.clone(),
                flags,
                data,
            });
            if dest == "/dev" {
                for (path, major, minor) in DEVICES {
                    steps.push(Step::Device {
                        dest: path.into(),
                        source: path.into(),
                        block: false,
                        major,
                        minor,
                        mode: 0o666,
                    });
                }
                steps.extend(user_devices(spec));
                for (target, link) in [
                    ("/proc/self/fd", "/dev/fd"),
                    ("/proc/self/fd/0", "/dev/stdin"),
                    ("/proc/self/fd/1", "/dev/stdout"),
                    ("/proc/self/fd/2", "/dev/stderr"),
                    ("pts/ptmx", "/dev/ptmx"),
                    ("/proc/kcore", "/dev/core"),
                ] {
                    steps.push(Step::Symlink {
                        target: target.into(),
                        dest: link.into(),
                    });
                }
            }
        }
    }
    if console && has_dev {
        steps.push(Step::Console);
    }
    steps.push(Step::PivotRoot);
    if let Some(linux) = spec.linux() {
        for (key, value) in linux.sysctl().clone().unwrap_or_default() {
            let plain = key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
            if key.is_empty() || key.starts_with('/') || key.contains("..") || !plain {
                return Err(PlanError::Invalid(format!("sysctl {key:?}")));
            }
            steps.push(Step::Sysctl { key, value });
        }
        for p in linux.masked_paths().clone().unwrap_or_default() {
            steps.push(Step::Mask(p));
        }
        for p in linux.readonly_paths().clone().unwrap_or_default() {
            steps.push(Step::ReadOnly(p));
        }
        let has_netns = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none()
            });
        if has_netns {
            steps.push(Step::LoopbackUp);
        }
    }
    if root.readonly().unwrap_or(false) {
        steps.push(Step::RootReadOnly);
    }
    if let Some(h) = spec.hostname() {
        steps.push(Step::Hostname(h.clone()));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> Spec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/rootfs", "readonly": true},
            "hostname": "box",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}
            ],
            "linux": {
                "namespaces": [{"type": "network"}, {"type": "pid"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in e {
                o.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plan_orders_mounts_before_pivot_and_masks_after() {
        let mut s = spec(serde_json::json!({}));
        let mut mounts = s.mounts().clone().unwrap();
        mounts.insert(0, overlay_at_root("overlay", "overlay"));
        s.set_mounts(Some(mounts));
        let steps = build(&s, std::path::Path::new("/bundle/rootfs"), true).unwrap();
        assert_eq!(steps[0], Step::PrivatizeMounts);
        assert_eq!(
            steps[1],
            Step::Overlay {
                target: "/bundle/rootfs".into(),
                options: "lowerdir=/a,upperdir=/b,workdir=/c".into(),
                program: None
            }
        );
        assert!(
            !steps
                .iter()
                .any(|s| matches!(s, Step::Mount { dest, .. } if dest == "/")),
            "the root's overlay is not mounted a second time"
        );
        let pos = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f).unwrap();
        let pivot = pos(&|s| *s == Step::PivotRoot);
        assert!(pos(&|s| matches!(s, Step::Mount { dest, .. } if dest == "/proc")) < pivot);
        assert!(pos(&|s| matches!(s, Step::Device { dest, .. } if dest == "/dev/null")) < pivot);
        assert!(pos(&|s| *s == Step::Console) < pivot);
        assert!(pos(&|s| *s == Step::Mask("/proc/kcore".into())) > pivot);
        assert!(steps.contains(&Step::RootReadOnly));
        assert!(steps.contains(&Step::LoopbackUp));
        assert!(steps.contains(&Step::Hostname("box".into())));
        let bind = steps
            .iter()
            .find(|s| matches!(s, Step::Bind { .. }))
            .unwrap();
        assert!(
            matches!(bind, Step::Bind { flags, .. } if flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_REC | MsFlags::MS_BIND))
        );
    }

    #[test]
    fn sysctls_are_set_after_pivot_and_before_proc_sys_is_read_only() {
        let mut s = spec(serde_json::json!({}));
        let mut sysctl = std::collections::HashMap::new();
        sysctl.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        s.linux_mut()
            .as_mut()
            .unwrap()
            .set_sysctl(Some(sysctl.clone()));
        let steps = build(&s, std::path::Path::new("/r"), false).unwrap();
        let pos = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f).unwrap();
        let set = pos(
            &|s| matches!(s, Step::Sysctl { key, value } if key == "net.ipv4.ip_forward" && value == "1"),
        );
        assert!(set > pos(&|s| *s == Step::PivotRoot));
        assert!(set < pos(&|s| *s == Step::ReadOnly("/proc/sys".into())));
        for bad in ["../../etc/x", "/net/x", "net.ipv4 x", ""] {
            sysctl.clear();
            sysctl.insert(bad.to_string(), "1".to_string());
            s.linux_mut()
                .as_mut()
                .unwrap()
                .set_sysctl(Some(sysctl.clone()));
            assert!(
                build(&s, std::path::Path::new("/r"), false).is_err(),
                "{bad:?}"
            );
        }
    }

    fn overlay_at_root(typ: &str, source: &str) -> oci_spec::runtime::Mount {
        serde_json::from_value(serde_json::json!({
            "destination": "/", "type": typ, "source": source,
            "options": ["lowerdir=/a", "upperdir=/b", "workdir=/c"]
        }))
        .unwrap()
    }

    #[test]
    fn a_fuse_overlay_at_root_is_mounted_by_its_program() {
        let mut s = spec(serde_json::json!({}));
        let mut mounts = s.mounts().clone().unwrap();
        mounts.insert(
            0,
            overlay_at_root("fuse.fuse-overlayfs", "/usr/bin/fuse-overlayfs"),
        );
        s.set_mounts(Some(mounts));
        let steps = build(&s, std::path::Path::new("/r"), false).unwrap();
        assert!(matches!(&steps[1],
            Step::Overlay { program: Some(p), .. } if p == std::path::Path::new("/usr/bin/fuse-overlayfs")));
    }

    #[test]
    fn without_overlay_the_root_is_bound() {
        let steps = build(
            &spec(serde_json::json!({})),
            std::path::Path::new("/b/rootfs"),
            false,
        )
        .unwrap();
        assert!(
            matches!(&steps[1], Step::BindRootfs { source, .. } if source == std::path::Path::new("/rootfs"))
        );
        assert!(!steps.contains(&Step::Console));
    }

    #[test]
    fn parses_mount_options() {
        let (f, d, b) = mount_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=1777".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(f, MsFlags::MS_NOSUID | MsFlags::MS_RDONLY);
        assert_eq!(d, "mode=1777,size=65536k");
        assert!(!b);
    }
}

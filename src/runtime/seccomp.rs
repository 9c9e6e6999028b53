//! Compiles the spec's seccomp section (OCI `linux.seccomp`) into BPF with
//! libseccomp. Compiling the default policy takes milliseconds, so the BPF
//! is cached by the profile's digest; the child only hands the bytes to the
//! kernel just before exec.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("seccomp profile: {0}")]
pub struct SeccompError(pub String);

fn action(a: LinuxSeccompAction, errno: Option<u32>, default_errno: u32) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(default_errno) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(default_errno) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Errno(libc::ENOSYS),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn op(o: LinuxSeccompOperator) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(0),
    }
}

/// Builds a filter; syscall names the kernel or libseccomp does not know
/// are skipped (profiles list syscalls of many kernels and arches).
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    let e = |x: libseccomp::error::SeccompError| SeccompError(x.to_string());
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let mut ctx =
        ScmpFilterContext::new(action(s.default_action(), None, default_errno)).map_err(e)?;
    ctx.set_ctl_nnp(false).map_err(e)?;
    if ScmpArch::native() == ScmpArch::X8664 {
        let _ = ctx.add_arch(ScmpArch::X86);
        let _ = ctx.add_arch(ScmpArch::X32);
    }
    for rule in s.syscalls().clone().unwrap_or_default() {
        let act = action(rule.action(), rule.errno_ret(), default_errno);
        if act == action(s.default_action(), None, default_errno) {
            continue; // libseccomp refuses rules equal to the default
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let cmp = match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
                    other => op(other),
                };
                let datum = if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                    a.value_two().unwrap_or(0)
                } else {
                    a.value()
                };
                ScmpArgCompare::new(a.index() as u32, cmp, datum)
            })
            .collect();
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let res = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            if let Err(err) = res {
                tracing::debug!("seccomp rule for {name} skipped: {err}");
            }
        }
    }
    Ok(ctx)
}

/// BPF for `s`, from the cache dir when it was compiled before.
pub fn bpf(s: &LinuxSeccomp, cache: Option<&std::path::Path>) -> Result<Vec<u8>, SeccompError> {
    let key = crate::util::digest::Digest::of(&serde_json::to_vec(s).expect("profile serialises"));
    let cached = cache.map(|d| d.join(format!("{}.bpf", key.hex())));
    if let Some(p) = &cached {
        if let Some(b) = read_trusted(p) {
            if !b.is_empty() && b.len() % 8 == 0 {
                return Ok(b);
            }
        }
    }
    let ctx = compile(s)?;
    let mut tmp = tempfile_in(cache)?;
    ctx.export_bpf(&tmp.0)
        .map_err(|e| SeccompError(e.to_string()))?;
    use std::io::{Read, Seek};
    tmp.0.rewind().map_err(|e| SeccompError(e.to_string()))?;
    let mut bytes = Vec::new();
    tmp.0
        .read_to_end(&mut bytes)
        .map_err(|e| SeccompError(e.to_string()))?;
    if let Some(p) = &cached {
        let _ = crate::util::fsutil::atomic_write(p, &bytes, 0o600);
    }
    Ok(bytes)
}

/// A cached program is loaded only when nobody but this user could have
/// written it: the file and its directory are ours and not writable by
/// others, and the file is not a link. Anything else is compiled anew.
fn read_trusted(p: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let ours = |m: &std::fs::Metadata| m.uid() == me && m.mode() & 0o022 == 0;
    let dir = std::fs::symlink_metadata(p.parent()?).ok()?;
    if !dir.is_dir() || !ours(&dir) {
        return None;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || !ours(&m) || m.len() > 1 << 20 {
        return None;
    }
    let mut b = Vec::new();
    f.read_to_end(&mut b).ok()?;
    Some(b)
}

struct AnonFile(std::fs::File);

fn tempfile_in(dir: Option<&std::path::Path>) -> Result<AnonFile, SeccompError> {
    let d = dir
        .map(|p| p.to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    let _ = crate::util::fsutil::create_dir_all_mode(&d, 0o700);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(&d)
        .map_err(|e| SeccompError(format!("temp file for BPF: {e}")))?;
    Ok(AnonFile(f))
}

use std::os::unix::fs::OpenOptionsExt;

/// Installs BPF made by [`bpf`] on the calling thread.
pub fn load(bpf: &[u8]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: (bpf.len() / 8) as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at valid BPF for the duration of the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn cached_programs_are_trusted_only_when_nobody_else_could_write_them() {
        let dir = std::env::temp_dir().join(format!("berth-seccomp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::util::fsutil::create_dir_all_mode(&dir, 0o700).unwrap();
        let f = dir.join("x.bpf");
        std::fs::write(&f, [0u8; 8]).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_trusted(&f).is_some());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_trusted(&f).is_none(), "a file others may write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(read_trusted(&f).is_none(), "a dir others may write");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.join("l.bpf");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(read_trusted(&link).is_none(), "a link");
        std::os::unix::fs::lchown(&f, Some(12345), None).unwrap();
        assert!(read_trusted(&f).is_none(), "another user's file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

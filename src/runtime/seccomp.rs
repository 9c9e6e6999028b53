//! Compiles the spec's seccomp section (OCI `linux.seccomp`) into a
//! libseccomp filter. Built in the parent, loaded by the child just before
//! exec.

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

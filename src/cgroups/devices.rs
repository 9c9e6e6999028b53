//! Which device nodes a container may use: an allow list enforced by the
//! cgroup, so a node that an image carries (or that a container makes
//! with mknod) gives no access to the host's device behind it.
//!
//! cgroup v1: `devices.deny a`, then one `devices.allow` line per rule.
//! cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
//! container's cgroup; it is written as eBPF assembly, assembled with
//! rbpf (whose interpreter also runs it in the unit tests).

use super::CgroupError;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One allow rule, as runtime-spec `linux.resources.devices` and
/// `--device-cgroup-rule` have them (`c 1:3 rwm`, `b *:* m`, `a`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRule {
    /// 'a' (all), 'c' (char) or 'b' (block).
    pub kind: char,
    /// None: any major.
    pub major: Option<u32>,
    /// None: any minor.
    pub minor: Option<u32>,
    /// Any of 'r', 'w', 'm'.
    pub access: String,
}

/// Why a device rule was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid device rule {rule:?}: {why} (expected TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm', TYPE a, c or b, MAJOR/MINOR a number or *)")]
pub struct RuleError {
    pub rule: String,
    pub why: &'static str,
}

/// Why a `--device-cgroup-rule` was refused, in podman's words (scripts
/// match on them).
#[derive(Debug, thiserror::Error)]
pub enum FlagRuleError {
    #[error("invalid device cgroup rule requires type, major:Minor, and access rules: {0:?}")]
    Fields(String),
    #[error("invalid device type in device-access-add: {0}")]
    Type(String),
    #[error("invalid device access in device-access-add: {0}")]
    Access(char),
    #[error("invalid device number {0:?} in --device-cgroup-rule: use a number or *")]
    Number(String),
}

impl DeviceRule {
    /// Parses a `--device-cgroup-rule` as podman does: exactly TYPE,
    /// MAJOR[:MINOR] and ACCESS (`c 1:3 rwm`, `a 7 rwm`: any minor).
    pub fn parse_flag(s: &str) -> Result<DeviceRule, FlagRuleError> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [kind, numbers, access] = parts.as_slice() else {
            return Err(FlagRuleError::Fields(s.to_string()));
        };
        let kind = match *kind {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            other => return Err(FlagRuleError::Type(other.to_string())),
        };
        let num = |v: &str| -> Result<Option<u32>, FlagRuleError> {
            match v {
                "*" => Ok(None),
                _ => v
                    .parse()
                    .map(Some)
                    .map_err(|_| FlagRuleError::Number(v.to_string())),
            }
        };
        let (major, minor) = match numbers.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(numbers)?, None),
        };
        if let Some(bad) = access.chars().find(|c| !"rwm".contains(*c)) {
            return Err(FlagRuleError::Access(bad));
        }
        Ok(DeviceRule {
            kind,
            major,
            minor,
            access: access.to_string(),
        })
    }

    /// Parses `c 1:3 rwm`, `b *:* m`, `a` or `a *:* rwm`.
    pub fn parse(s: &str) -> Result<DeviceRule, RuleError> {
        let err = |why| RuleError {
            rule: s.to_string(),
            why,
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        let kind = match parts.first().copied() {
            Some("a") => 'a',
            Some("c") => 'c',
            Some("b") => 'b',
            _ => return Err(err("the type must be a, c or b")),
        };
        let num = |v: &str| -> Result<Option<u32>, RuleError> {
            if v == "*" {
                Ok(None)
            } else {
                v.parse()
                    .map(Some)
                    .map_err(|_| err("bad major or minor number"))
            }
        };
        let (major, minor) = match parts.get(1) {
            None => (None, None),
            Some(mm) => {
                let (a, b) = mm
                    .split_once(':')
                    .ok_or_else(|| err("missing MAJOR:MINOR"))?;
                (num(a)?, num(b)?)
            }
        };
        let access = parts.get(2).copied().unwrap_or("rwm").to_string();
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) || parts.len() > 3 {
            return Err(err("the access must be made of r, w and m"));
        }
        Ok(DeviceRule {
            kind,
            major,
            minor,
            access,
        })
    }

    /// The rule as cgroup v1's devices.allow reads it.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    fn access_bits(&self) -> u32 {
        self.access.chars().fold(0, |b, c| {
            b | match c {
                'm' => ACC_MKNOD,
                'r' => ACC_READ,
                _ => ACC_WRITE,
            }
        })
    }
}

// The kernel's bpf_cgroup_dev_ctx: access_type (access << 16 | type),
// major, minor; BPF_DEVCG_* values.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;

/// The eBPF program (as assembly) that returns 1 for an access one of
/// `rules` allows and 0 for every other.
pub fn program_asm(rules: &[DeviceRule]) -> String {
    let mut out = vec![
        "ldxw r2, [r1+0]".to_string(),
        "mov r3, r2".into(),
        "and r2, 0xffff".into(), // device type
        "rsh r3, 16".into(),     // requested access
        "ldxw r4, [r1+4]".into(),
        "ldxw r5, [r1+8]".into(),
    ];
    for r in rules {
        // Each test jumps past the rest of this rule's block on a mismatch.
        let mut tests: Vec<String> = Vec::new();
        match r.kind {
            'c' => tests.push(format!("jne r2, {DEV_CHAR}, +{{}}")),
            'b' => tests.push(format!("jne r2, {DEV_BLOCK}, +{{}}")),
            _ => {}
        }
        let denied = !r.access_bits() & (ACC_MKNOD | ACC_READ | ACC_WRITE);
        if denied != 0 {
            tests.push("mov r6, r3".into());
            tests.push(format!("and r6, {denied}"));
            tests.push("jne r6, 0, +{}".into());
        }
        if let Some(m) = r.major {
            tests.push(format!("jne r4, {m}, +{{}}"));
        }
        if let Some(m) = r.minor {
            tests.push(format!("jne r5, {m}, +{{}}"));
        }
        tests.push("mov r0, 1".into());
        tests.push("exit".into());
        let len = tests.len();
        out.extend(
            tests
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.replace("{}", &(len - i - 1).to_string())),
        );
    }
    out.push("mov r0, 0".into());
    out.push("exit".into());
    out.join("\n")
}

/// The program as bytecode.
pub fn program(rules: &[DeviceRule]) -> Vec<u8> {
    rbpf::assembler::assemble(&program_asm(rules)).expect("the device program assembles")
}

/// cgroup v1: deny everything, then allow the rules.
pub fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    super::write(&dir.join("devices.deny"), "a")?;
    // The kernel takes one rule per write: one open for all of them keeps
    // the start path short.
    let path = dir.join("devices.allow");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(super::io_err(&path))?;
    for r in rules {
        std::io::Write::write_all(&mut f, r.v1_line().as_bytes()).map_err(super::io_err(&path))?;
    }
    Ok(())
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The first fields of the kernel's union bpf_attr for BPF_PROG_LOAD.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The fields of union bpf_attr for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i32> {
    // SAFETY: attr is a valid bpf_attr prefix of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

/// cgroup v2: loads the program for `rules` and attaches it to the
/// cgroup at `dir`; it stays there until the cgroup is removed.
pub fn apply_v2(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let io = super::io_err(dir);
    let code = program(rules);
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_device");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (code.len() / 8) as u32,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let prog = match bpf(BPF_PROG_LOAD, &load) {
        // SAFETY: the kernel returned a new fd.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return Err(io(e)),
    };
    let cg = std::fs::File::open(dir).map_err(super::io_err(dir))?;
    let attach = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &attach).map_err(super::io_err(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_rules_parse_as_podman_has_them() {
        let r = DeviceRule::parse_flag("a 7 rmw").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('a', Some(7), None));
        let r = DeviceRule::parse_flag("b 7:* rw").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('b', Some(7), None));
        let e = |s| DeviceRule::parse_flag(s).unwrap_err().to_string();
        assert_eq!(
            e("b 7:* rmX"),
            "invalid device access in device-access-add: X"
        );
        assert!(e("b 7:2").starts_with("invalid device cgroup rule requires type"));
        assert_eq!(
            e("x 7:* rmw"),
            "invalid device type in device-access-add: x"
        );
        assert!(e("a a:* rmw").contains("\"a\""));
    }

    fn run(rules: &[DeviceRule], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let code = program(rules);
        let vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
        let mut ctx = Vec::new();
        ctx.extend_from_slice(&((access << 16) | kind).to_le_bytes());
        ctx.extend_from_slice(&major.to_le_bytes());
        ctx.extend_from_slice(&minor.to_le_bytes());
        vm.execute_program(&mut ctx).unwrap()
    }

    fn rules(list: &[&str]) -> Vec<DeviceRule> {
        list.iter().map(|r| DeviceRule::parse(r).unwrap()).collect()
    }

    #[test]
    fn program_allows_only_what_the_rules_say() {
        let r = rules(&["c *:* m", "b *:* m", "c 1:3 rwm", "c 136:* rw"]);
        assert_eq!(run(&r, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1, "null");
        assert_eq!(run(&r, DEV_CHAR, ACC_WRITE, 1, 11), 0, "kmsg");
        assert_eq!(run(&r, DEV_CHAR, ACC_MKNOD, 1, 11), 1, "mknod of anything");
        assert_eq!(run(&r, DEV_BLOCK, ACC_MKNOD, 8, 0), 1);
        assert_eq!(run(&r, DEV_BLOCK, ACC_READ, 8, 0), 0, "a disk");
        assert_eq!(run(&r, DEV_CHAR, ACC_READ, 136, 7), 1, "a pty");
        assert_eq!(run(&r, DEV_CHAR, ACC_MKNOD, 136, 7), 1);
        assert_eq!(run(&r, DEV_BLOCK, ACC_READ, 136, 7), 0, "type matters");
        assert_eq!(run(&[], DEV_CHAR, ACC_READ, 1, 3), 0, "empty list");
        assert_eq!(run(&rules(&["a"]), DEV_BLOCK, ACC_WRITE, 8, 0), 1);
    }

    #[test]
    fn parses_rules() {
        let r = DeviceRule::parse("c 1:11 rw").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('c', Some(1), Some(11)));
        assert_eq!(r.v1_line(), "c 1:11 rw");
        assert_eq!(DeviceRule::parse("b *:* m").unwrap().v1_line(), "b *:* m");
        assert_eq!(DeviceRule::parse("a").unwrap().v1_line(), "a *:* rwm");
        for bad in ["x 1:1 r", "c 1 r", "c 1:1 rx", "c a:1 r", ""] {
            assert!(DeviceRule::parse(bad).is_err(), "{bad}");
        }
    }
}

//! The default seccomp policy, with podman's default behaviour: an
//! allowlist (unknown syscalls fail with ENOSYS so programs fall back),
//! syscalls that need a capability allowed only when the container has it,
//! and a few always refused with EPERM. Where podman leans on an LSM
//! (AppArmor, SELinux) that berth does not have, it takes docker's
//! stricter default: creating namespaces (clone flags, unshare), the mount
//! family and pivot_root need CAP_SYS_ADMIN, and the kernel keyring
//! (keyctl, add_key, request_key; not namespaced) is refused. Also reads docker/podman JSON
//! profiles for `--security-opt seccomp=FILE`.

use serde::Deserialize;
use serde_json::{json, Value};

const ALLOW: &str = "_llseek _newselect accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 \
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep \
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create \
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 \
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir \
fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork \
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex \
futex_time64 futex_waitv futimesat get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid \
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid \
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid \
getsockname getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init \
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_setup io_submit ioctl ioprio_get \
ioprio_set ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr \
link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise memfd_create \
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr \
mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap \
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open openat \
openat2 pause pidfd_getfd pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll \
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 \
pwritev pwritev2 read readahead readdir readlink readlinkat readv reboot recv recvfrom recvmmsg \
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq \
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait \
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity \
sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 \
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget \
semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list \
set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 \
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid \
setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack \
signalfd signalfd4 sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx symlink \
symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time timer_create timer_delete \
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime \
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname \
unlink unlinkat utime utimensat utimensat_time64 utimes vfork wait4 waitid waitpid write writev arch_prctl \
modify_ldt";

/// Always refused with EPERM (obsolete or host-wide syscalls, the keyring).
const DENY: &str = "add_key keyctl request_key bdflush io_pgetevents kexec_file_load kexec_load migrate_pages move_pages nfsservctl nice oldfstat \
oldlstat oldolduname oldstat olduname pciconfig_iobase pciconfig_read pciconfig_write sgetmask ssetmask swapcontext \
swapoff swapon sysfs uselib userfaultfd ustat vm86 vm86old vmsplice";

/// Allowed only with the capability; refused with EPERM without it.
const BY_CAPABILITY: [(&str, &str); 11] = [
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf fanotify_init lookup_dcookie perf_event_open quotactl setdomainname sethostname setns \
         mount umount umount2 unshare pivot_root mount_setattr move_mount open_tree fsconfig fsmount \
         fsopen fspick",
    ),
    ("CAP_SYS_CHROOT", "chroot"),
    (
        "CAP_SYS_MODULE",
        "delete_module init_module finit_module query_module",
    ),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYSLOG", ""),
];

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

fn names(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// The default profile as an OCI `linux.seccomp` object, for a container
/// with capabilities `caps`.
pub fn default_profile(caps: &[String]) -> Value {
    let mut syscalls = vec![
        json!({"names": names(ALLOW), "action": "SCMP_ACT_ALLOW"}),
        json!({"names": names(DENY), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
    ];
    // clone: new namespaces only with CAP_SYS_ADMIN (clone3's flags are in
    // memory, out of seccomp's reach: without the capability it is ENOSYS,
    // the default, and libc falls back to clone).
    if !caps.iter().any(|c| c == "CAP_SYS_ADMIN") {
        syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    } else {
        syscalls.push(json!({"names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW"}));
    }
    for persona in [0u64, 0x0008, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
    }
    for (cap, list) in BY_CAPABILITY {
        if list.is_empty() {
            continue;
        }
        if caps.iter().any(|c| c == cap) {
            syscalls.push(json!({"names": names(list), "action": "SCMP_ACT_ALLOW"}));
        } else {
            syscalls.push(
                json!({"names": names(list), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
            );
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::ENOSYS,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<DockerRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerRule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

/// Reads a docker/podman JSON profile, applying its capability and
/// architecture filters, into an OCI `linux.seccomp` object.
pub fn from_docker_json(text: &str, caps: &[String]) -> Result<Value, serde_json::Error> {
    let p: DockerProfile = serde_json::from_str(text)?;
    let arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        std::env::consts::ARCH
    };
    let applies = |r: &DockerRule| {
        let inc = r.includes.as_ref();
        let exc = r.excludes.as_ref();
        inc.is_none_or(|f| {
            f.caps.iter().all(|c| caps.contains(c))
                && (f.arches.is_empty() || f.arches.iter().any(|a| a == arch))
        }) && exc.is_none_or(|f| {
            (f.caps.is_empty() || !f.caps.iter().all(|c| caps.contains(c)))
                && !f.arches.iter().any(|a| a == arch)
        })
    };
    let rules: Vec<Value> = p
        .syscalls
        .iter()
        .filter(|r| applies(r))
        .map(|r| {
            let mut names = r.names.clone();
            names.extend(r.name.clone());
            let mut v = json!({"names": names, "action": r.action});
            if let Some(e) = r.errno_ret {
                v["errnoRet"] = json!(e);
            }
            if let Some(a) = &r.args {
                if !a.is_null() {
                    v["args"] = a.clone();
                }
            }
            v
        })
        .collect();
    let mut out = json!({"defaultAction": p.default_action, "syscalls": rules});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_a_valid_oci_section() {
        let v = default_profile(&["CAP_SYS_CHROOT".into()]);
        let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        let rules = s.syscalls().clone().unwrap();
        let chroot = rules
            .iter()
            .find(|r| r.names().contains(&"chroot".to_string()))
            .unwrap();
        assert_eq!(
            chroot.action(),
            oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
        );
        let ptrace = rules
            .iter()
            .find(|r| r.names().contains(&"ptrace".to_string()))
            .unwrap();
        assert_eq!(
            ptrace.action(),
            oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
        );
    }

    #[test]
    fn namespaces_need_sys_admin_and_clone3_falls_back() {
        let names_of = |caps: &[String]| -> Vec<(String, Value)> {
            default_profile(caps)["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| {
                    r["names"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| (n.as_str().unwrap().to_string(), r.clone()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let plain = names_of(&["CAP_CHOWN".into()]);
        // clone3 has no rule: the default ENOSYS makes libc fall back to
        // clone (EPERM would break every new thread).
        assert!(!plain.iter().any(|(n, _)| n == "clone3"));
        let clone = &plain.iter().find(|(n, _)| n == "clone").unwrap().1;
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        for n in ["unshare", "mount", "keyctl", "add_key"] {
            let r = &plain.iter().find(|(x, _)| x == n).unwrap().1;
            assert_eq!(r["action"], "SCMP_ACT_ERRNO", "{n}");
        }
        let admin = names_of(&["CAP_SYS_ADMIN".into()]);
        for n in ["clone3", "unshare", "mount"] {
            let r = &admin.iter().find(|(x, _)| x == n).unwrap().1;
            assert_eq!(r["action"], "SCMP_ACT_ALLOW", "{n}");
        }
    }

    #[test]
    fn reads_docker_profiles() {
        let text = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
            {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}}]}"#;
        let v = from_docker_json(text, &[]).unwrap();
        assert_eq!(v["syscalls"].as_array().unwrap().len(), 1);
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert!(from_docker_json("{}", &[]).is_err());
    }
}

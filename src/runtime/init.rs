//! The init for `--init`: PID 1 is catatonit (a small static init from
//! Debian's package of that name, what podman uses), which forwards
//! signals to the command, reaps every zombie and exits with the
//! command's status.
//!
//! It is executed by the container's setup exactly where the command
//! would be, after the user, capabilities, no-new-privileges and seccomp
//! filter are applied and every descriptor of berth's is closed, so it
//! holds nothing the command does not. The binary is opened before
//! pivot_root as a read-only, detached clone of its mount (or a sealed
//! memfd copy when the kernel cannot make one) and executed by fd: it has
//! no path in the container, and `/proc/1/exe` cannot be used to rewrite
//! the host's copy (the class of CVE-2019-5736).

use super::step_error::{ctx, last_os, StepError};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// argv[0] of the init.
pub const NAME: &str = "catatonit";

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

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// The kernel's struct mount_attr (mount_setattr(2)).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// An fd to the init binary at `path` that the container cannot write
/// through: first a clone of its mount, detached and made read-only;
/// else a sealed memfd copy. Called in the container's new mount
/// namespace before pivot_root, where the host's mounts are still there.
pub fn sealed_exe(path: &Path) -> Result<OwnedFd, StepError> {
    read_only_mount(path).or_else(|_| sealed_copy(path))
}

fn read_only_mount(path: &Path) -> Result<OwnedFd, StepError> {
    let c = crate::util::secure_path::cstr(path.as_os_str().as_encoded_bytes());
    // SAFETY: valid C string; the result is a new fd we own or -1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(last_os("open_tree"));
    }
    // SAFETY: the kernel returned a new fd.
    let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = crate::util::secure_path::cstr(b"");
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, attr of the right size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(last_os("mount_setattr"));
    }
    Ok(fd)
}

fn sealed_copy(path: &Path) -> Result<OwnedFd, StepError> {
    let name = crate::util::secure_path::cstr(NAME.as_bytes());
    // SAFETY: valid C string; the result is a new fd or -1.
    let r =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if r < 0 {
        return Err(last_os("memfd_create"));
    }
    // SAFETY: the kernel returned a new fd.
    let fd = unsafe { OwnedFd::from_raw_fd(r) };
    let mut exe = std::fs::File::open(path).map_err(ctx(format!("opening {}", path.display())))?;
    let mut out = std::fs::File::from(fd.try_clone().map_err(ctx("memfd"))?);
    std::io::copy(&mut exe, &mut out).map_err(ctx(format!("copying {}", path.display())))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(last_os("sealing"));
    }
    Ok(fd)
}

/// The init's arguments: `catatonit -- ARGV...`.
pub fn argv(args: &[std::ffi::CString]) -> Vec<std::ffi::CString> {
    let mut v = vec![
        std::ffi::CString::new(NAME).expect("no NUL"),
        std::ffi::CString::new("--").expect("no NUL"),
    ];
    v.extend(args.iter().cloned());
    v
}

//! Executes the mount steps of a plan inside the container's new mount
//! namespace. Targets inside the rootfs are opened with openat2
//! (RESOLVE_IN_ROOT) and mounted through /proc/self/fd, so a symlink in the
//! image can never redirect a mount onto the host.

use super::plan::Step;
use super::step_error::{ctx, last_os, StepError};
use crate::util::secure_path::{ensure_in_root, fd_path, parent_in_root};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A failed step, reported to the parent.
pub type StepResult = Result<(), StepError>;

/// State the steps share: where the rootfs is, whether ids are mapped
/// (rootless), and the console slave path.
pub struct MountCtx {
    pub rootfs: PathBuf,
    pub rootfs_fd: Option<OwnedFd>,
    pub userns: bool,
    pub console: Option<PathBuf>,
}

impl MountCtx {
    fn root_fd(&mut self) -> Result<i32, StepError> {
        if self.rootfs_fd.is_none() {
            let fd = crate::util::secure_path::open_at(
                libc::AT_FDCWD,
                self.rootfs.as_os_str().as_encoded_bytes(),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            )
            .map_err(ctx("opening the rootfs"))?;
            self.rootfs_fd = Some(fd);
        }
        Ok(self.rootfs_fd.as_ref().expect("set above").as_raw_fd())
    }

    fn target(&mut self, dest: &str, file: bool) -> Result<OwnedFd, StepError> {
        let root = self.root_fd()?;
        ensure_in_root(root, dest.as_bytes(), file)
            .map_err(ctx(format!("creating mount point {dest}")))
    }
}

/// Remounts a bind mount with `flags`, keeping flags the kernel locks in a
/// user namespace (nosuid/nodev/noexec/ro of the source).
fn remount_bind(target: &str, flags: MsFlags) -> StepResult {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let extra =
        flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    if extra.is_empty() {
        return Ok(());
    }
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        base | extra,
        None::<&str>,
    ) {
        Ok(()) => Ok(()),
        Err(_) => {
            let st =
                nix::sys::statvfs::statvfs(target).map_err(ctx(format!("statvfs {target}")))?;
            let mut locked = MsFlags::empty();
            let f = st.flags();
            use nix::sys::statvfs::FsFlags;
            for (fs, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            ] {
                if f.contains(fs) {
                    locked |= ms;
                }
            }
            mount(
                None::<&str>,
                target,
                None::<&str>,
                base | extra | locked,
                None::<&str>,
            )
            .map_err(ctx(format!("remounting {target}")))
        }
    }
}

/// Runs one step.
pub fn run_step(step: &Step, c: &mut MountCtx) -> StepResult {
    match step {
        Step::PrivatizeMounts => mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(ctx("making mounts private")),
        Step::Overlay {
            target,
            options,
            program,
        } => match program {
            Some(prog) => super::fuse_mount::fuse(prog, options, target),
            None => mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )
            .map_err(ctx("mounting the overlay root")),
        },
        Step::BindRootfs { source, target } => mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(ctx(format!("binding rootfs {}", source.display()))),
        Step::Mount {
            fstype,
            source,
            dest,
            flags,
            data,
        } => {
            let t = c.target(dest, false)?;
            let path = fd_path(&t);
            let data = if c.userns && fstype == "devpts" {
                // gid=5 may not be mapped in a user namespace.
                data.split(',')
                    .filter(|o| !o.starts_with("gid="))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                data.clone()
            };
            let res = mount(
                Some(source.as_str()),
                path.as_str(),
                Some(fstype.as_str()),
                *flags,
                Some(data.as_str()),
            );
            match (res, fstype.as_str()) {
                (Ok(()), _) => Ok(()),
                // sysfs needs a network namespace of our own; with the host's, bind the host's /sys read-only.
                (Err(_), "sysfs") => {
                    mount(
                        Some("/sys"),
                        path.as_str(),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .map_err(ctx("binding /sys"))?;
                    remount_bind(
                        &path,
                        MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV
                            | MsFlags::MS_NOEXEC,
                    )
                }
                (Err(_), "mqueue") if c.userns => Ok(()),
                (Err(e), _) => Err(ctx(format!("mounting {fstype} on {dest}"))(e)),
            }
        }
        Step::Bind {
            source,
            dest,
            flags,
            file,
        } => {
            let t = c.target(dest, *file)?;
            let path = fd_path(&t);
            let rec = *flags & MsFlags::MS_REC;
            mount(
                Some(source.as_path()),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | rec,
                None::<&str>,
            )
            .map_err(ctx(format!("binding {} to {dest}", source.display())))?;
            let t = c.target(dest, *file)?; // reopen: the mount now covers the old fd's path
            remount_bind(&fd_path(&t), *flags)
        }
        Step::Chown { source, uid, gid } => super::copyup::chown_tree(source, *uid, *gid)
            .map_err(ctx(format!("giving {} to {uid}:{gid}", source.display()))),
        Step::CopyUp { source, dest } => {
            let root = c.root_fd()?;
            super::copyup::copy_up(root, dest, source)
        }
        Step::Device {
            dest,
            source,
            block,
            major,
            minor,
            mode,
        } => {
            if c.userns {
                // No mknod in a user namespace: bind the host's node.
                let t = c.target(dest, true)?;
                return mount(
                    Some(source.as_path()),
                    fd_path(&t).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(ctx(format!("binding {dest} from the host")));
            }
            // The node is made relative to its parent dir resolved inside
            // the root: an image whose /dev is a symlink to a host
            // directory cannot get nodes made there.
            let root = c.root_fd()?;
            let (dir, name) =
                parent_in_root(root, dest.as_bytes()).map_err(ctx(format!("creating {dest}")))?;
            let dir = dir.as_raw_fd();
            // SAFETY: valid C string relative to a directory fd we hold;
            // ENOENT is fine, a directory there makes mknod fail below.
            unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
            let fmt = if *block { libc::S_IFBLK } else { libc::S_IFCHR };
            // SAFETY: as above.
            let r = unsafe {
                libc::mknodat(
                    dir,
                    name.as_ptr(),
                    fmt | mode,
                    libc::makedev(*major as u32, *minor as u32),
                )
            };
            if r < 0 {
                return Err(last_os(format!("creating {dest}")));
            }
            // SAFETY: as above; mknod applies the umask, chmod does not.
            unsafe { libc::fchmodat(dir, name.as_ptr(), *mode, libc::AT_SYMLINK_NOFOLLOW) };
            Ok(())
        }
        Step::Symlink { target, dest } => {
            let root = c.root_fd()?;
            let (dir, name) =
                parent_in_root(root, dest.as_bytes()).map_err(ctx(format!("creating {dest}")))?;
            let t = crate::util::secure_path::cstr(target.as_bytes());
            // SAFETY: valid C strings relative to a directory fd we hold;
            // EEXIST is fine.
            unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
            Ok(())
        }
        Step::Console => {
            let Some(slave) = c.console.clone() else {
                return Ok(());
            };
            let t = c.target("/dev/console", true)?;
            mount(
                Some(slave.as_path()),
                fd_path(&t).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(ctx("binding /dev/console"))
        }
        Step::PivotRoot => {
            c.rootfs_fd = None;
            nix::unistd::chdir(&c.rootfs).map_err(ctx("entering the rootfs"))?;
            nix::unistd::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detaching the old root"))?;
            nix::unistd::chdir("/").map_err(ctx("chdir /"))
        }
        Step::Mask(p) => match std::fs::symlink_metadata(p) {
            Err(_) => Ok(()),
            Ok(m) if m.is_dir() => mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )
            .map_err(ctx(format!("masking {p}"))),
            Ok(_) => mount(
                Some("/dev/null"),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(ctx(format!("masking {p}"))),
        },
        Step::ReadOnly(p) => {
            if !Path::new(p).exists() {
                return Ok(());
            }
            mount(
                Some(p.as_str()),
                p.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(ctx(format!("read-only {p}")))?;
            remount_bind(
                p,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )
        }
        Step::RootReadOnly => remount_bind("/", MsFlags::MS_RDONLY),
        Step::Sysctl { key, value } => {
            // After pivot_root: /proc is the container's own, and the
            // key names a file under /proc/sys (with dots, or with
            // slashes when a part has dots itself, as runc reads it).
            let rel = if key.contains('/') {
                key.clone()
            } else {
                key.replace('.', "/")
            };
            let path = format!("/proc/sys/{rel}");
            let c = crate::util::secure_path::cstr(path.as_bytes());
            // SAFETY: a NUL-terminated path; O_NOFOLLOW, no O_CREAT.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(last_os(format!("setting sysctl {key}")));
            }
            // SAFETY: writing our buffer to the fd we opened, then closing it.
            let ok = unsafe {
                let n = libc::write(fd, value.as_ptr().cast(), value.len());
                let err = (n != value.len() as isize).then(std::io::Error::last_os_error);
                libc::close(fd);
                err
            };
            match ok {
                None => Ok(()),
                Some(e) => Err(ctx(format!("setting sysctl {key}={value}"))(e)),
            }
        }
        Step::Hostname(h) => nix::unistd::sethostname(h).map_err(ctx("setting the hostname")),
        Step::LoopbackUp => loopback_up().map_err(ctx("bringing up lo")),
    }
}

fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket for the ioctl.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: zeroed ifreq is valid; the name fits.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: valid fd and ifreq.
    let r = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req)
        }
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err);
    }
    Ok(())
}

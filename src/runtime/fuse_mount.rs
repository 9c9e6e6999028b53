//! A root overlay of type `fuse.NAME`: mounted by running the program
//! that the spec names as the mount's source (fuse-overlayfs), as mount(8)
//! does for FUSE filesystems.

use super::step_error::{ctx, Cause, StepError};
use std::path::Path;

/// Mounts the overlay with a FUSE program. It runs inside the container's
/// PID namespace, so it ends with the container.
pub fn fuse(prog: &Path, options: &str, target: &Path) -> Result<(), StepError> {
    let opts: Vec<&str> = options.split(',').filter(|o| *o != "userxattr").collect();
    let status = std::process::Command::new(prog)
        .arg("-o")
        .arg(opts.join(","))
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(ctx(format!("running {}", prog.display())))?;
    if !status.success() {
        return Err(ctx(format!("mounting the rootfs with {}", prog.display()))(
            Cause::Helper(status.to_string()),
        ));
    }
    Ok(())
}

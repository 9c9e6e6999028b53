//! `COPY --from=STAGE|IMAGE`: the sources are read from that root (an
//! image's files, so every path is resolved inside it and walked with
//! O_NOFOLLOW) into a tar, named below the destination as COPY names them.

use super::layer::{in_mounted_root, rewrite_tar, Owner, Work};
use super::BuildError;
use crate::engine::Engine;
use crate::util::fdtree;
use crate::util::secure_path::{clean_components, open_in_root};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Writes the `sources` of the root over `lowers` as a tar at `out`: a
/// directory's contents, or a file by its name (or `file_name`). Owners
/// and modes are kept unless `owner`/`mode` replace them.
pub fn tar_from_root(
    engine: &Engine,
    lowers: &[PathBuf],
    sources: &[String],
    file_name: Option<&str>,
    owner: Option<Owner>,
    mode: Option<u32>,
    out: &Path,
) -> Result<(), BuildError> {
    let work = Work::new(engine)?;
    let raw = work.dir("raw.tar");
    in_mounted_root(engine, lowers, &work, |root| {
        let f = std::fs::File::create(&raw).map_err(|e| e.to_string())?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(f));
        for src in sources {
            let comps = clean_components(src.as_bytes());
            let key = comps.join(&b'/');
            let fd = open_in_root(root.as_raw_fd(), &key, libc::O_PATH | libc::O_NOFOLLOW)
                .map_err(|e| format!("COPY --from source {src:?}: {e}"))?;
            let st = fdtree::fstat(fd.as_raw_fd()).map_err(|e| e.to_string())?;
            if fdtree::kind(st.st_mode) == libc::S_IFDIR {
                let dir = fdtree::open_dir_at(fd.as_raw_fd(), b".").map_err(|e| e.to_string())?;
                // Its contents go into the destination, or under the
                // destination's name when that names it.
                match file_name {
                    Some(n) => fdtree::tar_dir(&mut b, dir.as_raw_fd(), Path::new(n)),
                    None => {
                        fdtree::tar_tree(&mut b, dir.as_raw_fd(), Path::new(""), &mut |_, _| {
                            Ok(false)
                        })
                    }
                }
                .map_err(|e| e.to_string())?;
            } else {
                let base = comps
                    .last()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .unwrap_or_default();
                let name = file_name.map(String::from).unwrap_or(base);
                let opened =
                    open_in_root(root.as_raw_fd(), &key, libc::O_RDONLY | libc::O_NOFOLLOW)
                        .map_err(|e| format!("COPY --from source {src:?}: {e}"))?;
                fdtree::tar_file(&mut b, &opened, Path::new(&name)).map_err(|e| e.to_string())?;
            }
        }
        b.into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| e.to_string())?;
        Ok(())
    })?;
    if owner.is_none() && mode.is_none() {
        return std::fs::rename(&raw, out).map_err(BuildError::io("writing the copy"));
    }
    rewrite_tar(&raw, out, &mut |h| {
        if let Some(o) = owner {
            h.set_uid(o.uid);
            h.set_gid(o.gid);
        }
        if let (Some(m), false) = (mode, h.entry_type().is_symlink()) {
            h.set_mode(m);
        }
    })
    .map_err(BuildError::io("writing the copy"))
}

//! Making a layer without running anything: the destination is resolved
//! inside the image so far (mounted in a child process's own mount
//! namespace, so a symlink in the image cannot aim it at the host), and
//! the layer is written directly: the directories on the way, with their
//! metadata from the image (as overlay's copy-up keeps it), then the new
//! files below the resolved destination.

use super::context::{Item, Kind};
use super::BuildError;
use crate::engine::rootfs::RootfsDriver;
use crate::engine::Engine;
use crate::image::layer_stack::{store_layer, LayerRef};
use crate::util::digest::Digest;
use crate::util::secure_path::{clean_components, fd_path};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Who owns copied files and what their mode is (`--chown`, `--chmod`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
    pub mode: Option<u32>,
}

/// Appends `items` to `b`, named below `prefix`, each header changed by
/// `f` first.
fn append_items<W: Write>(
    b: &mut tar::Builder<W>,
    prefix: &Path,
    items: &[Item],
    owner: Owner,
    mtime: Option<i64>,
    f: &mut dyn FnMut(&mut tar::Header),
) -> std::io::Result<()> {
    for it in items {
        let mut h = tar::Header::new_gnu();
        h.set_uid(owner.uid);
        h.set_gid(owner.gid);
        h.set_mtime(mtime.unwrap_or(it.mtime).max(0) as u64);
        let mode = owner.mode.filter(|_| !it.dest_dir).unwrap_or(it.mode);
        h.set_mode(mode);
        match &it.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                f(&mut h);
                let path = prefix.join(format!("{}/", it.name));
                b.append_data(&mut h, path, std::io::empty())?;
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                f(&mut h);
                b.append_link(&mut h, prefix.join(&it.name), t)?;
            }
            Kind::File => {
                let file = std::fs::File::open(&it.host)?;
                let len = file.metadata()?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(len);
                f(&mut h);
                // No more than the header says, should the file grow.
                b.append_data(
                    &mut h,
                    prefix.join(&it.name),
                    std::io::Read::take(file, len),
                )?;
            }
        }
    }
    Ok(())
}

/// What a layer made without running anything holds.
pub enum Source<'a> {
    /// The entries of a tar file, named relative to the destination.
    Tar(&'a Path),
    /// Context files, read as the layer is written: no tar of them is
    /// made first.
    Items {
        items: &'a [Item],
        owner: Owner,
        mtime: Option<i64>,
    },
}

/// A tar of empty directories (0755, owned by `ids`), named from the root.
pub fn dirs_tar(dirs: &[String], ids: (u32, u32), mtime: i64, out: &Path) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(out)?);
    for d in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_uid(ids.0 as u64);
        h.set_gid(ids.1 as u64);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);
        b.append_data(&mut h, format!("{d}/"), std::io::empty())?;
    }
    b.into_inner()?;
    Ok(())
}

/// A tar with one file of `content` (a heredoc's `COPY <<EOF dest`).
pub fn file_tar(
    name: &str,
    content: &[u8],
    owner: Owner,
    mtime: i64,
    out: impl Write,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    let mut h = tar::Header::new_gnu();
    h.set_uid(owner.uid);
    h.set_gid(owner.gid);
    h.set_mode(owner.mode.unwrap_or(0o644));
    h.set_mtime(mtime.max(0) as u64);
    h.set_size(content.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, content)?;
    b.finish()
}

/// Fresh work dirs (upper, work, merged, and an empty lower for an image
/// with no layers yet) under the store's tmp, removed when dropped.
pub struct Work(PathBuf);

impl Work {
    pub fn new(engine: &Engine) -> Result<Work, BuildError> {
        let tmp = engine.store.temp_path("build-layer")?;
        let work = Work(tmp.path().to_path_buf());
        tmp.keep();
        for n in ["upper", "work", "merged", "empty"] {
            std::fs::create_dir_all(work.0.join(n))
                .map_err(BuildError::io("making the layer's work dirs"))?;
        }
        Ok(work)
    }

    pub fn dir(&self, n: &str) -> PathBuf {
        self.0.join(n)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = crate::util::fsutil::remove_dir_all_robust(&self.0);
    }
}

/// Runs `f` on the root of `lowers` (top first) mounted as an overlay on
/// `work`'s dirs, in a child process with its own mount namespace (the
/// engine's `with_spec_root`), so nothing stays mounted. `f`'s error is
/// its message.
pub fn in_mounted_root(
    engine: &Engine,
    lowers: &[PathBuf],
    work: &Work,
    f: impl FnOnce(&OwnedFd) -> Result<(), String>,
) -> Result<(), BuildError> {
    let lower = if lowers.is_empty() {
        work.dir("empty").display().to_string()
    } else {
        lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut options = vec![
        format!("lowerdir={lower}"),
        format!("upperdir={}", work.dir("upper").display()),
        format!("workdir={}", work.dir("work").display()),
    ];
    let rootless = engine.paths.rootless;
    if rootless {
        options.push("userxattr".into());
    }
    let mount = match engine.rootfs_driver() {
        RootfsDriver::Kernel => {
            serde_json::json!({"destination": "/", "type": "overlay", "source": "overlay", "options": options})
        }
        RootfsDriver::Fuse(p) => {
            serde_json::json!({"destination": "/", "type": "fuse.fuse-overlayfs", "source": p, "options": options})
        }
        RootfsDriver::Copy => return Err(BuildError::Usage(
            "builds need an overlay (the kernel's or fuse-overlayfs); the vfs driver cannot build"
                .into(),
        )),
    };
    let merged = work.dir("merged");
    let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": merged},
        "mounts": [mount],
    }))
    .map_err(|e| BuildError::Usage(format!("internal error: {e}")))?;
    crate::engine::copy::with_spec_root(&spec, &merged, &engine.paths, "the image", |root| {
        f(root).map_err(crate::engine::copy::CopyError::Refused)
    })
    .map_err(|e| BuildError::Usage(e.to_string()))
}

/// An existing directory's metadata, for the parents a layer repeats.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct DirMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// Where `dest` is in the image over `lowers`: its path with the image's
/// symlinks resolved inside the image, and each existing directory on the
/// way with its metadata (None for one the layer adds).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Resolved {
    /// Components of the resolved path, from the root.
    parts: Vec<String>,
    metas: Vec<Option<DirMeta>>,
}

/// Resolves `dest` inside the image (mounted read-only in a child with a
/// mount namespace of its own): symlinks are followed as the container
/// would, never out of its root.
fn resolve_dest(engine: &Engine, lowers: &[PathBuf], dest: &str) -> Result<Resolved, BuildError> {
    let work = Work::new(engine)?;
    let out = work.dir("resolved.json");
    in_mounted_root(engine, lowers, &work, |root| {
        let comps = clean_components(dest.as_bytes());
        let mut parts: Vec<String> = Vec::new();
        let mut metas = Vec::new();
        let mut missing = false;
        for (i, c) in comps.iter().enumerate() {
            let name = String::from_utf8_lossy(c).into_owned();
            if missing {
                parts.push(name);
                metas.push(None);
                continue;
            }
            let key = comps[..=i].join(&b'/');
            match crate::util::secure_path::open_in_root(root.as_raw_fd(), &key, libc::O_PATH) {
                Ok(fd) => {
                    // Where the kernel resolved it, relative to the root.
                    let real = std::fs::read_link(fd_path(&fd)).map_err(|e| e.to_string())?;
                    let st =
                        crate::util::fdtree::fstat(fd.as_raw_fd()).map_err(|e| e.to_string())?;
                    let base = std::fs::read_link(fd_path(root)).map_err(|e| e.to_string())?;
                    let rel = real
                        .strip_prefix(&base)
                        .map_err(|_| format!("{dest} resolves outside the image"))?;
                    parts = rel
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect();
                    metas.truncate(0);
                    // Metadata of every directory on the resolved path.
                    let mut acc = Vec::new();
                    for p in &parts {
                        acc.push(p.as_str());
                        let k = acc.join("/");
                        let m = crate::util::secure_path::open_in_root(
                            root.as_raw_fd(),
                            k.as_bytes(),
                            libc::O_PATH,
                        )
                        .ok()
                        .and_then(|f| crate::util::fdtree::fstat(f.as_raw_fd()).ok())
                        .filter(|st| crate::util::fdtree::kind(st.st_mode) == libc::S_IFDIR)
                        .map(|st| DirMeta {
                            mode: st.st_mode & 0o7777,
                            uid: st.st_uid,
                            gid: st.st_gid,
                            mtime: st.st_mtime,
                        });
                        metas.push(m);
                    }
                    if crate::util::fdtree::kind(st.st_mode) != libc::S_IFDIR {
                        // A file where a directory is wanted: the layer's
                        // directory replaces it.
                        if let Some(m) = metas.last_mut() {
                            *m = None;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing = true;
                    parts.push(name);
                    metas.push(None);
                }
                Err(e) => return Err(format!("resolving {dest} in the image: {e}")),
            }
        }
        let json = serde_json::to_vec(&Resolved { parts, metas }).map_err(|e| e.to_string())?;
        std::fs::write(&out, json).map_err(|e| e.to_string())
    })?;
    let bytes = std::fs::read(&out).map_err(BuildError::io("reading the resolved destination"))?;
    serde_json::from_slice(&bytes).map_err(|e| BuildError::Usage(format!("internal error: {e}")))
}

/// Makes the layer that puts what `source` holds (named relative to a
/// directory) at `dest` in the image over `lowers`, and stores it on the
/// chain `parent`. No file is unpacked to make it: the layer is written
/// directly, with the directories on the way to `dest` repeated with
/// their metadata from the image (as overlay's copy-up would).
pub fn layer_from(
    engine: &Engine,
    lowers: &[PathBuf],
    parent: Option<&Digest>,
    dest: &str,
    source: Source,
    clamp: Option<i64>,
    new_dirs: (u32, u32),
) -> Result<LayerRef, BuildError> {
    let resolved = resolve_dest(engine, lowers, dest)?;
    let tmp = engine.store.temp_path("build-copy-layer")?;
    let now = chrono::Utc::now().timestamp();
    let time = |t: i64| -> u64 {
        match clamp {
            Some(c) if t > c => c.max(0) as u64,
            _ => t.max(0) as u64,
        }
    };
    let write = || -> std::io::Result<()> {
        let mut b = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(tmp.path())?));
        let mut prefix = PathBuf::new();
        for (part, meta) in resolved.parts.iter().zip(&resolved.metas) {
            prefix.push(part);
            // A directory the copy adds belongs to --chown's owner, as
            // with buildah.
            let m = meta.unwrap_or(DirMeta {
                mode: 0o755,
                uid: new_dirs.0,
                gid: new_dirs.1,
                mtime: now,
            });
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(m.mode);
            h.set_uid(m.uid as u64);
            h.set_gid(m.gid as u64);
            h.set_mtime(time(m.mtime));
            h.set_size(0);
            b.append_data(&mut h, &prefix, std::io::empty())?;
        }
        let clamped = &mut |h: &mut tar::Header| h.set_mtime(time(h.mtime().unwrap_or(0) as i64));
        match &source {
            Source::Tar(tar) => copy_entries(tar, &mut b, &prefix, clamped)?,
            Source::Items {
                items,
                owner,
                mtime,
            } => append_items(&mut b, &prefix, items, *owner, *mtime, clamped)?,
        }
        b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    };
    write().map_err(BuildError::io("writing the layer"))?;
    let f = std::fs::File::open(tmp.path()).map_err(BuildError::io("reading the layer"))?;
    Ok(store_layer(
        &engine.store,
        std::io::BufReader::new(f),
        parent,
    )?)
}

/// Appends the entries of the tar at `from` to `b`, named below `prefix`
/// (hard link targets too; symlink targets stay as they are), each header
/// changed by `f` first.
fn copy_entries<W: Write>(
    from: &Path,
    b: &mut tar::Builder<W>,
    prefix: &Path,
    f: &mut dyn FnMut(&mut tar::Header),
) -> std::io::Result<()> {
    let mut input = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(from)?));
    for e in input.entries()? {
        let mut e = e?;
        let mut h = e.header().clone();
        f(&mut h);
        let path = prefix.join(e.path()?.as_ref());
        match e.link_name()?.map(|l| l.into_owned()) {
            Some(target) if h.entry_type() == tar::EntryType::Link => {
                b.append_link(&mut h, &path, prefix.join(target))?
            }
            Some(target) => b.append_link(&mut h, &path, &target)?,
            None => b.append_data(&mut h, &path, &mut e)?,
        }
    }
    Ok(())
}

/// Copies a tar, changing each entry's header with `f`.
pub fn rewrite_tar(
    from: &Path,
    to: &Path,
    f: &mut dyn FnMut(&mut tar::Header),
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(to)?));
    copy_entries(from, &mut b, Path::new(""), f)?;
    b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// Stores an overlay upper dir as a layer (whiteouts and opaque dirs as
/// OCI entries), written whole to a temp file first. With `clamp`
/// (`--timestamp`), no entry is newer than it, so the same build twice
/// makes the same layer.
pub fn upper_as_layer(
    engine: &Engine,
    upper: &Path,
    skip: &std::collections::BTreeSet<PathBuf>,
    parent: Option<&Digest>,
    clamp: Option<i64>,
) -> Result<LayerRef, BuildError> {
    let tmp = engine.store.temp_path("build-diff")?;
    let file = std::fs::File::create(tmp.path()).map_err(BuildError::io("writing the layer"))?;
    crate::image::diff::tar_upper(upper, std::io::BufWriter::new(file), skip)
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .map_err(BuildError::io("writing the layer"))?;
    let clamped = engine.store.temp_path("build-diff")?;
    let path = match clamp {
        Some(t) => {
            let t = t.max(0) as u64;
            rewrite_tar(tmp.path(), clamped.path(), &mut |h| {
                if h.mtime().unwrap_or(0) > t {
                    h.set_mtime(t);
                }
            })
            .map_err(BuildError::io("writing the layer"))?;
            clamped.path()
        }
        None => tmp.path(),
    };
    let f = std::fs::File::open(path).map_err(BuildError::io("reading the layer"))?;
    Ok(store_layer(
        &engine.store,
        std::io::BufReader::new(f),
        parent,
    )?)
}

//! `berth push` (also `image push`): podman's flags.

use super::{progress, CliResult, Failure};
use crate::engine::Engine;
use crate::image::push::{destination, push as push_image, Compression, PushOptions};
use clap::Args;
use std::path::PathBuf;

/// `berth push [flags] IMAGE [DESTINATION]`
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image to push
    pub image: String,
    /// Where to push it: [docker://]REGISTRY/REPOSITORY[:TAG] (default: the image's name)
    pub destination: Option<String>,
    #[command(flatten)]
    pub flags: PushFlags,
}

/// The flags `push` and `manifest push` share.
#[derive(Args, Debug)]
pub struct PushFlags {
    /// Require HTTPS and verified certificates (false allows plain http)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Credentials file (default: podman's auth.json)
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Credentials as USERNAME[:PASSWORD]
    #[arg(long)]
    pub creds: Option<String>,
    /// Manifest format: oci (default) or docker (v2s2)
    #[arg(short, long)]
    pub format: Option<String>,
    /// Write the pushed manifest's digest to this file
    #[arg(long)]
    pub digestfile: Option<PathBuf>,
    /// Layer compression: gzip or zstd (default: keep what the layers have; gzip for uncompressed ones)
    #[arg(long)]
    pub compression_format: Option<String>,
    /// Compression level
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// No progress output
    #[arg(short, long)]
    pub quiet: bool,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::with_code(msg, 125)
}

impl PushFlags {
    /// The push options these flags ask for.
    pub fn options(&self) -> Result<PushOptions, Failure> {
        let creds = match self.creds.as_deref() {
            Some(c) => {
                let (u, p) = c.split_once(':').unwrap_or((c, ""));
                if u.is_empty() {
                    return Err(usage("--creds needs USERNAME[:PASSWORD]"));
                }
                Some(crate::image::auth::Credentials {
                    username: u.into(),
                    password: p.into(),
                })
            }
            None => None,
        };
        let docker = match self.format.as_deref() {
            None | Some("oci") => false,
            Some("docker") | Some("v2s2") => true,
            Some(o) => return Err(usage(format!("invalid --format {o:?}: use oci or docker"))),
        };
        let compression = match self.compression_format.as_deref() {
            None => None,
            Some("gzip") => Some(Compression::Gzip),
            Some("zstd") | Some("zstd:chunked") => Some(Compression::Zstd),
            Some(o) => {
                return Err(usage(format!(
                    "invalid --compression-format {o:?}: use gzip or zstd"
                )))
            }
        };
        Ok(PushOptions {
            insecure: self.tls_verify == Some(false),
            authfile: self.authfile.clone(),
            creds,
            docker,
            compression,
            level: self.compression_level,
            by_digest: false,
        })
    }

    /// Writes `--digestfile` when it was given.
    pub fn write_digest(&self, digest: &crate::util::digest::Digest) -> Result<(), Failure> {
        if let Some(p) = &self.digestfile {
            std::fs::write(p, digest.to_string())
                .map_err(|e| usage(format!("writing --digestfile {}: {e}", p.display())))?;
        }
        Ok(())
    }
}

/// Runs `berth push`.
pub fn push(engine: &Engine, a: PushArgs) -> CliResult {
    let image = engine.store.find(&a.image)?;
    let dest = destination(
        image.names.first().map(String::as_str),
        a.destination.as_deref(),
    )?;
    let opts = a.flags.options()?;
    let progress = progress::for_stderr(a.flags.quiet);
    let pushed = push_image(
        &engine.store,
        &engine.conf,
        &image,
        &dest,
        &opts,
        progress.as_ref(),
    )?;
    a.flags.write_digest(&pushed.digest)?;
    Ok(0)
}

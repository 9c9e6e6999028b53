//! `mount`, `umount`, `image mount`, `image umount` and `unshare`:
//! podman's flags and output.

use super::{CliResult, Failure};
use crate::engine::container::Containers;
use crate::engine::mount;
use crate::engine::Engine;
use clap::Args;

/// `berth mount [CONTAINER...]`
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Mount every container
    #[arg(short, long)]
    pub all: bool,
    /// Do not truncate ids in the listing
    #[arg(long, alias = "notruncate")]
    pub no_trunc: bool,
    /// Print the listing as json
    #[arg(long)]
    pub format: Option<String>,
    /// Containers to mount (none: list the mounted ones)
    pub containers: Vec<String>,
}

/// `berth umount CONTAINER...`
#[derive(Args, Debug)]
pub struct UmountArgs {
    /// Unmount every mounted container
    #[arg(short, long)]
    pub all: bool,
    /// Unmount even when other users of the mount remain (berth keeps one mount each)
    #[arg(short, long)]
    pub force: bool,
    /// Containers to unmount
    pub containers: Vec<String>,
}

/// `berth image mount [IMAGE...]`
#[derive(Args, Debug)]
pub struct ImageMountArgs {
    /// Mount every image
    #[arg(short, long)]
    pub all: bool,
    /// Print the listing as json
    #[arg(long)]
    pub format: Option<String>,
    /// Images to mount (none: list the mounted ones)
    pub images: Vec<String>,
}

/// `berth image umount IMAGE...`
#[derive(Args, Debug)]
pub struct ImageUmountArgs {
    /// Unmount every mounted image
    #[arg(short, long)]
    pub all: bool,
    /// Unmount even when other users of the mount remain (berth keeps one mount each)
    #[arg(short, long)]
    pub force: bool,
    /// Images to unmount
    pub images: Vec<String>,
}

/// `berth unshare [COMMAND...]`
#[derive(Args, Debug)]
pub struct UnshareArgs {
    /// The command to run (default: $SHELL)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn json_listing(rows: &[(String, Vec<String>, String)], names_key: &str) -> String {
    let v: Vec<serde_json::Value> = rows
        .iter()
        .map(
            |(id, names, path)| serde_json::json!({"id": id, names_key: names, "mountpoint": path}),
        )
        .collect();
    serde_json::to_string_pretty(&v).expect("json")
}

fn check_format(f: &Option<String>) -> Result<bool, Failure> {
    match f.as_deref() {
        None => Ok(false),
        Some("json") => Ok(true),
        Some(o) => Err(Failure::with_code(
            format!("invalid --format {o:?}: only json is supported"),
            125,
        )),
    }
}

/// Runs `berth mount`.
pub fn mount(engine: &Engine, a: MountArgs) -> CliResult {
    let json = check_format(&a.format)?;
    let cs = Containers::new(engine.store.root());
    let mut targets = a.containers.clone();
    if a.all {
        targets = cs.list().into_iter().map(|c| c.id).collect();
    }
    if targets.is_empty() {
        let rows: Vec<(String, Vec<String>, String)> = mount::mounted_containers(&cs)
            .into_iter()
            .map(|(c, p)| (c.id, vec![c.name], p.display().to_string()))
            .collect();
        if json {
            println!("{}", json_listing(&rows, "names"));
        } else {
            for (id, _, p) in rows {
                let id = if a.no_trunc { &id[..] } else { &id[..12] };
                println!("{id}  {p}");
            }
        }
        return Ok(0);
    }
    let mut code = 0;
    for t in &targets {
        match mount::mount_container(engine, t) {
            Ok(p) if a.all => println!("{t}  {}", p.display()),
            Ok(p) => println!("{}", p.display()),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 125;
            }
        }
    }
    Ok(code)
}

/// Runs `berth umount`.
pub fn umount(engine: &Engine, a: UmountArgs) -> CliResult {
    let cs = Containers::new(engine.store.root());
    if a.all {
        for (c, _) in mount::mounted_containers(&cs) {
            mount::unmount_container(&cs, &c)?;
            println!("{}", c.id);
        }
        return Ok(0);
    }
    if a.containers.is_empty() {
        return Err(Failure::with_code(
            "name at least one container to unmount, or use --all",
            125,
        ));
    }
    for t in &a.containers {
        let c = cs.find(t)?;
        mount::unmount_container(&cs, &c)?;
        println!("{t}");
    }
    Ok(0)
}

/// Runs `berth image mount`.
pub fn image_mount(engine: &Engine, a: ImageMountArgs) -> CliResult {
    let json = check_format(&a.format)?;
    let images = if a.all {
        engine.store.images()?
    } else {
        a.images
            .iter()
            .map(|n| engine.store.find(n))
            .collect::<Result<_, _>>()?
    };
    if images.is_empty() {
        let rows: Vec<(String, Vec<String>, String)> = mount::mounted_images(engine)
            .into_iter()
            .map(|(i, p)| (i.id.hex().to_string(), i.names, p.display().to_string()))
            .collect();
        if json {
            println!("{}", json_listing(&rows, "repositories"));
        } else {
            for (id, names, p) in rows {
                let label = names.first().cloned().unwrap_or(id);
                println!("{label}  {p}");
            }
        }
        return Ok(0);
    }
    for img in &images {
        let p = mount::mount_image(engine, img)?;
        if a.all {
            let label = img.names.first().cloned().unwrap_or(img.id.hex().into());
            println!("{label}  {}", p.display());
        } else {
            println!("{}", p.display());
        }
    }
    Ok(0)
}

/// Runs `berth image umount`.
pub fn image_umount(engine: &Engine, a: ImageUmountArgs) -> CliResult {
    let images = if a.all {
        mount::mounted_images(engine)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    } else if a.images.is_empty() {
        return Err(Failure::with_code(
            "name at least one image to unmount, or use --all",
            125,
        ));
    } else {
        a.images
            .iter()
            .map(|n| engine.store.find(n))
            .collect::<Result<Vec<_>, _>>()?
    };
    for img in &images {
        mount::unmount_image(&engine.store, img)?;
        println!("{}", img.id.hex());
    }
    Ok(0)
}

/// Runs `berth unshare`: the command in the store's user and mount
/// namespaces (where rootless `berth mount` mounts are), with
/// CONTAINERS_GRAPHROOT and CONTAINERS_RUNROOT naming the store, as
/// podman's does. Rootless only, as podman's.
pub fn unshare(engine: &Engine, a: UnshareArgs) -> CliResult {
    if !engine.paths.rootless {
        return Err(Failure::with_code("please use unshare with rootless", 125));
    }
    crate::namespaces::userns::enter_store_userns(&engine.paths.runroot)?;
    crate::namespaces::userns::enter_store_mountns(&engine.paths.runroot)?;
    let mut argv = a.command.clone();
    if argv.is_empty() {
        argv.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    let err = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("CONTAINERS_GRAPHROOT", engine.store.root())
            .env("CONTAINERS_RUNROOT", &engine.paths.runroot),
    );
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Err(Failure::with_code(format!("{}: {err}", argv[0]), code))
}

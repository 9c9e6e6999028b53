//! The berth binary: parse, set up logging, run, map errors to exit codes.

use clap::Parser;

fn main() {
    // The rootless user namespace's keeper: nothing else to set up.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(berth::namespaces::userns::KEEPER_ARG))
    {
        berth::namespaces::userns::keeper_main();
    }
    // The rootless network namespace's holder.
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref()
        == Some(std::ffi::OsStr::new(
            berth::network::rootless_netns::HOLDER_ARG,
        ))
    {
        let dir = std::path::PathBuf::from(args.next().unwrap_or_default());
        std::process::exit(berth::network::rootless_netns::holder_main(&dir));
    }
    let cli = match berth::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let level = match cli.log_level.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" => cli.log_level.clone(),
        "warning" => "warn".into(),
        "fatal" | "panic" => "error".into(),
        other => {
            eprintln!("Log Level {other:?} is not supported, choose from: trace, debug, info, warn, warning, error, fatal, panic");
            std::process::exit(1);
        }
    };
    if cli.noout {
        // --noout, as podman: stdout goes nowhere.
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            use std::os::fd::AsRawFd;
            // SAFETY: dup2 of a descriptor we own onto stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
    }
    let filter = tracing_subscriber::EnvFilter::new(level);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let code = match berth::cli::run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            f.code
        }
    };
    std::process::exit(code);
}

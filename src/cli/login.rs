//! `login` and `logout`: credentials checked against the registry, then
//! kept where podman keeps them.

use super::{CliResult, Failure};
use crate::image::auth::{self, Credentials};
use crate::image::registries_conf::{Endpoint, RegistriesConf};
use crate::image::registry::Client;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// `berth login`
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port]
    pub registry: String,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Credentials file to write (default: $XDG_RUNTIME_DIR/containers/auth.json)
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Require HTTPS and verified certificates (false allows plain http)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Print the user name stored for the registry and exit
    #[arg(long)]
    pub get_login: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct LoginError(String);

fn registry_host(arg: &str) -> String {
    let s = arg
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    s.split('/').next().unwrap_or(s).to_string()
}

fn prompt(label: &str, hide: bool) -> Result<String, Failure> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let stdin = std::io::stdin();
    let saved = if hide {
        nix::sys::termios::tcgetattr(&stdin).ok()
    } else {
        None
    };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
        let _ = writeln!(err);
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Checks credentials against the registry, then stores them.
pub fn login(a: LoginArgs) -> CliResult {
    let host = registry_host(&a.registry);
    let file = auth::default_auth_file(a.authfile.as_deref());
    if a.get_login {
        return match auth::lookup(&host, "", Some(&file))? {
            Some(c) => {
                println!("{}", c.username);
                Ok(0)
            }
            None => Err(Failure::from(LoginError(format!("not logged into {host}")))),
        };
    }
    let interactive = std::io::stdin().is_terminal();
    let username = match a.username {
        Some(u) => u,
        None if interactive && !a.password_stdin => prompt("Username: ", false)?,
        None => {
            return Err(Failure::from(LoginError(
                "username required: use -u USER".into(),
            )))
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password {
            Some(p) => p,
            None if interactive => prompt("Password: ", true)?,
            None => {
                return Err(Failure::from(LoginError(
                    "password required: use -p PASSWORD or --password-stdin".into(),
                )))
            }
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failure::from(LoginError(
            "username and password must not be empty".into(),
        )));
    }
    let conf = RegistriesConf::load()?;
    let insecure = a.tls_verify == Some(false) || conf.is_insecure(&host);
    let endpoint_host = if host == "docker.io" {
        "registry-1.docker.io".to_string()
    } else {
        host.clone()
    };
    let creds = Credentials { username, password };
    let client = Client::new(
        Endpoint {
            host: endpoint_host,
            repository: String::new(),
            insecure,
        },
        Some(creds.clone()),
    );
    client.ping()?;
    auth::store(&file, &host, &creds)?;
    println!("Login Succeeded!");
    Ok(0)
}

/// `berth logout`
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry host[:port]
    pub registry: Option<String>,
    /// Remove the credentials of every registry
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

/// Removes stored credentials.
pub fn logout(a: LogoutArgs) -> CliResult {
    let file = auth::default_auth_file(a.authfile.as_deref());
    match (a.all, a.registry) {
        (true, _) => {
            auth::remove(&file, None)?;
            println!("Removed login credentials for all registries");
        }
        (false, Some(r)) => {
            let host = registry_host(&r);
            auth::remove(&file, Some(&host))?;
            println!("Removed login credentials for {host}");
        }
        (false, None) => {
            return Err(Failure::from(LoginError(
                "registry must be given (or --all)".into(),
            )))
        }
    }
    Ok(0)
}

//! Real registries for the tests: Debian's `docker-registry` (the CNCF
//! distribution server) on free 127.0.0.1 ports, one plain, one with
//! htpasswd basic auth, one with bearer tokens from [`TokenIssuer`], plus a
//! server that always answers 500. All are stopped when the test binary exits.

use super::TempDir;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const USER: &str = "berthuser";
pub const PASS: &str = "s3cret-pass";

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_children() {
    if let Ok(list) = CHILDREN.lock() {
        for pid in list.iter() {
            // SAFETY: plain kill of a pid we spawned.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
    }
}

extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

fn track(child: &Child) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn.
        unsafe { atexit(kill_children) };
    });
    CHILDREN.lock().unwrap().push(child.id());
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("registry on port {port} did not start");
}

/// How a registry authenticates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    None,
    Basic,
    Token,
}

/// A running registry.
pub struct Registry {
    pub port: u16,
    pub storage: PathBuf,
    pub auth: Auth,
    _dir: TempDir,
    _child: Child,
}

impl Registry {
    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a registry of the given kind.
    pub fn start(auth: Auth) -> Registry {
        let dir = TempDir::new("registry");
        let port = free_port();
        let storage = dir.path().join("data");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        match auth {
            Auth::None => {}
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASS])
                    .output()
                    .expect("htpasswd (apache2-utils) runs");
                assert!(out.status.success());
                let f = dir.path().join("htpasswd");
                std::fs::write(&f, &out.stdout).unwrap();
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    f.display()
                ));
            }
            Auth::Token => {
                let issuer = TokenIssuer::get();
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    issuer.port,
                    issuer.cert_path.display()
                ));
            }
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed (`make test-deps`)");
        track(&child);
        wait_listening(port);
        Registry {
            port,
            storage,
            auth,
            _dir: dir,
            _child: child,
        }
    }

    /// Path of a blob's bytes in the registry's own storage (for tampering).
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Credentials to push with.
    pub fn push_creds(&self) -> Option<(String, String)> {
        match self.auth {
            Auth::None => None,
            _ => Some((USER.into(), PASS.into())),
        }
    }
}

/// The shared registry of each kind, with the fixtures pushed.
pub fn shared(auth: Auth) -> &'static Registry {
    static PLAIN: OnceLock<Registry> = OnceLock::new();
    static BASIC: OnceLock<Registry> = OnceLock::new();
    static TOKEN: OnceLock<Registry> = OnceLock::new();
    let cell = match auth {
        Auth::None => &PLAIN,
        Auth::Basic => &BASIC,
        Auth::Token => &TOKEN,
    };
    cell.get_or_init(|| {
        let r = Registry::start(auth);
        super::fixtures::push_all(&r);
        r
    })
}

/// The plain registry with the Debian fixture pushed (built on first use).
pub fn with_debian() -> Result<&'static Registry, String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = shared(Auth::None);
    DONE.get_or_init(|| super::fixtures::push_debian(r))
        .clone()?;
    Ok(r)
}

/// registries.conf for tests: every 127.0.0.1 registry is plain http.
pub fn registries_conf() -> String {
    "unqualified-search-registries = []\n[[registry]]\nlocation = \"127.0.0.1\"\ninsecure = true\n"
        .to_string()
}

/// Signs registry tokens (RS256 JWTs with the certificate in x5c) the way
/// Docker Hub's auth service does, for `USER`/`PASS` only.
pub struct TokenIssuer {
    pub port: u16,
    pub cert_path: PathBuf,
    key_pem: Vec<u8>,
    cert_der_b64: String,
    _dir: TempDir,
}

impl TokenIssuer {
    pub fn get() -> &'static TokenIssuer {
        static I: OnceLock<TokenIssuer> = OnceLock::new();
        I.get_or_init(|| {
            let dir = TempDir::new("tokens");
            let key = dir.path().join("key.pem");
            let cert = dir.path().join("cert.pem");
            let st = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=berth-test-issuer",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(st.success());
            let pem = std::fs::read_to_string(&cert).unwrap();
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let issuer = TokenIssuer {
                port,
                cert_path: cert,
                key_pem: std::fs::read(&key).unwrap(),
                cert_der_b64: b64,
                _dir: dir,
            };
            let key_pem = issuer.key_pem.clone();
            let x5c = issuer.cert_der_b64.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let key_pem = key_pem.clone();
                    let x5c = x5c.clone();
                    std::thread::spawn(move || serve_token(conn, &key_pem, &x5c));
                }
            });
            issuer
        })
    }
}

fn serve_token(mut conn: TcpStream, key_pem: &[u8], x5c: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = path.split_once('?').map(|x| x.1).unwrap_or("");
    let mut scopes = Vec::new();
    let mut service = String::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = percent_decode(v);
        match k {
            "scope" => scopes.push(v),
            "service" => service = v,
            _ => {}
        }
    }
    let good = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|raw| raw == format!("{USER}:{PASS}").as_bytes())
        .unwrap_or(false);
    let respond = |conn: &mut TcpStream, status: &str, body: &str| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if !good {
        respond(
            &mut conn,
            "401 Unauthorized",
            r#"{"details":"invalid username or password"}"#,
        );
        return;
    }
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": USER, "aud": service,
        "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", rand_u32()),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5c = Some(vec![x5c.to_string()]);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    respond(
        &mut conn,
        "200 OK",
        &serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string(),
    );
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    u32::from_le_bytes(b)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server that answers every request with 500 (a broken registry).
pub fn broken_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = r#"{"errors":[{"code":"UNKNOWN","message":"storage backend exploded"}]}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

//! Pushes fixture images to a test registry over the v2 API (monolithic
//! blob uploads, then manifests), answering auth challenges like a client.

use super::registry::Registry;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Everything needed to push one tag: blobs, then manifests (children of
/// an index before the index; the last one is tagged).
pub struct Pushable {
    pub repo: String,
    pub tag: String,
    pub blobs: Vec<Vec<u8>>,
    pub manifests: Vec<(Vec<u8>, String)>,
}

pub fn digest(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

struct Session<'a> {
    reg: &'a Registry,
    agent: ureq::Agent,
    auth: Option<String>,
}

impl Session<'_> {
    fn send(
        &mut self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> ureq::Response {
        for _ in 0..2 {
            let mut req = self.agent.request(method, url);
            if let Some(ct) = content_type {
                req = req.set("Content-Type", ct);
            }
            if let Some(a) = &self.auth {
                req = req.set("Authorization", a);
            }
            match req.send_bytes(body) {
                Ok(r) => return r,
                Err(ureq::Error::Status(401, r))
                    if self.auth.is_none() || self.reg.auth == super::registry::Auth::Token =>
                {
                    let ch = r.header("www-authenticate").unwrap_or("").to_string();
                    self.auth = Some(self.answer(&ch));
                }
                Err(ureq::Error::Status(404, r)) if method == "HEAD" => return r,
                Err(e) => panic!("{method} {url}: {e}"),
            }
        }
        panic!("{method} {url}: still unauthorized");
    }

    fn answer(&self, challenge: &str) -> String {
        let (user, pass) = self.reg.push_creds().expect("registry needs credentials");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        if challenge.starts_with("Basic") {
            return basic;
        }
        let param = |k: &str| {
            challenge
                .split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        let resp = self
            .agent
            .get(&param("realm"))
            .query("service", &param("service"))
            .query("scope", &param("scope"))
            .set("Authorization", &basic)
            .call()
            .expect("token issuer answers");
        let v: serde_json::Value = resp.into_json().unwrap();
        format!("Bearer {}", v["token"].as_str().unwrap())
    }
}

/// Pushes one image (or index) to `reg`.
pub fn push(reg: &Registry, p: &Pushable) {
    let base = format!("http://{}/v2/{}", reg.host(), p.repo);
    let mut s = Session {
        reg,
        agent: ureq::AgentBuilder::new().redirects(0).build(),
        auth: None,
    };
    for blob in &p.blobs {
        let d = digest(blob);
        let head = s.send("HEAD", &format!("{base}/blobs/{d}"), None, &[]);
        if head.status() == 200 {
            continue;
        }
        let start = s.send("POST", &format!("{base}/blobs/uploads/"), None, &[]);
        let loc = start
            .header("location")
            .expect("upload location")
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("http://{}{loc}", reg.host())
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        s.send(
            "PUT",
            &format!("{loc}{sep}digest={d}"),
            Some("application/octet-stream"),
            blob,
        );
    }
    let n = p.manifests.len();
    for (i, (m, mt)) in p.manifests.iter().enumerate() {
        let reference = if i + 1 == n { p.tag.clone() } else { digest(m) };
        s.send("PUT", &format!("{base}/manifests/{reference}"), Some(mt), m);
    }
}

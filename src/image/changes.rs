//! `--change` instructions (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`,
//! `LABEL`, `EXPOSE`, `VOLUME`, `STOPSIGNAL`) applied to an image config, as
//! `podman import --change` takes them.

use super::manifest::ContainerConfig;
use std::collections::BTreeMap;

/// Why a `--change` was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid --change {0:?}: {1}")]
pub struct ChangeError(pub String, pub &'static str);

/// JSON-array form (`["a","b"]`) or shell form (`a b` -> `/bin/sh -c "a b"`).
fn command_form(arg: &str) -> Vec<String> {
    let t = arg.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), t.into()]
}

/// `k=v k2="v 2"` or the legacy single `k v` form.
fn key_values(arg: &str) -> Vec<(String, String)> {
    let t = arg.trim();
    let first = t.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        return vec![(k.to_string(), v.trim().to_string())];
    }
    let mut out = Vec::new();
    let mut chars = t.chars().peekable();
    while chars.peek().is_some() {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                chars.next();
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut val = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
        }
        while let Some(c) = chars.next() {
            if quoted && c == '"' {
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            if c == '\\' {
                if let Some(n) = chars.next() {
                    val.push(n);
                    continue;
                }
            }
            val.push(c);
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// Applies each change in order.
pub fn apply(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    for ch in changes {
        let (instr, arg) = ch
            .trim()
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .ok_or_else(|| ChangeError(ch.clone(), "expected INSTRUCTION ARGUMENTS"))?;
        let arg = arg.trim();
        match instr.to_uppercase().as_str() {
            "CMD" => cfg.cmd = Some(command_form(arg)),
            "ENTRYPOINT" => cfg.entrypoint = Some(command_form(arg)),
            "ENV" => {
                let env = cfg.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(arg) {
                    env.retain(|e| e.split_once('=').map(|x| x.0) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(key_values(arg));
            }
            "WORKDIR" => cfg.working_dir = Some(arg.to_string()),
            "USER" => cfg.user = Some(arg.to_string()),
            "STOPSIGNAL" => cfg.stop_signal = Some(arg.to_string()),
            "EXPOSE" => {
                let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    ports.insert(p, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
                let list: Vec<String> = if arg.starts_with('[') {
                    serde_json::from_str(arg).map_err(|_| ChangeError(ch.clone(), "VOLUME array is not valid JSON"))?
                } else {
                    arg.split_whitespace().map(String::from).collect()
                };
                for v in list {
                    vols.insert(v, serde_json::json!({}));
                }
            }
            _ => {
                return Err(ChangeError(
                    ch.clone(),
                    "supported instructions are CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR",
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = ContainerConfig::default();
        apply(
            &mut c,
            &[
                r#"CMD ["/bin/sh"]"#.into(),
                "ENTRYPOINT echo hi".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV A 3".into(),
                "WORKDIR /tmp".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL k=v".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "A=3"]);
        assert_eq!(c.working_dir.unwrap(), "/tmp");
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(c.labels.unwrap()["k"], "v");
        assert!(apply(&mut ContainerConfig::default(), &["RUN x".into()]).is_err());
    }
}

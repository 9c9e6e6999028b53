//! Go text/template for `--format`, as podman users write them: pipelines
//! (`{{.ID | upper}}`), string literals (`{{"\n"}}`), `index`, `range`,
//! `if`, `printf`, and podman's own functions (`json`, `lower`, `upper`,
//! `title`, `truncate`, `join`, `split`, `pad`). The engine is the gtmpl
//! crate; this module turns berth's JSON values into its values and prints
//! lists and maps the way Go's fmt does.

use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;
use std::collections::HashMap;

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid --format template {0:?}: {1}")]
pub struct TemplateError(pub String, pub String);

/// Renders `tpl` against `v`. Outside actions, `\t` and `\n` written as
/// two characters become a tab and a newline, as podman does for shell users.
pub fn render(tpl: &str, v: &Json) -> Result<String, TemplateError> {
    let mut t = Template::default();
    for (name, f) in FUNCS {
        t.add_func(name, *f);
    }
    t.parse(printing(tpl))
        .map_err(|e| TemplateError(tpl.to_string(), e.to_string()))?;
    t.render(&Context::from(to_value(v)))
        .map_err(|e| TemplateError(tpl.to_string(), e.to_string()))
}

/// The functions podman adds to Go's built-ins, and `gostr`, which every
/// printing action ends in (see [`printing`]).
const FUNCS: &[(&str, gtmpl::Func)] = &[
    ("gostr", gostr),
    ("json", json),
    ("lower", |a| map_str(a, |s| s.to_lowercase())),
    ("upper", |a| map_str(a, |s| s.to_uppercase())),
    ("title", |a| map_str(a, title_case)),
    ("truncate", truncate),
    ("join", join),
    ("split", split),
    ("pad", pad),
];

/// Ends each action that prints (not `if`, `range`, `end`, a variable
/// declaration or a comment) in `| gostr`, so that lists and maps print as
/// Go prints them (`[a b]`, `map[k:v]`); unescapes `\t` and `\n` in text.
fn printing(tpl: &str) -> String {
    let text = |s: &str| s.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = action_end(after) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (lead, body, trail) = trim_markers(inner);
        let word = body.split_whitespace().next().unwrap_or("");
        let silent = matches!(
            word,
            "if" | "else"
                | "end"
                | "range"
                | "with"
                | "define"
                | "template"
                | "block"
                | "break"
                | "continue"
        ) || body.starts_with("/*")
            || is_declaration(body)
            || body.is_empty();
        out.push_str("{{");
        out.push_str(lead);
        if silent {
            out.push_str(body);
        } else {
            out.push_str(&format!("{body} | gostr"));
        }
        out.push_str(trail);
        out.push_str("}}");
        rest = &after[end + 2..];
    }
    out.push_str(&text(rest));
    out
}

/// Where the `}}` that closes an action is, past any string literal.
fn action_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote = None;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(b'"'), b'\\') => i += 1,
            (Some(_), _) => {}
            (None, c @ (b'"' | b'`')) => quote = Some(c),
            (None, b'}') if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits `{{- body -}}` into its trim markers (with their space) and body.
fn trim_markers(inner: &str) -> (&str, &str, &str) {
    let lead = if inner.starts_with("- ") { "- " } else { "" };
    let trail = if inner.ends_with(" -") { " -" } else { "" };
    let body = &inner[lead.len()..inner.len() - trail.len()];
    (lead, body.trim(), trail)
}

fn is_declaration(body: &str) -> bool {
    body.starts_with('$') && (body.contains(":=") || body.contains(" = "))
}

/// Turns berth's JSON into template values; integers stay integers.
fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::NoValue,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (_, Some(i), _) => Value::from(i),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::NoValue,
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => {
            let mut m: HashMap<_, _> = o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
            // podman's JSON says "Id" where its Go field (what templates
            // name) is ID: both spellings reach the value.
            for (from, to) in [("Id", "ID"), ("ID", "Id")] {
                if let (Some(v), false) = (o.get(from), m.contains_key(to)) {
                    m.insert(to.to_string(), to_value(v));
                }
            }
            Value::Map(m)
        }
    }
}

/// The way back, for `json`.
fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Json::from(u)
            } else if let Some(i) = n.as_i64() {
                Json::from(i)
            } else {
                n.as_f64().map(Json::from).unwrap_or(Json::Null)
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) | Value::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), to_json(v)))
                    .collect(),
            )
        }
        Value::Function(_) => Json::Null,
    }
}

/// Prints a value as Go's fmt prints it.
fn go_print(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => String::new(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Map(m) | Value::Object(m) => {
            let sorted: std::collections::BTreeMap<_, _> = m.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        Value::Function(_) => "<func>".into(),
    }
}

fn arg(args: &[Value], i: usize, name: &str) -> Result<Value, FuncError> {
    args.get(i)
        .cloned()
        .ok_or_else(|| FuncError::Generic(format!("{name}: missing argument {}", i + 1)))
}

fn gostr(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(go_print(&arg(args, 0, "print")?)))
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    let v = to_json(&arg(args, 0, "json")?);
    Ok(Value::from(serde_json::to_string(&v).unwrap_or_default()))
}

fn map_str(args: &[Value], f: fn(&str) -> String) -> Result<Value, FuncError> {
    Ok(Value::from(f(&go_print(&arg(args, 0, "string function")?))))
}

fn title_case(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn number(v: &Value, name: &str) -> Result<usize, FuncError> {
    match v {
        Value::Number(n) => n.as_u64().map(|u| u as usize),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| FuncError::Generic(format!("{name}: expected a number")))
}

/// `truncate STRING N`
fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = go_print(&arg(args, 0, "truncate")?);
    let n = number(&arg(args, 1, "truncate")?, "truncate")?;
    Ok(Value::from(s.chars().take(n).collect::<String>()))
}

/// `pad STRING N`: left-aligned in N columns.
fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = go_print(&arg(args, 0, "pad")?);
    let n = number(&arg(args, 1, "pad")?, "pad")?;
    Ok(Value::from(format!("{s:<n$}")))
}

/// `join LIST SEP`
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = go_print(&arg(args, 1, "join")?);
    match arg(args, 0, "join")? {
        Value::Array(a) => Ok(Value::from(
            a.iter().map(go_print).collect::<Vec<_>>().join(&sep),
        )),
        other => Ok(Value::from(go_print(&other))),
    }
}

/// `split STRING SEP`
fn split(args: &[Value]) -> Result<Value, FuncError> {
    let s = go_print(&arg(args, 0, "split")?);
    let sep = go_print(&arg(args, 1, "split")?);
    Ok(Value::Array(
        s.split(sep.as_str()).map(Value::from).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_go_does() {
        let v = json!({"Id": "abc", "Config": {"Cmd": ["sh", "-c"], "Env": null},
            "Size": 5, "Nets": {"n": {"IPAddress": "10.0.0.2"}}, "Labels": {"b": "2", "a": "1"}});
        let r = |t: &str| render(t, &v).unwrap();
        assert_eq!(r("{{.Id}} {{.Size}}"), "abc 5");
        assert_eq!(r("{{.ID}}"), "abc");
        assert_eq!(r("{{.Config.Cmd}}"), "[sh -c]");
        assert_eq!(r("{{.Labels}}"), "map[a:1 b:2]");
        assert_eq!(r("{{len .Config.Cmd}}"), "2");
        assert_eq!(r("{{json .Config.Cmd}}"), r#"["sh","-c"]"#);
        assert_eq!(r("{{.Id | upper}}"), "ABC");
        assert_eq!(r("{{upper .Id}}"), "ABC");
        assert_eq!(r(r#"{{.Id}}{{"\n"}}"#), "abc\n");
        assert_eq!(r(r#"{{(index .Nets "n").IPAddress}}"#), "10.0.0.2");
        assert_eq!(r(r#"{{join .Config.Cmd ","}}"#), "sh,-c");
        assert_eq!(r("{{truncate .Id 2}}|{{title \"a b\"}}"), "ab|A B");
        assert_eq!(r("{{range .Config.Cmd}}<{{.}}>{{end}}"), "<sh><-c>");
        assert_eq!(r("{{if .Id}}yes{{else}}no{{end}}"), "yes");
        assert_eq!(r("{{- .Id -}} x"), "abcx");
        assert_eq!(r("{{.Missing}}"), "<no value>");
        assert!(render("{{.Id", &v).is_err());
        assert!(render("{{range .X}}", &v).is_err());
        assert!(render("{{nosuchfunc .Id}}", &v).is_err());
    }
}

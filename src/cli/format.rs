//! A small subset of Go templates, enough for the `--format` strings podman
//! users write: `{{.Field.Sub}}`, `{{json .X}}`, `{{upper .X}}`, `{{len .X}}`, `\t`, and a
//! leading `table` that adds a header row.

use serde_json::Value;

/// Prints a JSON value the way Go's text/template prints Go values.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    if path == "." {
        return Some(v);
    }
    let mut cur = v;
    for part in path.trim_start_matches('.').split('.') {
        cur = match cur {
            Value::Object(o) => o.get(part).or_else(|| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(part))
                    .map(|(_, v)| v)
            })?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid --format template {0:?}: {1}")]
pub struct TemplateError(pub String, pub String);

/// Renders `tpl` against `v`.
pub fn render(tpl: &str, v: &Value) -> Result<String, TemplateError> {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError(tpl.clone(), "unclosed {{".into()))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let mut words = action.split_whitespace();
        let first = words.next().unwrap_or("");
        let value = |path: &str| lookup(v, path).cloned().unwrap_or(Value::Null);
        let text = match first {
            "json" => {
                serde_json::to_string(&value(words.next().unwrap_or("."))).unwrap_or_default()
            }
            "upper" => go_string(&value(words.next().unwrap_or("."))).to_uppercase(),
            "lower" => go_string(&value(words.next().unwrap_or("."))).to_lowercase(),
            "len" => match value(words.next().unwrap_or(".")) {
                Value::Array(a) => a.len().to_string(),
                Value::Object(o) => o.len().to_string(),
                Value::String(s) => s.len().to_string(),
                Value::Null => "0".into(),
                other => {
                    return Err(TemplateError(
                        tpl.clone(),
                        format!("len of {other}: not a list, map or string"),
                    ))
                }
            },
            p if p.starts_with('.') => go_string(&value(p)),
            other => {
                return Err(TemplateError(
                    tpl.clone(),
                    format!("unsupported action {other:?}"),
                ))
            }
        };
        out.push_str(&text);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// For `table ...` templates: the header row, made from the field names.
pub fn table_header(tpl: &str) -> String {
    let tpl = tpl.replace("\\t", "\t");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let field = after[..end]
            .split_whitespace()
            .last()
            .unwrap_or("")
            .trim_start_matches('.');
        let header = match field {
            "ID" | "Id" => "IMAGE ID".to_string(),
            "CreatedSince" | "CreatedAt" => "CREATED".to_string(),
            other => other.to_uppercase(),
        };
        out.push_str(&header);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders `--format` templates over rows of values; "table ..." adds a
/// header row from the field names, and tabs align as columns.
pub fn template_table(t: &str, values: &[Value]) -> Result<String, TemplateError> {
    let (tpl, header) = match t.strip_prefix("table") {
        Some(rest) => (rest.trim_start(), true),
        None => (t, false),
    };
    let mut table = Vec::new();
    if header {
        table.push(table_header(tpl).split('\t').map(String::from).collect());
    }
    for v in values {
        table.push(render(tpl, v)?.split('\t').map(String::from).collect());
    }
    Ok(columns(&table))
}

/// Prints `inspect` output: a JSON array, or each object through a
/// `--format` template.
pub fn print_inspect(values: &[Value], format: Option<&str>) -> Result<(), TemplateError> {
    match format {
        Some(t) if t != "json" => {
            for v in values {
                println!("{}", render(t, v)?);
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(values).expect("json")),
    }
    Ok(())
}

/// Aligns tab-separated rows into columns (like Go's tabwriter, padding 3).
pub fn columns(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_go_style() {
        let v = json!({"Id": "abc", "Config": {"Cmd": ["sh", "-c"], "Env": null}, "Size": 5});
        assert_eq!(render("{{.Id}} {{.Size}}", &v).unwrap(), "abc 5");
        assert_eq!(render("{{.Config.Cmd}}", &v).unwrap(), "[sh -c]");
        assert_eq!(
            render("{{len .Config.Cmd}} {{len .Config.Env}}", &v).unwrap(),
            "2 0"
        );
        assert_eq!(
            render("{{json .Config.Cmd}}", &v).unwrap(),
            r#"["sh","-c"]"#
        );
        assert_eq!(render("{{ .id }}", &v).unwrap(), "abc");
        assert_eq!(render("{{.Missing}}", &v).unwrap(), "<no value>");
        assert!(render("{{.Id", &v).is_err());
        assert!(render("{{range .X}}", &v).is_err());
        assert_eq!(
            table_header("{{.ID}}\\t{{.Repository}}"),
            "IMAGE ID\tREPOSITORY"
        );
    }
}

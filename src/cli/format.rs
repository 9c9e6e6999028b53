//! `--format` output: Go templates (see [`super::template`]) over rows, a
//! leading `table` that adds a header row, and tab-aligned columns.

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

pub use super::template::{render, TemplateError};

/// For `table ...` templates: the header row, made from the field names.
pub fn table_header(tpl: &str) -> String {
    let tpl = tpl.replace("\\t", "\t");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        // The first field the action names: `{{.ID | upper}}` is ID.
        let field = after[..end]
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .find(|w| w.starts_with('.') && w.len() > 1)
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
/// header row from the field names (unless `noheading`), and tabs align
/// as columns. Any other template prints as it renders, tabs and all, as
/// podman's does (scripts split its output on them).
pub fn template_table(t: &str, values: &[Value], noheading: bool) -> Result<String, TemplateError> {
    let (tpl, header) = match t.strip_prefix("table") {
        Some(rest) => (rest.trim_start(), true),
        None => (t, false),
    };
    if !header {
        let mut out = String::new();
        for v in values {
            out.push_str(&render(tpl, v)?);
            out.push('\n');
        }
        return Ok(out);
    }
    let mut table = Vec::new();
    if header && !noheading {
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

    #[test]
    fn headers_name_the_first_field() {
        assert_eq!(
            table_header("{{.ID}}\\t{{.Repository | upper}}"),
            "IMAGE ID\tREPOSITORY"
        );
    }
}

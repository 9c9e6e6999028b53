//! Containerfile/Dockerfile text -> instructions, as BuildKit reads it:
//! parser directives (`# escape=`, `# syntax=`), comments, line
//! continuations with the escape character, JSON (exec) and shell forms,
//! `--flag=value` options, and heredocs (`RUN <<EOF`, `COPY <<EOF file`).
//! Nothing is expanded here; stages and variables are the builder's.

/// A syntax error, with the line it is on.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

/// How an instruction's arguments were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`
    Exec(Vec<String>),
    /// Everything after the keyword and its flags, as written.
    Shell(String),
}

/// A here-document attached to an instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    pub content: String,
    /// The delimiter was not quoted: variables in it are expanded.
    pub expand: bool,
}

/// One instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Where it starts (1-based).
    pub line: usize,
    /// Upper case: `RUN`, `COPY`, ...
    pub keyword: String,
    /// `--name=value` options before the arguments (`--from=build`);
    /// a bare `--link` has the value "true".
    pub flags: Vec<(String, String)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The instruction as written, on one line (for history and output).
    pub text: String,
}

impl Instruction {
    /// The value of `--name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable flag (`--mount`).
    pub fn flag_all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A parsed file: instructions in order, and the escape character.
#[derive(Clone, Debug)]
pub struct Containerfile {
    pub instructions: Vec<Instruction>,
    pub escape: char,
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Instructions that take heredocs.
const HEREDOC_KEYWORDS: [&str; 3] = ["RUN", "COPY", "ADD"];

/// Parses `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Containerfile, SyntaxError> {
    let err = |line: usize, problem: String| SyntaxError {
        file: file.to_string(),
        line,
        problem,
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: only at the very top, before any other line.
    while i < lines.len() {
        let Some(d) = directive(lines[i]) else { break };
        if d.0 == "escape" {
            escape = match d.1.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => return Err(err(i + 1, format!("invalid escape {other:?}: use \\ or `"))),
            };
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        // Join continuation lines; comment and empty lines inside are skipped.
        let mut logical = String::new();
        let mut cur = first.to_string();
        loop {
            let trimmed = cur.trim_end();
            if trimmed.ends_with(escape) {
                logical.push_str(&trimmed[..trimmed.len() - escape.len_utf8()]);
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let t = l.trim_start();
                    if t.starts_with('#') || t.is_empty() {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            } else {
                logical.push_str(&cur);
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (word, rest) = split_word(&logical);
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(err(start + 1, format!("unknown instruction {word:?}")));
        }
        let (flags, rest) = take_flags(rest);
        // Heredocs: each `<<WORD` in the arguments takes the lines that follow.
        let mut heredocs = Vec::new();
        if HEREDOC_KEYWORDS.contains(&keyword.as_str()) {
            for (name, expand, strip_tabs) in heredoc_names(rest) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if cmp == name {
                        closed = true;
                        break;
                    }
                    content.push_str(cmp);
                    content.push('\n');
                }
                if !closed {
                    return Err(err(
                        start + 1,
                        format!(
                            "the here-document {name} is not closed: end it with a line {name}"
                        ),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        let args = match exec_form(rest) {
            Some(v) => Args::Exec(v),
            None => Args::Shell(rest.to_string()),
        };
        if rest.is_empty() && !matches!(keyword.as_str(), "RUN" | "CMD" | "ENTRYPOINT") {
            return Err(err(start + 1, format!("{keyword} needs arguments")));
        }
        out.push(Instruction {
            line: start + 1,
            keyword,
            flags,
            args,
            heredocs,
            text: logical.clone(),
        });
    }
    if !out.iter().any(|x| x.keyword == "FROM") {
        return Err(err(
            lines.len().max(1),
            "no FROM instruction: a Containerfile starts its first stage with FROM".into(),
        ));
    }
    Ok(Containerfile {
        instructions: out,
        escape,
    })
}

/// `# name=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim().strip_prefix('#')?.trim();
    let (k, v) = body.split_once('=')?;
    let k = k.trim().to_ascii_lowercase();
    if !matches!(k.as_str(), "escape" | "syntax" | "check") {
        return None;
    }
    Some((k, v.trim().to_string()))
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Leading `--name=value` / `--name` options.
fn take_flags(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    while let Some(body) = s.strip_prefix("--") {
        let (word, rest) = split_word(body);
        match word.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            None => flags.push((word.to_string(), "true".to_string())),
        }
        s = rest;
    }
    (flags, s)
}

/// A JSON array of strings, or None (then it is the shell form).
fn exec_form(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// The heredoc delimiters of an instruction's arguments: (word, expand,
/// strip leading tabs).
fn heredoc_names(s: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        let Some(mut rest) = tok.strip_prefix("<<") else {
            continue;
        };
        let strip = rest.starts_with('-');
        if strip {
            rest = &rest[1..];
        }
        let quoted = rest.starts_with('"') || rest.starts_with('\'');
        let word: String = rest
            .trim_matches(|c| c == '"' || c == '\'')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            out.push((word, !quoted, strip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_flags_and_forms() {
        let text = "# syntax=docker/dockerfile:1\nFROM alpine AS build\n# a comment\nRUN apk add \\\n  # inside\n  curl\nCOPY --from=build --chown=1:2 /a /b\nCMD [\"sh\", \"-c\", \"x\"]\ncopy --link a b\n";
        let f = parse(text, "Containerfile").unwrap();
        let k: Vec<&str> = f.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(k, ["FROM", "RUN", "COPY", "CMD", "COPY"]);
        assert_eq!(f.instructions[1].args, Args::Shell("apk add   curl".into()));
        assert_eq!(f.instructions[1].line, 4);
        assert_eq!(f.instructions[2].flag("from"), Some("build"));
        assert_eq!(f.instructions[2].flag("chown"), Some("1:2"));
        assert_eq!(f.instructions[2].args, Args::Shell("/a /b".into()));
        assert_eq!(
            f.instructions[3].args,
            Args::Exec(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(f.instructions[4].flag("link"), Some("true"));
    }

    #[test]
    fn the_escape_directive_and_heredocs() {
        let text = "# escape=`\nFROM x\nRUN echo a `\n  b\nRUN <<EOF\necho one\necho $HOME\nEOF\nCOPY <<'END' /f\nliteral $X\nEND\nRUN <<-EOT sh\n\techo tab\n\tEOT\n";
        let f = parse(text, "Dockerfile").unwrap();
        assert_eq!(f.escape, '`');
        assert_eq!(f.instructions[1].args, Args::Shell("echo a   b".into()));
        let h = &f.instructions[2].heredocs[0];
        assert_eq!((h.name.as_str(), h.expand), ("EOF", true));
        assert_eq!(h.content, "echo one\necho $HOME\n");
        let h = &f.instructions[3].heredocs[0];
        assert_eq!((h.content.as_str(), h.expand), ("literal $X\n", false));
        assert_eq!(f.instructions[4].heredocs[0].content, "echo tab\n");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse("FROM x\nRUNN echo\n", "Containerfile").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Containerfile:2: unknown instruction \"RUNN\""
        );
        let e = parse("FROM x\nRUN <<EOF\necho\n", "C").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("C:2: the here-document EOF is not closed"));
        let e = parse("RUN x\n", "C").unwrap_err();
        assert!(e.to_string().contains("no FROM"), "{e}");
        let e = parse("FROM x\nCOPY\n", "C").unwrap_err();
        assert_eq!(e.line, 2);
    }
}

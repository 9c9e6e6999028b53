//! `.containerignore` / `.dockerignore`: which context files a build never
//! sees. One pattern per line, Go `filepath.Match` syntax plus `**`, with
//! `!` exceptions; the last pattern that matches a path (or one of its
//! parent directories) decides.

use regex::Regex;

/// Why an ignore file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}: bad pattern {pattern:?}: {problem}")]
pub struct IgnoreError {
    pub file: String,
    pub pattern: String,
    pub problem: String,
}

struct Rule {
    re: Regex,
    exception: bool,
    /// The pattern as written (for messages).
    text: String,
}

/// The patterns of an ignore file.
#[derive(Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// Reads the patterns of `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Ignore, IgnoreError> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (exception, pat) = match t.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, t),
            };
            let cleaned = clean(pat);
            if cleaned.is_empty() {
                continue;
            }
            let re = Regex::new(&to_regex(&cleaned)).map_err(|e| IgnoreError {
                file: file.into(),
                pattern: t.into(),
                problem: e.to_string(),
            })?;
            rules.push(Rule {
                re,
                exception,
                text: t.to_string(),
            });
        }
        Ok(Ignore { rules })
    }

    /// The pattern that excludes `path` (relative to the context, with
    /// `/` separators), if it is excluded.
    pub fn excluded_by(&self, path: &str) -> Option<&str> {
        let path = clean(path);
        let mut prefixes = Vec::new();
        let mut acc = String::new();
        for part in path.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            prefixes.push(acc.clone());
        }
        let mut verdict = None;
        for r in &self.rules {
            if prefixes.iter().any(|p| r.re.is_match(p)) {
                verdict = if r.exception {
                    None
                } else {
                    Some(r.text.as_str())
                };
            }
        }
        verdict
    }

    /// True when some exception could bring back files under `dir`
    /// (so an excluded directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }
}

/// `./a//b/` -> `a/b`; a leading `/` is the context's root.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// A `filepath.Match` pattern (with `**`) as an anchored regex.
fn to_regex(p: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                if chars.get(i) == Some(&'/') {
                    // `**/` matches zero or more directories.
                    re.push_str("(.*/)?");
                    i += 1;
                } else {
                    re.push_str(".*");
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']');
                match end {
                    Some(e) => {
                        let class: String = chars[i + 1..i + e].iter().collect();
                        let class = class
                            .strip_prefix('^')
                            .map_or(class.clone(), |c| format!("^{c}"));
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\"));
                        re.push(']');
                        i += e + 1;
                        continue;
                    }
                    None => re.push_str("\\["),
                }
            }
            '\\' if i + 1 < chars.len() => {
                re.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 2;
                continue;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_exceptions_and_parents() {
        let ig = Ignore::parse(
            "# comment\n*.log\n!keep.log\nbuild/\n**/*.tmp\ndocs/*.md\n!docs/README.md\n",
            ".containerignore",
        )
        .unwrap();
        assert_eq!(ig.excluded_by("a.log"), Some("*.log"));
        assert_eq!(ig.excluded_by("keep.log"), None);
        assert_eq!(ig.excluded_by("sub/a.log"), None, "* does not cross /");
        assert_eq!(ig.excluded_by("build/x/y.c"), Some("build/"));
        assert_eq!(ig.excluded_by("a/b/c.tmp"), Some("**/*.tmp"));
        assert_eq!(ig.excluded_by("c.tmp"), Some("**/*.tmp"));
        assert_eq!(ig.excluded_by("docs/a.md"), Some("docs/*.md"));
        assert_eq!(ig.excluded_by("docs/README.md"), None);
        assert_eq!(ig.excluded_by("./src/main.rs"), None);
        assert!(ig.has_exceptions());
    }
}

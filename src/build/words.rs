//! Variable substitution and word splitting for the instructions the
//! builder itself reads (ENV, ARG, LABEL, COPY, WORKDIR, USER, ...), with
//! docker's rules: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:+alt}`, `${VAR+alt}`; single quotes keep text literal, double
//! quotes group words but still expand, and the escape character quotes
//! the next character.

/// Looks a variable up.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a word could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WordError {
    #[error("unterminated quote in {0:?}")]
    Quote(String),
    #[error("bad substitution in {0:?}")]
    Substitution(String),
}

/// Splits `s` into words, expanding variables and removing quotes.
pub fn words(s: &str, vars: Lookup<'_>, escape: char) -> Result<Vec<String>, WordError> {
    lex(s, vars, escape, true)
}

/// Expands variables in `s` and removes quotes, keeping it one word
/// (with its spaces): WORKDIR, USER, the value part of ENV.
pub fn expand(s: &str, vars: Lookup<'_>, escape: char) -> Result<String, WordError> {
    Ok(lex(s, vars, escape, false)?.join(""))
}

fn lex(s: &str, vars: Lookup<'_>, escape: char, split: bool) -> Result<Vec<String>, WordError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                cur.push(n);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or_else(|| WordError::Quote(s.to_string()))?;
                cur.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            }
            '"' => {
                i += 1;
                loop {
                    let Some(&x) = chars.get(i) else {
                        return Err(WordError::Quote(s.to_string()));
                    };
                    if x == '"' {
                        i += 1;
                        break;
                    }
                    if x == escape && matches!(chars.get(i + 1), Some('"' | '$') | Some('\\')) {
                        cur.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if x == '$' {
                        let (v, n) = variable(&chars, i, vars, escape, s)?;
                        cur.push_str(&v);
                        i = n;
                        continue;
                    }
                    cur.push(x);
                    i += 1;
                }
            }
            '$' => {
                let (v, n) = variable(&chars, i, vars, escape, s)?;
                cur.push_str(&v);
                i = n;
            }
            _ => {
                cur.push(c);
                i += 1;
            }
        }
    }
    if in_word || !split {
        out.push(cur);
    }
    Ok(out)
}

/// Expands the variable at `chars[at]` (a `$`); returns its value and the
/// index after it.
fn variable(
    chars: &[char],
    at: usize,
    vars: Lookup<'_>,
    escape: char,
    whole: &str,
) -> Result<(String, usize), WordError> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(at + 1) {
        Some('{') => {
            let close = chars[at + 2..]
                .iter()
                .position(|&c| c == '}')
                .ok_or_else(|| WordError::Substitution(whole.to_string()))?;
            let inner: String = chars[at + 2..at + 2 + close].iter().collect();
            let next = at + 3 + close;
            let name_len = inner.chars().take_while(|c| name_char(*c)).count();
            let (name, op) = inner.split_at(name_len);
            if name.is_empty() {
                return Err(WordError::Substitution(whole.to_string()));
            }
            let val = vars(name);
            let word = |w: &str| expand(w, vars, escape);
            let v = match op {
                "" => val.unwrap_or_default(),
                o if o.starts_with(":-") => match val.filter(|v| !v.is_empty()) {
                    Some(v) => v,
                    None => word(&o[2..])?,
                },
                o if o.starts_with('-') => match val {
                    Some(v) => v,
                    None => word(&o[1..])?,
                },
                o if o.starts_with(":+") => match val.filter(|v| !v.is_empty()) {
                    Some(_) => word(&o[2..])?,
                    None => String::new(),
                },
                o if o.starts_with('+') => match val {
                    Some(_) => word(&o[1..])?,
                    None => String::new(),
                },
                _ => return Err(WordError::Substitution(whole.to_string())),
            };
            Ok((v, next))
        }
        Some(&c) if name_char(c) => {
            let len = chars[at + 1..]
                .iter()
                .take_while(|c| name_char(**c))
                .count();
            let name: String = chars[at + 1..at + 1 + len].iter().collect();
            Ok((vars(&name).unwrap_or_default(), at + 1 + len))
        }
        _ => Ok(("$".to_string(), at + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutions_as_docker_has_them() {
        let w = |s: &str| words(s, &env, '\\').unwrap();
        assert_eq!(w("$A ${A}b"), ["one", "oneb"]);
        assert_eq!(
            w("${B:-def} ${E:-def} ${E-def} ${B-def}"),
            ["def", "def", "", "def"]
        );
        assert_eq!(w("${A:+alt} ${B:+alt}x"), ["alt", "x"]);
        assert_eq!(w("'$A' \"$A two\" \\$A"), ["$A", "one two", "$A"]);
        assert_eq!(w("$SP"), ["x y"], "a value is not split again");
        assert_eq!(w("a\\ b"), ["a b"]);
        assert_eq!(expand("/srv/$A  dir", &env, '\\').unwrap(), "/srv/one  dir");
        assert!(words("\"open", &env, '\\').is_err());
        assert!(words("${", &env, '\\').is_err());
        assert_eq!(w("cost $ 5"), ["cost", "$", "5"]);
    }
}

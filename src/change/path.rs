//! Field paths as the change record writes them, and the patterns a policy
//! names in `redact`.
//!
//! `spec.template.spec.containers[name=app].image`: keys joined by dots, a key
//! that is not a plain word as `["app.conf"]`, a list index as `[3]`, a list
//! item by its merge key as `[name=app]` (the value JSON-quoted unless it is a
//! plain word). Patterns add `*` for any key and `[*]` for any list item.

use std::fmt::{self, Write as _};

use serde_json::Value;

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    Key(String),
    Index(usize),
    /// A list item found by its merge key: the key's field and the item's value of it.
    Item(String, Value),
}

/// One step of a redaction pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum PatternSegment {
    Key(String),
    AnyKey,
    AnyItem,
}

/// A path that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read path {path:?} at character {at}: {why}")]
pub struct PathError {
    pub path: String,
    pub at: usize,
    pub why: &'static str,
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn json_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// `spec.containers[name=app].image`.
pub fn display(path: &[Segment]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Segment::Key(k) if is_word(k) && i == 0 => out.push_str(k),
            Segment::Key(k) if is_word(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Key(k) => {
                let _ = write!(out, "[{}]", json_quote(k));
            }
            Segment::Index(n) => {
                let _ = write!(out, "[{n}]");
            }
            Segment::Item(field, value) => {
                let _ = write!(out, "[{field}={}]", item_value(value));
            }
        }
    }
    out
}

fn item_value(value: &Value) -> String {
    match value {
        Value::String(s) if is_word(s) && serde_json::from_str::<Value>(s).is_err() => s.clone(),
        other => other.to_string(),
    }
}

/// The segments of a path written by [`display`].
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    Parser::new(path).segments()
}

/// The segments of a redaction pattern.
pub fn parse_pattern(pattern: &str) -> Result<Vec<PatternSegment>, PathError> {
    Parser::new(pattern).pattern()
}

/// Whether `pattern` names `path` or one of its ancestors.
pub fn covers(pattern: &[PatternSegment], path: &[Segment]) -> bool {
    pattern.len() <= path.len()
        && pattern.iter().zip(path).all(|(p, s)| match (p, s) {
            (PatternSegment::Key(a), Segment::Key(b)) => a == b,
            (PatternSegment::AnyKey, Segment::Key(_)) => true,
            (PatternSegment::AnyItem, Segment::Index(_) | Segment::Item(..)) => true,
            _ => false,
        })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn err<T>(&self, why: &'static str) -> Result<T, PathError> {
        Err(PathError {
            path: self.text.to_owned(),
            at: self.pos,
            why,
        })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A JSON string at the current position.
    fn quoted(&mut self) -> Result<String, PathError> {
        let mut stream = serde_json::Deserializer::from_str(self.rest()).into_iter::<String>();
        match stream.next() {
            Some(Ok(s)) => {
                self.pos += stream.byte_offset();
                Ok(s)
            }
            _ => self.err("expected a quoted key"),
        }
    }

    fn steps(&mut self) -> Result<Vec<RawStep>, PathError> {
        let mut steps = Vec::new();
        if self.text.is_empty() {
            return self.err("empty path");
        }
        while !self.rest().is_empty() {
            let first = steps.is_empty();
            if self.rest().starts_with('[') {
                self.pos += 1;
                steps.push(self.bracket()?);
                if !self.rest().starts_with(']') {
                    return self.err("expected ]");
                }
                self.pos += 1;
                continue;
            }
            if !first {
                if !self.rest().starts_with('.') {
                    return self.err("expected . or [");
                }
                self.pos += 1;
            }
            let word = self.word();
            if word.is_empty() {
                return self.err("expected a key");
            }
            steps.push(RawStep::Key(word.to_owned()));
        }
        Ok(steps)
    }

    fn bracket(&mut self) -> Result<RawStep, PathError> {
        if self.rest().starts_with('"') {
            return Ok(RawStep::Quoted(self.quoted()?));
        }
        let word = self.word();
        if self.rest().starts_with('=') {
            self.pos += 1;
            let value = if self.rest().starts_with('"') {
                Value::String(self.quoted()?)
            } else {
                let raw = self.word();
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
            };
            if word.is_empty() {
                return self.err("expected a merge key before =");
            }
            return Ok(RawStep::Item(word.to_owned(), value));
        }
        match word {
            "*" => Ok(RawStep::AnyItem),
            w => match w.parse() {
                Ok(n) => Ok(RawStep::Index(n)),
                Err(_) => self.err("expected an index, a quoted key or key=value"),
            },
        }
    }

    fn segments(mut self) -> Result<Vec<Segment>, PathError> {
        self.steps()?
            .into_iter()
            .map(|s| match s {
                RawStep::Key(k) if k.contains('*') => self.err("* belongs in patterns only"),
                RawStep::Key(k) | RawStep::Quoted(k) => Ok(Segment::Key(k)),
                RawStep::Index(n) => Ok(Segment::Index(n)),
                RawStep::Item(f, v) => Ok(Segment::Item(f, v)),
                RawStep::AnyItem => self.err("[*] belongs in patterns only"),
            })
            .collect()
    }

    fn pattern(mut self) -> Result<Vec<PatternSegment>, PathError> {
        self.steps()?
            .into_iter()
            .map(|s| match s {
                RawStep::Key(k) if k == "*" => Ok(PatternSegment::AnyKey),
                RawStep::Key(k) if k.contains('*') => {
                    self.err("* stands for a whole key, not part of one")
                }
                RawStep::Key(k) | RawStep::Quoted(k) => Ok(PatternSegment::Key(k)),
                RawStep::AnyItem => Ok(PatternSegment::AnyItem),
                RawStep::Index(_) | RawStep::Item(..) => {
                    self.err("patterns name list items with [*]")
                }
            })
            .collect()
    }
}

enum RawStep {
    Key(String),
    Quoted(String),
    Index(usize),
    Item(String, Value),
    AnyItem,
}

impl fmt::Display for PatternSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(k) => f.write_str(k),
            Self::AnyKey => f.write_str("*"),
            Self::AnyItem => f.write_str("[*]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn paths_read_like_kubectl_field_paths() {
        let path = vec![
            key("spec"),
            key("containers"),
            Segment::Item("name".into(), json!("app")),
            key("image"),
        ];
        assert_eq!(display(&path), "spec.containers[name=app].image");
        assert_eq!(parse("spec.containers[name=app].image").unwrap(), path);
    }

    #[test]
    fn odd_keys_and_values_are_quoted_and_round_trip() {
        let path = vec![
            key("metadata"),
            key("annotations"),
            key("example.com/team"),
            Segment::Index(2),
        ];
        let text = display(&path);
        assert_eq!(text, r#"metadata.annotations["example.com/team"][2]"#);
        assert_eq!(parse(&text).unwrap(), path);
        for value in [json!(80), json!("80"), json!("a]b"), json!("true")] {
            let path = vec![key("ports"), Segment::Item("containerPort".into(), value)];
            assert_eq!(parse(&display(&path)).unwrap(), path, "{}", display(&path));
        }
    }

    #[test]
    fn patterns_cover_paths_and_their_descendants() {
        let env = parse_pattern("spec.containers[*].env[*].value").unwrap();
        let path = parse("spec.containers[name=app].env[name=TOKEN].value").unwrap();
        assert!(covers(&env, &path));
        assert!(!covers(
            &env,
            &parse("spec.containers[name=app].env").unwrap()
        ));
        let data = parse_pattern("data.*").unwrap();
        assert!(covers(&data, &parse(r#"data["tls.key"]"#).unwrap()));
        assert!(!covers(&data, &parse("metadata.name").unwrap()));
    }

    #[test]
    fn bad_paths_and_patterns_say_where() {
        assert!(parse("").is_err());
        assert!(parse("spec..x").is_err());
        assert!(parse("spec[").is_err());
        assert!(parse("spec.*").is_err());
        assert!(parse_pattern("spec.containers[0]").is_err());
        let e = parse_pattern("spec.con*").unwrap_err();
        assert!(e.to_string().contains("whole key"), "{e}");
    }
}

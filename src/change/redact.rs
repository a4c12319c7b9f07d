//! Redaction: Secret data and the paths a policy names never reach the record.
//! A redacted value is replaced by a short keyed hash, so an approver sees
//! that it changed (the hashes differ) and nothing of what it is. The key is
//! drawn at random by each approval-gate process, so a short hash of a weak
//! value cannot be looked up in a dictionary.

use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::path::{PatternSegment, Segment, covers, parse_pattern};

/// Always redacted in a core Secret.
const SECRET_PATTERNS: [&str; 2] = ["data.*", "stringData.*"];

/// How a redacted value reads: `<redacted hmac:1a2b3c4d5e6f>`.
pub const REDACTED_PREFIX: &str = "<redacted hmac:";

/// The paths to redact and the key of the hashes.
#[derive(Clone, Debug)]
pub struct Redactor<'k> {
    key: &'k [u8],
    patterns: Vec<Vec<PatternSegment>>,
}

impl<'k> Redactor<'k> {
    pub fn new(key: &'k [u8], patterns: Vec<Vec<PatternSegment>>) -> Self {
        Self { key, patterns }
    }

    /// The redactor for a target: Secret data for core Secrets, plus the
    /// policy's `redact` patterns (patterns that do not parse are skipped;
    /// the policy's status reports them).
    pub fn for_target(key: &'k [u8], group: &str, resource: &str, extra: &[String]) -> Self {
        let secret = group.is_empty() && resource == "secrets";
        let builtin = SECRET_PATTERNS
            .iter()
            .filter(|_| secret)
            .map(|p| (*p).to_owned());
        let patterns = builtin
            .chain(extra.iter().cloned())
            .filter_map(|p| parse_pattern(&p).ok())
            .collect();
        Self::new(key, patterns)
    }

    /// Whether the value at `path` is redacted as a whole.
    pub fn covers(&self, path: &[Segment]) -> bool {
        self.patterns.iter().any(|p| covers(p, path))
    }

    /// `value` (found at `path`) with every covered part replaced by its
    /// hash; `true` when anything was replaced.
    pub fn apply(&self, path: &[Segment], value: Option<&Value>) -> (Option<Value>, bool) {
        let Some(value) = value else {
            return (None, false);
        };
        let mut replaced = false;
        let mut path = path.to_vec();
        let out = self.walk(&mut path, value, &mut replaced);
        (Some(out), replaced)
    }

    fn walk(&self, path: &mut Vec<Segment>, value: &Value, replaced: &mut bool) -> Value {
        if self.covers(path) {
            *replaced = true;
            return Value::String(self.hash(value));
        }
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    path.push(Segment::Key(k.clone()));
                    out.insert(k.clone(), self.walk(path, v, replaced));
                    path.pop();
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        // Patterns name items with [*], which covers an index too.
                        path.push(Segment::Index(i));
                        let out = self.walk(path, v, replaced);
                        path.pop();
                        out
                    })
                    .collect(),
            ),
            scalar => scalar.clone(),
        }
    }

    /// `<redacted hmac:…>`: the first 48 bits of HMAC-SHA256 over the value's JSON.
    pub fn hash(&self, value: &Value) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key) else {
            return format!("{REDACTED_PREFIX}unavailable>");
        };
        mac.update(value.to_string().as_bytes());
        let tag = mac.finalize().into_bytes();
        let hex: String = tag.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("{REDACTED_PREFIX}{hex}>")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::change::path::parse;

    #[test]
    fn secret_data_is_hashed_key_by_key() {
        let r = Redactor::for_target(b"k", "", "secrets", &[]);
        let (out, replaced) = r.apply(
            &[],
            Some(&json!({"data": {"password": "aHVudGVyMg=="}, "type": "Opaque"})),
        );
        let out = out.unwrap();
        assert!(replaced);
        let shown = out["data"]["password"].as_str().unwrap();
        assert!(shown.starts_with(REDACTED_PREFIX), "{shown}");
        assert!(!out.to_string().contains("aHVudGVyMg"));
        assert_eq!(out["type"], "Opaque");
    }

    #[test]
    fn configmaps_are_not_redacted_but_policy_paths_are() {
        let plain = Redactor::for_target(b"k", "", "configmaps", &[]);
        assert!(!plain.covers(&parse("data.x").unwrap()));
        let env = Redactor::for_target(
            b"k",
            "apps",
            "deployments",
            &["spec.template.spec.containers[*].env[*].value".into()],
        );
        assert!(
            env.covers(
                &parse("spec.template.spec.containers[name=app].env[name=T].value").unwrap()
            )
        );
    }

    #[test]
    fn hashes_differ_with_the_value_and_the_key() {
        let a = Redactor::new(b"key-a", Vec::new());
        let b = Redactor::new(b"key-b", Vec::new());
        assert_eq!(a.hash(&json!("x")), a.hash(&json!("x")));
        assert_ne!(a.hash(&json!("x")), a.hash(&json!("y")));
        assert_ne!(a.hash(&json!("x")), b.hash(&json!("x")));
    }
}

//! A JSON document read once and borrowed from the bytes it came from: the
//! form the content digest walks, with no second conversion and no copy.
//!
//! Strings without escapes point into the review's body; objects keep their
//! keys in the order they came, duplicates included, and each lookup takes the
//! last occurrence of a key, as `serde_json::Value` and Kubernetes' own types
//! do.

use std::{borrow::Cow, collections::BTreeMap, fmt};

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Number, Value};

/// One JSON value, borrowed where it can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    /// Borrowed only from JSON text where the string had no escape: as JSON
    /// text holds no raw `"` or control character in a string either, a
    /// borrowed string needs no escaping when written again. The same holds
    /// for an object's keys. Anything else is owned.
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the order they came; see [`Json::get`].
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses a document, borrowing its strings from `text`. A tree is made
    /// only from JSON text (here) or as a copy of a value ([`Json::of`]), so
    /// that what it borrows always needs no escaping (see [`Json::String`]):
    /// it has no `Deserialize` of its own, which another deserializer could
    /// hand decoded strings to as borrowed.
    pub fn parse(text: &'a str) -> serde_json::Result<Self> {
        Self::parse_with(text, Prune::Nothing)
    }

    /// Parses an object without what no decision reads: its top-level
    /// `status` and its `metadata.managedFields` are checked as JSON and
    /// skipped, never built. The content digest of a CREATE, UPDATE or DELETE
    /// leaves both out anyway, so it is the same over either tree.
    pub fn parse_pruned(text: &'a str) -> serde_json::Result<Self> {
        Self::parse_with(text, Prune::Object)
    }

    fn parse_with(text: &'a str, prune: Prune) -> serde_json::Result<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let json = Tree { prune }.deserialize(&mut de)?;
        de.end()?;
        Ok(json)
    }

    /// The value of `key` in an object (its last occurrence); `None` for
    /// anything else.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.members()?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// An object's members, as they came.
    pub fn members(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Self::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An object of strings as a map (labels, annotations); members that are
    /// not strings are left out.
    pub fn string_map(&self) -> BTreeMap<String, String> {
        self.members()
            .unwrap_or_default()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_owned())))
            .collect()
    }

    /// A copy of a `serde_json::Value`. Its strings are decoded, so they
    /// are owned (see [`Json::String`]).
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Number(n.clone()),
            Value::String(s) => Self::String(Cow::Owned(s.clone())),
            Value::Array(items) => Self::Array(items.iter().map(Self::of).collect()),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Self::of(v)))
                    .collect(),
            ),
        }
    }
}

/// Reads one value into its tree, as [`Json::parse`] or, when pruned,
/// [`Json::parse_pruned`] does: for a value inside a larger document that
/// serde_json reads from its text (the review's object, read with the
/// review), and for nothing else, so that what the tree borrows needs no
/// escaping (see [`Json::String`]).
pub(super) struct Tree {
    prune: Prune,
}

impl Tree {
    pub(super) fn new(pruned: bool) -> Self {
        Self {
            prune: if pruned {
                Prune::Object
            } else {
                Prune::Nothing
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for Tree {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        let mut scratch = Scratch::default();
        Seed {
            prune: self.prune,
            scratch: &mut scratch,
        }
        .deserialize(deserializer)
    }
}

/// The members and items of the objects and arrays still being parsed, on
/// one stack each: an object's members are gathered on top of its parents'
/// and then moved into a `Vec` of exactly their number, so no `Vec` of the
/// tree grows as it fills.
#[derive(Default)]
struct Scratch<'de> {
    members: Vec<(Cow<'de, str>, Json<'de>)>,
    items: Vec<Json<'de>>,
}

/// What a value being parsed leaves out, by where it sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prune {
    Nothing,
    /// The object itself: its `status`.
    Object,
    /// The object's `metadata`: its `managedFields`.
    Metadata,
}

impl Prune {
    /// Whether the member `key` is left out, and what its value leaves out.
    fn member(self, key: &str) -> Option<Self> {
        match (self, key) {
            (Self::Object, "status") | (Self::Metadata, "managedFields") => None,
            (Self::Object, "metadata") => Some(Self::Metadata),
            _ => Some(Self::Nothing),
        }
    }
}

/// One value to parse: what it leaves out, and the stacks it gathers on.
struct Seed<'s, 'de> {
    prune: Prune,
    scratch: &'s mut Scratch<'de>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    /// As `serde_json::Value` does: a float JSON cannot hold becomes null.
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let start = self.scratch.items.len();
        while let Some(item) = seq.next_element_seed(Seed {
            prune: Prune::Nothing,
            scratch: &mut *self.scratch,
        })? {
            self.scratch.items.push(item);
        }
        Ok(Json::Array(self.scratch.items.split_off(start)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let start = self.scratch.members.len();
        while let Some(Key(key)) = map.next_key()? {
            let Some(prune) = self.prune.member(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = map.next_value_seed(Seed {
                prune,
                scratch: &mut *self.scratch,
            })?;
            self.scratch.members.push((key, value));
        }
        Ok(Json::Object(self.scratch.members.split_off(start)))
    }
}

/// An object key, borrowed when it has no escapes (serde's own `Cow`
/// always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_without_escapes_are_borrowed_and_the_last_duplicate_wins() {
        let text = r#"{"a":"plain","b":"esc\"aped","a":"later"}"#;
        let doc = Json::parse(text).unwrap();
        assert_eq!(doc.get("a").and_then(Json::as_str), Some("later"));
        assert!(matches!(doc.get("a"), Some(Json::String(Cow::Borrowed(_)))));
        assert!(matches!(doc.get("b"), Some(Json::String(Cow::Owned(_)))));
        assert_eq!(doc.members().map(<[_]>::len), Some(3));
    }

    #[test]
    fn a_pruned_object_leaves_out_only_its_status_and_managed_fields() {
        let text = r#"{"metadata":{"name":"a","managedFields":[{"manager":"helm"}],"labels":{"status":"x"}},
            "spec":{"status":"kept","managedFields":"kept"},"status":{"replicas":3},"status":null,
            "metadata":{"name":"b","managedFields":[]}}"#;
        let pruned = Json::parse_pruned(text).unwrap();
        let full = Json::parse(text).unwrap();
        let keys = |j: &Json<'_>| -> Vec<String> {
            j.members()
                .unwrap()
                .iter()
                .map(|(k, _)| k.to_string())
                .collect()
        };
        assert_eq!(keys(&pruned), ["metadata", "spec", "metadata"]);
        assert_eq!(pruned.get("spec"), full.get("spec"));
        let first_meta = &pruned.members().unwrap()[0].1;
        assert_eq!(keys(first_meta), ["name", "labels"]);
        assert_eq!(
            first_meta.get("labels"),
            full.members().unwrap()[0].1.get("labels")
        );
        assert_eq!(keys(pruned.get("metadata").unwrap()), ["name"]);
        // Still checked as JSON, skipped parts included.
        assert!(Json::parse_pruned(r#"{"status":{"a":tru}}"#).is_err());
        assert!(Json::parse_pruned(r#"{"status":1} x"#).is_err());
        // Anything but an object is parsed whole.
        assert_eq!(
            Json::parse_pruned("[1]").unwrap(),
            Json::parse("[1]").unwrap()
        );
    }

    #[test]
    fn numbers_and_a_value_view_agree_with_serde_json() {
        let text = r#"{"n":[0,-1,1.5,1e3,12345678901234567890,18446744073709551616,2.50]}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Json::parse(text).unwrap(), Json::of(&value));
        assert_eq!(
            Json::of(&json!({"m": {"k": "v"}}))
                .get("m")
                .unwrap()
                .string_map(),
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        );
    }
}

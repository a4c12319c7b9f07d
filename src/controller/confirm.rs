//! Confirming a recorded use against the object it was for. A use is
//! recorded by the webhook when it allows an admission; the operator then
//! looks at the object: after an UPDATE (or CREATE) its live desired state
//! carries the approved digest, after a DELETE the object is gone or going.
//! A use it cannot confirm within the window was not followed by the write
//! it allowed (a forged review, say) and is reported as `UseUnconfirmed`.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::{
    admission::digest::digest,
    crd::{ApprovalRequest, Operation, UseCheck},
};

/// How often to look again meanwhile.
const EVERY: Duration = Duration::from_secs(2);

/// What the operator found at the target.
#[derive(Debug)]
pub enum Seen {
    /// The object as it is now, as JSON.
    Object(Value),
    /// No object of that name.
    Gone,
    /// approval-gate may not read it.
    Forbidden,
}

/// What to do about a recorded use.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing: not used, already checked, or nothing a write leaves to see
    /// (an exec, or an approval not bound to content).
    Nothing,
    /// Look at the object, then [`judge`].
    Look,
}

/// Whether a use is to be checked.
pub fn next(req: &ApprovalRequest) -> Next {
    let Some(status) = req.status.as_ref() else {
        return Next::Nothing;
    };
    let checkable = matches!(
        req.spec.operation,
        Operation::Create | Operation::Update | Operation::Delete
    ) && req.spec.digest.is_some()
        && req
            .spec
            .target
            .subresource
            .as_deref()
            .is_none_or(|s| s == "scale");
    if status.used_at.is_none() || status.use_check.is_some() || !checkable {
        return Next::Nothing;
    }
    Next::Look
}

/// The verdict on a use from what is seen at `now`: a result to record, or
/// when to look again.
pub fn judge(
    req: &ApprovalRequest,
    seen: &Seen,
    now: Timestamp,
    window: Duration,
) -> Result<UseCheck, Duration> {
    let spec = &req.spec;
    let confirmed = match (spec.operation, seen) {
        (_, Seen::Forbidden) => return Ok(UseCheck::Unverifiable),
        (Operation::Delete, Seen::Gone) => true,
        (Operation::Delete, Seen::Object(live)) => {
            // The same object, going (finalizers), or another one by now.
            let same = digest(Operation::Delete, None, Some(live)) == spec.digest;
            !same || live.pointer("/metadata/deletionTimestamp").is_some()
        }
        (_, Seen::Object(live)) => digest(spec.operation, Some(live), None) == spec.digest,
        (_, Seen::Gone) => false,
    };
    if confirmed {
        return Ok(UseCheck::Confirmed);
    }
    let used_at = req
        .status
        .as_ref()
        .and_then(|s| s.used_at.as_ref())
        .map_or(now, |t| t.0);
    let deadline = used_at
        .checked_add(jiff::SignedDuration::try_from(window).unwrap_or_default())
        .unwrap_or(now);
    if now >= deadline {
        return Ok(UseCheck::Unconfirmed);
    }
    let left = Duration::try_from(deadline.duration_since(now)).unwrap_or(EVERY);
    Err(left.min(EVERY))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::{
        crd::UsedBy,
        testing::{request, ts},
    };

    /// The default `--use-confirm-window`.
    const WINDOW: Duration = Duration::from_secs(30);

    fn object(image: &str) -> Value {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "prod", "uid": "u-1", "resourceVersion": "7"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"replicas": 1}})
    }

    fn used(operation: Operation, digest_of: &Value) -> ApprovalRequest {
        let mut req = request("alice", 0);
        req.spec.operation = operation;
        req.spec.digest = match operation {
            Operation::Delete => digest(operation, None, Some(digest_of)),
            _ => digest(operation, Some(digest_of), None),
        };
        let status = req.status.get_or_insert_with(Default::default);
        status.used_at = Some(Time(ts(100)));
        status.used_by = Some(UsedBy {
            uid: "review-1".into(),
            user: "alice".into(),
        });
        req
    }

    #[test]
    fn an_update_is_confirmed_when_the_live_object_carries_the_approved_content() {
        let req = used(Operation::Update, &object("app:v2"));
        assert_eq!(next(&req), Next::Look);
        // Only volatile fields differ from what was reviewed.
        let mut live = object("app:v2");
        live["metadata"]["resourceVersion"] = "8".into();
        live["status"]["replicas"] = 3.into();
        assert_eq!(
            judge(&req, &Seen::Object(live), ts(101), WINDOW),
            Ok(UseCheck::Confirmed)
        );
    }

    #[test]
    fn a_use_whose_write_never_shows_is_unconfirmed_after_the_window() {
        let req = used(Operation::Update, &object("evil/backdoor:1"));
        let live = Seen::Object(object("app:v1"));
        assert_eq!(
            judge(&req, &live, ts(101), WINDOW),
            Err(Duration::from_secs(2)),
            "looks again soon"
        );
        assert_eq!(
            judge(&req, &live, ts(129), WINDOW),
            Err(Duration::from_secs(1)),
            "never past the window"
        );
        assert_eq!(
            judge(&req, &live, ts(130), WINDOW),
            Ok(UseCheck::Unconfirmed)
        );
        assert_eq!(
            judge(&req, &Seen::Gone, ts(130), WINDOW),
            Ok(UseCheck::Unconfirmed)
        );
    }

    #[test]
    fn a_delete_is_confirmed_once_the_object_is_gone_going_or_replaced() {
        let req = used(Operation::Delete, &object("app:v1"));
        let at = ts(101);
        assert_eq!(
            judge(&req, &Seen::Gone, at, WINDOW),
            Ok(UseCheck::Confirmed)
        );
        let mut going = object("app:v1");
        going["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z".into();
        assert_eq!(
            judge(&req, &Seen::Object(going), at, WINDOW),
            Ok(UseCheck::Confirmed)
        );
        let mut other = object("app:v1");
        other["metadata"]["uid"] = "u-2".into();
        assert_eq!(
            judge(&req, &Seen::Object(other), at, WINDOW),
            Ok(UseCheck::Confirmed)
        );
        assert!(judge(&req, &Seen::Object(object("app:v1")), at, WINDOW).is_err());
    }

    #[test]
    fn an_object_approval_gate_may_not_read_leaves_the_use_unverifiable() {
        let req = used(Operation::Update, &object("app:v2"));
        assert_eq!(
            judge(&req, &Seen::Forbidden, ts(101), WINDOW),
            Ok(UseCheck::Unverifiable)
        );
    }

    #[test]
    fn execs_unbound_approvals_and_checked_uses_are_not_looked_at() {
        let mut exec = used(Operation::Update, &object("x"));
        exec.spec.operation = Operation::Connect;
        let mut unbound = used(Operation::Update, &object("x"));
        unbound.spec.digest = None;
        let mut checked = used(Operation::Update, &object("x"));
        checked.status.as_mut().unwrap().use_check = Some(UseCheck::Confirmed);
        let unused = request("alice", 0);
        for req in [exec, unbound, checked, unused] {
            assert_eq!(next(&req), Next::Nothing, "{:?}", req.spec);
        }
    }
}

//! The audit trail: one Event and one structured log line per transition.

use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt as _;

use crate::{
    crd::{ApprovalRequest, Transition},
    events::{EventQueue, Note, Reason},
    metrics::{Metrics, OutcomeLabels, TransitionLabels},
};

/// What the trail says of one transition: whether it is a warning, the
/// note, and who acted.
fn describe(req: &ApprovalRequest, transition: Transition) -> (bool, String, String) {
    let status = req.status.clone().unwrap_or_default();
    let spec = &req.spec;
    let what = format!(
        "{} {}{}",
        spec.operation,
        spec.target,
        if spec.target.namespace.is_empty() {
            String::new()
        } else {
            format!(" in {}", spec.target.namespace)
        }
    );
    match transition {
        Transition::Requested => {
            let reason = if spec.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", spec.reason)
            };
            // The summary is bounded and holds Secret values only as hashes.
            let reason = match spec.change.as_ref().filter(|c| !c.summary.is_empty()) {
                Some(c) => format!("{reason} (change: {})", c.summary),
                None => reason,
            };
            (
                false,
                format!(
                    "{} requested {what} under policy {}{reason}",
                    spec.requester, spec.policy
                ),
                spec.requester.clone(),
            )
        }
        Transition::Approved => {
            let by: Vec<String> = status.approvals.iter().map(|a| a.user.clone()).collect();
            (
                false,
                format!("{what} approved by {}", by.join(", ")),
                by.join(","),
            )
        }
        Transition::Denied => {
            let d = status.denial.clone();
            let (user, why) = d.map(|d| (d.user, d.reason)).unwrap_or_default();
            (true, format!("{what} denied by {user}: {why}"), user)
        }
        Transition::Revoked => {
            let r = status.revocation.clone();
            let (user, why) = r.map(|r| (r.user, r.reason)).unwrap_or_default();
            (
                true,
                format!("approval of {what} revoked by {user}: {why}"),
                user,
            )
        }
        Transition::Used => {
            let used = status.used_by.clone();
            let (user, uid) = used.map(|u| (u.user, u.uid)).unwrap_or_default();
            (
                false,
                format!("{what} performed by {user} (admission {uid})"),
                user,
            )
        }
        Transition::Expired => (
            true,
            format!("{what} expired before it was used"),
            String::new(),
        ),
        Transition::Superseded => {
            let by = status.superseded.as_ref().map(|s| s.by.clone());
            (
                false,
                format!(
                    "{what} superseded by the newer request {} of {}, for a different change",
                    by.unwrap_or_default(),
                    spec.requester
                ),
                spec.requester.clone(),
            )
        }
    }
}

/// Records one transition of `req` (whose status already shows it) in the
/// decision metrics and as an Event; waits for room in the Event queue rather
/// than drop the Event.
pub async fn record(
    events: &EventQueue,
    metrics: &Metrics,
    req: &ApprovalRequest,
    transition: Transition,
    now: Timestamp,
) {
    observe_decision(metrics, req, transition, now);
    let spec = &req.spec;
    let (warning, note, actor) = describe(req, transition);
    tracing::info!(
        target: "approval_gate::audit",
        transition = transition.as_str(),
        namespace = %req.namespace().unwrap_or_default(),
        request = %req.name_any(),
        requester = %spec.requester,
        actor = %actor,
        policy = %spec.policy,
        target = %spec.target,
        "{note}"
    );
    metrics
        .transitions
        .get_or_create(&TransitionLabels {
            transition: transition.as_str().to_owned(),
        })
        .inc();
    events
        .record(Note {
            regarding: crate::events::request_reference_of(req),
            warning,
            reason: Reason::Transition(transition),
            action: "Reconcile",
            note,
        })
        .await;
}

/// A use whose write never showed on the object: a Warning Event
/// `UseUnconfirmed` and an audit log line. Waits for room in the queue.
pub async fn unconfirmed(events: &EventQueue, req: &ApprovalRequest, window: Duration) {
    let spec = &req.spec;
    let used_by = req
        .status
        .as_ref()
        .and_then(|s| s.used_by.clone())
        .unwrap_or_default();
    let note = format!(
        "{} {} was allowed for {} by this approval (admission {}), but the object did not show \
         the approved change within {}s: the review may not have come from the apiserver, or \
         the write failed after admission",
        spec.operation,
        spec.target,
        used_by.user,
        used_by.uid,
        window.as_secs()
    );
    tracing::warn!(
        target: "approval_gate::audit",
        check = "UseUnconfirmed",
        namespace = %req.namespace().unwrap_or_default(),
        request = %req.name_any(),
        requester = %spec.requester,
        actor = %used_by.user,
        policy = %spec.policy,
        target = %spec.target,
        "{note}"
    );
    events
        .record(Note {
            regarding: crate::events::request_reference_of(req),
            warning: true,
            reason: Reason::UseUnconfirmed,
            action: "Confirm",
            note,
        })
        .await;
}

/// Counts a recorded transition in the decision metrics (approval rate,
/// time to decision, expiries): by whoever records it, operator or webhook.
fn observe_decision(
    metrics: &Metrics,
    req: &ApprovalRequest,
    transition: Transition,
    now: Timestamp,
) {
    if transition == Transition::Expired {
        metrics.request_expiries.inc();
    }
    if !matches!(transition, Transition::Approved | Transition::Denied) {
        return;
    }
    metrics
        .request_decisions
        .get_or_create(&OutcomeLabels {
            outcome: transition.as_str().to_owned(),
        })
        .inc();
    if let Some(created) = req.metadata.creation_timestamp.as_ref() {
        let secs = now.duration_since(created.0).as_secs_f64().max(0.0);
        metrics.time_to_decision.observe(secs);
    }
}

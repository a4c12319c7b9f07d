//! What the operator should do with one request, as a pure function of the
//! request, its policy and `now`. The reconciler only carries the plan out.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::{
    crd::{ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, Phase, Transition},
    lifecycle::{Projection, Terms, evaluate, finished_at, transitions},
};

/// The operator's to-do list for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write, when it differs from the current one.
    pub status: Option<ApprovalRequestStatus>,
    /// Transitions to record (as Events and log lines) once the status is written.
    pub record: Vec<Transition>,
    /// Retention is over: delete the request.
    pub delete: bool,
    /// When to look again: the next deadline, if any.
    pub requeue_after: Option<Duration>,
}

pub fn plan(
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    now: Timestamp,
    retention: Duration,
) -> Plan {
    let current = req.status.clone().unwrap_or_default();
    let eval = evaluate(req, &Terms { policy }, now);
    let facts = transitions(req, eval.phase, eval.approved_at.is_some());
    let mut desired = current.clone();
    Projection::of(req, policy, &eval).apply_to(&mut desired);
    // What was recorded stays recorded, even if a fact looks different for a
    // moment (say, the policy is briefly missing from the cache).
    desired.recorded = current.recorded.clone();
    for t in &facts {
        if !desired.recorded.contains(t) {
            desired.recorded.push(*t);
        }
    }
    desired.conditions = conditions(&current.conditions, eval.phase, now);
    let record: Vec<Transition> = facts
        .into_iter()
        .filter(|t| !current.recorded.contains(t))
        .collect();

    let (delete, next) = if eval.phase.is_final() {
        let done = finished_at(&desired, eval.phase).unwrap_or(now);
        let purge_at = done
            .checked_add(signed(retention))
            .unwrap_or(Timestamp::MAX);
        // The audit trail comes first: record, then delete on the next pass.
        (now >= purge_at && record.is_empty(), Some(purge_at))
    } else {
        (false, eval.expires_at)
    };
    let requeue_after = next
        .filter(|_| !delete)
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO));
    Plan {
        status: (desired != current).then_some(desired),
        record,
        delete,
        requeue_after,
    }
}

fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// One `Approved` condition that follows the phase; its transition time only
/// moves when its status does, so rewriting it is a no-op.
fn conditions(current: &[Condition], phase: Phase, now: Timestamp) -> Vec<Condition> {
    let status = if matches!(phase, Phase::Approved) {
        "True"
    } else {
        "False"
    };
    let message = match phase {
        Phase::Pending => "waiting for approvers",
        Phase::Approved => "approved; valid until it expires or is used",
        Phase::Denied => "denied by an approver",
        Phase::Expired => "expired before it was used",
        Phase::Used => "the approval was used",
        Phase::Revoked => "the approval was revoked",
        Phase::Superseded => "a newer request for a different change replaced it",
    };
    let previous = current.iter().find(|c| c.type_ == "Approved");
    let since = previous
        .filter(|c| c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    vec![Condition {
        type_: "Approved".to_owned(),
        status: status.to_owned(),
        reason: phase.as_str().to_owned(),
        message: message.to_owned(),
        last_transition_time: since,
        observed_generation: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::Verdict,
        testing::{approve, policy, request, ts},
    };

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn new_request_gets_its_phase_deadline_and_a_requested_record() {
        let p = policy("requestTTL: 10m");
        let req = request("alice", 0);
        let plan = plan(&req, Some(&p), ts(60), WEEK);
        let status = plan.status.unwrap();
        assert_eq!(status.phase, Some(Phase::Pending));
        assert_eq!(status.expires_at, Some(Time(ts(600))));
        assert_eq!(status.target.as_deref(), Some("deployments.apps/checkout"));
        assert_eq!(plan.record, [Transition::Requested]);
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(540)));
    }

    #[test]
    fn applying_a_plan_twice_changes_nothing_the_second_time() {
        let p = policy("");
        let mut req = request("alice", 0);
        let first = plan(&req, Some(&p), ts(1), WEEK);
        req.status = first.status;
        let second = plan(&req, Some(&p), ts(2), WEEK);
        assert_eq!(second.status, None);
        assert!(second.record.is_empty());
    }

    #[test]
    fn approval_records_approved_and_moves_the_deadline() {
        let p = policy("approvalTTL: 5m");
        let mut req = request("alice", 0);
        req.status = plan(&req, Some(&p), ts(1), WEEK).status;
        approve(&mut req, "bob", &["sre"], 10);
        let plan = plan(&req, Some(&p), ts(11), WEEK);
        assert_eq!(plan.record, [Transition::Approved]);
        let status = plan.status.unwrap();
        assert_eq!(status.phase, Some(Phase::Approved));
        assert_eq!(status.expires_at, Some(Time(ts(310))));
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(299)));
    }

    #[test]
    fn an_overdue_request_expires_at_once_with_one_record() {
        let p = policy("requestTTL: 10m");
        let mut req = request("alice", 0);
        req.status = plan(&req, Some(&p), ts(1), WEEK).status;
        let late = plan(&req, Some(&p), ts(3600), WEEK);
        assert_eq!(late.record, [Transition::Expired]);
        assert_eq!(late.status.as_ref().unwrap().phase, Some(Phase::Expired));
        req.status = late.status;
        assert!(plan(&req, Some(&p), ts(3601), WEEK).record.is_empty());
    }

    #[test]
    fn a_request_used_before_the_operator_looked_records_approved_then_used() {
        let p = policy("");
        let mut req = request("alice", 0);
        approve(&mut req, "bob", &["sre"], 10);
        req.status.as_mut().unwrap().used_at = Some(Time(ts(20)));
        let plan = plan(&req, Some(&p), ts(30), WEEK);
        assert_eq!(
            plan.record,
            [
                Transition::Requested,
                Transition::Approved,
                Transition::Used
            ]
        );
    }

    /// alice's request, denied by bob at 100 s.
    fn denied_at_100() -> ApprovalRequest {
        let mut req = request("alice", 0);
        req.status.get_or_insert_with(Default::default).denial = Some(Verdict {
            user: "bob".into(),
            time: Time(ts(100)),
            reason: "no".into(),
        });
        req
    }

    #[test]
    fn finished_requests_are_deleted_after_retention() {
        let p = policy("");
        let mut req = denied_at_100();
        let retention = Duration::from_secs(60);
        let early = plan(&req, Some(&p), ts(120), retention);
        assert!(!early.delete);
        assert_eq!(early.requeue_after, Some(Duration::from_secs(40)));
        req.status = early.status;
        assert!(plan(&req, Some(&p), ts(160), retention).delete);
    }

    #[test]
    fn a_request_past_retention_is_recorded_before_it_is_deleted() {
        let p = policy("");
        let mut req = denied_at_100();
        let retention = Duration::from_secs(60);
        let first = plan(&req, Some(&p), ts(1000), retention);
        assert!(!first.delete);
        assert_eq!(first.record, [Transition::Requested, Transition::Denied]);
        assert_eq!(first.requeue_after, Some(Duration::ZERO));
        req.status = first.status;
        assert!(plan(&req, Some(&p), ts(1000), retention).delete);
    }

    #[test]
    fn recorded_transitions_never_shrink() {
        let p = policy("");
        let mut req = request("alice", 0);
        approve(&mut req, "bob", &["sre"], 10);
        req.status = plan(&req, Some(&p), ts(11), WEEK).status;
        // Without its policy, the approval does not count for a moment...
        let blind = plan(&req, None, ts(12), WEEK);
        let recorded = blind
            .status
            .map_or(req.status.clone().unwrap().recorded, |s| s.recorded);
        assert!(recorded.contains(&Transition::Approved));
        assert!(blind.record.is_empty());
    }
}

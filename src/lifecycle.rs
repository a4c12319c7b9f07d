//! The lifecycle of an ApprovalRequest as a pure function of its facts and `now`.
//!
//! Both the webhook (is this approval valid right now?) and the operator (which
//! phase should the status show, and when does it next change?) use it, so the
//! two can never disagree. Expiry is judged from timestamps alone: a slow or
//! absent operator never extends an approval.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::crd::{
    Approval, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, Duration, Phase,
    Transition,
};

/// Where a request stands at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub phase: Phase,
    /// When the last required eligible approval was given.
    pub approved_at: Option<Timestamp>,
    /// When the current phase ends by itself (Pending or Approved), if ever.
    pub expires_at: Option<Timestamp>,
}

/// The TTLs and approver rules that apply to a request; defaults when its policy is gone.
#[derive(Clone, Debug)]
pub struct Terms<'a> {
    pub policy: Option<&'a ApprovalPolicySpec>,
}

impl Terms<'_> {
    fn request_ttl(&self) -> Duration {
        self.policy
            .map_or(Duration::from_secs(3600), |p| p.request_ttl)
    }

    fn approval_ttl(&self) -> Duration {
        self.policy
            .map_or(Duration::from_secs(900), |p| p.approval_ttl)
    }

    fn required(&self) -> usize {
        self.policy
            .map_or(1, |p| p.required_approvals.max(1) as usize)
    }
}

/// The approvals that count: from eligible approvers, not the requester (unless
/// the policy allows self-approval), one per user, earliest first.
pub fn eligible_approvals<'a>(
    req: &'a ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
) -> Vec<&'a Approval> {
    let Some(policy) = policy else {
        return Vec::new();
    };
    let mut approvals: Vec<&Approval> = req
        .status
        .iter()
        .flat_map(|s| s.approvals.iter())
        .filter(|a| policy.allow_self_approval || a.user != req.spec.requester)
        .filter(|a| {
            policy.approvers.users.contains(&a.user)
                || a.groups.iter().any(|g| policy.approvers.groups.contains(g))
        })
        .collect();
    approvals.sort_by_key(|a| a.time.0);
    let mut seen = std::collections::HashSet::new();
    approvals.retain(|a| seen.insert(a.user.as_str()));
    approvals
}

/// Evaluates a request at `now`.
pub fn evaluate(req: &ApprovalRequest, terms: &Terms<'_>, now: Timestamp) -> Evaluation {
    let status = req.status.clone().unwrap_or_default();
    let created = req
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let approvals = eligible_approvals(req, terms.policy);
    let approved_at = approvals.get(terms.required() - 1).map(|a| a.time.0);
    let fixed = |phase| Evaluation {
        phase,
        approved_at,
        expires_at: None,
    };
    // Final facts first, in the order they can happen.
    if let Some(phase) = status.phase.filter(Phase::is_final) {
        return fixed(phase);
    }
    if status.denial.is_some() {
        return fixed(Phase::Denied);
    }
    if status.revocation.is_some() {
        return fixed(Phase::Revoked);
    }
    if status.used_at.is_some() {
        return fixed(Phase::Used);
    }
    if status.superseded.is_some() {
        return fixed(Phase::Superseded);
    }
    let (phase, deadline) = match approved_at {
        Some(at) => (Phase::Approved, add(at, terms.approval_ttl())),
        None => (Phase::Pending, add(created, terms.request_ttl())),
    };
    if now >= deadline {
        return Evaluation {
            phase: Phase::Expired,
            approved_at,
            expires_at: Some(deadline),
        };
    }
    Evaluation {
        phase,
        approved_at,
        expires_at: Some(deadline),
    }
}

fn add(at: Timestamp, ttl: Duration) -> Timestamp {
    at.checked_add(ttl.as_signed()).unwrap_or(Timestamp::MAX)
}

/// The transitions a request's facts show, in the order they happen.
pub fn transitions(req: &ApprovalRequest, phase: Phase, approved: bool) -> Vec<Transition> {
    let status = req.status.clone().unwrap_or_default();
    let mut out = vec![Transition::Requested];
    if approved || status.used_at.is_some() || status.revocation.is_some() {
        out.push(Transition::Approved);
    }
    if status.denial.is_some() {
        out.push(Transition::Denied);
    }
    if status.revocation.is_some() {
        out.push(Transition::Revoked);
    }
    if status.used_at.is_some() {
        out.push(Transition::Used);
    }
    if phase == Phase::Expired {
        out.push(Transition::Expired);
    }
    if status.superseded.is_some() {
        out.push(Transition::Superseded);
    }
    out
}

/// When a request reached its final phase, from its facts.
pub fn finished_at(status: &ApprovalRequestStatus, phase: Phase) -> Option<Timestamp> {
    match phase {
        Phase::Denied => status.denial.as_ref().map(|v| v.time.0),
        Phase::Revoked => status.revocation.as_ref().map(|v| v.time.0),
        Phase::Used => status.used_at.as_ref().map(|t| t.0),
        Phase::Expired => status.expires_at.as_ref().map(|t| t.0),
        Phase::Superseded => status.superseded.as_ref().map(|s| s.time.0),
        Phase::Pending | Phase::Approved => None,
    }
}

/// The status fields every writer derives from a request's facts: the phase,
/// what `kubectl get apr` shows, and the deadlines. The webhook writes them
/// for a request it creates, the operator keeps them current: one builder, so
/// the two never write different things.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    pub phase: Phase,
    pub target: String,
    pub required_approvals: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

impl Projection {
    /// The projection of `req` under `policy`, as evaluated in `eval`.
    pub fn of(
        req: &ApprovalRequest,
        policy: Option<&ApprovalPolicySpec>,
        eval: &Evaluation,
    ) -> Self {
        Self {
            phase: eval.phase,
            target: req.spec.target.to_string(),
            required_approvals: policy.map_or(1, |p| p.required_approvals),
            approved_at: eval.approved_at.map(Time),
            expires_at: eval.expires_at.map(Time),
        }
    }

    /// Writes the projection into `status`; a deadline the facts no longer
    /// show (say, the policy is briefly missing) keeps its recorded value.
    pub fn apply_to(self, status: &mut ApprovalRequestStatus) {
        status.phase = Some(self.phase);
        status.target = Some(self.target);
        status.required_approvals = Some(self.required_approvals);
        status.approved_at = self.approved_at.or(status.approved_at.take());
        status.expires_at = self.expires_at.or(status.expires_at.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::Verdict,
        testing::{approve, policy, request, ts},
    };

    fn eval(req: &ApprovalRequest, p: &ApprovalPolicySpec, now: i64) -> Evaluation {
        evaluate(req, &Terms { policy: Some(p) }, ts(now))
    }

    #[test]
    fn pending_request_expires_at_creation_plus_request_ttl() {
        let p = policy("requestTTL: 10m");
        let req = request("alice", 0);
        let e = eval(&req, &p, 599);
        assert_eq!((e.phase, e.expires_at), (Phase::Pending, Some(ts(600))));
        assert_eq!(eval(&req, &p, 600).phase, Phase::Expired);
    }

    #[test]
    fn approval_by_eligible_approver_is_valid_until_approval_ttl() {
        let p = policy("approvalTTL: 5m");
        let mut req = request("alice", 0);
        approve(&mut req, "bob", &["sre"], 100);
        let e = eval(&req, &p, 399);
        assert_eq!(
            (e.phase, e.approved_at, e.expires_at),
            (Phase::Approved, Some(ts(100)), Some(ts(400)))
        );
        assert_eq!(eval(&req, &p, 400).phase, Phase::Expired);
    }

    #[test]
    fn ineligible_and_self_approvals_do_not_count() {
        let p = policy("");
        let mut req = request("alice", 0);
        approve(&mut req, "carol", &["dev"], 10);
        approve(&mut req, "alice", &["sre"], 20);
        assert_eq!(eval(&req, &p, 30).phase, Phase::Pending);
        let selfish = policy("allowSelfApproval: true");
        assert_eq!(eval(&req, &selfish, 30).phase, Phase::Approved);
    }

    #[test]
    fn required_approvals_count_distinct_users() {
        let p = policy("requiredApprovals: 2");
        let mut req = request("alice", 0);
        approve(&mut req, "bob", &["sre"], 10);
        approve(&mut req, "bob", &["sre"], 20);
        assert_eq!(eval(&req, &p, 30).phase, Phase::Pending);
        approve(&mut req, "root", &[], 40);
        let e = eval(&req, &p, 50);
        assert_eq!((e.phase, e.approved_at), (Phase::Approved, Some(ts(40))));
    }

    #[test]
    fn denial_revocation_and_use_are_final() {
        let p = policy("");
        let verdict = || Verdict {
            user: "bob".into(),
            time: Time(ts(5)),
            reason: "no".into(),
        };
        let mut denied = request("alice", 0);
        approve(&mut denied, "bob", &["sre"], 1);
        denied.status.as_mut().unwrap().denial = Some(verdict());
        assert_eq!(eval(&denied, &p, 10).phase, Phase::Denied);
        let mut revoked = request("alice", 0);
        approve(&mut revoked, "bob", &["sre"], 1);
        revoked.status.as_mut().unwrap().revocation = Some(verdict());
        assert_eq!(eval(&revoked, &p, 10).phase, Phase::Revoked);
        let mut used = request("alice", 0);
        approve(&mut used, "bob", &["sre"], 1);
        used.status.as_mut().unwrap().used_at = Some(Time(ts(2)));
        assert_eq!(eval(&used, &p, 10).phase, Phase::Used);
    }

    #[test]
    fn a_recorded_final_phase_is_never_reopened() {
        let p = policy("");
        let mut req = request("alice", 0);
        approve(&mut req, "bob", &["sre"], 1);
        req.status.as_mut().unwrap().phase = Some(Phase::Expired);
        assert_eq!(eval(&req, &p, 2).phase, Phase::Expired);
    }
}

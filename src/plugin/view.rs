//! A request as people read it: plain values computed from an ApprovalRequest,
//! its policy and `now`, with the same lifecycle rules the webhook applies.

use jiff::Timestamp;

use super::{change_view::ChangeView, sanitize::inert};
use crate::{
    crd::{ApprovalPolicySpec, ApprovalRequest, Phase},
    lifecycle::{Terms, eligible_approvals, evaluate},
};

/// One approval, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalLine {
    pub user: String,
    pub time: Timestamp,
    pub comment: String,
    /// Whether it counts towards `required` (an eligible approver, not the requester).
    pub counts: bool,
}

/// A denial, a revocation or a use: who, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictLine {
    pub user: String,
    pub time: Timestamp,
    pub reason: String,
}

/// Everything the list and describe views show about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestView {
    pub namespace: String,
    pub name: String,
    /// The phase at `now`, judged from timestamps (no operator needed).
    pub phase: Phase,
    pub requester: String,
    pub operation: String,
    /// `deployments.apps/checkout`.
    pub target: String,
    /// The target's namespace; empty for cluster-scoped objects.
    pub target_namespace: String,
    pub digest: Option<String>,
    pub reason: String,
    pub policy: String,
    /// Approvals that count towards `required`.
    pub approved: usize,
    pub required: u32,
    pub approvals: Vec<ApprovalLine>,
    pub denial: Option<VerdictLine>,
    pub revocation: Option<VerdictLine>,
    pub used: Option<VerdictLine>,
    /// The last use of a reusable approval, its reason saying how many in all.
    pub last_use: Option<VerdictLine>,
    /// The newer request that replaced this one, as `request NAME`.
    pub superseded: Option<VerdictLine>,
    /// When the request (Pending) or its approval (Approved) ends, or ended (Expired).
    pub expires_at: Option<Timestamp>,
    pub created: Option<Timestamp>,
    /// What the action would do, when the request records it.
    pub change: Option<ChangeView>,
    /// Set by describe and diff when the live object moved on since the request was made.
    pub stale: Option<String>,
    /// The earlier request for the same action and how it ended: `NAME Denied by bob: why`.
    pub previous: Option<String>,
    /// Set by describe when the policy leaves a path to the same access ungated.
    pub policy_gap: Option<String>,
}

impl RequestView {
    /// Builds the view. Without the policy (deleted, or not readable) the
    /// phase and deadline recorded in the status are used instead. Every
    /// string from the request is made [`inert`]: the requester wrote it.
    pub fn new(req: &ApprovalRequest, policy: Option<&ApprovalPolicySpec>, now: Timestamp) -> Self {
        let status = req.status.clone().unwrap_or_default();
        let (phase, expires_at) = judge(req, policy, now);
        let counted = eligible_approvals(req, policy);
        let counts = |user: &str| match policy {
            Some(_) => counted.iter().any(|a| a.user == user),
            None => user != req.spec.requester,
        };
        let approvals: Vec<ApprovalLine> = status
            .approvals
            .iter()
            .map(|a| ApprovalLine {
                user: inert(&a.user),
                time: a.time.0,
                comment: inert(&a.comment),
                counts: counts(&a.user),
            })
            .collect();
        let verdict = |v: &crate::crd::Verdict| VerdictLine {
            user: inert(&v.user),
            time: v.time.0,
            reason: inert(&v.reason),
        };
        let use_line = |at: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
                        by: Option<&crate::crd::UsedBy>,
                        reason: String| VerdictLine {
            user: by.map(|u| inert(&u.user)).unwrap_or_default(),
            time: at.0,
            reason,
        };
        let used = (status.used_at.as_ref())
            .map(|at| use_line(at, status.used_by.as_ref(), String::new()));
        let last_use = status.last_used_at.as_ref().map(|at| {
            let reason = format!("{} uses in all", status.uses.unwrap_or(0));
            use_line(at, status.last_used_by.as_ref(), reason)
        });
        let superseded = status.superseded.as_ref().map(|s| VerdictLine {
            user: format!("request {}", inert(&s.by)),
            time: s.time.0,
            reason: "a newer change to the same target".to_owned(),
        });
        Self {
            namespace: inert(req.metadata.namespace.as_deref().unwrap_or_default()),
            name: inert(req.metadata.name.as_deref().unwrap_or_default()),
            phase,
            requester: inert(&req.spec.requester),
            operation: req.spec.operation.to_string(),
            target: inert(&req.spec.target.to_string()),
            target_namespace: inert(&req.spec.target.namespace),
            digest: req.spec.digest.as_deref().map(inert),
            reason: inert(&req.spec.reason),
            policy: inert(&req.spec.policy),
            approved: approvals.iter().filter(|a| a.counts).count(),
            required: policy
                .map(|p| p.required_approvals)
                .or(status.required_approvals)
                .unwrap_or(1)
                .max(1),
            approvals,
            denial: status.denial.as_ref().map(verdict),
            revocation: status.revocation.as_ref().map(verdict),
            used,
            last_use,
            superseded,
            expires_at,
            created: req.metadata.creation_timestamp.as_ref().map(|t| t.0),
            change: ChangeView::of(req),
            stale: None,
            policy_gap: None,
            previous: req.spec.previous.as_ref().map(|p| {
                let mut text = format!("{} {}", p.name, p.phase);
                if !p.by.is_empty() {
                    text.push_str(&format!(" by {}", p.by));
                }
                if !p.reason.is_empty() {
                    text.push_str(&format!(": {}", p.reason));
                }
                inert(&text)
            }),
        }
    }
}

/// The phase at `now` and when it ends (or ended), as the webhook judges it.
pub fn judge(
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    now: Timestamp,
) -> (Phase, Option<Timestamp>) {
    let recorded_expiry = req
        .status
        .as_ref()
        .and_then(|s| s.expires_at.as_ref())
        .map(|t| t.0);
    if policy.is_none() {
        let phase = req.phase();
        return match recorded_expiry {
            Some(at) if !phase.is_final() && at <= now => (Phase::Expired, Some(at)),
            _ => (phase, recorded_expiry),
        };
    }
    let e = evaluate(req, &Terms { policy }, now);
    match e.phase {
        Phase::Expired => (Phase::Expired, e.expires_at.or(recorded_expiry)),
        phase => (phase, e.expires_at),
    }
}

/// Whether `user` (with `groups`) may still approve the request: an approver
/// under its policy, not its requester (unless self-approval is allowed), and
/// not one who approved it already. The webhook has the last word.
pub fn may_approve(
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    user: &str,
    groups: &[String],
) -> bool {
    let Some(policy) = policy else {
        return false;
    };
    let approvals = req.status.iter().flat_map(|s| s.approvals.iter());
    policy.approvers.as_subjects().contains(user, groups)
        && (policy.allow_self_approval || req.spec.requester != user)
        && !approvals.into_iter().any(|a| a.user == user)
}

/// The groups to record with an approval: the caller's groups that make them
/// an approver under the policy (all of them when the policy is unknown).
pub fn approval_groups(policy: Option<&ApprovalPolicySpec>, groups: &[String]) -> Vec<String> {
    match policy {
        Some(p) => groups
            .iter()
            .filter(|g| p.approvers.groups.contains(g))
            .cloned()
            .collect(),
        None => groups.to_vec(),
    }
}

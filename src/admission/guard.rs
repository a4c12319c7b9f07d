//! Guarding approval-gate's own objects. An approval system is only as strong
//! as its records, so every write to an ApprovalRequest or ApprovalPolicy is
//! judged here, from the identity the apiserver authenticated (`userInfo`)
//! and never from a field a client wrote.

use jiff::{SignedDuration, Timestamp};

use crate::{
    crd::{
        Approval, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, Phase, RuleOperation,
        Verdict,
    },
    lifecycle::{Terms, evaluate},
};

/// How far in the past a decision's `time` may lie (clients are slow).
pub const MAX_SKEW: SignedDuration = SignedDuration::from_secs(120);
/// How far in the future it may lie: only clock skew, since expiry counts from
/// the approval's time and a future time would stretch `approvalTTL`.
pub const MAX_FUTURE_SKEW: SignedDuration = SignedDuration::from_secs(5);

/// Who is writing, as the apiserver authenticated them.
#[derive(Clone, Debug)]
pub struct Actor<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
}

/// Who is special to the guard.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// approval-gate's own service account (creates requests, records use).
    pub controller: String,
    /// Groups whose members may withdraw anyone's request.
    pub admin_groups: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            controller: "system:serviceaccount:approval-gate:approval-gate".to_owned(),
            admin_groups: vec!["system:masters".to_owned()],
        }
    }
}

impl GuardConfig {
    fn is_controller(&self, actor: &Actor<'_>) -> bool {
        actor.user == self.controller
    }

    fn is_admin(&self, actor: &Actor<'_>) -> bool {
        actor.groups.iter().any(|g| self.admin_groups.contains(g))
    }
}

/// A broken rule, in words an approver understands. `rule` is a stable name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

type Review = Result<(), Violation>;

fn violation(rule: &'static str, message: impl Into<String>) -> Review {
    Err(Violation {
        rule,
        message: message.into(),
    })
}

/// A new ApprovalRequest.
pub fn review_create(
    req: &ApprovalRequest,
    actor: &Actor<'_>,
    policy: Option<&ApprovalPolicySpec>,
    config: &GuardConfig,
) -> Review {
    let controller = config.is_controller(actor);
    if !controller && req.spec.requester != actor.user {
        return violation(
            "requester-is-creator",
            format!(
                "spec.requester must be you ({}): nobody can ask for approval on someone else's behalf",
                actor.user
            ),
        );
    }
    if req
        .status
        .as_ref()
        .is_some_and(|s| *s != ApprovalRequestStatus::default())
    {
        return violation(
            "status-starts-empty",
            "a new request must not carry a status; approvals come later",
        );
    }
    let Some(policy) = policy else {
        return violation(
            "policy-exists",
            format!(
                "spec.policy: ApprovalPolicy {:?} does not exist",
                req.spec.policy
            ),
        );
    };
    if policy.require_reason && req.spec.reason.trim().is_empty() {
        return violation(
            "reason-required",
            format!(
                "spec.reason: ApprovalPolicy {:?} requires a reason",
                req.spec.policy
            ),
        );
    }
    if !controller && req.spec.previous.is_some() {
        return violation(
            "previous-by-approval-gate",
            "spec.previous is recorded by approval-gate only, from the requests it knows",
        );
    }
    if !controller && let Err(mismatch) = crate::change::verify::verify(&req.spec) {
        return violation("change-matches-digest", mismatch.to_string());
    }
    if policy.bind_to_content && req.spec.digest.is_none() && !controller {
        return violation(
            "digest-required",
            format!(
                "spec.digest: ApprovalPolicy {:?} binds approvals to the exact content, which only \
                 approval-gate can compute. Try the change itself: it is denied with the name of a \
                 request approval-gate creates for you; once approved, retry the same change",
                req.spec.policy
            ),
        );
    }
    Ok(())
}

/// An update of the request itself (not its status): only metadata may change.
pub fn review_update(old: &ApprovalRequest, new: &ApprovalRequest) -> Review {
    if old.spec != new.spec {
        return violation(
            "spec-immutable",
            "spec is immutable: an approval is bound to the exact action it was given for; create a new request",
        );
    }
    Ok(())
}

/// A deletion: an admin, or approval-gate (retention); the requester only
/// to withdraw a request nobody has decided anything on yet, so that no
/// requester can erase the record of an approval, a denial, a revocation or
/// a use.
pub fn review_delete(old: &ApprovalRequest, actor: &Actor<'_>, config: &GuardConfig) -> Review {
    if config.is_admin(actor) || config.is_controller(actor) {
        return Ok(());
    }
    if old.spec.requester != actor.user {
        return violation(
            "withdraw-own-only",
            format!(
                "only the requester ({}) or an admin may withdraw this request",
                old.spec.requester
            ),
        );
    }
    match decided(old) {
        None => Ok(()),
        Some(what) => violation(
            "decided-requests-stay",
            format!(
                "this request was {what}: its record stays until approval-gate's retention \
                 removes it, or a cluster admin does"
            ),
        ),
    }
}

/// What was decided on a request, if anything: approved (even partly),
/// denied, revoked or used.
fn decided(req: &ApprovalRequest) -> Option<&'static str> {
    let status = req.status.as_ref()?;
    if status.used_at.is_some() || status.used_by.is_some() {
        Some("used")
    } else if status.revocation.is_some() {
        Some("revoked")
    } else if status.denial.is_some() {
        Some("denied")
    } else if !status.approvals.is_empty() {
        Some("approved")
    } else {
        None
    }
}

/// What a person's status write did.
#[derive(Clone, Debug, PartialEq)]
enum Decision<'a> {
    Approve(&'a Approval),
    Deny(&'a Verdict),
    Revoke(&'a Verdict),
}

/// A write to `approvalrequests/status`, by UPDATE or any kind of PATCH: the
/// apiserver hands over the old and the resulting new object.
pub fn review_status(
    old: &ApprovalRequest,
    new: &ApprovalRequest,
    actor: &Actor<'_>,
    policy: Option<&ApprovalPolicySpec>,
    config: &GuardConfig,
    now: Timestamp,
) -> Review {
    let before = old.status.clone().unwrap_or_default();
    let after = new.status.clone().unwrap_or_default();
    if config.is_controller(actor) {
        return review_controller_status(&before, &after);
    }
    let decision = single_decision(&before, &after)?;
    let (user, time) = match decision {
        Decision::Approve(a) => (&a.user, a.time.0),
        Decision::Deny(v) | Decision::Revoke(v) => (&v.user, v.time.0),
    };
    if user != actor.user {
        return violation(
            "decider-is-caller",
            format!(
                "the decision must be recorded under your own name ({}), not {user:?}",
                actor.user
            ),
        );
    }
    let ahead = time.duration_since(now);
    if ahead > MAX_FUTURE_SKEW || -ahead > MAX_SKEW {
        return violation(
            "decision-time-is-now",
            format!(
                "the decision's time ({time}) must be now ({now}): at most {}s earlier or {}s later",
                MAX_SKEW.as_secs(),
                MAX_FUTURE_SKEW.as_secs()
            ),
        );
    }
    if let Decision::Approve(a) = decision
        && let Some(g) = a.groups.iter().find(|g| !actor.groups.contains(g))
    {
        return violation(
            "groups-are-yours",
            format!("the approval lists group {g:?}, which you are not a member of"),
        );
    }
    let Some(policy) = policy else {
        return violation(
            "policy-exists",
            format!(
                "ApprovalPolicy {:?} no longer exists, so nobody can decide this request",
                old.spec.policy
            ),
        );
    };
    review_decider(old, &before, actor, policy, &decision, now)
}

/// Eligibility, separation of duties and the request's state.
fn review_decider(
    old: &ApprovalRequest,
    before: &ApprovalRequestStatus,
    actor: &Actor<'_>,
    policy: &ApprovalPolicySpec,
    decision: &Decision<'_>,
    now: Timestamp,
) -> Review {
    if !policy
        .approvers
        .as_subjects()
        .contains(actor.user, actor.groups)
    {
        return violation(
            "eligible-approver",
            format!(
                "you ({}) are not an approver under ApprovalPolicy {:?}",
                actor.user, old.spec.policy
            ),
        );
    }
    if old.spec.requester == actor.user && !policy.allow_self_approval {
        return violation(
            "no-self-approval",
            "you cannot decide your own request: a second person must (separation of duties)",
        );
    }
    if matches!(decision, Decision::Approve(_))
        && before.approvals.iter().any(|a| a.user == actor.user)
    {
        return violation("approve-once", "you have already approved this request");
    }
    let phase = evaluate(
        old,
        &Terms {
            policy: Some(policy),
        },
        now,
    )
    .phase;
    let (needed, verb) = match decision {
        Decision::Approve(_) => (Phase::Pending, "approved"),
        Decision::Deny(_) => (Phase::Pending, "denied"),
        Decision::Revoke(_) => (Phase::Approved, "revoked"),
    };
    if phase != needed {
        let why = match phase {
            Phase::Expired => "it has expired".to_owned(),
            p if p.is_final() => format!("it is {} (final)", p.as_str()),
            p => format!("it is {}", p.as_str()),
        };
        return violation(
            "state-allows-decision",
            format!("this request cannot be {verb}: {why}"),
        );
    }
    Ok(())
}

/// Exactly one appended approval, or a new denial, or a new revocation, and
/// nothing else changed.
fn single_decision<'a>(
    before: &ApprovalRequestStatus,
    after: &'a ApprovalRequestStatus,
) -> Result<Decision<'a>, Violation> {
    let appended = after.approvals.len().checked_sub(before.approvals.len());
    let prefix_kept =
        after.approvals.get(..before.approvals.len()) == Some(before.approvals.as_slice());
    let one_more = prefix_kept && appended == Some(1);
    let approvals_same = after.approvals == before.approvals;
    let denial_new = before.denial.is_none() && after.denial.is_some();
    let revocation_new = before.revocation.is_none() && after.revocation.is_some();
    let denial_same = before.denial == after.denial;
    let revocation_same = before.revocation == after.revocation;

    let mut rest_before = before.clone();
    let mut rest_after = after.clone();
    for s in [&mut rest_before, &mut rest_after] {
        s.approvals.clear();
        s.denial = None;
        s.revocation = None;
    }
    if rest_before != rest_after {
        return violation_of(
            "people-write-decisions-only",
            "only approvals, a denial or a revocation may be written; the other status fields belong to approval-gate",
        );
    }
    match (
        one_more,
        approvals_same,
        denial_new,
        denial_same,
        revocation_new,
        revocation_same,
    ) {
        (true, _, false, true, false, true) => {
            Ok(Decision::Approve(&after.approvals[before.approvals.len()]))
        }
        (false, true, true, _, false, true) => after
            .denial
            .as_ref()
            .map(Decision::Deny)
            .ok_or_else(unreachable),
        (false, true, false, true, true, _) => after
            .revocation
            .as_ref()
            .map(Decision::Revoke)
            .ok_or_else(unreachable),
        (false, true, false, true, false, true) => {
            violation_of("one-decision", "the write records no decision")
        }
        _ => violation_of(
            "one-decision",
            "a write may only append one approval, or add one denial or revocation; \
             existing decisions cannot be changed or removed",
        ),
    }
}

fn violation_of<T>(rule: &'static str, message: &str) -> Result<T, Violation> {
    Err(Violation {
        rule,
        message: message.to_owned(),
    })
}

fn unreachable() -> Violation {
    Violation {
        rule: "one-decision",
        message: "the write records no decision".to_owned(),
    }
}

/// approval-gate's own writes: lifecycle fields only, never decisions.
fn review_controller_status(
    before: &ApprovalRequestStatus,
    after: &ApprovalRequestStatus,
) -> Review {
    if before.approvals != after.approvals
        || before.denial != after.denial
        || before.revocation != after.revocation
    {
        return violation(
            "controller-never-decides",
            "approval-gate's service account can never add, change or remove an approval, denial or revocation",
        );
    }
    Ok(())
}

/// What the apiserver refuses in a webhook rule, which the rules registered
/// for this policy would carry: a wildcard beside other entries. Refused here
/// so that one bad policy cannot jam the registration of every other.
fn wildcard_problems(i: usize, rule: &crate::crd::PolicyRule) -> Vec<String> {
    let mut problems = Vec::new();
    if rule.api_groups.len() > 1 && rule.api_groups.iter().any(|g| g == "*") {
        problems.push(format!(
            "spec.rules[{i}].apiGroups: \"*\" matches every group; it cannot be listed beside others"
        ));
    }
    if rule.operations.len() > 1 && rule.operations.contains(&RuleOperation::All) {
        problems.push(format!(
            "spec.rules[{i}].operations: \"*\" matches every operation; it cannot be listed beside others"
        ));
    }
    let resources = &rule.resources;
    let has = |r: &str| resources.iter().any(|x| x == r);
    if has("*/*") && resources.len() > 1 {
        problems.push(format!(
            "spec.rules[{i}].resources: \"*/*\" matches everything; it cannot be listed beside others"
        ));
    }
    if has("*") && resources.iter().any(|r| r != "*" && !r.contains('/')) {
        problems.push(format!(
            "spec.rules[{i}].resources: \"*\" matches every resource; list no other resource beside it"
        ));
    }
    for r in resources {
        let Some((parent, sub)) = r.split_once('/') else {
            continue;
        };
        let shadowed = resources.iter().any(|other| {
            other != r
                && other.split_once('/').is_some_and(|(p, s)| {
                    (s == "*" && p == parent && parent != "*")
                        || (p == "*" && s == sub && sub != "*")
                })
        });
        if shadowed {
            problems.push(format!(
                "spec.rules[{i}].resources: {r:?} is already matched by a wildcard beside it"
            ));
        }
    }
    problems
}

/// Every problem with a policy, each naming its field.
pub fn review_policy(spec: &ApprovalPolicySpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.rules.is_empty() {
        problems.push("spec.rules: at least one rule is required".to_owned());
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        if rule.api_groups.is_empty() {
            problems.push(format!("spec.rules[{i}].apiGroups: name at least one API group (\"\" is core, \"*\" is all)"));
        }
        if rule.resources.is_empty() || rule.resources.iter().any(|r| r.trim().is_empty()) {
            problems.push(format!(
                "spec.rules[{i}].resources: name at least one resource, none empty"
            ));
        }
        if rule.operations.is_empty() {
            problems.push(format!(
                "spec.rules[{i}].operations: name at least one operation"
            ));
        }
        problems.extend(wildcard_problems(i, rule));
        let connect_only = rule.operations.iter().all(|o| *o == RuleOperation::Connect);
        if connect_only && rule.resources.iter().any(|r| !r.contains('/')) {
            problems.push(format!(
                "spec.rules[{i}]: CONNECT applies to subresources such as pods/exec, not to {:?}",
                rule.resources
            ));
        }
    }
    for (i, pattern) in spec.redact.iter().enumerate() {
        if let Err(e) = crate::change::path::parse_pattern(pattern) {
            problems.push(format!("spec.redact[{i}]: {e}"));
        }
    }
    if spec.required_approvals < 1 {
        problems.push("spec.requiredApprovals: must be at least 1".to_owned());
    }
    if spec.approvers.users.is_empty() && spec.approvers.groups.is_empty() {
        problems.push("spec.approvers: name at least one approver user or group".to_owned());
    }
    let bounds = [
        ("spec.requestTTL", spec.request_ttl, 10, 7 * 24 * 3600),
        ("spec.approvalTTL", spec.approval_ttl, 1, 24 * 3600),
    ];
    for (field, ttl, min, max) in bounds {
        let secs = ttl.as_std().as_secs();
        if secs < min || secs > max {
            problems.push(format!(
                "{field}: {ttl} is outside the sane range {min}s to {max}s"
            ));
        }
    }
    problems
}
#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;

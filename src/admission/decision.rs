//! The admission decision: a pure function of the attempt, the index and `now`.

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use kube::ResourceExt as _;
use sha2::{Digest as _, Sha256};

use super::{attempt::Attempt, matching::policy_matches};
use crate::{
    crd::{
        ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestSpec, Mode, Phase,
        Previous, REQUESTED_AT_ANNOTATION,
    },
    index::{GrantKey, Index},
    lifecycle::{Terms, evaluate},
};

/// Settings that shape decisions.
#[derive(Clone, Debug)]
pub struct DecisionConfig {
    /// Where requests for cluster-scoped targets (and Namespaces) live.
    pub control_namespace: String,
}

/// What one matching policy says about the attempt.
#[derive(Clone, Debug)]
pub struct PolicyVerdict {
    /// The policy as the index holds it, found once when rules were matched.
    pub policy: Arc<ApprovalPolicy>,
    pub kind: VerdictKind,
}

impl PolicyVerdict {
    /// The policy's name.
    pub fn name(&self) -> &str {
        self.policy.metadata.name.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub enum VerdictKind {
    /// The user or one of its groups is excluded from the policy.
    Excluded,
    /// A member of a break-glass group acted without approval.
    BreakGlass,
    /// `Warn` mode: allowed, with a warning.
    Warned,
    /// `Audit` mode: allowed, recorded only.
    Audited,
    /// A valid approval allows the attempt.
    Granted(Grant),
    /// No valid approval: the attempt is held.
    Held(Hold),
}

/// A valid approval that allows the attempt.
#[derive(Clone, Debug)]
pub struct Grant {
    pub request: Arc<ApprovalRequest>,
    /// Whether allowing consumes it.
    pub single_use: bool,
}

/// Why an attempt is held, and the request that asks for it.
#[derive(Clone, Debug)]
pub struct Hold {
    pub namespace: String,
    pub name: String,
    /// `Some` when no pending request exists yet: the one to create.
    pub create: Option<Box<ApprovalRequest>>,
    /// The approvers, for the message.
    pub approvers: String,
    /// A note on an earlier request that no longer allows this attempt.
    pub note: Option<String>,
    /// Why no request can be asked for yet, if so.
    pub missing: Option<Missing>,
}

/// What the attempt lacks before approval can even be requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The object has no name yet (`generateName`).
    Name,
    /// The policy requires a reason and the object has no `approvalgate.dev/reason` annotation.
    Reason,
    /// The requester already has as many open requests under the policy as
    /// it allows (`spec.maxOpenRequests`).
    Room { open: u32 },
}

/// Every matching policy's verdict; empty when no policy matches.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    pub verdicts: Vec<PolicyVerdict>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.hold().is_none()
    }

    /// The first hold, with its policy's name.
    pub fn hold(&self) -> Option<(&str, &Hold)> {
        self.held().map(|(v, h)| (v.name(), h))
    }

    /// The first verdict that holds the attempt, and its hold.
    pub fn held(&self) -> Option<(&PolicyVerdict, &Hold)> {
        self.verdicts.iter().find_map(|v| match &v.kind {
            VerdictKind::Held(h) => Some((v, h)),
            _ => None,
        })
    }

    /// Approvals that allowing this attempt consumes.
    pub fn single_use_grants(&self) -> impl Iterator<Item = &Grant> {
        self.verdicts.iter().filter_map(|v| match &v.kind {
            VerdictKind::Granted(g) if g.single_use => Some(g),
            _ => None,
        })
    }

    /// Reusable approvals that allowing this attempt uses (and does not consume).
    pub fn reusable_grants(&self) -> impl Iterator<Item = &Grant> {
        self.verdicts.iter().filter_map(|v| match &v.kind {
            VerdictKind::Granted(g) if !g.single_use => Some(g),
            _ => None,
        })
    }

    /// A short label for metrics and audit annotations.
    pub fn verdict_label(&self) -> &'static str {
        let kinds = || self.verdicts.iter().map(|v| &v.kind);
        if self.verdicts.is_empty() {
            "not_gated"
        } else if kinds().any(|k| matches!(k, VerdictKind::Held(_))) {
            "held"
        } else if kinds().any(|k| matches!(k, VerdictKind::BreakGlass)) {
            "break_glass"
        } else if kinds().any(|k| matches!(k, VerdictKind::Granted(_))) {
            "granted"
        } else if kinds().any(|k| matches!(k, VerdictKind::Warned)) {
            "warned"
        } else if kinds().any(|k| matches!(k, VerdictKind::Audited)) {
            "audited"
        } else {
            "excluded"
        }
    }
}

/// Decides an attempt. Policies are consulted in name order; every matching
/// policy in `Enforce` mode must be satisfied.
pub fn decide(
    attempt: &Attempt,
    index: &Index,
    config: &DecisionConfig,
    now: Timestamp,
) -> Decision {
    decide_matched(attempt, matching(index, attempt), index, config, now)
}

/// The policies whose rules cover the attempt, in name order: matched once
/// per admission, and handed to [`decide_matched`] as they are.
pub fn matching(index: &Index, attempt: &Attempt) -> Vec<Arc<ApprovalPolicy>> {
    covering(index, attempt).cloned().collect()
}

/// Whether [`matching`] would find any policy: what the webhook asks before
/// the review's object is read, to read it straight into its tree.
pub fn covered(index: &Index, attempt: &Attempt) -> bool {
    covering(index, attempt).next().is_some()
}

fn covering<'i>(
    index: &'i Index,
    attempt: &'i Attempt,
) -> impl Iterator<Item = &'i Arc<ApprovalPolicy>> {
    let labels = index.namespaces.get(&attempt.request_namespace);
    index
        .policies
        .values()
        .filter(move |p| policy_matches(&p.spec, attempt, labels))
}

/// Decides an attempt under the policies [`matching`] found.
pub fn decide_matched(
    attempt: &Attempt,
    matched: Vec<Arc<ApprovalPolicy>>,
    index: &Index,
    config: &DecisionConfig,
    now: Timestamp,
) -> Decision {
    let verdicts = matched
        .into_iter()
        .map(|policy| PolicyVerdict {
            kind: verdict(&policy, attempt, index, config, now),
            policy,
        })
        .collect();
    Decision { verdicts }
}

fn verdict(
    policy: &ApprovalPolicy,
    attempt: &Attempt,
    index: &Index,
    config: &DecisionConfig,
    now: Timestamp,
) -> VerdictKind {
    let spec = &policy.spec;
    if let Some(kind) = bypass(spec, attempt) {
        return kind;
    }
    let home = request_namespace(attempt, config);
    let held = |name: String, note: Option<String>, missing: Option<Missing>| Hold {
        namespace: home.clone(),
        name,
        create: None,
        approvers: approvers_text(policy),
        note,
        missing,
    };
    if let Some(missing) = missing(spec, attempt) {
        return VerdictKind::Held(held(String::new(), None, Some(missing)));
    }
    let key = GrantKey {
        requester: attempt.user.clone(),
        operation: attempt.operation,
        target: attempt.target.clone(),
    };
    let terms = Terms { policy: Some(spec) };
    let name = policy.name_any();
    let evaluated = existing(index, &key, policy, &home, attempt, &terms, now);
    // Any valid approval grants, whatever the order of names.
    if let Some((req, _)) = evaluated
        .iter()
        .find(|(_, phase)| *phase == Phase::Approved)
    {
        return VerdictKind::Granted(Grant {
            request: Arc::clone(req),
            single_use: spec.single_use,
        });
    }
    let note = evaluated
        .iter()
        .rev()
        .find(|(_, phase)| phase.is_final())
        .map(|(req, phase)| {
            format!(
                "request {} is {}",
                req.name_any(),
                phase.as_str().to_lowercase()
            )
        });
    if let Some((req, _)) = evaluated.iter().find(|(_, phase)| *phase == Phase::Pending) {
        return VerdictKind::Held(held(req.name_any(), note, None));
    }
    // A newer change to a target she already waits on replaces that request
    // (the operator supersedes it); a new target needs room under the cap.
    let open = open_elsewhere(index, &key, &name, &terms, now, spec.max_open_requests);
    if open >= spec.max_open_requests {
        return VerdictKind::Held(held(String::new(), note, Some(Missing::Room { open })));
    }
    let name_taken = |n: &str| index.requests.contains(&home, n);
    let new_name = request_name(attempt, &name, name_taken);
    let mut new = new_request(attempt, &name, &home, &new_name);
    new.annotations_mut()
        .insert(REQUESTED_AT_ANNOTATION.to_owned(), now.to_string());
    new.spec.previous = previous_decision(index, &key, &name, &home, &terms, now).map(Box::new);
    let mut hold = held(new_name, note, None);
    hold.create = Some(Box::new(new));
    VerdictKind::Held(hold)
}

/// What lets an attempt through without an approval, or only notes it: an
/// exclusion, break-glass, or a policy in Warn or Audit mode.
fn bypass(spec: &ApprovalPolicySpec, attempt: &Attempt) -> Option<VerdictKind> {
    if spec
        .exclude
        .as_ref()
        .is_some_and(|e| e.contains(&attempt.user, &attempt.groups))
    {
        return Some(VerdictKind::Excluded);
    }
    let break_glass = spec
        .break_glass
        .as_ref()
        .map(|b| b.groups.as_slice())
        .unwrap_or_default();
    if attempt.groups.iter().any(|g| break_glass.contains(g)) {
        return Some(VerdictKind::BreakGlass);
    }
    match spec.mode {
        Mode::Warn => Some(VerdictKind::Warned),
        Mode::Audit => Some(VerdictKind::Audited),
        Mode::Enforce => None,
    }
}

/// What an attempt lacks for a request to be made for it: a name (the
/// object has none until it is stored, with generateName, so no approval can
/// be asked for it ahead of time), or a reason the policy requires.
fn missing(spec: &ApprovalPolicySpec, attempt: &Attempt) -> Option<Missing> {
    if attempt.target.name.is_empty() {
        Some(Missing::Name)
    } else if spec.require_reason && attempt.reason.trim().is_empty() {
        Some(Missing::Reason)
    } else {
        None
    }
}

/// The requests for this very action under `policy` in `home` (with this
/// content, when the policy binds to it), each with its phase at `now`.
fn existing<'a>(
    index: &'a Index,
    key: &GrantKey,
    policy: &ApprovalPolicy,
    home: &str,
    attempt: &Attempt,
    terms: &Terms<'_>,
    now: Timestamp,
) -> Vec<(&'a Arc<ApprovalRequest>, Phase)> {
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    index
        .requests
        .lookup(key)
        .filter(|r| r.spec.policy == name && r.namespace().as_deref() == Some(home))
        .filter(|r| !policy.spec.bind_to_content || r.spec.digest == attempt.digest)
        .map(|req| (req, evaluate(req, terms, now).phase))
        .collect()
}

/// How many other actions the requester has a Pending request for under
/// `policy`, counting up to `cap` (one per operation and target).
fn open_elsewhere(
    index: &Index,
    key: &GrantKey,
    policy: &str,
    terms: &Terms<'_>,
    now: Timestamp,
    cap: u32,
) -> u32 {
    let mut open = 0;
    for other in index.requests.keys_of(&key.requester) {
        if other == key {
            continue;
        }
        let waiting = index
            .requests
            .lookup(other)
            .any(|r| r.spec.policy == policy && evaluate(r, terms, now).phase == Phase::Pending);
        if waiting {
            open += 1;
            if open >= cap {
                break;
            }
        }
    }
    open
}

/// The last finished request for the same action under `policy`, whatever
/// content it bound: a denial or a revocation before any other ending, so
/// that the next approver sees an earlier "no". Computed only when a new
/// request is made.
fn previous_decision(
    index: &Index,
    key: &GrantKey,
    policy: &str,
    home: &str,
    terms: &Terms<'_>,
    now: Timestamp,
) -> Option<Previous> {
    let finished: Vec<(&Arc<ApprovalRequest>, Phase)> = index
        .requests
        .lookup(key)
        .filter(|r| r.spec.policy == policy && r.namespace().as_deref() == Some(home))
        .map(|r| (r, evaluate(r, terms, now).phase))
        .filter(|(_, phase)| phase.is_final())
        .collect();
    let latest = |wanted: fn(Phase) -> bool| {
        finished
            .iter()
            .filter(|(_, phase)| wanted(*phase))
            .max_by_key(|(r, _)| r.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    latest(|p| matches!(p, Phase::Denied | Phase::Revoked))
        .or_else(|| latest(|_| true))
        .map(|(r, phase)| Previous::of(r, *phase))
}

/// Requests for namespaced targets live beside them; those for cluster-scoped
/// targets (including Namespaces, which would take them along when deleted)
/// live in the control namespace.
pub fn request_namespace(attempt: &Attempt, config: &DecisionConfig) -> String {
    if attempt.target.namespace.is_empty() {
        config.control_namespace.clone()
    } else {
        attempt.target.namespace.clone()
    }
}

/// A name every webhook replica derives alike from the same attempt: readable
/// prefix, hash of what the request is for, and a counter past finished ones.
fn request_name(attempt: &Attempt, policy: &str, taken: impl Fn(&str) -> bool) -> String {
    let t = &attempt.target;
    let mut hasher = Sha256::new();
    for part in [
        attempt.user.as_str(),
        attempt.operation.as_str(),
        &t.to_string(),
        &t.namespace,
        attempt.digest.as_deref().unwrap_or(""),
        policy,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable: String = format!("{}-{}", singular(&t.resource), t.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let base = format!("{}-{hash}", readable.trim_matches('-'));
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            }
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or(base)
}

fn singular(resource: &str) -> &str {
    resource.strip_suffix('s').unwrap_or(resource)
}

fn new_request(attempt: &Attempt, policy: &str, namespace: &str, name: &str) -> ApprovalRequest {
    let mut req = ApprovalRequest::new(
        name,
        ApprovalRequestSpec {
            requester: attempt.user.clone(),
            operation: attempt.operation,
            target: attempt.target.clone(),
            digest: attempt.digest.clone(),
            reason: attempt.reason.clone(),
            policy: policy.to_owned(),
            change: None,
            previous: None,
        },
    );
    req.metadata.namespace = Some(namespace.to_owned());
    req.metadata.labels = Some(BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "approval-gate".to_owned(),
        ),
        ("approvalgate.dev/policy".to_owned(), policy.to_owned()),
    ]));
    req
}

fn approvers_text(policy: &ApprovalPolicy) -> String {
    let a = &policy.spec.approvers;
    let mut parts = Vec::new();
    if !a.users.is_empty() {
        parts.push(format!("users {}", a.users.join(", ")));
    }
    if !a.groups.is_empty() {
        parts.push(format!("groups {}", a.groups.join(", ")));
    }
    parts.join(" or ")
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;

//! What people read: denial messages, warnings and audit annotations.

use std::collections::HashMap;

use super::{
    attempt::Attempt,
    decision::{Decision, Hold, VerdictKind},
};

/// The denial message: what was held, by which policy, the pending request,
/// and the exact commands to approve it and to wait for it.
pub fn denial(attempt: &Attempt, policy: &str, hold: &Hold) -> String {
    let mut msg = format!(
        "approval-gate: {} needs approval under ApprovalPolicy {policy:?}.",
        attempt.describe()
    );
    if let Some(note) = &hold.note {
        msg.push_str(&format!(" An earlier approval does not apply ({note})."));
    }
    let state = if hold.create.is_some() {
        if attempt.dry_run { "would be created" } else { "was created" }
    } else {
        "is pending"
    };
    msg.push_str(&format!(
        " ApprovalRequest {}/{} {state} for {}. An approver ({}) can run: \
         kubectl approve {} -n {} . To wait for the decision: kubectl approve wait {} -n {} ; \
         then retry the same command.",
        hold.namespace, hold.name, attempt.user, hold.approvers, hold.name, hold.namespace, hold.name, hold.namespace
    ));
    msg
}

/// Warnings that kubectl prints as `Warning: ...`.
pub fn warnings(attempt: &Attempt, decision: &Decision) -> Vec<String> {
    decision
        .verdicts
        .iter()
        .filter_map(|v| match v.kind {
            VerdictKind::Warned => Some(format!(
                "approval-gate: {} would need approval under ApprovalPolicy {:?} (mode Warn: allowed)",
                attempt.describe(),
                v.policy
            )),
            VerdictKind::BreakGlass => Some(format!(
                "approval-gate: break-glass: {} allowed without approval under ApprovalPolicy {:?}; this is recorded",
                attempt.describe(),
                v.policy
            )),
            _ => None,
        })
        .collect()
}

/// `approvalgate.dev/*` audit annotations; they land in the apiserver's audit log.
pub fn audit_annotations(decision: &Decision) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(first) = decision.verdicts.first() else {
        return out;
    };
    let policies: Vec<&str> = decision.verdicts.iter().map(|v| v.policy.as_str()).collect();
    out.insert("policy".to_owned(), policies.join(","));
    out.insert("verdict".to_owned(), decision.verdict_label().to_owned());
    let request = decision.verdicts.iter().find_map(|v| match &v.kind {
        VerdictKind::Granted(g) => Some(format!(
            "{}/{}",
            g.request.metadata.namespace.as_deref().unwrap_or_default(),
            g.request.metadata.name.as_deref().unwrap_or_default()
        )),
        VerdictKind::Held(h) => Some(format!("{}/{}", h.namespace, h.name)),
        _ => None,
    });
    if let Some(request) = request {
        out.insert("request".to_owned(), request);
    }
    if matches!(first.kind, VerdictKind::BreakGlass) || decision.verdict_label() == "break_glass" {
        out.insert("break-glass".to_owned(), "true".to_owned());
    }
    out
}

//! What people read: denial messages, warnings and audit annotations.

use std::collections::HashMap;

use crate::crd::{approve_command, wait_command};

use super::{
    attempt::{Attempt, REASON_ANNOTATION},
    decision::{Decision, Hold, Missing, PolicyVerdict, VerdictKind},
};

/// What became of the pending request a denial names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState<'a> {
    /// It already existed.
    Pending,
    /// Dry run: nothing was created.
    WouldBeCreated,
    Created,
    /// Still being created when the denial was sent.
    Creating,
    /// Creating it failed.
    Failed(&'a str),
}

/// The denial message: what was held, by which policy, the pending request,
/// and the exact commands to approve it and to wait for it.
pub fn denial(attempt: &Attempt, policy: &str, hold: &Hold, state: RequestState<'_>) -> String {
    let mut msg = format!(
        "approval-gate: {} needs approval under ApprovalPolicy {policy:?}.",
        attempt.describe()
    );
    match hold.missing {
        Some(Missing::Name) => {
            msg.push_str(
                " The object has no name yet (generateName), so no approval can be requested for it; \
                 give it a metadata.name and retry.",
            );
            return msg;
        }
        Some(Missing::Reason) => {
            msg.push_str(&format!(
                " The policy requires a reason: add the annotation {REASON_ANNOTATION}: \"<why>\" \
                 to the object and retry; approval-gate then asks for approval with that reason.",
            ));
            return msg;
        }
        Some(Missing::Room { open }) => {
            msg.push_str(&format!(
                " {} already has {open} open requests under this policy for other targets, as many as it                  allows (spec.maxOpenRequests), so no new request was made. See them with:                  kubectl approve list -A --requester {} ; withdraw one you no longer need                  (kubectl delete approvalrequest NAME -n NAMESPACE) or wait for decisions, then retry.",
                attempt.user, attempt.user
            ));
            return msg;
        }
        None => {}
    }
    if let Some(note) = &hold.note {
        msg.push_str(&format!(" An earlier approval does not apply ({note})."));
    }
    let state = match state {
        RequestState::Pending => "is pending".to_owned(),
        RequestState::WouldBeCreated => "would be created".to_owned(),
        RequestState::Created => "was created".to_owned(),
        RequestState::Creating => "is being created".to_owned(),
        RequestState::Failed(why) => {
            format!("could not be created ({why}); retry, or create it by hand")
        }
    };
    msg.push_str(&format!(
        " ApprovalRequest {}/{} {state} for {}. An approver ({}) can run: \
         {} . To wait for the decision: {} ; \
         then retry the same command.",
        hold.namespace,
        hold.name,
        attempt.user,
        hold.approvers,
        approve_command(&hold.name, &hold.namespace),
        wait_command(&hold.name, &hold.namespace),
    ));
    msg
}

/// Warnings that kubectl prints as `Warning: ...`.
pub fn warnings(attempt: &Attempt, decision: &Decision) -> Vec<String> {
    // A held attempt was not let through, so nothing was waived.
    if !decision.allowed() {
        return Vec::new();
    }
    decision
        .verdicts
        .iter()
        .filter_map(|v| match v.kind {
            VerdictKind::Warned => Some(format!(
                "approval-gate: {} would need approval under ApprovalPolicy {:?} (mode Warn: allowed)",
                attempt.describe(),
                v.name()
            )),
            VerdictKind::BreakGlass => Some(format!(
                "approval-gate: break-glass: {} allowed without approval under ApprovalPolicy {:?}; this is recorded",
                attempt.describe(),
                v.name()
            )),
            _ => None,
        })
        .collect()
}

/// `approvalgate.dev/*` audit annotations; they land in the apiserver's audit log.
pub fn audit_annotations(decision: &Decision) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if decision.verdicts.is_empty() {
        return out;
    }
    let policies: Vec<&str> = decision.verdicts.iter().map(PolicyVerdict::name).collect();
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
    if decision
        .verdicts
        .iter()
        .any(|v| matches!(v.kind, VerdictKind::BreakGlass))
    {
        out.insert("break-glass".to_owned(), "true".to_owned());
    }
    out
}

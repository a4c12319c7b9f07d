//! `ApprovalRequest`: a request to perform one action on one object.
#![allow(
    clippy::duplicated_attributes,
    reason = "kube printcolumn entries legitimately repeat the same keys"
)]

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{change::Change, common::Operation};

/// The annotation approval-gate puts on the requests it makes: when it made
/// them, to the microsecond, so that of two made within the same second (the
/// resolution of `creationTimestamp`) the newer one supersedes.
pub const REQUESTED_AT_ANNOTATION: &str = "approvalgate.dev/requested-at";

/// The pattern for a content digest: `sha256:` and 64 lowercase hex digits.
pub const DIGEST_PATTERN: &str = "^sha256:[0-9a-f]{64}$";

/// Asks for permission to perform one action (an operation on one object),
/// on behalf of one user. Approvers record their decision in the status.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "approvalgate.dev",
    version = "v1alpha1",
    kind = "ApprovalRequest",
    plural = "approvalrequests",
    shortname = "apr",
    category = "approvalgate",
    namespaced,
    status = "ApprovalRequestStatus",
    doc = "ApprovalRequest asks for one action on one object to be approved by a second person.",
    selectable = ".spec.requester",
    selectable = ".spec.policy",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester"),
    printcolumn(name = "Operation", type_ = "string", json_path = ".spec.operation"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.target"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".spec.policy",
        priority = "1"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".spec.reason",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: an ApprovalRequest asks for one exact action; create a new request instead"))]
pub struct ApprovalRequestSpec {
    /// The username that will perform the action, exactly as the apiserver
    /// authenticates it (`userInfo.username`). Only this user's request can use the approval.
    #[schemars(length(min = 1, max = 512))]
    pub requester: String,
    /// The admission operation to be performed: CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// The object the action applies to.
    pub target: Target,
    /// Binds the approval to the exact content of the change: `sha256:` followed by
    /// 64 lowercase hex digits, computed by approval-gate from the admitted object.
    /// Left empty only when the policy does not bind approvals to content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DIGEST_PATTERN), length(max = 71))]
    pub digest: Option<String>,
    /// Why the action is needed, for the approver (for example a ticket or incident number).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// The name of the cluster-scoped ApprovalPolicy that requires this approval.
    #[schemars(length(min = 1, max = 253))]
    pub policy: String,
    /// What the action would do, as the approver sees it: the fields an UPDATE
    /// changes, the object a CREATE makes, what a DELETE removes, the command
    /// an exec runs. Recorded by approval-gate with the digest; a request
    /// written by anyone else must carry a change the digest can be recomputed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<Change>>,
    /// The last finished request for the same requester, operation and target
    /// under the same policy, when there is one: so that the next approver sees
    /// an earlier denial or revocation. Recorded by approval-gate only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Previous>>,
}

/// An earlier request for the same action, and how it ended.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Previous {
    /// Its name, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// How it ended: Denied, Revoked, Expired or Used.
    pub phase: Phase,
    /// Who denied or revoked it, if someone did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 512))]
    pub by: String,
    /// Why, as they wrote it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub reason: String,
}

impl Previous {
    /// What `req`, a finished request, says to the next approver.
    pub fn of(req: &ApprovalRequest, phase: Phase) -> Self {
        let status = req.status.clone().unwrap_or_default();
        let verdict = match phase {
            Phase::Denied => status.denial,
            Phase::Revoked => status.revocation,
            _ => None,
        };
        let (by, reason) = verdict.map(|v| (v.user, v.reason)).unwrap_or_default();
        Self {
            name: req.metadata.name.clone().unwrap_or_default(),
            phase,
            by,
            reason,
        }
    }
}

/// The object an action applies to, named the way admission requests name it.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The API group of the resource; empty for the core group (pods, namespaces, ...).
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// The plural resource name, for example `deployments` or `pods`.
    #[schemars(length(min = 1, max = 253))]
    pub resource: String,
    /// The subresource, if the action is on one, for example `exec`, `scale` or `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub subresource: Option<String>,
    /// The namespace of the object; empty for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 63))]
    pub namespace: String,
    /// The name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl fmt::Display for Target {
    /// `deployments.apps/checkout`, `pods/exec/web-0`, `namespaces/prod`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource)?;
        if !self.api_group.is_empty() {
            write!(f, ".{}", self.api_group)?;
        }
        if let Some(sub) = self.subresource.as_deref().filter(|s| !s.is_empty()) {
            write!(f, "/{sub}")?;
        }
        write!(f, "/{}", self.name)
    }
}

/// Where a request stands in its lifecycle: `Pending` (waiting for approvers),
/// `Approved` (the action may be performed until the approval expires), or one
/// of the final phases `Denied`, `Expired`, `Used` (a single-use approval was
/// consumed), `Revoked` (the approval was withdrawn before use) and
/// `Superseded` (a newer change to the same target was requested before this
/// one was decided).
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize,
)]
pub enum Phase {
    /// Waiting for approvers.
    #[default]
    Pending,
    /// Enough eligible approvers approved; the action may be performed until the approval expires.
    Approved,
    /// An approver denied the request. Final.
    Denied,
    /// The request or its approval outlived its time to live. Final.
    Expired,
    /// A single-use approval was consumed by the action. Final.
    Used,
    /// An approval was withdrawn before it was used. Final.
    Revoked,
    /// The requester asked for a different change to the same target before
    /// anyone decided this one; the newer request replaces it. Final.
    Superseded,
}

impl Phase {
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending | Self::Approved)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Expired => "Expired",
            Self::Used => "Used",
            Self::Revoked => "Revoked",
            Self::Superseded => "Superseded",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The observed state of an ApprovalRequest. Approvals, the denial and the
/// revocation are written by people; the rest is maintained by approval-gate.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequestStatus {
    /// Where the request stands: Pending, Approved, Denied, Expired, Used, Revoked or Superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The target in short form (for example `deployments.apps/checkout`), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How many distinct eligible approvers must approve, copied from the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub required_approvals: Option<u32>,
    /// The approvals given so far, one per approver, in the order they were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Set when an approver denied the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial: Option<Verdict>,
    /// Set when an approval was withdrawn before it was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Verdict>,
    /// When the last required approval was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
    /// When the request (if Pending) or its approval (if Approved) stops being valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When a single-use approval was consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Time>,
    /// The admission request that consumed a single-use approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<UsedBy>,
    /// Set when a newer request for a different change to the same target
    /// replaced this one while it was Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Supersession>,
    /// How many times a reusable (not single-use) approval allowed the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// When a reusable approval was last used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Time>,
    /// The admission request that last used a reusable approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_by: Option<UsedBy>,
    /// Whether the write a recorded use allowed was seen on the object:
    /// `Confirmed`, or `Unconfirmed` when it did not show within the window
    /// (the use was recorded, the action apparently not performed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_check: Option<UseCheck>,
    /// How many times the action was attempted and held while this request existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Lifecycle transitions already recorded as Events and audit log lines, so
    /// that each is recorded exactly once across restarts and leader changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recorded: Vec<Transition>,
    /// Notifications already sent, one per transition and channel, so that
    /// each is sent once across restarts and leader changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<Notified>,
    /// Standard conditions (Approved, Expired, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A lifecycle transition, recorded once as an Event: `Requested`, `Approved`,
/// `Denied`, `Expired`, `Used`, `Revoked` or `Superseded`.
#[derive(
    schemars::JsonSchema,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
pub enum Transition {
    Requested,
    Approved,
    Denied,
    Expired,
    Used,
    Revoked,
    Superseded,
}

impl Transition {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested => "Requested",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Expired => "Expired",
            Self::Used => "Used",
            Self::Revoked => "Revoked",
            Self::Superseded => "Superseded",
        }
    }
}

/// What the operator saw of a recorded use on the object.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UseCheck {
    /// The object shows the approved change (or, for a DELETE, is gone).
    Confirmed,
    /// The object did not show it within the window after the use.
    Unconfirmed,
    /// approval-gate may not read the object (the chart's
    /// `operator.confirmUseReads`), so the use could not be checked.
    Unverifiable,
}

/// The newer request that replaced a Pending one, and when.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Supersession {
    /// The newer request's name, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub by: String,
    /// When approval-gate found it.
    pub time: Time,
}

/// A notification that was delivered.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notified {
    /// The transition it told about.
    pub transition: Transition,
    /// The channel it went to, by its name in the policy's `spec.notify`.
    #[schemars(length(min = 1, max = 63))]
    pub channel: String,
    /// When it was delivered.
    pub at: Time,
    /// Absent for the transition's own notice; `Reminder` or `Escalation` for
    /// the ones a policy sends later about a request still Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
}

/// A notice sent later about a request still Pending.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FollowUp {
    /// The approvers are reminded (`spec.remindAfter`).
    Reminder,
    /// More people are told (`spec.escalation`).
    Escalation,
}

impl FollowUp {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reminder => "Reminder",
            Self::Escalation => "Escalation",
        }
    }
}

/// One approver's approval.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// The approver's username; must be the identity that wrote the approval.
    #[schemars(length(min = 1))]
    pub user: String,
    /// The approver's groups at the time of approval, as the apiserver reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// When the approval was given.
    pub time: Time,
    /// An optional note from the approver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub comment: String,
}

/// A denial or a revocation: who decided, when and why.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The username that decided; must be the identity that wrote it.
    #[schemars(length(min = 1))]
    pub user: String,
    /// When the decision was made.
    pub time: Time,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub reason: String,
}

/// The admission request that consumed an approval.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsedBy {
    /// The uid of the AdmissionReview request.
    pub uid: String,
    /// The username that performed the action.
    pub user: String,
}

impl ApprovalRequest {
    pub fn phase(&self) -> Phase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or_default()
    }
}

/// The command an approver runs to approve request `name` in `namespace`.
pub fn approve_command(name: &str, namespace: &str) -> String {
    format!("kubectl approve {name} -n {namespace}")
}

/// The command a requester runs to wait for the decision on request `name`.
pub fn wait_command(name: &str, namespace: &str) -> String {
    format!("kubectl approve wait {name} -n {namespace}")
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

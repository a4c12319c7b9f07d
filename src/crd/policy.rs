//! `ApprovalPolicy`: what is sensitive, and who may approve it.
#![allow(
    clippy::duplicated_attributes,
    reason = "kube printcolumn entries legitimately repeat the same keys"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{common::Subjects, duration::Duration, notify::NotifyChannel};

/// Declares which actions are sensitive and who may approve them. An action
/// that matches any rule (and is not excluded) needs an approved ApprovalRequest.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "approvalgate.dev",
    version = "v1alpha1",
    kind = "ApprovalPolicy",
    plural = "approvalpolicies",
    shortname = "apol",
    category = "approvalgate",
    status = "ApprovalPolicyStatus",
    doc = "ApprovalPolicy declares which actions need a second person's approval, and who may give it.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Required",
        type_ = "integer",
        json_path = ".spec.requiredApprovals"
    ),
    printcolumn(
        name = "Approval-TTL",
        type_ = "string",
        json_path = ".spec.approvalTTL"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Coverage-Gap",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"CoverageGap\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicySpec {
    /// The actions this policy holds for approval. An action matching any rule is held.
    #[schemars(length(min = 1))]
    pub rules: Vec<PolicyRule>,
    /// Users and groups whose actions this policy never holds (for example a
    /// platform automation account). Prefer break-glass groups for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Subjects>,
    /// Who may approve, deny or revoke requests under this policy.
    pub approvers: Approvers,
    /// How many distinct eligible approvers must approve.
    #[serde(default = "default_required_approvals")]
    #[schemars(range(min = 1, max = 10))]
    pub required_approvals: u32,
    /// Whether a requester who is also an approver may approve their own request.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// How long a request may stay Pending before it expires, for example `1h`.
    #[serde(default = "default_request_ttl", rename = "requestTTL")]
    pub request_ttl: Duration,
    /// How long an approval stays valid once given, for example `15m`.
    #[serde(default = "default_approval_ttl", rename = "approvalTTL")]
    pub approval_ttl: Duration,
    /// Whether an approval is consumed by the first action it allows.
    #[serde(default = "default_true")]
    pub single_use: bool,
    /// Whether an approval is bound to the exact content of the change (a digest),
    /// so that a different change needs a new approval.
    #[serde(default = "default_true")]
    pub bind_to_content: bool,
    /// Whether requests must state a reason.
    #[serde(default)]
    pub require_reason: bool,
    /// How many Pending requests one requester may have open under this
    /// policy at once, counting one per operation and target (a newer change
    /// to the same target supersedes the older request instead). Past it, an
    /// attempt on another target is denied with the reason and no request is made.
    #[serde(default = "default_max_open_requests")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_open_requests: u32,
    /// Further fields whose values never appear in a request's recorded change,
    /// as with a Secret's `data`: each is shown only as a short keyed hash, which
    /// tells that it changed and nothing of what it is. Written as field paths,
    /// with `*` for any key and `[*]` for any list item, for example
    /// `spec.template.spec.containers[*].env[*].value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub redact: Vec<String>,
    /// Enforce holds actions; Warn lets them through with a warning; Audit lets
    /// them through and only records an Event and a metric.
    #[serde(default)]
    pub mode: Mode,
    /// Groups whose members may act without approval in an emergency. Every such
    /// action is let through with a warning, a Warning Event and an audit annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
    /// Where to tell people about requests under this policy: approvers when a
    /// request becomes Pending, the requester when it is Approved, Denied,
    /// Expired or Revoked. Each transition is sent once per channel (at least
    /// once: receivers can drop repeats by the idempotency key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyChannel>,
    /// Remind the approvers, over the `notify` channels, of a request still
    /// Pending this long after it was made, for example `30m`. Sent once per
    /// channel and recorded in the request's `status.notified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_after: Option<Duration>,
    /// Tell more people about a request still Pending after a while: a second
    /// channel, such as the team leads' Slack channel or email. Sent once per
    /// channel and recorded in the request's `status.notified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

/// Where a request still Pending is escalated, and when.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    /// How long after the request was made, for example `1h`.
    pub after: Duration,
    /// The channels to tell, as in `spec.notify`.
    #[schemars(length(min = 1))]
    pub notify: Vec<NotifyChannel>,
}

/// One set of sensitive actions. An action matches when its API group,
/// resource, operation and (if given) namespace and name all match.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// API groups to match; `""` is the core group and `*` matches all.
    #[schemars(length(min = 1))]
    pub api_groups: Vec<String>,
    /// Resources to match, with an optional subresource, for example `deployments`,
    /// `deployments/scale` or `pods/exec`; `*` matches all resources.
    #[schemars(length(min = 1))]
    pub resources: Vec<String>,
    /// Operations to match: CREATE, UPDATE, DELETE, CONNECT, or `*` for all.
    #[schemars(length(min = 1))]
    pub operations: Vec<RuleOperation>,
    /// Namespaces to match by name. Empty means any namespace (and cluster-scoped objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces to match by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Object names to match. Empty means any name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// An operation in a policy rule: CREATE, UPDATE, DELETE, CONNECT, or `*` for all.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuleOperation {
    #[serde(rename = "CREATE")]
    Create,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "DELETE")]
    Delete,
    #[serde(rename = "CONNECT")]
    Connect,
    #[serde(rename = "*")]
    All,
}

/// Who may approve. At least one user or group must be named.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("size(self.users) + size(self.groups) > 0").message("name at least one approver user or group"))]
pub struct Approvers {
    /// Usernames that may approve, exactly as the apiserver reports them.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups whose members may approve.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Approvers {
    pub fn as_subjects(&self) -> Subjects {
        Subjects {
            users: self.users.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// How a policy treats a matching action that has no approval: `Enforce` denies
/// it until approved, `Warn` allows it with a warning that kubectl prints, and
/// `Audit` allows it and records only an Event and a metric.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize,
)]
pub enum Mode {
    /// Deny the action until it is approved.
    #[default]
    Enforce,
    /// Allow the action, with an admission warning that kubectl prints.
    Warn,
    /// Allow the action silently; record only an Event and a metric.
    Audit,
}

/// Emergency access that bypasses approval, visibly.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakGlass {
    /// Groups whose members may act without approval.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The observed state of an ApprovalPolicy.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicyStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` tells whether the policy is in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn default_required_approvals() -> u32 {
    1
}

fn default_max_open_requests() -> u32 {
    10
}

fn default_request_ttl() -> Duration {
    Duration::from_secs(3600)
}

fn default_approval_ttl() -> Duration {
    Duration::from_secs(900)
}

fn default_true() -> bool {
    true
}

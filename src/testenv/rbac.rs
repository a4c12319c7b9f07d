//! RBAC for the local control plane's demo identities.
//!
//! The requester and approver ClusterRoles are the ones approval-gate documents
//! for clusters; the workload role stands in for the `edit` role, whose rules
//! are normally aggregated by kube-controller-manager, which is not running here.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::ObjectMeta;

use super::identities::{CONTROLLER, GITOPS};

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect());
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

fn binding(role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(role.to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: role.to_owned(),
        },
        subjects: Some(subjects),
    }
}

fn group(name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "Group".to_owned(),
        name: name.to_owned(),
        namespace: None,
    }
}

fn user(name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: "User".to_owned(),
        name: name.to_owned(),
        namespace: None,
    }
}

/// Requesters create and withdraw their own requests, and read policies.
pub fn requester_role() -> ClusterRole {
    cluster_role(
        "approval-gate-requester",
        vec![
            rule(
                &["approvalgate.dev"],
                &["approvalrequests"],
                &["get", "list", "watch", "create", "delete"],
            ),
            rule(&["approvalgate.dev"], &["approvalpolicies"], READ),
        ],
    )
}

/// Approvers read requests and write decisions into their status.
pub fn approver_role() -> ClusterRole {
    cluster_role(
        "approval-gate-approver",
        vec![
            rule(&["approvalgate.dev"], &["approvalrequests"], READ),
            rule(
                &["approvalgate.dev"],
                &["approvalrequests/status"],
                &["get", "update", "patch"],
            ),
            rule(&["approvalgate.dev"], &["approvalpolicies"], READ),
        ],
    )
}

fn workload_role() -> ClusterRole {
    cluster_role(
        "approval-gate-dev-workloads",
        vec![
            rule(
                &[""],
                &[
                    "pods",
                    "services",
                    "configmaps",
                    "secrets",
                    "serviceaccounts",
                    "namespaces",
                ],
                WRITE,
            ),
            rule(
                &[""],
                &["pods/exec", "pods/attach", "pods/portforward"],
                &["get", "create"],
            ),
            rule(&[""], &["pods/log", "events"], READ),
            rule(&["events.k8s.io"], &["events"], READ),
            rule(
                &["apps"],
                &["deployments", "statefulsets", "replicasets", "daemonsets"],
                WRITE,
            ),
            rule(
                &["apps"],
                &["deployments/scale", "statefulsets/scale"],
                &["get", "update", "patch"],
            ),
        ],
    )
}

/// approval-gate's own service account: what the webhook and operator call.
pub fn controller_role() -> ClusterRole {
    cluster_role(
        "approval-gate",
        vec![
            rule(
                &["approvalgate.dev"],
                &["approvalrequests"],
                &["get", "list", "watch", "create", "delete"],
            ),
            rule(
                &["approvalgate.dev"],
                &["approvalrequests/status"],
                &["get", "update", "patch"],
            ),
            rule(&["approvalgate.dev"], &["approvalpolicies"], READ),
            rule(
                &["approvalgate.dev"],
                &["approvalpolicies/status"],
                &["get", "update", "patch"],
            ),
            rule(&[""], &["namespaces"], READ),
            rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
            rule(
                &["coordination.k8s.io"],
                &["leases"],
                &["get", "list", "watch", "create", "update", "patch"],
            ),
        ],
    )
}

/// Every role and binding the demo identities need.
pub fn dev_rbac() -> (Vec<ClusterRole>, Vec<ClusterRoleBinding>) {
    let roles = vec![
        requester_role(),
        approver_role(),
        workload_role(),
        controller_role(),
    ];
    let bindings = vec![
        binding(
            "approval-gate-requester",
            vec![group("approval-gate:requesters"), user(GITOPS.username)],
        ),
        binding(
            "approval-gate-approver",
            vec![group("approval-gate:approvers")],
        ),
        binding("approval-gate", vec![user(CONTROLLER.username)]),
        binding(
            "approval-gate-dev-workloads",
            vec![group("dev"), group("sre"), user(GITOPS.username)],
        ),
    ];
    (roles, bindings)
}

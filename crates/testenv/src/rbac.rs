//! RBAC for the local control plane's identities.
//!
//! approval-gate's own service account and the requester and approver
//! ClusterRoles come from the Helm chart itself (rendered with `helm
//! template`), so every test and `make dev` run under exactly the RBAC a
//! cluster gets. The workload role stands in for the `edit` role, whose rules
//! are normally aggregated by kube-controller-manager, which is not running here.

use std::path::Path;

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject},
};
use kube::api::ObjectMeta;
use serde::Deserialize as _;

use super::{CONTROL_NAMESPACE, identities::GITOPS};
use crate::error::{Error, Result};

/// The chart, next to the crate's manifest.
pub fn chart_dir() -> std::path::PathBuf {
    crate::repo_root().join("charts/approval-gate")
}

/// The release name that makes the chart's names match the local identities:
/// service account `approval-gate` in namespace `approval-gate`.
pub const RELEASE: &str = "approval-gate";

/// The chart's RBAC objects, by kind.
#[derive(Debug, Default)]
pub struct ChartRbac {
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub service_accounts: Vec<ServiceAccount>,
}

/// `helm template` flags that turn the console on, with placeholder values
/// for what it needs (enough to render its RBAC).
pub const CONSOLE_ON: [&str; 8] = [
    "--set",
    "console.enabled=true",
    "--set",
    "console.publicURL=https://console.invalid",
    "--set",
    "console.oidc.issuerURL=https://issuer.invalid",
    "--set",
    "console.oidc.clientSecretName=unused",
];

/// Renders the chart's ServiceAccount and RBAC with `helm template`.
pub fn chart_rbac(helm: &Path) -> Result<ChartRbac> {
    let output = std::process::Command::new(helm)
        .args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", CONTROL_NAMESPACE])
        // A helm built from its Go module assumes Kubernetes 1.20 offline.
        .args(["--kube-version", "1.35.4"])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"])
        .args(["--show-only", "templates/user-roles.yaml"])
        // The console's read-only identity (its Deployment stays off here).
        .args(CONSOLE_ON)
        .args(["--show-only", "templates/console-rbac.yaml"])
        .output()
        .map_err(|e| Error::io(format!("running {}", helm.display()), e))?;
    if !output.status.success() {
        return Err(Error::ControlPlane(format!(
            "helm template failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_rbac(&String::from_utf8_lossy(&output.stdout))
}

fn parse_rbac(yaml: &str) -> Result<ChartRbac> {
    let mut rbac = ChartRbac::default();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document)?;
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        match kind {
            "" => {}
            "ClusterRole" => rbac.cluster_roles.push(serde_json::from_value(value)?),
            "ClusterRoleBinding" => rbac
                .cluster_role_bindings
                .push(serde_json::from_value(value)?),
            "Role" => rbac.roles.push(serde_json::from_value(value)?),
            "RoleBinding" => rbac.role_bindings.push(serde_json::from_value(value)?),
            "ServiceAccount" => rbac.service_accounts.push(serde_json::from_value(value)?),
            other => {
                return Err(Error::ControlPlane(format!(
                    "unexpected kind {other} in the chart's RBAC templates"
                )));
            }
        }
    }
    Ok(rbac)
}

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

/// The workload role and the bindings of the demo identities to it and to
/// the chart's requester and approver roles.
pub fn dev_rbac() -> (Vec<ClusterRole>, Vec<ClusterRoleBinding>) {
    let roles = vec![workload_role()];
    let bindings = vec![
        binding(
            "approval-gate-requester",
            vec![group("approval-gate:requesters"), user(GITOPS.username)],
        ),
        binding(
            "approval-gate-approver",
            vec![group("approval-gate:approvers")],
        ),
        binding(
            "approval-gate-dev-workloads",
            vec![group("dev"), group("sre"), user(GITOPS.username)],
        ),
    ];
    (roles, bindings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_rbac_is_sorted_by_kind_and_other_kinds_are_refused() {
        let yaml = "---\n# Source: x\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: b\nrules: []\n";
        let rbac = parse_rbac(yaml).unwrap();
        assert_eq!(rbac.service_accounts.len(), 1);
        assert_eq!(rbac.cluster_roles.len(), 1);
        let err = parse_rbac("kind: Deployment\n").unwrap_err().to_string();
        assert!(err.contains("unexpected kind Deployment"), "{err}");
    }
}

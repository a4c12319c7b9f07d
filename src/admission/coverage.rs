//! Quiet gaps in a policy's coverage: paths that give the same power as one
//! the policy gates, but that it does not gate. A policy on `pods/exec` alone
//! leaves `kubectl attach`, `port-forward`, `debug` (ephemeral containers) and
//! the pod proxy open; one on `deployments` leaves `kubectl scale` open.

use crate::crd::{ApprovalPolicySpec, PolicyRule};

/// Groups of resources that give the same power, by API group.
const SIBLINGS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "pods/exec",
            "pods/attach",
            "pods/portforward",
            "pods/ephemeralcontainers",
            "pods/proxy",
        ],
    ),
    ("apps", &["deployments", "deployments/scale"]),
    ("apps", &["statefulsets", "statefulsets/scale"]),
    ("apps", &["replicasets", "replicasets/scale"]),
];

/// Whether `rule` names `resource` of `group` (wildcards included).
fn names(rule: &PolicyRule, group: &str, resource: &str) -> bool {
    let group_ok = rule.api_groups.iter().any(|g| g == "*" || g == group);
    let (parent, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let resource_ok = rule.resources.iter().any(|r| {
        r == "*"
            || r == resource
            || (!sub.is_empty() && (*r == format!("{parent}/*") || *r == format!("*/{sub}")))
    });
    group_ok && resource_ok
}

/// Every gap: `(gated, missing siblings)`, in a stable order.
pub fn gaps(spec: &ApprovalPolicySpec) -> Vec<(String, Vec<String>)> {
    let covered =
        |group: &str, resource: &str| spec.rules.iter().any(|r| names(r, group, resource));
    SIBLINGS
        .iter()
        .filter_map(|(group, family)| {
            let gated: Vec<&str> = family
                .iter()
                .copied()
                .filter(|r| covered(group, r))
                .collect();
            let missing: Vec<String> = family
                .iter()
                .filter(|r| !covered(group, r))
                .map(|r| (*r).to_owned())
                .collect();
            match (gated.first(), missing.is_empty()) {
                (Some(first), false) => Some(((*first).to_owned(), missing)),
                _ => None,
            }
        })
        .collect()
}

/// The gaps in words, or None when there are none.
pub fn describe(spec: &ApprovalPolicySpec) -> Option<String> {
    let gaps = gaps(spec);
    if gaps.is_empty() {
        return None;
    }
    let parts: Vec<String> = gaps
        .iter()
        .map(|(gated, missing)| format!("gates {gated} but not {}", missing.join(", ")))
        .collect();
    Some(format!(
        "{}: each gives the same access, so add them to the rules",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> ApprovalPolicySpec {
        serde_yaml_ng::from_str(&format!("rules: {rules}\napprovers: {{groups: [sre]}}\n")).unwrap()
    }

    #[test]
    fn exec_alone_leaves_attach_port_forward_debug_and_proxy_open() {
        let p = policy("[{apiGroups: [''], resources: [pods/exec], operations: [CONNECT]}]");
        let text = describe(&p).unwrap();
        assert_eq!(
            text,
            "gates pods/exec but not pods/attach, pods/portforward, pods/ephemeralcontainers, \
             pods/proxy: each gives the same access, so add them to the rules"
        );
    }

    #[test]
    fn deployments_without_scale_is_a_gap_and_with_it_is_not() {
        let without =
            policy("[{apiGroups: [apps], resources: [deployments], operations: [UPDATE]}]");
        assert_eq!(
            gaps(&without),
            [(
                "deployments".to_owned(),
                vec!["deployments/scale".to_owned()]
            )]
        );
        let with = policy(
            "[{apiGroups: [apps], resources: [deployments, deployments/scale], operations: [UPDATE]}]",
        );
        assert_eq!(describe(&with), None);
        let wildcard = policy(
            "[{apiGroups: ['*'], resources: ['deployments', 'deployments/*'], operations: ['*']}]",
        );
        assert_eq!(describe(&wildcard), None);
    }

    #[test]
    fn a_policy_on_everything_or_on_unrelated_resources_has_no_gap() {
        assert_eq!(
            describe(&policy(
                "[{apiGroups: ['*'], resources: ['*'], operations: ['*']}]"
            )),
            None
        );
        assert_eq!(
            describe(&policy(
                "[{apiGroups: [''], resources: [configmaps], operations: [UPDATE]}]"
            )),
            None
        );
    }
}

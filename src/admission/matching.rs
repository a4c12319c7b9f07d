//! Which policies hold which actions: rule matching as Kubernetes admission
//! rules do it, plus namespace names, namespace labels and object names.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::attempt::Attempt;
use crate::crd::{ApprovalPolicySpec, Operation, PolicyRule, RuleOperation};

/// Whether a policy's rules cover the attempt (before `exclude` and break-glass),
/// or the attempt relabels a namespace out of the policy's scope.
pub fn policy_matches(
    spec: &ApprovalPolicySpec,
    attempt: &Attempt,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    spec.rules
        .iter()
        .any(|rule| rule_matches(rule, attempt, namespace_labels) || leaves_scope(rule, attempt))
}

/// Whether the attempt relabels a namespace that `rule` selects by label so
/// that the rule no longer selects it: anyone who may label a namespace could
/// otherwise take it out of a policy's reach unapproved.
fn leaves_scope(rule: &PolicyRule, attempt: &Attempt) -> bool {
    let (Some(selector), Some(relabel)) = (&rule.namespace_selector, &attempt.relabel) else {
        return false;
    };
    let named = rule.namespaces.is_empty() || rule.namespaces.contains(&attempt.target.name);
    named
        && selector_matches(selector, &relabel.before)
        && !selector_matches(selector, &relabel.after)
}

/// Whether any policy selects namespaces by label: then namespace UPDATEs
/// must reach the webhook, to hold a relabel out of scope.
pub fn selects_by_label<'a>(policies: impl IntoIterator<Item = &'a ApprovalPolicySpec>) -> bool {
    policies
        .into_iter()
        .any(|p| p.rules.iter().any(|r| r.namespace_selector.is_some()))
}

fn rule_matches(
    rule: &PolicyRule,
    attempt: &Attempt,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let t = &attempt.target;
    let group_ok = rule
        .api_groups
        .iter()
        .any(|g| g == "*" || *g == t.api_group);
    let resource_ok = rule
        .resources
        .iter()
        .any(|r| resource_matches(r, &t.resource, t.subresource.as_deref()));
    let op_ok = rule
        .operations
        .iter()
        .any(|op| operation_matches(*op, attempt.operation));
    let ns = &attempt.request_namespace;
    let ns_ok = rule.namespaces.is_empty() || rule.namespaces.iter().any(|n| n == ns);
    let selector_ok = match &rule.namespace_selector {
        None => true,
        Some(selector) => labels.is_some_and(|l| selector_matches(selector, l)),
    };
    let name_ok = rule.names.is_empty() || rule.names.contains(&t.name);
    group_ok && resource_ok && op_ok && ns_ok && selector_ok && name_ok
}

/// Kubernetes rule semantics: `deployments` matches the resource only,
/// `deployments/scale` one subresource, `deployments/*` every subresource,
/// `*` every resource (no subresources), `*/scale` and `*/*` as expected.
fn resource_matches(pattern: &str, resource: &str, subresource: Option<&str>) -> bool {
    let (p_res, p_sub) = match pattern.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (pattern, None),
    };
    let res_ok = p_res == "*" || p_res == resource;
    let sub_ok = match (p_sub, subresource) {
        (None, None) => true,
        (Some("*"), Some(_)) => true,
        (Some(p), Some(s)) => p == s,
        _ => false,
    };
    res_ok && sub_ok
}

fn operation_matches(rule: RuleOperation, op: Operation) -> bool {
    matches!(
        (rule, op),
        (RuleOperation::All, _)
            | (RuleOperation::Create, Operation::Create)
            | (RuleOperation::Update, Operation::Update)
            | (RuleOperation::Delete, Operation::Delete)
            | (RuleOperation::Connect, Operation::Connect)
    )
}

/// Standard label selector semantics; an empty selector matches everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|req| requirement_matches(req, labels))
}

fn requirement_matches(req: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&req.key);
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_patterns_follow_kubernetes_rules() {
        assert!(resource_matches("deployments", "deployments", None));
        assert!(!resource_matches(
            "deployments",
            "deployments",
            Some("scale")
        ));
        assert!(resource_matches(
            "deployments/scale",
            "deployments",
            Some("scale")
        ));
        assert!(resource_matches(
            "deployments/*",
            "deployments",
            Some("status")
        ));
        assert!(!resource_matches("deployments/*", "deployments", None));
        assert!(resource_matches("*", "pods", None));
        assert!(!resource_matches("*", "pods", Some("exec")));
        assert!(resource_matches("*/exec", "pods", Some("exec")));
        assert!(resource_matches("*/*", "pods", Some("exec")));
        assert!(!resource_matches("pods/exec", "pods", Some("attach")));
    }

    #[test]
    fn selectors_support_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("env".to_owned(), "prod".to_owned())].into();
        let sel = |json: serde_json::Value| serde_json::from_value::<LabelSelector>(json).unwrap();
        assert!(selector_matches(&sel(serde_json::json!({})), &labels));
        assert!(selector_matches(
            &sel(serde_json::json!({"matchLabels": {"env": "prod"}})),
            &labels
        ));
        assert!(!selector_matches(
            &sel(serde_json::json!({"matchLabels": {"env": "dev"}})),
            &labels
        ));
        let expr = |op: &str, values: &[&str]| {
            sel(
                serde_json::json!({"matchExpressions": [{"key": "env", "operator": op, "values": values}]}),
            )
        };
        assert!(selector_matches(&expr("In", &["prod", "staging"]), &labels));
        assert!(!selector_matches(&expr("NotIn", &["prod"]), &labels));
        assert!(selector_matches(&expr("Exists", &[]), &labels));
        assert!(!selector_matches(&expr("DoesNotExist", &[]), &labels));
        assert!(!selector_matches(&expr("Bogus", &[]), &labels));
    }

    #[test]
    fn operations_match_only_their_own() {
        use RuleOperation as R;
        assert!(operation_matches(R::Delete, Operation::Delete));
        for op in [Operation::Create, Operation::Update, Operation::Connect] {
            assert!(!operation_matches(R::Delete, op), "{op:?}");
            assert!(operation_matches(R::All, op), "{op:?}");
        }
        assert!(!operation_matches(R::Update, Operation::Create));
        assert!(!operation_matches(R::Create, Operation::Update));
        assert!(!operation_matches(R::Connect, Operation::Update));
    }

    #[test]
    fn not_in_and_does_not_exist_select_what_they_say() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let requirement = |operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: "env".into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let not_in = requirement("NotIn", &["dev", "test"]);
        assert!(requirement_matches(&not_in, &labels(&[("env", "prod")])));
        assert!(
            requirement_matches(&not_in, &labels(&[])),
            "no label is not in the set"
        );
        assert!(!requirement_matches(&not_in, &labels(&[("env", "dev")])));
        let absent = requirement("DoesNotExist", &[]);
        assert!(requirement_matches(&absent, &labels(&[("team", "a")])));
        assert!(!requirement_matches(&absent, &labels(&[("env", "prod")])));
        let unknown = requirement("Sometimes", &["prod"]);
        assert!(!requirement_matches(&unknown, &labels(&[("env", "prod")])));
    }
}

//! Unit tests for the webhook configuration builder.

use super::*;

#[test]
fn url_endpoints_need_their_host_in_the_certificate() {
    let hosts = |url: &str| Endpoint::Url(url.to_owned()).hosts();
    assert_eq!(hosts("https://127.0.0.1:8443"), ["127.0.0.1"]);
    assert_eq!(hosts("https://localhost:8443/x"), ["localhost"]);
    assert_eq!(hosts("https://[::1]:8443"), ["::1"]);
    assert_eq!(hosts("webhook.example"), ["webhook.example"]);
}

#[test]
fn service_endpoints_need_every_service_name() {
    let hosts = Endpoint::Service {
        namespace: "ag".to_owned(),
        name: "gate".to_owned(),
        port: 443,
    }
    .hosts();
    assert!(hosts.contains(&"gate.ag.svc".to_owned()));
    assert!(hosts.contains(&"gate.ag.svc.cluster.local".to_owned()));
}

#[test]
fn the_guard_fails_closed_even_when_the_gate_may_fail_open() {
    let mut registration = Registration::new(Endpoint::Url("https://x".to_owned()), "ag");
    registration.failure_policy = "Ignore".to_owned();
    registration.timeout_seconds = 3;
    let config = configuration(&registration, b"ca", Vec::new());
    let webhooks = config.webhooks.unwrap();
    assert_eq!(webhooks[0].failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(webhooks[1].name, GUARD_NAME);
    assert_eq!(webhooks[1].failure_policy.as_deref(), Some("Fail"));
    assert_eq!(webhooks[1].timeout_seconds, Some(3));
}

#[test]
fn the_guard_exempts_no_node_while_the_gate_lets_nodes_recover() {
    let config = configuration(
        &Registration::new(Endpoint::Url("https://x".to_owned()), "ag"),
        b"ca",
        Vec::new(),
    );
    let webhooks = config.webhooks.unwrap();
    let exempts_nodes = |w: &ValidatingWebhook| {
        w.match_conditions
            .iter()
            .flatten()
            .any(|c| c.expression.contains("system:node:"))
    };
    assert!(exempts_nodes(&webhooks[0]));
    assert_eq!(webhooks[1].name, GUARD_NAME);
    assert!(!exempts_nodes(&webhooks[1]));
    assert_eq!(webhooks[1].match_conditions, None);
}

fn spec(rules: &str) -> ApprovalPolicySpec {
    serde_yaml_ng::from_str(&format!("rules: {rules}\napprovers: {{groups: [sre]}}\n")).unwrap()
}

fn selectors(config: &ValidatingWebhookConfiguration) -> Vec<(String, String)> {
    config
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.name != GUARD_NAME)
        .map(|w| {
            let selector = w.namespace_selector.clone().unwrap_or_default();
            let labels = selector.match_labels.unwrap_or_default();
            let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.extend(
                selector
                    .match_expressions
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} {:?}",
                            e.key,
                            e.operator,
                            e.values.clone().unwrap_or_default()
                        )
                    }),
            );
            (w.name.clone(), parts.join(" & "))
        })
        .collect()
}

fn resources(webhook: &ValidatingWebhook) -> Vec<String> {
    webhook
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect()
}

#[test]
fn rules_that_list_namespaces_reach_the_webhook_from_those_namespaces_only() {
    let a = spec(
        "[{apiGroups: [apps], resources: [deployments], operations: [UPDATE], namespaces: [prod, pay]}]",
    );
    let b = spec(
        "[{apiGroups: [''], resources: [configmaps], operations: [CREATE], namespaces: [prod], \
                  namespaceSelector: {matchLabels: {tier: one}}}]",
    );
    let registration = Registration::new(Endpoint::Url("https://x".to_owned()), "ag");
    let config = configuration(&registration, b"ca", rules_for([&a, &b]));
    let never = "kubernetes.io/metadata.name NotIn [\"kube-system\", \"ag\"]";
    assert_eq!(
        selectors(&config),
        [
            (
                WEBHOOK_NAME.to_owned(),
                format!("kubernetes.io/metadata.name In [\"pay\", \"prod\"] & {never}")
            ),
            // b also selects by label: relabelling a namespace is judged anywhere.
            (ANY_NAMESPACE_NAME.to_owned(), never.to_owned()),
        ]
    );
    let webhooks = config.webhooks.unwrap();
    assert_eq!(resources(&webhooks[0]), ["deployments", "configmaps"]);
    assert_eq!(resources(&webhooks[2]), ["namespaces"]);
}

#[test]
fn rules_without_namespaces_or_with_a_selector_get_a_webhook_of_their_own() {
    let any =
        spec("[{apiGroups: [''], resources: [namespaces], operations: [DELETE], names: [prod]}]");
    let by_label = spec(
        "[{apiGroups: [apps], resources: [deployments], operations: [UPDATE], \
                         namespaceSelector: {matchLabels: {env: prod}}}]",
    );
    let registration = Registration::new(Endpoint::Url("https://x".to_owned()), "ag");
    let config = configuration(&registration, b"ca", rules_for([&any, &by_label]));
    let never = "kubernetes.io/metadata.name NotIn [\"kube-system\", \"ag\"]";
    assert_eq!(
        selectors(&config),
        [
            (WEBHOOK_NAME.to_owned(), never.to_owned()),
            (ANY_NAMESPACE_NAME.to_owned(), never.to_owned()),
            (
                format!("selected-1.{WEBHOOK_NAME}"),
                format!("env=prod & {never}")
            ),
        ]
    );
    let webhooks = config.webhooks.unwrap();
    assert!(webhooks[0].rules.is_none());
    assert_eq!(webhooks[1].name, GUARD_NAME);
    assert_eq!(resources(&webhooks[2]), ["namespaces", "namespaces"]);
    assert_eq!(resources(&webhooks[3]), ["deployments"]);
    for gate in [&webhooks[0], &webhooks[2], &webhooks[3]] {
        assert_eq!(gate.match_conditions, Some(recovery_exemptions()));
    }
}

#[test]
fn own_namespace_and_kube_system_are_never_gated() {
    let config = configuration(
        &Registration::new(Endpoint::Url("https://x".to_owned()), "ag"),
        b"ca",
        Vec::new(),
    );
    let selector = config.webhooks.unwrap()[0]
        .namespace_selector
        .clone()
        .unwrap();
    let values = selector.match_expressions.unwrap()[0]
        .values
        .clone()
        .unwrap();
    assert_eq!(values, ["kube-system", "ag"]);
}

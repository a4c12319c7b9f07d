//! The ValidatingWebhookConfiguration that sends sensitive requests to approval-gate.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, OwnerReference,
};
use kube::api::ObjectMeta;

use crate::crd::{ApprovalPolicySpec, RuleOperation};

pub const CONFIGURATION_NAME: &str = "approval-gate";
pub const WEBHOOK_NAME: &str = "validate.approvalgate.dev";
pub const GUARD_NAME: &str = "guard.approvalgate.dev";

/// approval-gate's own resources: every write to them is judged by the guard.
pub fn guard_rules() -> Vec<RuleWithOperations> {
    let rule = |resources: &[&str], operations: &[&str]| RuleWithOperations {
        api_groups: Some(vec!["approvalgate.dev".to_owned()]),
        api_versions: Some(vec!["*".to_owned()]),
        operations: Some(operations.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        scope: Some("*".to_owned()),
    };
    vec![
        rule(&["approvalrequests"], &["CREATE", "UPDATE", "DELETE"]),
        rule(&["approvalrequests/status"], &["UPDATE"]),
        rule(&["approvalpolicies"], &["CREATE", "UPDATE"]),
    ]
}

/// How the apiserver reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A URL (local development and tests).
    Url(String),
    /// A Service in the cluster.
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

impl Endpoint {
    /// The names a serving certificate must carry for this endpoint.
    pub fn hosts(&self) -> Vec<String> {
        match self {
            Self::Url(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let authority = rest.split(['/', '?']).next().unwrap_or(rest);
                let host = match authority.strip_prefix('[') {
                    // [IPv6]:port
                    Some(v6) => v6.split(']').next().unwrap_or(v6),
                    None => authority.split(':').next().unwrap_or(authority),
                };
                vec![host.to_owned()]
            }
            Self::Service {
                namespace, name, ..
            } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
                format!("{name}.{namespace}"),
                name.clone(),
            ],
        }
    }
}

/// What the configuration is called, where it points and how it fails.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The ValidatingWebhookConfiguration's name.
    pub name: String,
    pub endpoint: Endpoint,
    /// approval-gate's namespace, never sent to the webhook.
    pub own_namespace: String,
    /// `Fail` (the default) or `Ignore`, for the sensitive rules only: the
    /// guard of approval-gate's own resources always fails closed, or an
    /// approval could be forged while the webhook is down.
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// Garbage collection removes the configuration with this owner (the
    /// chart's ClusterRole), so an uninstall cannot leave the cluster locked.
    pub owner: Option<OwnerReference>,
}

impl Registration {
    /// The safe defaults: fail closed after five seconds, no owner.
    pub fn new(endpoint: Endpoint, own_namespace: &str) -> Self {
        Self {
            name: CONFIGURATION_NAME.to_owned(),
            endpoint,
            own_namespace: own_namespace.to_owned(),
            failure_policy: "Fail".to_owned(),
            timeout_seconds: 5,
            owner: None,
        }
    }
}

/// The webhook rules that cover every policy's rules, so that only requests
/// that can matter reach the webhook; and namespace UPDATEs when a policy
/// selects namespaces by label, so that relabelling one out of scope is held.
pub fn rules_for<'a>(
    policies: impl IntoIterator<Item = &'a ApprovalPolicySpec>,
) -> Vec<RuleWithOperations> {
    let policies: Vec<&ApprovalPolicySpec> = policies.into_iter().collect();
    let mut rules = Vec::new();
    if crate::admission::matching::selects_by_label(policies.iter().copied()) {
        rules.push(RuleWithOperations {
            api_groups: Some(vec![String::new()]),
            api_versions: Some(vec!["*".to_owned()]),
            operations: Some(vec!["UPDATE".to_owned()]),
            resources: Some(vec!["namespaces".to_owned()]),
            scope: Some("*".to_owned()),
        });
    }
    for policy in policies {
        for rule in &policy.rules {
            let operations = rule
                .operations
                .iter()
                .map(|op| match op {
                    RuleOperation::Create => "CREATE",
                    RuleOperation::Update => "UPDATE",
                    RuleOperation::Delete => "DELETE",
                    RuleOperation::Connect => "CONNECT",
                    RuleOperation::All => "*",
                })
                .map(str::to_owned)
                .collect();
            let candidate = RuleWithOperations {
                api_groups: Some(rule.api_groups.clone()),
                api_versions: Some(vec!["*".to_owned()]),
                operations: Some(operations),
                resources: Some(rule.resources.clone()),
                scope: Some("*".to_owned()),
            };
            if !rules.contains(&candidate) {
                rules.push(candidate);
            }
        }
    }
    rules
}

/// The configuration, with safe defaults: fail closed with a short timeout,
/// never for kube-system or approval-gate's own namespace, and never for the
/// identities and objects a cluster needs to recover.
///
/// Every field the apiserver would default is set, so that a configuration
/// read back compares equal to the one written.
pub fn configuration(
    registration: &Registration,
    ca_bundle: &[u8],
    rules: Vec<RuleWithOperations>,
) -> ValidatingWebhookConfiguration {
    let ca_bundle = Some(ByteString(ca_bundle.to_vec()));
    let client_config = match &registration.endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(format!("{}/validate", url.trim_end_matches('/'))),
            ca_bundle,
            service: None,
        },
        Endpoint::Service {
            namespace,
            name,
            port,
        } => WebhookClientConfig {
            url: None,
            ca_bundle,
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some("/validate".to_owned()),
                port: Some(*port),
            }),
        },
    };
    let webhook = ValidatingWebhook {
        name: WEBHOOK_NAME.to_owned(),
        admission_review_versions: vec!["v1".to_owned()],
        client_config,
        failure_policy: Some(registration.failure_policy.clone()),
        match_policy: Some("Equivalent".to_owned()),
        side_effects: "NoneOnDryRun".to_owned(),
        timeout_seconds: Some(registration.timeout_seconds),
        // The apiserver stores no rules as none at all: written as an empty
        // list, the read-back would never compare equal and the leader would
        // rewrite it forever.
        rules: (!rules.is_empty()).then_some(rules),
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec![
                    "kube-system".to_owned(),
                    registration.own_namespace.clone(),
                ]),
            }]),
            match_labels: None,
        }),
        match_conditions: Some(recovery_exemptions()),
        object_selector: Some(LabelSelector::default()),
    };
    let guard = ValidatingWebhook {
        name: GUARD_NAME.to_owned(),
        rules: Some(guard_rules()),
        failure_policy: Some("Fail".to_owned()),
        // approval-gate's own namespace holds requests about cluster-scoped
        // objects; they are guarded like every other request.
        namespace_selector: Some(LabelSelector::default()),
        // No exemptions: the guard covers only approvalgate.dev's objects, which
        // no recovery needs, and a node's credentials must not write
        // approvals or requests unguarded.
        match_conditions: None,
        ..webhook.clone()
    };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(registration.name.clone()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "approval-gate".to_owned(),
                )]
                .into(),
            ),
            owner_references: registration.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![webhook, guard]),
    }
}

/// Requests that must never wait for approval-gate, so an outage of it cannot
/// deadlock the cluster.
fn recovery_exemptions() -> Vec<MatchCondition> {
    let condition = |name: &str, expression: &str| MatchCondition {
        name: name.to_owned(),
        expression: expression.to_owned(),
    };
    vec![
        condition(
            "not-a-node",
            "!request.userInfo.username.startsWith('system:node:')",
        ),
        condition(
            "not-recovery-objects",
            "!(request.resource.group in ['coordination.k8s.io', 'certificates.k8s.io'] || \
             (request.resource.group == '' && request.resource.resource == 'nodes'))",
        ),
    ]
}

#[cfg(test)]
mod tests {
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
}

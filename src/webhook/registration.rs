//! The ValidatingWebhookConfiguration that sends sensitive requests to approval-gate.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
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

/// The webhook rules that cover every policy's rules, so that only requests
/// that can matter reach the webhook.
pub fn rules_for<'a>(
    policies: impl IntoIterator<Item = &'a ApprovalPolicySpec>,
) -> Vec<RuleWithOperations> {
    let mut rules = Vec::new();
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
pub fn configuration(
    endpoint: &Endpoint,
    ca_bundle: &[u8],
    rules: Vec<RuleWithOperations>,
    own_namespace: &str,
) -> ValidatingWebhookConfiguration {
    let client_config = match endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(format!("{}/validate", url.trim_end_matches('/'))),
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
            service: None,
        },
        Endpoint::Service {
            namespace,
            name,
            port,
        } => WebhookClientConfig {
            url: None,
            ca_bundle: Some(ByteString(ca_bundle.to_vec())),
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
        failure_policy: Some("Fail".to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        side_effects: "NoneOnDryRun".to_owned(),
        timeout_seconds: Some(5),
        rules: Some(rules),
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec!["kube-system".to_owned(), own_namespace.to_owned()]),
            }]),
            match_labels: None,
        }),
        match_conditions: Some(recovery_exemptions()),
        object_selector: None,
    };
    let guard = ValidatingWebhook {
        name: GUARD_NAME.to_owned(),
        rules: Some(guard_rules()),
        // approval-gate's own namespace holds requests about cluster-scoped
        // objects; they are guarded like every other request.
        namespace_selector: None,
        ..webhook.clone()
    };
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(CONFIGURATION_NAME.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "approval-gate".to_owned(),
                )]
                .into(),
            ),
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

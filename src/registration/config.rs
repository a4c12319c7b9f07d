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
/// The webhook for rules that apply in any namespace.
pub const ANY_NAMESPACE_NAME: &str = "any-namespace.validate.approvalgate.dev";
/// The label the apiserver puts on every namespace: its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

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

/// Which namespaces a group of webhook rules can apply to. The apiserver
/// sends a request to a webhook only when the namespace matches, so while
/// approval-gate is down, a namespace no policy names or selects works.
#[derive(Clone, Debug, PartialEq)]
pub enum NamespaceScope {
    /// Any namespace (a rule that names none, or selects by label to hold a
    /// relabel out of scope: the new labels may no longer match).
    Any,
    /// The namespaces the policies' rules list, all of them together.
    Named(std::collections::BTreeSet<String>),
    /// The namespaces a rule's `namespaceSelector` selects.
    Selected(LabelSelector),
}

/// Webhook rules and the namespaces they can apply to.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopedRules {
    pub scope: NamespaceScope,
    pub rules: Vec<RuleWithOperations>,
}

/// The webhook rules that cover every policy's rules, so that only requests
/// that can matter reach the webhook, grouped by the namespaces they can
/// apply to; and namespace UPDATEs when a policy selects namespaces by
/// label, so that relabelling one out of scope is held. A rule that lists
/// namespaces is scoped to them even when it also selects by label (a rule
/// needs both), so a group may send more than its rules need, never less.
pub fn rules_for<'a>(
    policies: impl IntoIterator<Item = &'a ApprovalPolicySpec>,
) -> Vec<ScopedRules> {
    let policies: Vec<&ApprovalPolicySpec> = policies.into_iter().collect();
    let mut any = Vec::new();
    let mut named = (std::collections::BTreeSet::new(), Vec::new());
    let mut selected: Vec<(LabelSelector, Vec<RuleWithOperations>)> = Vec::new();
    if crate::admission::matching::selects_by_label(policies.iter().copied()) {
        any.push(RuleWithOperations {
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
            let group = if !rule.namespaces.is_empty() {
                named.0.extend(rule.namespaces.iter().cloned());
                &mut named.1
            } else if let Some(selector) = &rule.namespace_selector {
                let at = match selected.iter().position(|(s, _)| s == selector) {
                    Some(at) => at,
                    None => {
                        selected.push((selector.clone(), Vec::new()));
                        selected.len() - 1
                    }
                };
                &mut selected[at].1
            } else {
                &mut any
            };
            if !group.contains(&candidate) {
                group.push(candidate);
            }
        }
    }
    let mut groups = vec![ScopedRules {
        scope: NamespaceScope::Named(named.0),
        rules: named.1,
    }];
    if !any.is_empty() {
        groups.push(ScopedRules {
            scope: NamespaceScope::Any,
            rules: any,
        });
    }
    groups.extend(selected.into_iter().map(|(selector, rules)| ScopedRules {
        scope: NamespaceScope::Selected(selector),
        rules,
    }));
    groups
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
    groups: Vec<ScopedRules>,
) -> ValidatingWebhookConfiguration {
    let client_config = client_config(&registration.endpoint, ca_bundle);
    let never = LabelSelectorRequirement {
        key: NAMESPACE_NAME_LABEL.to_owned(),
        operator: "NotIn".to_owned(),
        values: Some(vec![
            "kube-system".to_owned(),
            registration.own_namespace.clone(),
        ]),
    };
    let gate = |name: String, scope: &NamespaceScope, rules: Vec<RuleWithOperations>| {
        let mut selector = selector_of(scope);
        selector
            .match_expressions
            .get_or_insert_with(Vec::new)
            .push(never.clone());
        ValidatingWebhook {
            name,
            admission_review_versions: vec!["v1".to_owned()],
            client_config: client_config.clone(),
            failure_policy: Some(registration.failure_policy.clone()),
            match_policy: Some("Equivalent".to_owned()),
            side_effects: "NoneOnDryRun".to_owned(),
            timeout_seconds: Some(registration.timeout_seconds),
            // The apiserver stores no rules as none at all: written as an
            // empty list, the read-back would never compare equal and the
            // leader would rewrite it forever.
            rules: (!rules.is_empty()).then_some(rules),
            namespace_selector: Some(selector),
            match_conditions: Some(recovery_exemptions()),
            object_selector: Some(LabelSelector::default()),
        }
    };
    // The first group (the listed namespaces) is always there, under the
    // webhook's well-known name; the others only when they have rules.
    let mut groups = groups.into_iter();
    let first = groups.next().unwrap_or(ScopedRules {
        scope: NamespaceScope::Named(std::collections::BTreeSet::new()),
        rules: Vec::new(),
    });
    let webhook = gate(WEBHOOK_NAME.to_owned(), &first.scope, first.rules);
    let mut selected = 0;
    let scoped: Vec<ValidatingWebhook> = groups
        .filter(|g| !g.rules.is_empty())
        .map(|g| {
            let name = match &g.scope {
                NamespaceScope::Any => ANY_NAMESPACE_NAME.to_owned(),
                NamespaceScope::Named(_) | NamespaceScope::Selected(_) => {
                    selected += 1;
                    format!("selected-{selected}.{WEBHOOK_NAME}")
                }
            };
            gate(name, &g.scope, g.rules)
        })
        .collect();
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
        webhooks: Some([vec![webhook, guard], scoped].concat()),
    }
}

/// Where the apiserver sends reviews: the URL or the Service, on `/validate`.
fn client_config(endpoint: &Endpoint, ca_bundle: &[u8]) -> WebhookClientConfig {
    let ca_bundle = Some(ByteString(ca_bundle.to_vec()));
    match endpoint {
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
    }
}

/// The namespaces a group of rules applies in, as a selector.
fn selector_of(scope: &NamespaceScope) -> LabelSelector {
    match scope {
        NamespaceScope::Any => LabelSelector::default(),
        // `In` needs a value; with none listed the webhook has no rules.
        NamespaceScope::Named(names) if names.is_empty() => LabelSelector::default(),
        NamespaceScope::Named(names) => LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: "In".to_owned(),
                values: Some(names.iter().cloned().collect()),
            }]),
            match_labels: None,
        },
        NamespaceScope::Selected(selector) => selector.clone(),
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
#[path = "config_tests.rs"]
mod tests;

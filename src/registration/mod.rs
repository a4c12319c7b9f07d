//! Everything about the ValidatingWebhookConfiguration that sends requests to
//! approval-gate, and its certificates: the configuration built from the
//! ApprovalPolicies ([`config`]), the serving certificate Secret the leader
//! issues and rotates ([`issuer`]), and the loop that keeps both in place
//! ([`maintain`]).

pub mod config;
pub mod issuer;
mod reconciler;

pub use config::{
    ANY_NAMESPACE_NAME, CONFIGURATION_NAME, Endpoint, GUARD_NAME, NamespaceScope, Registration,
    ScopedRules, WEBHOOK_NAME, configuration, guard_rules, rules_for,
};
pub use reconciler::{Refusal, Refusals, RegistrationConfig, maintain, owner_reference};

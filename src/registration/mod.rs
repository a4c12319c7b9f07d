//! Everything about the ValidatingWebhookConfiguration that sends requests to
//! approval-gate, and its certificates: the configuration built from the
//! ApprovalPolicies ([`config`]), the serving certificate Secret the leader
//! issues and rotates ([`issuer`]), and the loop that keeps both in place
//! ([`maintain`]).

pub mod config;
pub mod issuer;
mod reconciler;
mod refusals;

pub use config::{
    ANY_NAMESPACE_NAME, CONFIGURATION_NAME, Endpoint, GUARD_NAME, NamespaceScope, Registration,
    ScopedRules, WEBHOOK_NAME, configuration, guard_rules, rules_for,
};
pub use reconciler::{RegistrationConfig, maintain, owner_reference};
pub use refusals::{Refusal, Refusals};

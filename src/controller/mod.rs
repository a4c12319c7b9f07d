//! The reconcilers: keep ApprovalRequests truthful over time (phase, expiry
//! on the dot, retention, the audit trail, notifications) and show each
//! ApprovalPolicy's readiness. [`crate::operator`] runs them on the leader.

mod confirm;
pub mod notifications;
pub mod plan;
pub mod policy;
pub mod request;
mod supersede;

use std::{sync::Arc, time::Duration};

use kube::{
    Client, Resource, ResourceExt as _,
    runtime::{controller::Action, reflector::Store},
};

use crate::{
    crd::{ApprovalPolicy, ApprovalRequest},
    error::{Error, report},
    events::{EventQueue, Note},
    metrics::{ErrorLabels, Metrics},
    registration,
};
use notifications::Outbox;

/// What reconcilers share.
pub struct Context {
    pub client: Client,
    pub policies: Store<ApprovalPolicy>,
    /// Every request, for the newest-wins rule among a requester's requests.
    pub requests: Store<ApprovalRequest>,
    /// Policies whose webhook rules the apiserver refused.
    pub refused: registration::Refusals,
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    pub retention: Duration,
    /// How long after a use its write must show on the object.
    pub use_confirm_window: Duration,
    /// Delivers notifications off the reconcile.
    pub outbox: Outbox,
}

/// Bounded concurrency: kube-client speaks HTTP/1.1, so every reconcile in
/// flight holds a connection. Unbounded, 10,000 requests at start-up opened
/// about 11,000 sockets and overflowed the apiserver's accept queue.
pub fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY)
}

const RECONCILE_CONCURRENCY: u16 = 32;

/// A failed reconcile: logged with its whole cause, counted, and published
/// as a Warning Event on the object (bounded, folded into a series by the
/// recorder when it repeats); then retried.
pub fn error_policy<K>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let controller = K::kind(&()).to_lowercase();
    tracing::warn!(
        error = %report(error),
        controller,
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        "reconcile failed; retrying"
    );
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            controller,
            error: error.metric_label().to_owned(),
        })
        .inc();
    ctx.events.send(Note::failure(obj.object_ref(&()), error));
    Action::requeue(Duration::from_secs(5))
}

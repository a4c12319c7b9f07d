//! The ApprovalRequest reconciler: carries out [`super::plan::plan`].

use std::{sync::Arc, time::Instant};

use jiff::Timestamp;
use kube::{
    Api, ResourceExt as _,
    api::{DeleteParams, PostParams, Preconditions},
    runtime::{controller::Action, reflector::ObjectRef},
};

use super::{Context, audit, notifications, plan::plan};
use crate::{
    crd::{ApprovalRequest, Transition},
    error::{Error, Result},
    metrics::{ControllerLabels, OutcomeLabels},
};

pub async fn reconcile(req: Arc<ApprovalRequest>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.metrics
        .reconciles
        .get_or_create(&ControllerLabels {
            controller: "approvalrequest".to_owned(),
        })
        .inc();
    let policy = ctx
        .policies
        .get(&ObjectRef::new(&req.spec.policy))
        .map(|p| p.spec.clone());
    let now = Timestamp::now();
    let plan = plan(&req, policy.as_ref(), now, ctx.retention);
    let ns = req.namespace().unwrap_or_default();
    let api = Api::<ApprovalRequest>::namespaced(ctx.client.clone(), &ns);
    if plan.delete {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: req.uid(),
                resource_version: req.resource_version(),
            }),
            ..DeleteParams::default()
        };
        match api.delete(&req.name_any(), &params).await {
            Ok(_) => {
                tracing::info!(namespace = %ns, request = %req.name_any(), phase = %req.phase(), "retention over: deleted a finished request")
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
        return Ok(Action::await_change());
    }
    let mut current = Arc::clone(&req);
    if let Some(status) = plan.status {
        let mut next = (*req).clone();
        next.status = Some(status);
        next.metadata.managed_fields = None;
        // Conditioned on the resourceVersion we planned from: of two leaders
        // (or a restart) only one write wins, and only the winner records.
        match api
            .replace_status(&req.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(written) => {
                for transition in &plan.record {
                    audit::record(&ctx.events, &ctx.metrics, &written, *transition).await;
                    observe_decision(&ctx.metrics, &written, *transition, now);
                }
                current = Arc::new(written);
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                return Ok(Action::await_change());
            }
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    // Only after the transition is recorded: what is told is what the audit shows.
    let retry = match policy.as_ref() {
        Some(policy) => notifications::send(&ctx, &current, policy).await?,
        None => None,
    };
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let next = match (plan.requeue_after, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Counts a recorded transition in the decision metrics (approval rate,
/// time to decision, expiries): by whoever records it, operator or webhook.
pub fn observe_decision(
    metrics: &crate::metrics::Metrics,
    req: &ApprovalRequest,
    transition: Transition,
    now: Timestamp,
) {
    if transition == Transition::Expired {
        metrics.request_expiries.inc();
    }
    if !matches!(transition, Transition::Approved | Transition::Denied) {
        return;
    }
    metrics
        .request_decisions
        .get_or_create(&OutcomeLabels {
            outcome: transition.as_str().to_owned(),
        })
        .inc();
    if let Some(created) = req.metadata.creation_timestamp.as_ref() {
        let secs = now.duration_since(created.0).as_secs_f64().max(0.0);
        metrics.time_to_decision.observe(secs);
    }
}

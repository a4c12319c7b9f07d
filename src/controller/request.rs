//! The ApprovalRequest reconciler: carries out [`super::plan::plan`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use kube::{
    Api, ResourceExt as _,
    api::{DeleteParams, PostParams, Preconditions},
    core::DynamicObject,
    runtime::{controller::Action, reflector::ObjectRef},
};

use super::{
    Context, confirm, notifications,
    plan::plan,
    supersede::{Supersede, mark, supersede},
};
use crate::{
    audit,
    crd::{ApprovalRequest, ApprovalRequestStatus, Phase, Transition, UseCheck},
    error::{Error, Result},
    lifecycle::{Terms, evaluate},
    metrics::{ControllerLabels, Metrics},
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
    // A use is checked before its request goes: the audit trail comes first.
    if plan.delete && confirm::next(&req) == confirm::Next::Nothing {
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
    let phase = evaluate(
        &req,
        &Terms {
            policy: policy.as_ref(),
        },
        now,
    )
    .phase;
    // Only a Pending request has siblings to weigh: skip the scan otherwise.
    let rule = if phase == Phase::Pending {
        supersede(&req, &ctx.requests.state(), policy.as_ref(), now)
    } else {
        Supersede::default()
    };
    let plan = match &rule.by {
        Some(by) => super::plan::plan(&mark(&req, by, now), policy.as_ref(), now, ctx.retention),
        None => plan,
    };
    let Some(current) = carry_out(&api, &ctx, &req, plan.status, &plan.record, now).await? else {
        return Ok(Action::await_change());
    };
    // The newest request closes the older ones (in its namespace), so that
    // each is final at once rather than when it is next looked at.
    for older in &rule.older {
        let marked = mark(older, &req.name_any(), now);
        let step = super::plan::plan(&marked, policy.as_ref(), now, ctx.retention);
        carry_out(&api, &ctx, older, step.status, &step.record, now).await?;
    }
    // Only after the transition is recorded: what is told is what the audit
    // shows. A request that replaced another waits until the burst settles.
    let settle = rule
        .announce_at
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO));
    let announce_later = match (policy.as_ref(), settle) {
        (Some(_), Some(wait)) => Some(wait),
        (Some(policy), None) => {
            if !notifications::due(&current, policy, now).is_empty() {
                ctx.outbox.enqueue(&current);
            }
            None
        }
        (None, _) => None,
    };
    let check = match confirm::next(&current) {
        confirm::Next::Look => check_use(&api, &ctx, &current).await?,
        confirm::Next::Nothing => None,
    };
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let follow_up = policy
        .as_ref()
        .and_then(|p| notifications::next_follow_up(&current, p, now));
    let next = [plan.requeue_after, announce_later, check, follow_up]
        .into_iter()
        .flatten()
        .min();
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Writes `status` (when there is one) conditioned on the resourceVersion the
/// plan was made from, then records `record`: of two leaders (or a restart)
/// only one write wins, and only the winner records. `None` when another
/// write came first or the request is gone.
async fn carry_out(
    api: &Api<ApprovalRequest>,
    ctx: &Context,
    req: &Arc<ApprovalRequest>,
    status: Option<ApprovalRequestStatus>,
    record: &[Transition],
    now: Timestamp,
) -> Result<Option<Arc<ApprovalRequest>>> {
    let Some(status) = status else {
        return Ok(Some(Arc::clone(req)));
    };
    let mut next = (**req).clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    match api
        .replace_status(&req.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(written) => {
            for transition in record {
                audit::record(&ctx.events, &ctx.metrics, &written, *transition, now).await;
            }
            Ok(Some(Arc::new(written)))
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(None),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Looks at the object a recorded use was for; records what it shows, or
/// says when to look again.
async fn check_use(
    api: &Api<ApprovalRequest>,
    ctx: &Context,
    req: &Arc<ApprovalRequest>,
) -> Result<Option<Duration>> {
    let seen = look(ctx, &req.spec.target).await?;
    let result = match confirm::judge(req, &seen, Timestamp::now(), ctx.use_confirm_window) {
        Ok(result) => result,
        Err(again) => return Ok(Some(again)),
    };
    let mut next = (**req).clone();
    next.status.get_or_insert_with(Default::default).use_check = Some(result);
    next.metadata.managed_fields = None;
    match api
        .replace_status(&req.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(written) => {
            Metrics::count(
                &ctx.metrics.use_checks,
                match result {
                    UseCheck::Confirmed => "confirmed",
                    UseCheck::Unconfirmed => "unconfirmed",
                    UseCheck::Unverifiable => "unverifiable",
                },
            );
            if result == UseCheck::Unconfirmed {
                audit::unconfirmed(&ctx.events, &written, ctx.use_confirm_window).await;
            }
            Ok(None)
        }
        // Another writer came first: the next pass sees its version.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(None),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// The target as it is now, found through discovery (a CRD's objects too).
async fn look(ctx: &Context, target: &crate::crd::Target) -> Result<confirm::Seen> {
    let discovery = kube::Discovery::new(ctx.client.clone())
        .filter(&[target.api_group.as_str()])
        .run()
        .await
        .map_err(Error::Kube)?;
    let found = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.plural == target.resource);
    let Some((resource, caps)) = found else {
        // The kind itself is gone: so is the object.
        return Ok(confirm::Seen::Gone);
    };
    let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
        Api::namespaced_with(ctx.client.clone(), &target.namespace, &resource)
    } else {
        Api::all_with(ctx.client.clone(), &resource)
    };
    let got = match target.subresource.as_deref() {
        Some(sub) => api.get_subresource(sub, &target.name).await,
        None => api.get(&target.name).await,
    };
    Ok(match got {
        Ok(o) => confirm::Seen::Object(serde_json::to_value(o).map_err(Error::Json)?),
        Err(kube::Error::Api(s)) if s.code == 404 => confirm::Seen::Gone,
        Err(kube::Error::Api(s)) if s.code == 403 => confirm::Seen::Forbidden,
        Err(e) => return Err(Error::Kube(e)),
    })
}

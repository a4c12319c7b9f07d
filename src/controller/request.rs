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
    crd::{
        ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, Phase, Transition, UseCheck,
    },
    error::{Error, Result},
    lifecycle::{Terms, evaluate},
    metrics::{ControllerLabels, Metrics},
};

/// One pass over a request: one clock reading, at most one write of its
/// status (the plan and a use check together), Events for what it records,
/// and notifications handed to the outbox.
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(
        uid = req.metadata.uid.as_deref().unwrap_or_default(),
        namespace = req.metadata.namespace.as_deref().unwrap_or_default(),
        request = req.metadata.name.as_deref().unwrap_or_default(),
        user = %req.spec.requester,
        operation = %req.spec.operation,
        target = %req.spec.target,
        policy = %req.spec.policy,
    )
)]
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
    let first = plan(&req, policy.as_ref(), now, ctx.retention);
    let api = Api::<ApprovalRequest>::namespaced(
        ctx.client.clone(),
        &req.namespace().unwrap_or_default(),
    );
    // A use is checked before its request goes: the audit trail comes first.
    if first.delete && confirm::next(&req) == confirm::Next::Nothing {
        delete(&api, &req).await?;
        return Ok(Action::await_change());
    }
    let rule = siblings(&ctx, &req, policy.as_ref(), now);
    let mut step = match &rule.by {
        Some(by) => plan(&mark(&req, by, now), policy.as_ref(), now, ctx.retention),
        None => first,
    };
    let check = check_use(&ctx, &req, now).await?;
    if let Checked::Judged(result) = check {
        step.status
            .get_or_insert_with(|| req.status.clone().unwrap_or_default())
            .use_check = Some(result);
    }
    let Some(current) = carry_out(&api, &ctx, &req, step.status, &step.record, now).await? else {
        return Ok(Action::await_change());
    };
    if let Checked::Judged(result) = check {
        checked(&ctx, &current, result).await;
    }
    // The newest request closes the older ones (in its namespace), so that
    // each is final at once rather than when it is next looked at.
    for older in &rule.older {
        let marked = mark(older, &req.name_any(), now);
        let closing = plan(&marked, policy.as_ref(), now, ctx.retention);
        carry_out(&api, &ctx, older, closing.status, &closing.record, now).await?;
    }
    let announce_later = announce(&ctx, &current, policy.as_ref(), rule.announce_at, now);
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let follow_up = policy
        .as_ref()
        .and_then(|p| notifications::next_follow_up(&current, p, now));
    let look_again = match check {
        Checked::Again(after) => Some(after),
        Checked::Judged(_) | Checked::Nothing => None,
    };
    let next = [step.requeue_after, announce_later, look_again, follow_up]
        .into_iter()
        .flatten()
        .min();
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

/// Retention is over: deletes the request, if it is still the version judged.
async fn delete(api: &Api<ApprovalRequest>, req: &ApprovalRequest) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: req.uid(),
            resource_version: req.resource_version(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(&req.name_any(), &params).await {
        Ok(_) => {
            tracing::info!(
                namespace = %req.namespace().unwrap_or_default(),
                request = %req.name_any(),
                phase = %req.phase(),
                "retention over: deleted a finished request"
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// The newest-wins rule among a Pending request's siblings.
fn siblings(
    ctx: &Context,
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    now: Timestamp,
) -> Supersede {
    let phase = evaluate(req, &Terms { policy }, now).phase;
    // Only a Pending request has siblings to weigh: skip the scan otherwise.
    if phase == Phase::Pending {
        supersede(req, &ctx.requests.state(), policy, now)
    } else {
        Supersede::default()
    }
}

/// Hands what is due about `current` to the outbox: only after the transition
/// is recorded, so what is told is what the audit shows. A request that
/// replaced another waits until the burst settles; returns when to look again.
fn announce(
    ctx: &Context,
    current: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    announce_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    let policy = policy?;
    if let Some(at) = announce_at {
        return Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO));
    }
    if !notifications::due(current, policy, now).is_empty() {
        ctx.outbox.enqueue(current);
    }
    None
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

/// What checking a recorded use found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checked {
    /// No use to check.
    Nothing,
    /// Not settled yet: look again after this long.
    Again(Duration),
    /// The result, to write with the status.
    Judged(UseCheck),
}

/// Looks at the object a recorded use was for, if there is one to check.
async fn check_use(ctx: &Context, req: &ApprovalRequest, now: Timestamp) -> Result<Checked> {
    if confirm::next(req) == confirm::Next::Nothing {
        return Ok(Checked::Nothing);
    }
    let seen = look(ctx, &req.spec.target).await?;
    Ok(
        match confirm::judge(req, &seen, now, ctx.use_confirm_window) {
            Ok(result) => Checked::Judged(result),
            Err(again) => Checked::Again(again),
        },
    )
}

/// A use check written with the status: counted, and an unconfirmed use
/// reported.
async fn checked(ctx: &Context, written: &ApprovalRequest, result: UseCheck) {
    Metrics::count(
        &ctx.metrics.use_checks,
        match result {
            UseCheck::Confirmed => "confirmed",
            UseCheck::Unconfirmed => "unconfirmed",
            UseCheck::Unverifiable => "unverifiable",
        },
    );
    if result == UseCheck::Unconfirmed {
        audit::unconfirmed(&ctx.events, written, ctx.use_confirm_window).await;
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

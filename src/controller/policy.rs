//! The ApprovalPolicy reconciler: a Ready condition and observedGeneration.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};

use super::Context;
use crate::{
    admission::guard::review_policy,
    crd::ApprovalPolicy,
    error::{Error, Result},
    metrics::ControllerLabels,
};

pub async fn reconcile(policy: Arc<ApprovalPolicy>, ctx: Arc<Context>) -> Result<Action> {
    ctx.metrics
        .reconciles
        .get_or_create(&ControllerLabels {
            controller: "approvalpolicy".to_owned(),
        })
        .inc();
    let problems = review_policy(&policy.spec);
    let (status, reason, message) = if problems.is_empty() {
        ("True", "Valid", "the policy is in force".to_owned())
    } else {
        ("False", "Invalid", problems.join("; "))
    };
    let current = policy.status.clone().unwrap_or_default();
    let previous = current.conditions.iter().find(|c| c.type_ == "Ready");
    let unchanged = previous
        .is_some_and(|c| c.status == status && c.reason == reason && c.message == message)
        && current.observed_generation == policy.metadata.generation;
    if unchanged {
        return Ok(Action::await_change());
    }
    let since = previous
        .filter(|c| c.status == status)
        .map_or(Time(Timestamp::now()), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: "Ready".to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: since,
        observed_generation: policy.metadata.generation,
    };
    let patch = serde_json::json!({"status": {
        "observedGeneration": policy.metadata.generation,
        "conditions": [condition],
    }});
    Api::<ApprovalPolicy>::all(ctx.client.clone())
        .patch_status(
            &policy.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::Kube)?;
    Ok(Action::await_change())
}

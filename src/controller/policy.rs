//! The ApprovalPolicy reconciler: the Ready and CoverageGap conditions and observedGeneration.

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
    admission::{coverage, guard::review_policy},
    crd::ApprovalPolicy,
    error::{Error, Result},
    metrics::ControllerLabels,
};

#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(policy = policy.metadata.name.as_deref().unwrap_or_default())
)]
pub async fn reconcile(policy: Arc<ApprovalPolicy>, ctx: Arc<Context>) -> Result<Action> {
    ctx.metrics
        .reconciles
        .get_or_create(&ControllerLabels {
            controller: "approvalpolicy".to_owned(),
        })
        .inc();
    let problems = review_policy(&policy.spec);
    let (status, reason, message) = match ctx.refused.of(&policy) {
        Some(refusal) => (
            "False",
            "RegistrationRefused",
            format!(
                "the apiserver refused this policy's rules in the webhook configuration, so it \
                 is not enforced (every other policy is): {refusal}"
            ),
        ),
        None if problems.is_empty() => ("True", "Valid", "the policy is in force".to_owned()),
        None => ("False", "Invalid", problems.join("; ")),
    };
    let gap = coverage::describe(&policy.spec);
    let (gap_status, gap_reason, gap_message) = match &gap {
        Some(text) => ("True", "SiblingsNotGated", text.clone()),
        None => (
            "False",
            "Covered",
            "no path to the same access is left ungated".to_owned(),
        ),
    };
    let current = policy.status.clone().unwrap_or_default();
    let wanted = [
        ("Ready", status, reason, message),
        ("CoverageGap", gap_status, gap_reason, gap_message),
    ];
    let same = |type_: &str, status: &str, reason: &str, message: &str| {
        current.conditions.iter().any(|c| {
            c.type_ == type_ && c.status == status && c.reason == reason && c.message == message
        })
    };
    let unchanged = wanted.iter().all(|(t, s, r, m)| same(t, s, r, m))
        && current.observed_generation == policy.metadata.generation;
    if unchanged {
        return Ok(Action::await_change());
    }
    if let Some(text) = &gap
        && !same("CoverageGap", "True", "SiblingsNotGated", text)
    {
        tracing::warn!(policy = %policy.name_any(), gap = %text, "the policy leaves a path to the same access ungated");
    }
    let now = Time(Timestamp::now());
    let conditions: Vec<Condition> = wanted
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let since = current
                .conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map_or(now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message,
                last_transition_time: since,
                observed_generation: policy.metadata.generation,
            }
        })
        .collect();
    let patch = serde_json::json!({"status": {
        "observedGeneration": policy.metadata.generation,
        "conditions": conditions,
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

//! The edge of the guard: approvalgate.dev objects in, a verdict out. The
//! rules themselves are pure functions in [`crate::admission::guard`].

use std::collections::HashMap;

use jiff::Timestamp;
use kube::core::admission::{AdmissionResponse, Operation};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{Webhook, deny};
use crate::{
    admission::{
        Review,
        guard::{self, Actor, Violation},
    },
    crd::{ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest},
    events::{Note, Reason},
};

pub const GROUP: &str = "approvalgate.dev";

pub fn review(webhook: &Webhook, req: &Review<'_>) -> AdmissionResponse {
    let mut response = req.response();
    let Some(user) = req.user_info.username.as_deref() else {
        return deny(
            response,
            400,
            "approval-gate cannot read the request: no userInfo.username",
        );
    };
    let groups = req.user_info.groups.clone().unwrap_or_default();
    let actor = Actor {
        user,
        groups: &groups,
    };
    let verdict = judge(webhook, req, &actor);
    let label = if verdict.is_ok() {
        "allowed"
    } else {
        "rejected"
    };
    webhook.metrics.count_decision("guard", label);
    response.audit_annotations = HashMap::from([("guard".to_owned(), label.to_owned())]);
    match verdict {
        Ok(()) => response,
        Err(v) => {
            tracing::info!(user, rule = v.rule, resource = %req.resource.resource, name = %req.name, "guard rejected a write");
            response
                .audit_annotations
                .insert("guard-rule".to_owned(), v.rule.to_owned());
            if !req.dry_run && req.resource.resource == "approvalrequests" {
                webhook.events.send(Note {
                    regarding: crate::events::request_reference(
                        req.namespace.as_deref().unwrap_or_default(),
                        &req.name,
                        None,
                    ),
                    warning: true,
                    reason: Reason::Rejected,
                    action: "Guard",
                    note: format!("{user}: {} [{}]", v.message, v.rule),
                });
            }
            deny(
                response,
                403,
                &format!("approval-gate: {} [rule: {}]", v.message, v.rule),
            )
        }
    }
}

fn judge(webhook: &Webhook, req: &Review<'_>, actor: &Actor<'_>) -> Result<(), Violation> {
    let config = &webhook.config.guard;
    let sub = req.sub_resource.as_deref().unwrap_or_default();
    match (req.resource.resource.as_str(), sub, &req.operation) {
        ("approvalrequests", "", Operation::Create) => {
            let new: ApprovalRequest = object(req.object())?;
            let policy = policy_spec(webhook, &new.spec.policy);
            guard::review_create(&new, actor, policy.as_ref(), config)
        }
        ("approvalrequests", "", Operation::Update) => {
            guard::review_update(&object(req.old_object)?, &object(req.object())?)
        }
        ("approvalrequests", "", Operation::Delete) => {
            guard::review_delete(&object(req.old_object)?, actor, config)
        }
        ("approvalrequests", "status", Operation::Update) => {
            let old: ApprovalRequest = object(req.old_object)?;
            let new: ApprovalRequest = object(req.object())?;
            let policy = policy_spec(webhook, &old.spec.policy);
            guard::review_status(&old, &new, actor, policy.as_ref(), config, Timestamp::now())
        }
        ("approvalpolicies", "", Operation::Create | Operation::Update) => {
            let policy: ApprovalPolicy = object(req.object())?;
            let problems = guard::review_policy(&policy.spec);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(Violation {
                    rule: "valid-policy",
                    message: format!("invalid ApprovalPolicy: {}", problems.join("; ")),
                })
            }
        }
        _ => Ok(()),
    }
}

fn policy_spec(webhook: &Webhook, name: &str) -> Option<ApprovalPolicySpec> {
    let index = webhook.index.read().ok()?;
    index.policy(name).map(|p| p.spec.clone())
}

fn object<T: DeserializeOwned>(obj: Option<&RawValue>) -> Result<T, Violation> {
    let unreadable = |why: String| Violation {
        rule: "readable-object",
        message: format!("the object cannot be read: {why}"),
    };
    let obj =
        obj.ok_or_else(|| unreadable("it is missing from the admission request".to_owned()))?;
    serde_json::from_str(obj.get()).map_err(|e| unreadable(e.to_string()))
}

//! One admission: decide, apply the effects, and say why.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{ResourceExt as _, core::admission::AdmissionResponse};
use serde_json::{Value, value::RawValue};
use tracing::Instrument as _;

use super::{
    Webhook, deny,
    effects::{Created, Use, create_request, record_use},
};
use crate::{
    admission::{
        Attempt, Decision, Review,
        decision::{VerdictKind, decide_matched, matching},
        message::{self, RequestState},
    },
    change::{self, Action, Redactor},
    crd::ApprovalPolicy,
    error::report,
    events::{Note, Reason},
    metrics::Metrics,
};

pub async fn admit(webhook: &Webhook, review: &Review<'_>) -> AdmissionResponse {
    let response = review.response();
    if !webhook.ready.is_ready() {
        return deny(
            response,
            503,
            "approval-gate is starting and has not synced its caches yet; retry shortly",
        );
    }
    if review.resource.group == super::approval_writes::GROUP {
        return super::approval_writes::review(webhook, review);
    }
    let mut objects = review.objects();
    let mut attempt = match Attempt::read(review, &mut objects) {
        Ok(attempt) => attempt,
        Err(e) => {
            return deny(
                response,
                400,
                &format!("approval-gate cannot read the request: {e}"),
            );
        }
    };
    let (decision, span) = {
        let Ok(index) = webhook.index.read() else {
            return deny(response, 500, "approval-gate's index is unavailable");
        };
        // Rules are matched once; the verdicts carry the policies found.
        let matched = matching(&index, &attempt);
        if matched.is_empty() {
            // Not gated: allowed without parsing the objects further.
            return response;
        }
        attempt.complete(review, &mut objects);
        let span = span_of(&attempt, &matched);
        let decision = span.in_scope(|| {
            decide_matched(
                &attempt,
                matched,
                &index,
                &webhook.config.decision,
                Timestamp::now(),
            )
        });
        (decision, span)
    };
    carry_out(webhook, review, &attempt, decision, response)
        .instrument(span)
        .await
}

/// A span per gated admission: every line logged while judging it names the
/// request it is about.
///
/// Its fields are only written when a subscriber takes the span: the bench
/// servers (and a process logging at warn) pay nothing for it.
fn span_of(attempt: &Attempt, matched: &[Arc<ApprovalPolicy>]) -> tracing::Span {
    tracing::info_span!(
        "admission",
        uid = %attempt.uid,
        user = %attempt.user,
        operation = %attempt.operation,
        target = %attempt.target,
        namespace = %attempt.target.namespace,
        policy = %Names(matched),
    )
}

/// The policies' names, comma-separated, written only when displayed.
struct Names<'a>(&'a [Arc<ApprovalPolicy>]);

impl std::fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(p.metadata.name.as_deref().unwrap_or_default())?;
        }
        Ok(())
    }
}

/// Answers a gated admission as `decision` says, with its effects: the
/// pending request on a hold, the use of a single-use approval on a grant.
async fn carry_out(
    webhook: &Webhook,
    review: &Review<'_>,
    attempt: &Attempt,
    decision: Decision,
    mut response: AdmissionResponse,
) -> AdmissionResponse {
    for v in &decision.verdicts {
        webhook
            .metrics
            .count_decision(v.name(), decision.verdict_label());
    }
    response.audit_annotations = message::audit_annotations(&decision);
    let warnings = message::warnings(attempt, &decision);
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    if let Some((verdict, hold)) = decision.held() {
        let created = if attempt.dry_run || hold.name.is_empty() {
            None
        } else {
            // Boxed, as is recording a use: the API call's future is large,
            // and unboxed every admission's future would carry its size
            // through axum's layers (see the handler's tests).
            Box::pin(hold_effects(
                webhook,
                review,
                attempt,
                &verdict.policy,
                hold,
            ))
            .await
        };
        let why = match &created {
            Some(Created::Failed(e)) => report(e),
            _ => String::new(),
        };
        let state = match (&created, hold.create.is_some()) {
            (_, false) => RequestState::Pending,
            (None, true) => RequestState::WouldBeCreated,
            (Some(Created::New | Created::AlreadyExists), true) => RequestState::Created,
            (Some(Created::TimedOut), true) => RequestState::Creating,
            (Some(Created::Failed(_)), true) => RequestState::Failed(&why),
        };
        return deny(
            response,
            403,
            &message::denial(attempt, verdict.name(), hold, state),
        );
    }
    if !attempt.dry_run {
        if let Err(text) = consume(webhook, &decision, attempt).await {
            return deny(response, 403, &text);
        }
        allow_events(webhook, review, attempt, &decision);
        let now = Timestamp::now();
        for grant in decision.reusable_grants() {
            webhook.uses.note(&grant.request, attempt, now);
        }
    }
    response
}

async fn hold_effects(
    webhook: &Webhook,
    review: &Review<'_>,
    attempt: &Attempt,
    policy: &Arc<ApprovalPolicy>,
    hold: &crate::admission::Hold,
) -> Option<Created> {
    let name = policy.name_any();
    let mut created = None;
    if let Some(new) = &hold.create {
        let mut new = (**new).clone();
        let change = record_change(webhook, review, attempt, &policy.spec.redact);
        new.spec.change = Some(Box::new(change));
        let result = create_request(
            &webhook.client,
            new,
            Some(Arc::clone(policy)),
            webhook.config.auto_request_bound,
        )
        .await;
        Metrics::count(&webhook.metrics.auto_requests, result.label());
        match &result {
            Created::Failed(e) => {
                tracing::warn!(error = %report(e), request = %hold.name, "creating the pending request failed")
            }
            Created::TimedOut => {
                tracing::warn!(request = %hold.name, "creating the pending request is slow; denied without waiting")
            }
            _ => {}
        }
        created = Some(result);
    }
    let what = format!(
        "{} held by ApprovalPolicy {name:?}: waiting for approval",
        attempt.describe()
    );
    webhook.events.send(Note {
        regarding: crate::events::request_reference(&hold.namespace, &hold.name, None),
        warning: false,
        reason: Reason::Blocked,
        action: "Admit",
        note: format!("{what} (requested by {})", attempt.user),
    });
    webhook.events.send(Note {
        regarding: target_ref(review, attempt),
        warning: true,
        reason: Reason::Blocked,
        action: "Admit",
        note: format!("{what}: ApprovalRequest {}/{}", hold.namespace, hold.name),
    });
    tracing::info!(user = %attempt.user, uid = %attempt.uid, policy = %name, request = %hold.name, "held");
    created
}

/// A review's object as a `serde_json::Value`, for the change record.
fn value(raw: Option<&RawValue>) -> Option<Value> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

/// What the held action would do, for the approver: computed only here, on
/// the way to creating a request, so allowing costs nothing more.
fn record_change(
    webhook: &Webhook,
    review: &Review<'_>,
    attempt: &Attempt,
    redact: &[String],
) -> crate::crd::Change {
    let object = value(review.object());
    let old_object = value(review.old_object);
    let options = value(review.options);
    let t = &attempt.target;
    let redactor = Redactor::for_target(&webhook.redaction_key, &t.api_group, &t.resource, redact);
    change::record(
        &Action {
            operation: attempt.operation,
            subresource: t.subresource.as_deref(),
            object: object.as_ref(),
            old_object: old_object.as_ref(),
            options: options.as_ref(),
        },
        &redactor,
    )
}

/// Records every single-use approval the decision relies on.
async fn consume(webhook: &Webhook, decision: &Decision, attempt: &Attempt) -> Result<(), String> {
    for v in &decision.verdicts {
        let VerdictKind::Granted(grant) = &v.kind else {
            continue;
        };
        if !grant.single_use {
            continue;
        }
        match Box::pin(record_use(&webhook.client, grant, &v.policy, attempt)).await {
            Use::Recorded { written, due } => {
                Metrics::count(&webhook.metrics.single_use, "recorded");
                for transition in due {
                    crate::audit::record(
                        &webhook.events,
                        &webhook.metrics,
                        &written,
                        transition,
                        jiff::Timestamp::now(),
                    )
                    .await;
                }
            }
            Use::Lost(why) => {
                Metrics::count(&webhook.metrics.single_use, "lost");
                return Err(format!(
                    "approval-gate: the single-use approval {}/{} no longer applies ({why}); \
                     retry to request a new approval",
                    grant.request.namespace().unwrap_or_default(),
                    grant.request.name_any()
                ));
            }
            Use::Failed(e) => {
                Metrics::count(&webhook.metrics.single_use, "failed");
                tracing::warn!(error = %report(&e), request = %grant.request.name_any(), "recording a single use failed");
                return Err(format!(
                    "approval-gate could not record the use of the approval ({e}); retry"
                ));
            }
        }
    }
    Ok(())
}

fn allow_events(webhook: &Webhook, req: &Review<'_>, attempt: &Attempt, decision: &Decision) {
    for v in &decision.verdicts {
        let (regarding, warning, reason, note) = match &v.kind {
            // A single use is recorded with the use (the `Used` Event); a
            // reusable approval is not noted on every use; its approval is.
            VerdictKind::Granted(_) => continue,
            VerdictKind::BreakGlass => (
                target_ref(req, attempt),
                true,
                Reason::BreakGlass,
                format!(
                    "{} by {} without approval (break-glass, policy {})",
                    attempt.describe(),
                    attempt.user,
                    v.name()
                ),
            ),
            VerdictKind::Audited => (
                target_ref(req, attempt),
                false,
                Reason::Audited,
                format!(
                    "{} by {} would need approval under policy {} (mode Audit)",
                    attempt.describe(),
                    attempt.user,
                    v.name()
                ),
            ),
            VerdictKind::Warned => (
                target_ref(req, attempt),
                true,
                Reason::Warned,
                format!(
                    "{} by {} would need approval under policy {} (mode Warn)",
                    attempt.describe(),
                    attempt.user,
                    v.name()
                ),
            ),
            VerdictKind::Excluded | VerdictKind::Held(_) => continue,
        };
        webhook.events.send(Note {
            regarding,
            warning,
            reason,
            action: "Admit",
            note,
        });
    }
}

/// The object the attempt was on, with its uid when known, so that
/// `kubectl describe` of that object lists the event.
fn target_ref(req: &Review<'_>, attempt: &Attempt) -> ObjectReference {
    let kind = &req.kind;
    let api_version = if kind.group.is_empty() {
        kind.version.clone()
    } else {
        format!("{}/{}", kind.group, kind.version)
    };
    let (api_version, kind_name) = if attempt.target.subresource.is_some() {
        // For a subresource, the event belongs to the parent object.
        parent_kind(req).unwrap_or((api_version, kind.kind.clone()))
    } else {
        (api_version, kind.kind.clone())
    };
    let uid = req.old_object.and_then(uid_of);
    ObjectReference {
        api_version: Some(api_version),
        kind: Some(kind_name),
        namespace: (!attempt.target.namespace.is_empty()).then(|| attempt.target.namespace.clone()),
        name: Some(attempt.target.name.clone()),
        uid,
        ..ObjectReference::default()
    }
}

fn parent_kind(req: &Review<'_>) -> Option<(String, String)> {
    let r = &req.resource;
    let kind = match (r.group.as_str(), r.resource.as_str()) {
        ("", "pods") => "Pod",
        ("apps", "deployments") => "Deployment",
        ("apps", "statefulsets") => "StatefulSet",
        ("apps", "replicasets") => "ReplicaSet",
        _ => return None,
    };
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    Some((api_version, kind.to_owned()))
}

/// An object's uid, read from its text without building its tree.
fn uid_of(object: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Option<Metadata>,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        uid: Option<String>,
    }
    let object: Object = serde_json::from_str(object.get()).ok()?;
    object.metadata?.uid
}

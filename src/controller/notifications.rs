//! Notifications from the operator (leader only): approvers hear of a
//! Pending request, the requester of its outcome.
//!
//! The order is send, then record. A notification that was delivered is
//! recorded in `status.notified` by a write conditioned on the
//! resourceVersion, after a fresh read; so a transition is recorded at most
//! once per channel, and a restart or a new leader sends only what is not
//! recorded. A crash between delivery and record sends it again: delivery is
//! at least once, and the idempotency key (`<uid>/<transition>`, the webhook
//! header and the email Message-ID) lets receivers drop the repeat.
//! Reserving first would instead lose a notification on such a crash.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{Api, ResourceExt as _, api::PostParams};

use super::{Context, plan::finished_at};
use crate::{
    crd::{ApprovalPolicySpec, ApprovalRequest, Notified, NotifyChannel, Phase, Transition},
    error::{Error, Result},
    events::{Note, request_reference_of},
    notify::{Destination, Mailer, notice},
};

/// Outcomes older than this are not announced any more (say, a channel was
/// added to a policy whose requests finished long ago).
const FRESH: Duration = Duration::from_secs(3600);
/// When to try again after a failed delivery.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);

/// One notification to send: a transition, over the channel at `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub transition: Transition,
    pub position: usize,
    pub channel: String,
}

/// What is due: transitions already recorded, still worth telling, not yet
/// sent over a channel of the policy.
pub fn due(req: &ApprovalRequest, policy: &ApprovalPolicySpec, now: Timestamp) -> Vec<Due> {
    let Some(status) = req.status.as_ref() else {
        return Vec::new();
    };
    let phase = req.phase();
    let fresh = finished_at(status, phase).is_none_or(|done| {
        now.duration_since(done) <= jiff::SignedDuration::from_secs(FRESH.as_secs() as i64)
    });
    let mut out = Vec::new();
    for transition in &status.recorded {
        let current = match transition {
            Transition::Requested => phase == Phase::Pending,
            // An approval spent before the leader announced it is still news
            // to the requester (who may be a GitOps controller's owner).
            Transition::Approved => phase == Phase::Approved || (phase == Phase::Used && fresh),
            Transition::Denied => phase == Phase::Denied && fresh,
            Transition::Expired => phase == Phase::Expired && fresh,
            Transition::Revoked => phase == Phase::Revoked && fresh,
            Transition::Used | Transition::Superseded => false,
        };
        if !current {
            continue;
        }
        for (position, channel) in policy.notify.iter().enumerate() {
            let key = channel.key(position);
            let sent = status
                .notified
                .iter()
                .any(|n| n.transition == *transition && n.channel == key);
            if !sent {
                out.push(Due {
                    transition: *transition,
                    position,
                    channel: key,
                });
            }
        }
    }
    out
}

/// Sends what is due about `req` and records it. Returns when to look again
/// if something failed; failures become Warning Events and a metric.
pub async fn send(
    ctx: &Context,
    req: &ApprovalRequest,
    policy: &ApprovalPolicySpec,
) -> Result<Option<Duration>> {
    if due(req, policy, Timestamp::now()).is_empty() {
        return Ok(None);
    }
    // The cache may be behind our own last record: decide from a fresh read.
    let api = Api::<ApprovalRequest>::namespaced(
        ctx.client.clone(),
        &req.namespace().unwrap_or_default(),
    );
    let Some(fresh) = api.get_opt(&req.name_any()).await? else {
        return Ok(None);
    };
    let now = Timestamp::now();
    let mut sent = Vec::new();
    let mut failed = false;
    for item in due(&fresh, policy, now) {
        let Some(text) = notice(&fresh, Some(policy), item.transition, now) else {
            continue;
        };
        let text = text.linked(ctx.console_url.as_deref());
        let channel = &policy.notify[item.position];
        let outcome = match destination(ctx, channel).await {
            Ok(to) => ctx.notifier.deliver(&to, &text).await.map(|_| ()),
            Err(e) => Err(e),
        };
        ctx.metrics
            .count_notification(channel.kind(), outcome.is_ok());
        match outcome {
            Ok(()) => sent.push(Notified {
                transition: item.transition,
                channel: item.channel,
                at: Time(Timestamp::now()),
            }),
            Err(error) => {
                failed = true;
                warn(ctx, &fresh, &item, &error);
            }
        }
    }
    record(&api, &fresh.name_any(), sent).await?;
    Ok(failed.then_some(RETRY_AFTER))
}

fn warn(ctx: &Context, req: &ApprovalRequest, item: &Due, error: &Error) {
    tracing::warn!(
        %error,
        namespace = %req.namespace().unwrap_or_default(),
        request = %req.name_any(),
        channel = %item.channel,
        transition = item.transition.as_str(),
        "notification failed; retrying later"
    );
    ctx.events.send(Note {
        regarding: request_reference_of(req),
        warning: true,
        reason: "NotificationFailed",
        action: "Notify",
        note: format!(
            "telling about {} over channel {} failed: {error}",
            item.transition.as_str(),
            item.channel
        ),
    });
}

/// Appends `sent` to `status.notified`, each at most once, by writes
/// conditioned on the resourceVersion (retried from a fresh read on a conflict).
async fn record(api: &Api<ApprovalRequest>, name: &str, sent: Vec<Notified>) -> Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    for _ in 0..5 {
        let Some(mut req) = api.get_opt(name).await? else {
            return Ok(());
        };
        let status = req.status.get_or_insert_with(Default::default);
        let before = status.notified.len();
        for n in &sent {
            let known = status
                .notified
                .iter()
                .any(|m| m.transition == n.transition && m.channel == n.channel);
            if !known {
                status.notified.push(n.clone());
            }
        }
        if status.notified.len() == before {
            return Ok(());
        }
        req.metadata.managed_fields = None;
        match api.replace_status(name, &PostParams::default(), &req).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Err(Error::ControlPlane(format!(
        "recording notifications of {name}: it kept changing"
    )))
}

/// The channel with its secrets read from the control namespace.
async fn destination(ctx: &Context, channel: &NotifyChannel) -> Result<Destination> {
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ctx.control_namespace);
    if let Some(slack) = &channel.slack {
        let r = &slack.webhook_url_secret_ref;
        let url = secret_value(&secrets, &r.name, &r.key).await?;
        return Ok(Destination::Slack {
            url: String::from_utf8_lossy(&url).trim().to_owned(),
        });
    }
    if let Some(hook) = &channel.webhook {
        let r = &hook.secret_ref;
        let key = secret_value(&secrets, &r.name, &r.key).await?;
        return Ok(Destination::Webhook {
            url: hook.url.clone(),
            key,
        });
    }
    let Some(email) = &channel.email else {
        return Err(not_configured(channel.kind()));
    };
    let credentials = match &email.credentials_secret_ref {
        Some(r) => {
            let user = secret_value(&secrets, &r.name, "username").await?;
            let password = secret_value(&secrets, &r.name, "password").await?;
            Some((
                String::from_utf8_lossy(&user).trim().to_owned(),
                String::from_utf8_lossy(&password).into_owned(),
            ))
        }
        None => None,
    };
    let ca_pem = match &email.smtp.ca_secret_ref {
        Some(r) => Some(secret_value(&secrets, &r.name, &r.key).await?),
        None => None,
    };
    Ok(Destination::Email(Mailer {
        host: email.smtp.host.clone(),
        port: email.smtp.port,
        tls: email.smtp.tls,
        from: email.from.clone(),
        to: email.to.clone(),
        credentials,
        ca_pem,
    }))
}

fn not_configured(kind: &'static str) -> Error {
    Error::Notify {
        channel: kind,
        message: "the channel names no slack, webhook or email".to_owned(),
    }
}

async fn secret_value(secrets: &Api<Secret>, name: &str, key: &str) -> Result<Vec<u8>> {
    let failed = |why: String| Error::Notify {
        channel: "secret",
        message: format!("Secret {name}: {why}"),
    };
    let secret = secrets.get(name).await.map_err(|e| {
        failed(match e {
            kube::Error::Api(s) if s.code == 404 => "not found in the control namespace".into(),
            kube::Error::Api(s) if s.code == 403 => "forbidden: approval-gate may read only the \
                Secrets its RBAC names (with the Helm chart, <fullname>-notify and \
                operator.notificationSecrets)"
                .into(),
            other => other.to_string(),
        })
    })?;
    secret
        .data
        .and_then(|mut data| data.remove(key))
        .map(|v| v.0)
        .ok_or_else(|| failed(format!("it has no key {key:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::Verdict,
        lifecycle::tests::{policy, request, ts},
    };

    fn with_channels() -> ApprovalPolicySpec {
        policy(
            "notify:\n- webhook: {url: 'https://hooks.example.com/x', secretRef: {name: s, key: k}}\n\
             - name: team\n  slack: {webhookUrlSecretRef: {name: s, key: url}}\n",
        )
    }

    fn recorded(req: &mut ApprovalRequest, phase: Phase, transitions: &[Transition]) {
        let status = req.status.get_or_insert_with(Default::default);
        status.phase = Some(phase);
        status.recorded = transitions.to_vec();
    }

    #[test]
    fn a_pending_request_is_due_once_per_channel() {
        let p = with_channels();
        let mut req = request("alice", 0);
        recorded(&mut req, Phase::Pending, &[Transition::Requested]);
        let due = due(&req, &p, ts(1));
        let channels: Vec<&str> = due.iter().map(|d| d.channel.as_str()).collect();
        assert_eq!(channels, ["webhook-0", "team"]);
        assert!(due.iter().all(|d| d.transition == Transition::Requested));

        req.status.as_mut().unwrap().notified.push(Notified {
            transition: Transition::Requested,
            channel: "team".into(),
            at: Time(ts(1)),
        });
        assert_eq!(super::due(&req, &p, ts(2)).len(), 1);
    }

    #[test]
    fn nothing_is_due_before_the_transition_is_recorded_or_without_channels() {
        let mut req = request("alice", 0);
        assert!(due(&req, &with_channels(), ts(1)).is_empty());
        recorded(&mut req, Phase::Pending, &[Transition::Requested]);
        assert!(due(&req, &policy(""), ts(1)).is_empty());
    }

    #[test]
    fn a_decided_request_tells_the_outcome_not_the_request() {
        let p = with_channels();
        let mut req = request("alice", 0);
        recorded(
            &mut req,
            Phase::Denied,
            &[Transition::Requested, Transition::Denied],
        );
        req.status.as_mut().unwrap().denial = Some(Verdict {
            user: "bob".into(),
            time: Time(ts(10)),
            reason: String::new(),
        });
        let due = due(&req, &p, ts(11));
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|d| d.transition == Transition::Denied));
        // An outcome from long ago is not news.
        assert!(super::due(&req, &p, ts(10 + 7200)).is_empty());
    }

    #[test]
    fn an_approval_used_before_it_was_announced_is_still_told_once() {
        let p = with_channels();
        let mut req = request("alice", 0);
        recorded(
            &mut req,
            Phase::Used,
            &[
                Transition::Requested,
                Transition::Approved,
                Transition::Used,
            ],
        );
        req.status.as_mut().unwrap().used_at = Some(Time(ts(5)));
        let due = due(&req, &p, ts(6));
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|d| d.transition == Transition::Approved));
        // Not the request itself (it is decided), and not the use.
        for channel in ["webhook-0", "team"] {
            req.status.as_mut().unwrap().notified.push(Notified {
                transition: Transition::Approved,
                channel: channel.into(),
                at: Time(ts(6)),
            });
        }
        assert!(super::due(&req, &p, ts(7)).is_empty());
        // A use long ago is not news.
        req.status.as_mut().unwrap().notified.clear();
        assert!(super::due(&req, &p, ts(5 + 7200)).is_empty());
    }
}

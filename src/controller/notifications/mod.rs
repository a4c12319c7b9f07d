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
//!
//! A request still Pending may be followed up, once per channel: a reminder
//! to the approvers after the policy's `remindAfter`, and an escalation to
//! the channels of its `escalation` after their `after`. They are recorded in
//! `status.notified` like the rest, marked with their [`FollowUp`].

use std::time::Duration;

use jiff::Timestamp;

use crate::{
    crd::{
        ApprovalPolicySpec, ApprovalRequest, FollowUp, Notified, NotifyChannel, Phase, Transition,
    },
    lifecycle::finished_at,
};

mod outbox;

pub use outbox::{Courier, Outbox};

/// Outcomes older than this are not announced any more (say, a channel was
/// added to a policy whose requests finished long ago).
const FRESH: Duration = Duration::from_secs(3600);
/// When to try again after a failed delivery.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);

/// One notification to send: a transition, over the channel at `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub transition: Transition,
    /// The position in `spec.notify`, or in `spec.escalation.notify` for an escalation.
    pub position: usize,
    pub channel: String,
    pub follow_up: Option<FollowUp>,
}

impl Due {
    /// The channel this is sent over.
    pub fn channel_of<'a>(&self, policy: &'a ApprovalPolicySpec) -> Option<&'a NotifyChannel> {
        match self.follow_up {
            Some(FollowUp::Escalation) => policy.escalation.as_ref()?.notify.get(self.position),
            _ => policy.notify.get(self.position),
        }
    }
}

/// Whether `status.notified` already records this notice.
fn recorded(
    notified: &[Notified],
    transition: Transition,
    channel: &str,
    follow_up: Option<FollowUp>,
) -> bool {
    notified
        .iter()
        .any(|n| n.transition == transition && n.channel == channel && n.follow_up == follow_up)
}

/// The follow-ups of a policy: each kind, how long after the request is
/// made, and over which channels.
fn follow_ups(
    policy: &ApprovalPolicySpec,
) -> Vec<(FollowUp, jiff::SignedDuration, &[NotifyChannel])> {
    let mut out = Vec::new();
    if let Some(after) = &policy.remind_after {
        out.push((
            FollowUp::Reminder,
            after.as_signed(),
            policy.notify.as_slice(),
        ));
    }
    if let Some(e) = &policy.escalation {
        out.push((
            FollowUp::Escalation,
            e.after.as_signed(),
            e.notify.as_slice(),
        ));
    }
    out
}

/// How long a Pending request has waited at `now`, if it is Pending and announced.
fn waiting(req: &ApprovalRequest, now: Timestamp) -> Option<jiff::SignedDuration> {
    let status = req.status.as_ref()?;
    let announced = status.recorded.contains(&Transition::Requested);
    let created = req.metadata.creation_timestamp.as_ref()?.0;
    (announced && req.phase() == Phase::Pending).then(|| now.duration_since(created))
}

/// When the next follow-up of a Pending request falls due, from `now`.
pub fn next_follow_up(
    req: &ApprovalRequest,
    policy: &ApprovalPolicySpec,
    now: Timestamp,
) -> Option<Duration> {
    let waited = waiting(req, now)?;
    follow_ups(policy)
        .into_iter()
        .map(|(_, after, _)| after - waited)
        .filter(|left| left.is_positive())
        .min()
        .and_then(|left| Duration::try_from(left).ok())
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
            if !recorded(&status.notified, *transition, &key, None) {
                out.push(Due {
                    transition: *transition,
                    position,
                    channel: key,
                    follow_up: None,
                });
            }
        }
    }
    let Some(waited) = waiting(req, now) else {
        return out;
    };
    for (follow_up, after, channels) in follow_ups(policy) {
        if waited < after {
            continue;
        }
        for (position, channel) in channels.iter().enumerate() {
            let key = channel.key(position);
            if !recorded(
                &status.notified,
                Transition::Requested,
                &key,
                Some(follow_up),
            ) {
                out.push(Due {
                    transition: Transition::Requested,
                    position,
                    channel: key,
                    follow_up: Some(follow_up),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        crd::Verdict,
        testing::{policy, request, ts},
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

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
            follow_up: None,
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
                follow_up: None,
            });
        }
        assert!(super::due(&req, &p, ts(7)).is_empty());
        // A use long ago is not news.
        req.status.as_mut().unwrap().notified.clear();
        assert!(super::due(&req, &p, ts(5 + 7200)).is_empty());
    }

    fn with_follow_ups() -> ApprovalPolicySpec {
        policy(
            "notify:\n- name: team\n  slack: {webhookUrlSecretRef: {name: s, key: url}}\n\
             remindAfter: 30m\n\
             escalation:\n  after: 1h\n  notify:\n  - name: leads\n    email: {smtp: {host: smtp.example.com}, from: a@example.com, to: [leads@example.com]}\n",
        )
    }

    fn told(req: &mut ApprovalRequest, due: &[Due]) {
        for d in due {
            req.status.as_mut().unwrap().notified.push(Notified {
                transition: d.transition,
                channel: d.channel.clone(),
                at: Time(ts(0)),
                follow_up: d.follow_up,
            });
        }
    }

    #[test]
    fn a_pending_request_is_reminded_then_escalated_once_each() {
        let p = with_follow_ups();
        let mut req = request("alice", 0);
        recorded(&mut req, Phase::Pending, &[Transition::Requested]);
        let first = due(&req, &p, ts(1));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].follow_up, None);
        told(&mut req, &first);
        assert!(due(&req, &p, ts(1799)).is_empty());
        assert_eq!(
            next_follow_up(&req, &p, ts(1000)),
            Some(Duration::from_secs(800)),
            "looked at again when the reminder falls due"
        );

        let reminder = due(&req, &p, ts(1800));
        assert_eq!(reminder.len(), 1);
        assert_eq!(reminder[0].follow_up, Some(FollowUp::Reminder));
        assert_eq!(reminder[0].channel, "team");
        assert_eq!(
            reminder[0].channel_of(&p).map(NotifyChannel::kind),
            Some("slack")
        );
        told(&mut req, &reminder);
        assert!(
            due(&req, &p, ts(3599)).is_empty(),
            "the reminder is sent once"
        );
        assert_eq!(
            next_follow_up(&req, &p, ts(3000)),
            Some(Duration::from_secs(600))
        );

        let escalation = due(&req, &p, ts(3600));
        assert_eq!(escalation.len(), 1);
        assert_eq!(escalation[0].follow_up, Some(FollowUp::Escalation));
        assert_eq!(escalation[0].channel, "leads");
        assert_eq!(
            escalation[0].channel_of(&p).map(NotifyChannel::kind),
            Some("email")
        );
        told(&mut req, &escalation);
        assert!(
            due(&req, &p, ts(7200)).is_empty(),
            "the escalation is sent once"
        );
        assert_eq!(next_follow_up(&req, &p, ts(7200)), None);
    }

    #[test]
    fn a_decided_request_is_neither_reminded_nor_escalated() {
        let p = with_follow_ups();
        let mut req = request("alice", 0);
        recorded(
            &mut req,
            Phase::Approved,
            &[Transition::Requested, Transition::Approved],
        );
        assert!(
            due(&req, &p, ts(7200))
                .iter()
                .all(|d| d.follow_up.is_none() && d.transition == Transition::Approved)
        );
        assert_eq!(next_follow_up(&req, &p, ts(10)), None);
    }
}

//! Uses of reusable (not single-use) approvals. Allowing stays free of API
//! calls: each use is tallied in memory, and once a second the tallies are
//! written to their requests' status (`uses`, `lastUsedAt`, `lastUsedBy`),
//! each write with an Event `UsedAgain` (folded into a series) and an audit
//! log line. A write that fails is tallied again for the next second; only
//! uses of the last second are lost if the process dies.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt as _, api::PostParams};

use super::Webhook;
use crate::{
    admission::Attempt,
    crd::{ApprovalRequest, ApprovalRequestStatus, UsedBy},
    events::{Note, Reason, request_reference_of},
};

/// How often tallies are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
const ATTEMPTS: usize = 3;

/// Uses of one request since the last write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub count: u32,
    pub last_at: Timestamp,
    pub last_by: UsedBy,
}

impl Tally {
    fn merge(&mut self, other: Self) {
        self.count = self.count.saturating_add(other.count);
        if other.last_at >= self.last_at {
            self.last_at = other.last_at;
            self.last_by = other.last_by;
        }
    }
}

/// The tallies, by request (namespace, name).
#[derive(Debug, Default)]
pub struct UseLedger {
    tallies: Mutex<HashMap<(String, String), Tally>>,
}

impl UseLedger {
    /// Notes one use of `req` by `attempt`.
    pub fn note(&self, req: &ApprovalRequest, attempt: &Attempt, at: Timestamp) {
        let tally = Tally {
            count: 1,
            last_at: at,
            last_by: UsedBy {
                uid: attempt.uid.clone(),
                user: attempt.user.clone(),
            },
        };
        self.add((req.namespace().unwrap_or_default(), req.name_any()), tally);
    }

    fn add(&self, key: (String, String), tally: Tally) {
        if let Ok(mut tallies) = self.tallies.lock() {
            match tallies.get_mut(&key) {
                Some(known) => known.merge(tally),
                None => {
                    tallies.insert(key, tally);
                }
            }
        }
    }

    fn drain(&self) -> Vec<((String, String), Tally)> {
        self.tallies
            .lock()
            .map(|mut t| t.drain().collect())
            .unwrap_or_default()
    }
}

/// Adds a tally to a status: the counter, and the latest use.
pub fn apply(status: &mut ApprovalRequestStatus, tally: &Tally) {
    status.uses = Some(status.uses.unwrap_or(0).saturating_add(tally.count));
    let later = status
        .last_used_at
        .as_ref()
        .is_none_or(|t| t.0 <= tally.last_at);
    if later {
        status.last_used_at = Some(Time(tally.last_at));
        status.last_used_by = Some(tally.last_by.clone());
    }
}

/// Writes the tallies once a second, for as long as the process runs.
pub async fn flush_forever(webhook: Arc<Webhook>) {
    let mut every = tokio::time::interval(FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for (key, tally) in webhook.uses.drain() {
            let why = match write(&webhook, &key, &tally).await {
                Ok(true) => continue,
                Ok(false) => "the request kept changing".to_owned(),
                Err(error) => error.to_string(),
            };
            tracing::warn!(error = %why, namespace = %key.0, request = %key.1, uses = tally.count, "recording uses of a reusable approval failed; trying again");
            webhook.uses.add(key, tally);
        }
    }
}

/// One status write for a tally, re-read and retried on a conflict; a
/// request that is gone is let go (its uses are in the apiserver's audit
/// log). `false` when every attempt met a conflict.
async fn write(webhook: &Webhook, key: &(String, String), tally: &Tally) -> kube::Result<bool> {
    let api = Api::<ApprovalRequest>::namespaced(webhook.client.clone(), &key.0);
    for _ in 0..ATTEMPTS {
        let Some(mut req) = api.get_opt(&key.1).await? else {
            return Ok(true);
        };
        apply(req.status.get_or_insert_with(Default::default), tally);
        req.metadata.managed_fields = None;
        match api
            .replace_status(&key.1, &PostParams::default(), &req)
            .await
        {
            Ok(written) => {
                record(webhook, &written, tally);
                return Ok(true);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn record(webhook: &Webhook, req: &ApprovalRequest, tally: &Tally) {
    let spec = &req.spec;
    let total = req.status.as_ref().and_then(|s| s.uses).unwrap_or(0);
    tracing::info!(
        target: "approval_gate::audit",
        transition = "UsedAgain",
        namespace = %req.namespace().unwrap_or_default(),
        request = %req.name_any(),
        requester = %spec.requester,
        actor = %tally.last_by.user,
        policy = %spec.policy,
        target = %spec.target,
        uses = tally.count,
        total,
        admission = %tally.last_by.uid,
        "{} {} performed {} more time(s) with the reusable approval ({total} in all)",
        spec.operation,
        spec.target,
        tally.count
    );
    // The same words each time, so that repeats fold into one Event series.
    webhook.events.send(Note {
        regarding: request_reference_of(req),
        warning: false,
        reason: Reason::UsedAgain,
        action: "Admit",
        note: format!(
            "{} {} performed with this reusable approval (status.uses counts each use)",
            spec.operation, spec.target
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ts;

    fn tally(count: u32, at: i64, uid: &str) -> Tally {
        Tally {
            count,
            last_at: ts(at),
            last_by: UsedBy {
                uid: uid.into(),
                user: "alice".into(),
            },
        }
    }

    #[test]
    fn tallies_add_up_and_keep_the_latest_use() {
        let ledger = UseLedger::default();
        let key = ("prod".to_owned(), "r".to_owned());
        ledger.add(key.clone(), tally(1, 10, "a"));
        ledger.add(key.clone(), tally(2, 30, "c"));
        ledger.add(key.clone(), tally(1, 20, "b"));
        let drained = ledger.drain();
        assert_eq!(drained, [(key, tally(4, 30, "c"))]);
        assert!(ledger.drain().is_empty(), "drained once");
    }

    #[test]
    fn a_tally_adds_to_the_status_counter_and_moves_the_last_use_forward_only() {
        let mut status = ApprovalRequestStatus::default();
        apply(&mut status, &tally(3, 50, "x"));
        apply(&mut status, &tally(2, 40, "older"));
        assert_eq!(status.uses, Some(5));
        assert_eq!(status.last_used_at, Some(Time(ts(50))));
        assert_eq!(status.last_used_by.map(|u| u.uid), Some("x".to_owned()));
    }
}

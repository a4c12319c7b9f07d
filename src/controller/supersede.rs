//! One open request per action: of a requester's Pending requests for the
//! same operation and target under the same policy, the newest stands and
//! the older ones are superseded. A pure function of the requests and `now`.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;

use crate::{
    crd::{ApprovalPolicySpec, ApprovalRequest, Phase, REQUESTED_AT_ANNOTATION, Supersession},
    index::GrantKey,
    lifecycle::{Terms, evaluate},
};

/// How long a request that replaced another must stay Pending before the
/// approvers hear of it: a burst of changes to one target is announced once,
/// with its last change, instead of once per change.
pub const SETTLE: Duration = Duration::from_secs(10);

/// What the newest-wins rule asks of one request.
#[derive(Debug, Default)]
pub struct Supersede {
    /// A newer Pending request for the same action: this one is superseded by it.
    pub by: Option<String>,
    /// Older Pending requests this one supersedes (when it is the newest).
    pub older: Vec<Arc<ApprovalRequest>>,
    /// When the approvers may hear of this request: later than now when it
    /// replaced another one and has not settled yet.
    pub announce_at: Option<Timestamp>,
}

/// Applies the rule to `req`, among `all` the requests known (its siblings
/// are those with the same requester, operation, target, policy and namespace).
pub fn supersede(
    req: &ApprovalRequest,
    all: &[Arc<ApprovalRequest>],
    policy: Option<&ApprovalPolicySpec>,
    now: Timestamp,
) -> Supersede {
    let terms = Terms { policy };
    let pending = |r: &ApprovalRequest| evaluate(r, &terms, now).phase == Phase::Pending;
    if !pending(req) {
        return Supersede::default();
    }
    if req.spec.digest.is_none() {
        return Supersede::default();
    }
    let key = GrantKey::of(req);
    let namespace = req.namespace();
    let name = req.name_any();
    let siblings: Vec<&Arc<ApprovalRequest>> = all
        .iter()
        .filter(|r| r.spec.policy == req.spec.policy && r.namespace() == namespace)
        .filter(|r| r.name_any() != name && GrantKey::of(r) == key)
        // Only a different change replaces a request: two requests for the
        // same content (or for any content, by hand) are left to expire.
        .filter(|r| r.spec.digest.is_some() && r.spec.digest != req.spec.digest)
        .collect();
    let replaced_before = siblings.iter().any(|r| {
        r.status
            .as_ref()
            .and_then(|s| s.superseded.as_ref())
            .is_some_and(|s| s.by == name)
    });
    let mut open: Vec<&Arc<ApprovalRequest>> =
        siblings.into_iter().filter(|r| pending(r)).collect();
    open.sort_by_key(|r| made(r));
    let mine = made(req);
    if let Some(newest) = open.last().filter(|r| made(r) > mine) {
        return Supersede {
            by: Some(newest.name_any()),
            ..Supersede::default()
        };
    }
    let older: Vec<Arc<ApprovalRequest>> = open.into_iter().map(Arc::clone).collect();
    let announce_at = (replaced_before || !older.is_empty())
        .then(|| created(req).and_then(|c| c.checked_add(SETTLE).ok()))
        .flatten()
        .filter(|at| *at > now);
    Supersede {
        by: None,
        older,
        announce_at,
    }
}

/// `req` marked as superseded by the request named `by`, for the plan to record.
pub fn mark(req: &ApprovalRequest, by: &str, now: Timestamp) -> ApprovalRequest {
    let mut marked = req.clone();
    marked
        .status
        .get_or_insert_with(Default::default)
        .superseded = Some(Supersession {
        by: by.to_owned(),
        time: Time(now),
    });
    marked
}

fn created(req: &ApprovalRequest) -> Option<Timestamp> {
    req.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// The order requests were made in: the apiserver's creation time (to the
/// second), then approval-gate's own record of it (to the microsecond), then
/// the name, so that every replica ranks them alike.
fn made(req: &ApprovalRequest) -> (Option<Timestamp>, Option<Timestamp>, String) {
    let micro = req
        .annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .and_then(|t| t.parse::<Timestamp>().ok());
    (created(req), micro, req.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        controller::plan::plan,
        crd::{Transition, Verdict},
        testing::{approve, policy, request, ts},
    };

    fn named(name: &str, created: i64, digest: char) -> Arc<ApprovalRequest> {
        let mut req = request("alice", created);
        req.metadata.name = Some(name.into());
        req.spec.digest = Some(format!("sha256:{}", digest.to_string().repeat(64)));
        Arc::new(req)
    }

    fn micro(req: &Arc<ApprovalRequest>, at: Timestamp) -> Arc<ApprovalRequest> {
        let mut req = (**req).clone();
        req.annotations_mut()
            .insert(REQUESTED_AT_ANNOTATION.into(), at.to_string());
        Arc::new(req)
    }

    #[test]
    fn the_newest_pending_request_supersedes_the_older_ones() {
        let p = policy("");
        let (a, b, c) = (named("a", 0, 'a'), named("b", 5, 'b'), named("c", 9, 'c'));
        let all = [a.clone(), b.clone(), c.clone()];
        for older in [&a, &b] {
            let rule = supersede(older, &all, Some(&p), ts(10));
            assert_eq!(rule.by.as_deref(), Some("c"));
            assert!(rule.older.is_empty());
        }
        let newest = supersede(&c, &all, Some(&p), ts(10));
        assert_eq!(newest.by, None);
        let older: Vec<String> = newest.older.iter().map(|r| r.name_any()).collect();
        assert_eq!(older, ["a", "b"]);
        assert_eq!(newest.announce_at, Some(ts(19)), "it settles first");
    }

    #[test]
    fn within_one_second_the_microsecond_record_decides() {
        let p = policy("");
        let at = |micros: i64| ts(0) + jiff::SignedDuration::from_micros(micros);
        // "z" sorts last by name, but was made first.
        let z = micro(&named("z", 0, 'a'), at(100));
        let y = micro(&named("y", 0, 'b'), at(900));
        let all = [z.clone(), y.clone()];
        assert_eq!(
            supersede(&z, &all, Some(&p), ts(1)).by.as_deref(),
            Some("y")
        );
        assert_eq!(supersede(&y, &all, Some(&p), ts(1)).older.len(), 1);
    }

    #[test]
    fn decided_finished_and_unrelated_requests_are_left_alone() {
        let p = policy("");
        let approved = {
            let mut r = (*named("approved", 0, 'a')).clone();
            approve(&mut r, "bob", &["sre"], 1);
            Arc::new(r)
        };
        let denied = {
            let mut r = (*named("denied", 1, 'b')).clone();
            r.status.get_or_insert_with(Default::default).denial = Some(Verdict {
                user: "bob".into(),
                time: Time(ts(2)),
                reason: "no".into(),
            });
            Arc::new(r)
        };
        let other_policy = {
            let mut r = (*named("other-policy", 2, 'c')).clone();
            r.spec.policy = "other".into();
            Arc::new(r)
        };
        let other_target = {
            let mut r = (*named("other-target", 3, 'd')).clone();
            r.spec.target.name = "payments".into();
            Arc::new(r)
        };
        let bob = {
            let mut r = (*named("bob", 4, 'e')).clone();
            r.spec.requester = "bob".into();
            Arc::new(r)
        };
        let newest = named("newest", 9, 'f');
        let all = [
            approved.clone(),
            denied.clone(),
            other_policy.clone(),
            other_target.clone(),
            bob.clone(),
            newest.clone(),
        ];
        let rule = supersede(&newest, &all, Some(&p), ts(10));
        assert!(rule.older.is_empty(), "{:?}", rule.older);
        assert_eq!(
            rule.announce_at, None,
            "nothing replaced: announced at once"
        );
        for r in [&approved, &denied, &other_policy, &other_target, &bob] {
            assert_eq!(
                supersede(r, &all, Some(&p), ts(10)).by,
                None,
                "{}",
                r.name_any()
            );
        }
    }

    #[test]
    fn requests_for_the_same_content_or_without_one_do_not_replace_each_other() {
        let p = policy("");
        let (a, b) = (named("a", 0, 'a'), named("b", 5, 'a'));
        let all = [a.clone(), b.clone()];
        assert_eq!(
            supersede(&a, &all, Some(&p), ts(6)).by,
            None,
            "same content"
        );
        let bare = |name: &str, at: i64| {
            let mut r = (*named(name, at, 'a')).clone();
            r.spec.digest = None;
            Arc::new(r)
        };
        let (c, d) = (bare("c", 0), bare("d", 5));
        let all = [c.clone(), d.clone()];
        assert_eq!(
            supersede(&c, &all, Some(&p), ts(6)).by,
            None,
            "no content bound"
        );
        assert!(supersede(&d, &all, Some(&p), ts(6)).older.is_empty());
    }

    #[test]
    fn a_request_that_replaced_another_is_announced_once_it_settles() {
        let p = policy("");
        let mut old = (*named("old", 0, 'a')).clone();
        old.status.get_or_insert_with(Default::default).superseded = Some(Supersession {
            by: "new".into(),
            time: Time(ts(3)),
        });
        let new = named("new", 3, 'b');
        let all = [Arc::new(old), new.clone()];
        assert_eq!(
            supersede(&new, &all, Some(&p), ts(5)).announce_at,
            Some(ts(13))
        );
        assert_eq!(supersede(&new, &all, Some(&p), ts(13)).announce_at, None);
    }

    #[test]
    fn a_marked_request_plans_a_final_superseded_phase_recorded_once() {
        let p = policy("");
        let old = named("old", 0, 'a');
        let week = Duration::from_secs(7 * 24 * 3600);
        let first = plan(&mark(&old, "new", ts(5)), Some(&p), ts(5), week);
        assert_eq!(
            first.record,
            [Transition::Requested, Transition::Superseded]
        );
        let status = first.status.unwrap();
        assert_eq!(status.phase, Some(Phase::Superseded));
        assert_eq!(
            status.superseded.as_ref().map(|s| s.by.as_str()),
            Some("new")
        );
        let mut written = (*old).clone();
        written.status = Some(status);
        let again = plan(&written, Some(&p), ts(6), week);
        assert!(again.record.is_empty() && again.status.is_none());
        assert_eq!(again.requeue_after, Some(week - Duration::from_secs(1)));
    }
}

//! Unit tests for the pure formatting, and the golden files for the table
//! and describe layouts (`make golden` accepts changed output).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{api::core::v1::Event, apimachinery::pkg::apis::meta::v1::Time};
use pretty_assertions::assert_eq;

use super::*;
use crate::plugin::golden::golden;
use crate::{
    crd::{Approval, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, UsedBy, Verdict},
    plugin::{client::event_line, view::RequestView},
};

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> Time {
    Time(now() - SignedDuration::from_secs(secs))
}

fn policy(extra: &str) -> ApprovalPolicySpec {
    let base = "rules: [{apiGroups: [apps], resources: [deployments], operations: [UPDATE]}]\n\
                approvers: {groups: [sre], users: [root]}\n";
    serde_yaml_ng::from_str(&format!("{base}{extra}")).unwrap()
}

/// The shared test request, named and placed, bound to a digest, with a
/// reason, under policy `prod-deploys`, made `created_ago` seconds before [`now`].
fn request(ns: &str, name: &str, requester: &str, created_ago: i64) -> ApprovalRequest {
    let mut req = crate::testing::request(requester, 0);
    req.metadata.name = Some(name.into());
    req.metadata.namespace = Some(ns.into());
    req.metadata.creation_timestamp = Some(ago(created_ago));
    req.spec.target.namespace = ns.into();
    req.spec.digest = Some(format!("sha256:{}", "ab12".repeat(16)));
    req.spec.reason = "INC-1234 roll back the bad release".into();
    req.spec.policy = "prod-deploys".into();
    req.status = Some(ApprovalRequestStatus::default());
    req
}

fn approve(req: &mut ApprovalRequest, user: &str, secs_ago: i64, comment: &str) {
    req.status.as_mut().unwrap().approvals.push(Approval {
        user: user.into(),
        groups: vec!["sre".into()],
        time: ago(secs_ago),
        comment: comment.into(),
    });
}

/// A pending, a half-approved, an approved, a denied and an expired request.
fn fixtures() -> (Vec<ApprovalRequest>, ApprovalPolicySpec) {
    let p = policy("requiredApprovals: 2\nrequestTTL: 1h\napprovalTTL: 15m\n");
    let pending = request("prod", "checkout-update-x7k2p", "alice", 46 * 60);
    let mut half = request("prod", "checkout-update-q9d4z", "alice", 5 * 60);
    approve(&mut half, "bob", 60, "looks right");
    let mut approved = request("staging", "api-update-m2v8c", "erin", 10 * 60);
    approve(&mut approved, "bob", 4 * 60, "");
    approve(&mut approved, "dave", 3 * 60 + 14, "");
    let mut denied = request("prod", "web-update-c3n5t", "alice", 2 * 3600 + 5 * 60);
    denied.spec.reason = String::new();
    denied.status.as_mut().unwrap().denial = Some(Verdict {
        user: "bob".into(),
        time: ago(2 * 3600),
        reason: "not during the freeze".into(),
    });
    let mut expired = request("prod", "db-update-k1k1k", "alice", 3 * 3600);
    expired.status.as_mut().unwrap().expires_at = Some(ago(2 * 3600));
    (vec![pending, half, approved, denied, expired], p)
}

fn views() -> Vec<RequestView> {
    let (reqs, p) = fixtures();
    reqs.iter()
        .map(|r| RequestView::new(r, Some(&p), now()))
        .collect()
}

#[test]
fn durations_read_like_kubectl_ages() {
    let d = |s: i64| duration(SignedDuration::from_secs(s));
    assert_eq!(d(14), "14s");
    assert_eq!(d(59), "59s");
    assert_eq!(d(180), "3m");
    assert_eq!(d(3599), "59m");
    assert_eq!(d(3600), "1h");
    assert_eq!(d(2 * 3600 + 5 * 60 + 30), "2h5m");
    assert_eq!(d(86_400 * 3), "3d");
    assert_eq!(d(86_400 * 3 + 4 * 3600), "3d4h");
    assert_eq!(d(-180), "3m");
}

#[test]
fn time_left_counts_down_then_says_how_long_ago_it_expired() {
    let at = now() + SignedDuration::from_secs(14 * 60);
    assert_eq!(time_left(Phase::Pending, Some(at), now()), "14m left");
    let at = now() - SignedDuration::from_secs(180);
    assert_eq!(time_left(Phase::Expired, Some(at), now()), "expired 3m ago");
    assert_eq!(
        time_left(Phase::Denied, None, now()),
        "none: the request is Denied"
    );
    assert_eq!(expires_in(Phase::Used, None, now()), "-");
}

#[test]
fn views_judge_phases_from_timestamps() {
    let phases: Vec<Phase> = views().iter().map(|v| v.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Pending,
            Phase::Pending,
            Phase::Approved,
            Phase::Denied,
            Phase::Expired
        ]
    );
}

#[test]
fn colour_only_when_asked() {
    assert!(!Style::detect(false, None).color);
    assert!(!Style::detect(true, Some("1")).color);
    assert!(Style::detect(true, Some("")).color);
    assert!(
        Style::detect(true, None)
            .phase(Phase::Approved, "x")
            .contains("\x1b[32m")
    );
}

#[test]
fn golden_table() {
    golden(
        "list.txt",
        &table(&views(), Columns::default(), now(), Style::default()),
    );
}

#[test]
fn golden_table_all_namespaces_wide() {
    let cols = Columns {
        namespace: true,
        wide: true,
    };
    golden(
        "list-wide-all.txt",
        &table(&views(), cols, now(), Style::default()),
    );
}

#[test]
fn golden_describe_half_approved() {
    let events = vec![
        EventLine {
            time: Some(now() - SignedDuration::from_secs(300)),
            kind: "Normal".into(),
            reason: "Requested".into(),
            from: "approval-gate".into(),
            message: "alice asks to UPDATE deployments.apps/checkout".into(),
        },
        EventLine {
            time: Some(now() - SignedDuration::from_secs(60)),
            kind: "Warning".into(),
            reason: "Rejected".into(),
            from: "approval-gate".into(),
            message: "carol: you (carol) are not an approver [eligible-approver]".into(),
        },
    ];
    let view = &views()[1];
    let text = describe(
        view,
        Some("group sre, user root"),
        &events,
        now(),
        Style::default(),
    );
    golden("describe-pending.txt", &text);
}

#[test]
fn golden_describe_finished() {
    let (mut reqs, p) = fixtures();
    let mut used = reqs.remove(2);
    used.status.as_mut().unwrap().used_at = Some(ago(60));
    used.status.as_mut().unwrap().used_by = Some(UsedBy {
        uid: "u-1".into(),
        user: "erin".into(),
    });
    let used = RequestView::new(&used, Some(&p), now());
    let denied = RequestView::new(&reqs[2], Some(&p), now());
    let expired = RequestView::new(&reqs[3], Some(&p), now());
    // As `kubectl approve describe` words them from the policy.
    let who = approvers(&p.approvers.users, &p.approvers.groups);
    let mut text = String::new();
    for v in [&used, &denied, &expired] {
        text.push_str(&describe(v, Some(&who), &[], now(), Style::default()));
        text.push_str("---\n");
    }
    golden("describe-finished.txt", &text);
}

#[test]
fn names_are_kubectl_resource_names() {
    assert_eq!(
        names(&views()[..1]),
        "approvalrequest.approvalgate.dev/checkout-update-x7k2p\n"
    );
    assert_eq!(
        short_digest(Some("sha256:0123456789abcdef")),
        "0123456789ab"
    );
    assert_eq!(
        approvers(&["root".into()], &["sre".into()]),
        "group sre, user root"
    );
}

/// What a requester could write to redraw the approver's screen: clear it,
/// move the cursor home, retitle the window (OSC), return the carriage.
const CRAFTED: &str = "\x1b[2J\x1b[1;1HApproved by security\x1b]0;pwned\x07\rok";

#[test]
fn golden_describe_prints_escape_sequences_inert() {
    let p = policy("requiredApprovals: 2\nrequestTTL: 1h\n");
    let mut req = request("prod", "checkout-update-x7k2p", "alice", 5 * 60);
    req.spec.reason = format!("INC-1234 {CRAFTED}");
    approve(&mut req, "bob", 60, &format!("looks right {CRAFTED}"));
    let event = Event {
        type_: Some("Normal".into()),
        reason: Some("Requested".into()),
        reporting_component: Some("approval-gate".into()),
        message: Some(format!("alice asks: {CRAFTED}")),
        last_timestamp: Some(ago(300)),
        ..Event::default()
    };
    let view = RequestView::new(&req, Some(&p), now());
    let events = [event_line(event)];
    let text = describe(&view, Some("group sre"), &events, now(), Style::default());
    assert!(
        !text.bytes().any(|b| b == 0x1b),
        "an escape survived: {text:?}"
    );
    assert!(!text.contains(['\r', '\x07']), "{text:?}");
    assert_eq!(text.matches("\\u{1b}[2J").count(), 3, "{text}");
    golden("describe-ansi-reason.txt", &text);
}

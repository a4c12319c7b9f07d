//! Unit tests for notification content.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::{
    crd::{Approval, Verdict},
    testing::{policy, request, ts},
};

fn pending() -> ApprovalRequest {
    let mut req = request("alice", 0);
    req.metadata.name = Some("checkout-x7k2p".into());
    req.metadata.uid = Some("0f3c".into());
    req.spec.reason = "INC-42 hotfix".into();
    req.spec.digest = Some(format!("sha256:{}", "a".repeat(64)));
    req.status.get_or_insert_with(Default::default).expires_at = Some(Time(ts(3600)));
    req
}

/// The notice approvers get about alice's pending request.
pub fn sample() -> Notice {
    notice(
        &pending(),
        Some(&policy("")),
        Transition::Requested,
        ts(200),
    )
    .unwrap()
}

#[test]
fn pending_notice_tells_approvers_who_what_why_and_how_to_approve() {
    let p = policy("");
    let n = notice(&pending(), Some(&p), Transition::Requested, ts(200)).unwrap();
    assert_eq!(n.audience, Audience::Approvers);
    assert_eq!(
        n.headline,
        "alice asks for approval: UPDATE deployments.apps/checkout in prod"
    );
    assert_eq!(n.approve_command, "kubectl approve checkout-x7k2p -n prod");
    assert_eq!(n.idempotency_key(), "0f3c/Requested");
    assert_eq!(n.age(), "3m20s");
    assert_eq!(n.time_left(), "56m40s");
    assert_eq!(n.approvers, ["root", "group sre"]);
    let text = n.text();
    for part in [
        "Requester: alice",
        "Operation: UPDATE deployments.apps/checkout",
        "Namespace: prod",
        "Reason: INC-42 hotfix",
        "Policy: p",
        "Digest: sha256:aaaa",
        "kubectl approve checkout-x7k2p -n prod",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
}

#[test]
fn outcome_notice_tells_the_requester_who_decided() {
    let mut req = pending();
    req.status.get_or_insert_with(Default::default).denial = Some(Verdict {
        user: "bob".into(),
        time: Time(ts(300)),
        reason: "freeze".into(),
    });
    let n = notice(&req, None, Transition::Denied, ts(301)).unwrap();
    assert_eq!(n.audience, Audience::Requester);
    assert_eq!(
        n.headline,
        "Denied: UPDATE deployments.apps/checkout in prod"
    );
    assert_eq!(n.decided_by.as_deref(), Some("bob (freeze)"));
    assert_eq!(n.time_left(), "-");
    assert!(!n.text().contains("To approve"));
}

#[test]
fn an_approval_already_used_says_so_and_shows_no_time_left() {
    let mut req = pending();
    let status = req.status.get_or_insert_with(Default::default);
    status.approvals.push(Approval {
        user: "bob".into(),
        groups: Vec::new(),
        time: Time(ts(300)),
        comment: String::new(),
    });
    status.used_at = Some(Time(ts(305)));
    let n = notice(&req, None, Transition::Approved, ts(310)).unwrap();
    assert_eq!(n.audience, Audience::Requester);
    assert_eq!(
        n.headline,
        "Approved and already used: UPDATE deployments.apps/checkout in prod"
    );
    assert_eq!(n.decided_by.as_deref(), Some("bob"));
    assert_eq!(n.time_left(), "-");
}

#[test]
fn a_used_approval_is_not_announced() {
    assert!(notice(&pending(), None, Transition::Used, ts(1)).is_none());
}

#[test]
fn durations_read_like_kubectl_ages() {
    assert_eq!(human(45), "45s");
    assert_eq!(human(3725), "1h2m");
    assert_eq!(human(-3), "0s");
}

#[test]
fn a_console_url_links_the_request_page_in_every_channel() {
    let n = sample().linked(Some("https://approvals.example.com/"));
    let link = "https://approvals.example.com/requests/prod/checkout-x7k2p";
    assert_eq!(n.link.as_deref(), Some(link));
    assert!(
        n.text()
            .contains(&format!("Open it in the console: {link}"))
    );
    let slack = crate::notify::slack::payload(&n).to_string();
    assert!(
        slack.contains(&format!("<{link}|Review it in the console>")),
        "{slack}"
    );
    let webhook = serde_json::to_value(&n).expect("json");
    assert_eq!(webhook["link"], link);
    assert_eq!(sample().linked(None).link, None);
    assert!(!sample().text().contains("console"));
}

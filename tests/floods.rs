//! No floods: the real `approval-gate serve` binary against a real apiserver.
//! alice, with her ordinary rights, changes one gated Deployment 2,000 times
//! in a loop: one request stays open, the others are final (`Superseded`,
//! each recorded), and the approvers are told about the burst once it
//! settles rather than 2,000 times. Past the policy's cap of open requests,
//! a change to another target is denied with the reason and makes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::{ApprovalRequest, Phase, Transition};
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use support::{operator::*, receiver::HttpReceiver, *};

const FLOOD: usize = 2_000;

async fn requests(ns: &str) -> Vec<ApprovalRequest> {
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

fn phase(req: &ApprovalRequest) -> Phase {
    phase_of(req).unwrap_or_default()
}

#[tokio::test]
async fn a_flood_of_changes_to_one_target_leaves_one_open_request_and_one_announcement() {
    let admission = shared().await;
    let ns = namespace("flood").await;
    let receiver = HttpReceiver::start(0).await;
    let key = format!("{ns}-hmac");
    secret(&key, b"flood hmac key").await;
    let notify = format!(
        "notify:\n- name: hook\n  webhook: {{url: '{}', secretRef: {{name: {SECRET}, key: {key}}}}}\n",
        receiver.url("/hook")
    );
    policy(&admission, &ns, &notify).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();

    let deployments = Api::<Deployment>::namespaced(client(&ALICE).await, &ns);
    let mut last_denial = String::new();
    for i in 0..FLOOD {
        let patch = serde_json::json!({"metadata": {"annotations": {"flood": i.to_string()}}});
        match deployments
            .patch("checkout", &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 403 => last_denial = s.message,
            other => panic!("change {i} was not held: {other:?}"),
        }
    }
    let last = request_name(&last_denial, &ns);

    // The operator settles the burst: one Pending request, the last one.
    let mut settled = Vec::new();
    for _ in 0..600 {
        settled = requests(&ns).await;
        if settled
            .iter()
            .filter(|r| phase(r) == Phase::Pending)
            .count()
            == 1
            && settled
                .iter()
                .all(|r| matches!(phase(r), Phase::Pending | Phase::Superseded))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open: Vec<&ApprovalRequest> = settled
        .iter()
        .filter(|r| phase(r) == Phase::Pending)
        .collect();
    assert_eq!(open.len(), 1, "open: {:?}", names(&open));
    assert_eq!(open[0].metadata.name.as_deref(), Some(last.as_str()));
    assert!(
        settled.len() > 1,
        "each distinct content asked anew: {} requests",
        settled.len()
    );
    for req in settled.iter().filter(|r| phase(r) != Phase::Pending) {
        let status = req.status.as_ref().unwrap();
        assert_eq!(phase(req), Phase::Superseded, "{:?}", req.metadata.name);
        assert!(
            status.superseded.as_ref().is_some_and(|s| !s.by.is_empty()),
            "{:?} names its successor",
            req.metadata.name
        );
        assert!(
            status.recorded.contains(&Transition::Superseded),
            "{:?} was recorded as superseded",
            req.metadata.name
        );
    }
    let sample = settled
        .iter()
        .find(|r| phase(r) == Phase::Superseded)
        .unwrap();
    let sample = sample.metadata.name.clone().unwrap();
    await_transition_events(&ns, &sample, &["Requested", "Superseded"]).await;

    // The approvers hear of the last request once it settled, and of the
    // burst at most once before that.
    for _ in 0..300 {
        if notified_requested(&ns, &last).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        notified_requested(&ns, &last).await,
        "the open request is announced"
    );
    let announced: Vec<String> = receiver
        .received()
        .iter()
        .map(|d| d.json())
        .filter(|b| b["transition"] == "Requested")
        .map(|b| b["request"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        announced.len() <= 2 && announced.last() == Some(&last),
        "announced: {announced:?}"
    );
}

fn names(reqs: &[&ApprovalRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect()
}

async fn notified_requested(ns: &str, name: &str) -> bool {
    get_request(ns, name).await.is_some_and(|r| {
        r.status
            .unwrap_or_default()
            .notified
            .iter()
            .any(|n| n.transition == Transition::Requested)
    })
}

#[tokio::test]
async fn past_the_cap_a_new_target_is_denied_with_the_reason_and_nothing_is_made() {
    let admission = shared().await;
    let ns = namespace("cap").await;
    policy(&admission, &ns, "maxOpenRequests: 2").await;
    for name in ["cart", "search", "orders"] {
        apply(&ADMIN, &deployment(&ns, name, "app:v1")).ok();
    }
    let cart = held_change(&ns, "cart");
    held_change(&ns, "search");
    // A second change to a target she waits on replaces that request.
    let cart_again = request_name(
        &apply(&ALICE, &deployment(&ns, "cart", "app:v3")).fails(),
        &ns,
    );
    assert_ne!(cart_again, cart);

    let refused = apply(&ALICE, &deployment(&ns, "orders", "app:v2")).fails();
    assert!(
        refused.contains("already has 2 open requests")
            && refused.contains("spec.maxOpenRequests")
            && !refused.contains("ApprovalRequest "),
        "{refused}"
    );
    let for_orders = |reqs: &[ApprovalRequest]| {
        reqs.iter()
            .filter(|r| r.spec.target.name == "orders")
            .count()
    };
    assert_eq!(for_orders(&requests(&ns).await), 0, "nothing was made");

    // Once an approver decides one, there is room again.
    deny(&BOB, &ns, &cart_again).await;
    await_phase(&ns, &cart_again, Phase::Denied, SLACK).await;
    await_verdict(&ns, "orders").await;
    assert_eq!(for_orders(&requests(&ns).await), 1);
}

/// Waits until alice's change to `deploy` is held with a request made for
/// it: the webhook's cache has seen the denial that freed room.
async fn await_verdict(ns: &str, deploy: &str) {
    for _ in 0..100 {
        let message = apply(&ALICE, &deployment(ns, deploy, "app:v2")).fails();
        if message.contains(&format!("ApprovalRequest {ns}/")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{deploy} stayed refused after room was made");
}

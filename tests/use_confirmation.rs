//! Uses are confirmed against the object: the real `approval-gate serve`
//! binary records a use when it allows an admission, then its operator looks
//! at the object. alice's real apply shows the approved change and is
//! confirmed. A use recorded from a review that was posted straight to the
//! webhook with the apiserver's client certificate, for a write that never
//! happens, is reported as a Warning Event `UseUnconfirmed` and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::{Phase, UseCheck};
use approval_gate_testenv::webhook::LocalWebhook;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use support::{operator::*, *};

/// The use check the request's status shows, once it shows one.
async fn await_check(ns: &str, name: &str) -> UseCheck {
    for _ in 0..300 {
        let req = get_request(ns, name).await.unwrap();
        if let Some(check) = req.status.and_then(|s| s.use_check) {
            return check;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{ns}/{name}: the use was never checked");
}

/// alice's UPDATE of `deploy` to `image`, as the apiserver would send it.
async fn review(ns: &str, deploy: &str, image: &str) -> serde_json::Value {
    let live: Deployment = Api::namespaced(client(&ADMIN).await, ns)
        .get(deploy)
        .await
        .unwrap();
    let desired = with_image(&live, image);
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("{ns}-never-written"),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": deploy, "namespace": ns, "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": ALICE.groups},
            "object": desired, "oldObject": live,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    })
}

/// Posts `review` to the webhook as the apiserver (with its client
/// certificate) until it is allowed: the webhook's cache has seen the approval.
async fn post_until_allowed(admission: &LocalWebhook, review: &serde_json::Value) {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(admission.ca_pem.as_bytes()).unwrap())
        .identity(apiserver_identity())
        .build()
        .unwrap();
    for _ in 0..100 {
        let answer: serde_json::Value = http
            .post(format!("{}/validate", admission.url))
            .json(review)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["response"]["allowed"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the webhook never allowed the approved review");
}

#[tokio::test]
async fn a_real_use_is_confirmed_and_a_use_never_written_is_reported() {
    // Its own operator, keeping finished requests a minute, so that the
    // checks can be read before retention removes them.
    let _alone = exclusive().await;
    let admission = start_leader("confirm").await;
    register(&admission).await;
    let ns = namespace("confirm").await;
    policy(&admission, &ns, "").await;
    for deploy in ["checkout", "cart"] {
        apply(&ADMIN, &deployment(&ns, deploy, "app:v1")).ok();
    }
    let before = value(
        &scrape(&admission).await,
        "approval_gate_use_checks_total",
        "result=\"unconfirmed\"",
    );

    // alice performs her approved change: the object shows it.
    let real = held_change(&ns, "cart");
    approve(&BOB, &ns, &real).await;
    apply_until_allowed(&ns, "cart", "app:v2").await;
    await_phase(&ns, &real, Phase::Used, SLACK).await;
    assert_eq!(await_check(&ns, &real).await, UseCheck::Confirmed);

    // A review for the approved change reaches the webhook, but nothing is
    // ever written: the use is recorded, and then found out.
    let forged = held_change(&ns, "checkout");
    approve(&BOB, &ns, &forged).await;
    post_until_allowed(&admission, &review(&ns, "checkout", "app:v2").await).await;
    await_phase(&ns, &forged, Phase::Used, SLACK).await;
    assert_eq!(await_check(&ns, &forged).await, UseCheck::Unconfirmed);
    let note = await_event(&ns, &forged, "UseUnconfirmed").await;
    assert!(
        note.contains("did not show the approved change") && note.contains("-never-written"),
        "{note}"
    );
    let after = value(
        &scrape(&admission).await,
        "approval_gate_use_checks_total",
        "result=\"unconfirmed\"",
    );
    assert!(after >= before + 1.0, "{before} → {after}");
    assert!(
        events_about(&ns, &real, "UseUnconfirmed").is_empty(),
        "the real use raised nothing"
    );
}

/// The note of the Event `reason` about the request, once it exists.
async fn await_event(ns: &str, name: &str, reason: &str) -> String {
    for _ in 0..100 {
        if let Some(event) = events_about(ns, name, reason).first() {
            assert_eq!(event["type"], "Warning");
            return event["message"].as_str().unwrap_or_default().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {reason} Event about {ns}/{name}");
}

//! Only the apiserver may call the webhook: the local control plane presents
//! a client certificate to every webhook (its AdmissionConfiguration names a
//! `kubeConfigFile`), and the webhook refuses any caller without one from that
//! CA during the TLS handshake. A forged AdmissionReview posted straight to
//! the webhook creates no request, records no use and writes no Event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use approval_gate::crd::ApprovalRequest;
use approval_gate_testenv::{WEBHOOK_CLIENT_NAME, certs::ServingCerts};
use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};
use support::{
    webhook::{metrics, webhook},
    *,
};

/// alice's forged review: an UPDATE of a gated Deployment in `ns`, written as
/// if approval-gate's own service account asked (which the guard exempts).
fn forged_review(ns: &str) -> serde_json::Value {
    let deployment = |image: &str| {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": ns, "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "forged-1",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "checkout", "namespace": ns, "operation": "UPDATE",
            "userInfo": {"username": "bob", "groups": ["sre", "system:authenticated"]},
            "object": deployment("evil/backdoor:1"), "oldObject": deployment("app:v1"),
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    })
}

/// Posts `review` to the webhook's `/validate`, trusting its serving CA, with
/// `identity` as the client certificate if any.
async fn post(
    review: &serde_json::Value,
    identity: Option<&ServingCerts>,
) -> Result<String, String> {
    let hook = webhook();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(hook.ca_pem.as_bytes()).unwrap());
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    let client = builder.build().unwrap();
    let response = client
        .post(format!("{}/validate", hook.url))
        .json(review)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    response.text().await.map_err(|e| e.to_string())
}

fn refusals(metrics: &str, reason: &str) -> f64 {
    let series = format!("approval_gate_webhook_tls_refusals_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_forged_review_without_the_apiservers_certificate_is_refused_at_tls() {
    let ns = namespace("forged").await;
    let spec = format!(
        "rules: [{{apiGroups: [apps], resources: [deployments], namespaces: [{ns}], \
         operations: [UPDATE]}}]\napprovers: {{groups: [sre]}}\n"
    );
    install_policy(&ns, &spec).await;
    let before = metrics().await;

    // No client certificate at all.
    let refused = post(&forged_review(&ns), None).await.unwrap_err();
    assert!(!refused.is_empty());
    // A certificate with the apiserver's name, from a CA the webhook does not trust.
    let look_alike = ServingCerts::client(WEBHOOK_CLIENT_NAME).unwrap();
    post(&forged_review(&ns), Some(&look_alike))
        .await
        .unwrap_err();

    let after = metrics().await;
    for reason in ["no_certificate", "bad_certificate"] {
        assert!(
            refusals(&after, reason) >= refusals(&before, reason) + 1.0,
            "{reason} not counted:\n{after}"
        );
    }
    // Nothing came of it: no request, no use, no Event.
    let requests = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(requests.items.is_empty(), "{:?}", requests.items);
    let events = Api::<Event>::namespaced(client(&ADMIN).await, &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(events.items.is_empty(), "{:?}", events.items);

    // The apiserver's own calls, with its certificate, still decide.
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let held = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    assert!(held.contains("needs approval"), "{held}");
}

//! One bad policy is contained: a policy the apiserver refuses in a webhook
//! rule (here one written before approval-gate ran, so its guard never saw
//! it) leaves every other policy registered and enforced, shows
//! `Ready=False` with the apiserver's own message, and once fixed is
//! registered like any other. Its own control plane: the policy has to be
//! stored before any guard runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::ApprovalPolicy;
use approval_gate_testenv::webhook::LocalWebhook;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use support::*;

/// The resources the validating webhook is registered for, once the
/// configuration exists.
async fn gated() -> Option<Vec<String>> {
    let config = Api::<ValidatingWebhookConfiguration>::all(client(&ADMIN).await)
        .get_opt("approval-gate")
        .await
        .unwrap()?;
    let rules = config.webhooks?.first()?.rules.clone()?;
    Some(
        rules
            .into_iter()
            .flat_map(|r| r.resources.unwrap_or_default())
            .collect(),
    )
}

/// The policy's Ready condition as (status, reason, message).
async fn ready(name: &str) -> Option<(String, String, String)> {
    let policy = Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .get(name)
        .await
        .unwrap();
    let conditions = policy.status?.conditions;
    let c = conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason, c.message))
}

async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn a_policy_the_apiserver_refuses_leaves_every_other_policy_enforced() {
    let ns = namespace("refused").await;
    // Stored before approval-gate runs, as after an upgrade from a version
    // whose guard let a wildcard beside other operations through.
    create_policy(
        "mixed-wildcard",
        &format!(
            "rules: [{{apiGroups: [''], resources: [services], operations: ['*', UPDATE], namespaces: [{ns}]}}]\n\
             approvers: {{groups: [sre]}}\n"
        ),
    )
    .await;
    create_policy(
        "config-maps",
        &format!(
            "rules: [{{apiGroups: [''], resources: [configmaps], operations: [CREATE], namespaces: [{ns}]}}]\n\
             approvers: {{groups: [sre]}}\n"
        ),
    )
    .await;

    let plane = plane();
    let operator = LocalWebhook::spawn_registering(
        std::path::Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &plane.dir().join("operator"),
        &plane.kubeconfig(&CONTROLLER),
        &["--lease-seconds=5"],
    )
    .unwrap();
    operator.wait_ready(Duration::from_secs(60)).await.unwrap();

    let registered = eventually("the other policy is registered", async || {
        gated()
            .await
            .filter(|g| g.contains(&"configmaps".to_owned()))
    })
    .await;
    assert!(
        !registered.contains(&"services".to_owned()),
        "{registered:?}"
    );
    let held = kubectl(&ALICE)
        .args([
            "-n",
            &ns,
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
        ])
        .run()
        .fails();
    assert!(held.contains("needs approval"), "{held}");

    let (status, _, message) = eventually("the refusal shows on the policy", async || {
        ready("mixed-wildcard")
            .await
            .filter(|(_, reason, _)| reason == "RegistrationRefused")
    })
    .await;
    assert_eq!(status, "False");
    assert!(
        message.contains("not enforced") && message.contains("operations"),
        "the apiserver's own words: {message}"
    );
    let good = ready("config-maps").await.unwrap();
    assert_eq!((good.0.as_str(), good.1.as_str()), ("True", "Valid"));

    // Fixed (through the guard, which now runs), it is registered too.
    kubectl(&ADMIN)
        .args([
            "patch",
            "approvalpolicy",
            "mixed-wildcard",
            "--type=json",
            "-p",
        ])
        .args([r#"[{"op":"replace","path":"/spec/rules/0/operations","value":["UPDATE"]}]"#])
        .run()
        .ok();
    eventually("the fixed policy is registered", async || {
        gated().await.filter(|g| g.contains(&"services".to_owned()))
    })
    .await;
    eventually("the fixed policy is Ready", async || {
        ready("mixed-wildcard")
            .await
            .filter(|(status, _, _)| status == "True")
    })
    .await;
}

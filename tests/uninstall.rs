//! Uninstalling cannot lock anyone out: the real binary, run as the installed
//! chart's own ServiceAccount (its token from the TokenRequest API) with the
//! Deployment's own arguments, registers its ValidatingWebhookConfiguration
//! owned by the chart's ClusterRole; `helm uninstall` removes that ClusterRole,
//! and kube-controller-manager's garbage collector removes the configuration
//! (which the still-running binary, its RBAC gone, cannot put back) and the
//! certificate Secret with its CA key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{future::Future, path::Path, time::Duration};

use approval_gate_testenv::webhook::LocalWebhook;
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration, apps::v1::Deployment,
    core::v1::Secret, rbac::v1::ClusterRole,
};
use kube::Api;
use support::{helm::*, *};

const RELEASE: &str = "gc";
const FULLNAME: &str = "gc-approval-gate";

/// Polls `check` every 100 ms for up to `limit`; returns its last answer.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Deployment's container arguments, minus what places the process in a
/// pod: this one listens on loopback and is registered by URL.
async fn deployment_args(ns: &str) -> Vec<String> {
    let deployment = Api::<Deployment>::namespaced(client(&ADMIN).await, ns)
        .get(FULLNAME)
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(args[0], "serve");
    args.into_iter()
        .skip(1)
        .filter(|a| {
            !["--listen", "--metrics-listen", "--webhook-service"]
                .iter()
                .any(|placed| a.starts_with(placed))
        })
        .collect()
}

#[tokio::test]
async fn helm_uninstall_garbage_collects_the_webhook_configuration() {
    let _controller_manager = plane().start_controller_manager().unwrap();
    let ns = namespace("uninstall").await;
    let admin = plane().kubeconfig(&ADMIN);
    let admin = admin.to_str().unwrap();
    let chart = chart();
    helm_ok([
        "install",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        &ns,
        "--skip-crds",
        "--set",
        "examplePolicy.enabled=false",
        "--kubeconfig",
        admin,
    ]);

    let token = kubectl(&ADMIN)
        .args(["create", "token", FULLNAME, "-n", &ns, "--duration=1h"])
        .run()
        .ok();
    let kubeconfig = plane().token_kubeconfig(&ns, token.trim()).unwrap();
    let args = deployment_args(&ns).await;
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let operator = LocalWebhook::spawn_registering(
        Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &plane().dir().join(&ns),
        &kubeconfig,
        &extra,
    )
    .unwrap();
    operator.wait_ready(Duration::from_secs(60)).await.unwrap();

    let admin_client = client(&ADMIN).await;
    let configurations = Api::<ValidatingWebhookConfiguration>::all(admin_client.clone());
    let owner = Api::<ClusterRole>::all(admin_client)
        .get(FULLNAME)
        .await
        .unwrap();
    let registered = eventually(Duration::from_secs(30), || async {
        configurations.get_opt(FULLNAME).await.unwrap().is_some()
    })
    .await;
    assert!(registered, "not registered:\n{}", operator.log());
    let config = configurations.get(FULLNAME).await.unwrap();
    let owners = config.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "ClusterRole");
    assert_eq!(owners[0].name, FULLNAME);
    assert_eq!(Some(&owners[0].uid), owner.metadata.uid.as_ref());

    let tls_secret = format!("{FULLNAME}-tls");
    let issued = Api::<Secret>::namespaced(client(&ADMIN).await, &ns)
        .get(&tls_secret)
        .await
        .unwrap();
    let owners = issued.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(Some(&owners[0].uid), owner.metadata.uid.as_ref());

    let removed = helm_ok([
        "uninstall",
        RELEASE,
        "--namespace",
        &ns,
        "--kubeconfig",
        admin,
    ]);
    assert!(removed.contains("uninstalled"), "{removed}");
    let collected = eventually(Duration::from_secs(60), || async {
        configurations.get_opt(FULLNAME).await.unwrap().is_none()
    })
    .await;
    let controller_manager_log =
        std::fs::read_to_string(plane().dir().join("kube-controller-manager.log"))
            .unwrap_or_default();
    assert!(
        collected,
        "the configuration outlived its owner; kube-controller-manager:\n{controller_manager_log}"
    );
    // The Secret with the CA key the operator issued goes the same way.
    let secrets = Api::<Secret>::namespaced(client(&ADMIN).await, &ns);
    let secret_collected = eventually(Duration::from_secs(60), || async {
        secrets.get_opt(&tls_secret).await.unwrap().is_none()
    })
    .await;
    assert!(secret_collected, "{tls_secret} outlived the release");
    // The binary still runs, but without its ClusterRoleBinding it may not
    // put the configuration back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        configurations.get_opt(FULLNAME).await.unwrap().is_none(),
        "re-created after uninstall:\n{}",
        operator.log()
    );
}

//! The real `approval-gate webhook` binary, run against the shared control
//! plane as approval-gate's own service account and registered by URL.

use std::{path::Path, sync::OnceLock, time::Duration};

use approval_gate_testenv::webhook::LocalWebhook;
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;

use super::{ADMIN, CONTROLLER, plane};

static WEBHOOK: OnceLock<LocalWebhook> = OnceLock::new();

/// The webhook shared by every test in this binary, started and registered on first use.
pub fn webhook() -> &'static LocalWebhook {
    WEBHOOK.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(start())
        })
        .join()
        .expect("the webhook start thread")
    })
}

async fn start() -> LocalWebhook {
    let plane = plane();
    let running = spawn(&plane.dir().join("webhook"), &plane.kubeconfig(&CONTROLLER));
    running.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = plane.client(&ADMIN).await.unwrap();
    running.register(&admin, test_rules()).await.unwrap();
    running
}

/// Starts one more webhook process acting through `kubeconfig`; not registered.
pub fn spawn(dir: &Path, kubeconfig: &Path) -> LocalWebhook {
    LocalWebhook::spawn(
        Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        dir,
        kubeconfig,
    )
    .unwrap()
}

/// Every kind of request the tests' policies cover; the webhook itself
/// decides from the policies.
fn test_rules() -> Vec<RuleWithOperations> {
    let rule = |groups: &[&str], resources: &[&str]| RuleWithOperations {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        api_versions: Some(vec!["*".into()]),
        operations: Some(vec!["*".into()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        scope: Some("*".into()),
    };
    vec![
        rule(&["apps"], &["deployments", "deployments/scale"]),
        rule(
            &[""],
            &["pods/exec", "pods/attach", "namespaces", "configmaps"],
        ),
    ]
}

/// Waits until the webhook's index holds `policy`.
pub async fn await_policy(policy: &str) {
    let http = reqwest::Client::new();
    let url = format!("{}/debug/index", webhook().metrics_url);
    for _ in 0..200 {
        let body: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        if body["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p == policy)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook never saw policy {policy}");
}

/// The webhook's /metrics text.
pub async fn metrics() -> String {
    reqwest::get(format!("{}/metrics", webhook().metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

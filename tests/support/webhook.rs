//! The real `approval-gate webhook` binary, run against the shared control
//! plane as approval-gate's own service account and registered by URL.

use std::{path::PathBuf, sync::OnceLock, time::Duration};

use approval_gate::{
    testenv::{CONTROL_NAMESPACE, process::ManagedProcess},
    webhook::registration::{Endpoint, configuration},
};
use k8s_openapi::api::admissionregistration::v1::{RuleWithOperations, ValidatingWebhookConfiguration};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::{ADMIN, CONTROLLER, plane};

pub struct RunningWebhook {
    pub url: String,
    pub metrics_url: String,
    pub dir: PathBuf,
    _process: ManagedProcess,
}

static WEBHOOK: OnceLock<RunningWebhook> = OnceLock::new();

/// The webhook shared by every test in this binary, started and registered on first use.
pub fn webhook() -> &'static RunningWebhook {
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

async fn start() -> RunningWebhook {
    let plane = plane();
    let kubeconfig = plane.kubeconfig(&CONTROLLER);
    let (running, ca_pem) = spawn(&plane.dir().join("webhook"), &kubeconfig);
    wait_ready(&running.metrics_url, &running.dir).await;
    register(&running.url, ca_pem.as_bytes()).await;
    running
}

/// Starts one more webhook process acting through `kubeconfig`; returns it
/// and the CA its certificate is signed by. Nothing is registered.
pub fn spawn(dir: &std::path::Path, kubeconfig: &std::path::Path) -> (RunningWebhook, String) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_pem = write_certs(dir);
    let [port, metrics_port] = free_ports();
    let url = format!("https://127.0.0.1:{port}");
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    let args: Vec<String> = vec![
        "webhook".into(),
        format!("--listen=127.0.0.1:{port}"),
        format!("--metrics-listen=127.0.0.1:{metrics_port}"),
        format!("--tls-cert-file={}", dir.join("tls.crt").display()),
        format!("--tls-key-file={}", dir.join("tls.key").display()),
        format!("--control-namespace={CONTROL_NAMESPACE}"),
        "--instance=test-webhook".into(),
    ];
    let kubeconfig = kubeconfig.display().to_string();
    let process = ManagedProcess::spawn_with_env(
        "approval-gate-webhook",
        std::path::Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &args,
        &[("KUBECONFIG", &kubeconfig), ("RUST_LOG", "info,approval_gate=debug")],
        &dir.join("webhook.log"),
    )
    .unwrap();
    let running = RunningWebhook {
        url,
        metrics_url,
        dir: dir.to_owned(),
        _process: process,
    };
    (running, ca_pem)
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
        rule(&[""], &["pods/exec", "pods/attach", "namespaces", "configmaps"]),
    ]
}

async fn register(url: &str, ca: &[u8]) {
    let config = configuration(&Endpoint::Url(url.to_owned()), ca, test_rules(), CONTROL_NAMESPACE);
    let api = Api::<ValidatingWebhookConfiguration>::all(plane().client(&ADMIN).await.unwrap());
    api.patch(
        "approval-gate",
        &PatchParams::apply("approval-gate-tests").force(),
        &Patch::Apply(&config),
    )
    .await
    .unwrap();
}

pub async fn wait_ready(metrics_url: &str, dir: &std::path::Path) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(resp) = http.get(format!("{metrics_url}/readyz")).send().await
            && resp.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.join("webhook.log")).unwrap_or_default();
    panic!("the webhook did not become ready:\n{log}");
}

/// Waits until the webhook's index holds `policy`.
pub async fn await_policy(policy: &str) {
    let http = reqwest::Client::new();
    let url = format!("{}/debug/index", webhook().metrics_url);
    for _ in 0..200 {
        let body: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        let known = body["policies"].as_array().into_iter().flatten().any(|p| p == policy);
        if known {
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

fn write_certs(dir: &std::path::Path) -> String {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    ca.pem()
}

fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let mut ports = [0; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr().unwrap().port();
    }
    ports
}

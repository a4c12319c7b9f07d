//! What the README promises for the bad days, tried against the real
//! apiserver:
//! - with the webhook down and `failurePolicy: Fail`, node identities,
//!   Leases, Nodes and CSRs still pass, while everything else a policy covers
//!   is refused (the derived configuration's `matchConditions` at work);
//! - with an apiserver that stops answering the webhook's own calls, every
//!   denial still comes back at once (the pending-request create is bounded),
//!   and Events that cannot be published are dropped and counted rather than
//!   delaying admission.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::{
    crd::ApprovalPolicySpec,
    pki,
    registration::{
        CONFIGURATION_NAME, Endpoint, NamespaceScope, Registration, ScopedRules, configuration,
        rules_for,
    },
};
use futures::StreamExt as _;
use k8s_openapi::{
    api::{admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::ConfigMap},
    apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement,
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use support::{
    operator::{scrape, value},
    proxy::StallingProxy,
    *,
};
use tokio::sync::Mutex;

/// Both tests register a webhook for ConfigMaps; one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The gate's rules as the operator derives them from one policy on
/// ConfigMaps in `ns`, Leases, Nodes and CSRs, in one webhook for any
/// namespace (the test scopes it to `ns` itself).
fn derived_rules(ns: &str) -> Vec<ScopedRules> {
    let spec: ApprovalPolicySpec = serde_yaml_ng::from_str(&format!(
        "rules:\n\
         - {{apiGroups: [''], resources: [configmaps], namespaces: [{ns}], operations: ['*']}}\n\
         - {{apiGroups: [coordination.k8s.io], resources: [leases], namespaces: [{ns}], operations: ['*']}}\n\
         - {{apiGroups: [''], resources: [nodes], operations: ['*']}}\n\
         - {{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], operations: ['*']}}\n\
         approvers: {{groups: [sre]}}\n"
    ))
    .unwrap();
    let rules = rules_for([&spec])
        .into_iter()
        .flat_map(|g| g.rules)
        .collect();
    vec![ScopedRules {
        scope: NamespaceScope::Any,
        rules,
    }]
}

/// A CertificateSigningRequest manifest with a real PKCS#10 request.
fn csr(name: &str) -> String {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate().unwrap();
    let request = rcgen::CertificateParams::new(vec!["outage.example".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(request);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\n\
         spec: {{request: {encoded}, signerName: example.com/outage, usages: [digital signature]}}\n"
    )
}

/// Tries `kubectl create configmap NAME -n NS` as the admin with extra `args`.
fn create_config_map(ns: &str, name: &str, args: &[&str]) -> KubectlOutput {
    kubectl(&ADMIN)
        .args(args)
        .args(["create", "configmap", name, "-n", ns, "--from-literal=k=v"])
        .run()
}

#[tokio::test]
async fn with_the_webhook_down_nodes_leases_and_csrs_pass_and_the_rest_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ns = namespace("outage").await;
    // Nothing listens where the configuration points: the webhook is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", dead.local_addr().unwrap());
    drop(dead);
    let ca = pki::new_authority(jiff::Timestamp::now(), Duration::from_secs(3600)).unwrap();
    let mut registration = Registration::new(Endpoint::Url(url), "approval-gate");
    registration.name = format!("outage-{ns}");
    assert_eq!(registration.failure_policy, "Fail");
    let mut config = configuration(&registration, ca.cert_pem.as_bytes(), derived_rules(&ns));
    // The sensitive rules only (the guard of approval-gate's own objects is
    // not what this test is about), and only this test's namespace, so that
    // no other test meets a dead webhook.
    let webhooks = config.webhooks.as_mut().unwrap();
    webhooks.truncate(1);
    let selector = webhooks[0].namespace_selector.as_mut().unwrap();
    selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![ns.clone()]),
        });
    let configurations = Api::<ValidatingWebhookConfiguration>::all(client(&ADMIN).await);
    configurations
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    // Everything else the policy covers fails closed, the admin included.
    let mut refused = String::new();
    for attempt in 0.. {
        let out = create_config_map(&ns, "settings", &["--dry-run=server"]);
        if !out.success() {
            refused = out.stderr();
            break;
        }
        assert!(attempt < 100, "the configuration never took effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused.contains("failed calling webhook"), "{refused}");
    create_config_map(&ns, "settings", &[]).fails();

    // A node's own identity passes (matchCondition not-a-node)...
    create_config_map(
        &ns,
        "from-a-node",
        &[
            "--as=system:node:worker-1",
            "--as-group=system:nodes",
            "--as-group=system:masters",
        ],
    )
    .ok();
    // ...and so do Leases, Nodes and CSRs, whoever writes them
    // (matchCondition not-recovery-objects).
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: held, namespace: {ns}}}\n\
         spec: {{holderIdentity: worker-1, leaseDurationSeconds: 40}}\n"
    );
    apply(&ADMIN, &lease).ok();
    let node = format!("outage-{ns}");
    apply(
        &ADMIN,
        &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {node}}}\n"),
    )
    .ok();
    kubectl(&ADMIN)
        .args(["label", "node", &node, "renewed=yes"])
        .run()
        .ok();
    apply(&ADMIN, &csr(&format!("outage-{ns}"))).ok();

    configurations
        .delete(&registration.name, &DeleteParams::default())
        .await
        .unwrap();
    kubectl(&ADMIN)
        .args(["delete", "node", &node, "--wait=false"])
        .run()
        .ok();
}

/// How many held changes the test makes while the apiserver is stalled: two
/// Events each, well past the webhook's queue of 1,024.
const HELD: usize = 600;

#[tokio::test]
async fn a_stalled_apiserver_delays_no_denial_and_unpublished_events_are_counted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let ns = namespace("stalled").await;
    // The webhook reaches the apiserver only through the proxy.
    let proxy = StallingProxy::start(plane().url()).await;
    let kubeconfig = plane().dir().join("kubeconfig-controller-via-proxy");
    let original = std::fs::read_to_string(plane().kubeconfig(&CONTROLLER)).unwrap();
    assert!(original.contains(plane().url()));
    std::fs::write(&kubeconfig, original.replace(plane().url(), &proxy.url)).unwrap();
    let gate = support::webhook::spawn(&plane().dir().join("stalled-webhook"), &kubeconfig);
    gate.wait_ready(Duration::from_secs(30)).await.unwrap();
    let admin = client(&ADMIN).await;
    let rule = k8s_openapi::api::admissionregistration::v1::RuleWithOperations {
        api_groups: Some(vec![String::new()]),
        api_versions: Some(vec!["*".into()]),
        operations: Some(vec!["*".into()]),
        resources: Some(vec!["configmaps".into()]),
        scope: Some("*".into()),
    };
    gate.register(&admin, vec![rule]).await.unwrap();
    create_policy(
        &format!("{ns}-policy"),
        &format!(
            "rules: [{{apiGroups: [''], resources: [configmaps], namespaces: [{ns}], operations: [CREATE]}}]\n\
             approvers: {{groups: [sre]}}\n"
        ),
    )
    .await;
    // Held while the apiserver answers: the webhook's cache has the policy.
    for attempt in 0.. {
        let probe = kubectl(&ALICE)
            .args([
                "create",
                "configmap",
                "probe",
                "-n",
                &ns,
                "--dry-run=server",
            ])
            .run();
        if probe.stderr().contains("needs approval") {
            break;
        }
        assert!(attempt < 100, "never held: {}", probe.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dropped_before = value(
        &scrape(&gate).await,
        "approval_gate_events_dropped_total",
        "",
    );

    proxy.stall();
    let alice = Api::<ConfigMap>::namespaced(client(&ALICE).await, &ns);
    let denials: Vec<String> = futures::stream::iter(0..HELD)
        .map(|i| {
            let alice = alice.clone();
            async move {
                let map: ConfigMap = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("held-{i}")}, "data": {"k": "v"}
                }))
                .unwrap();
                match alice.create(&PostParams::default(), &map).await {
                    Err(kube::Error::Api(status)) if status.code == 403 => status.message,
                    other => panic!("held-{i} was not denied by the webhook: {other:?}"),
                }
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    // Each denial came back while its create still hung: the webhook did not
    // wait for it (had it waited, the apiserver would have reported a
    // webhook timeout instead of this denial).
    for denial in &denials {
        assert!(denial.contains("needs approval"), "{denial}");
        assert!(denial.contains("is being created"), "{denial}");
    }
    let metrics = scrape(&gate).await;
    let timed_out = value(
        &metrics,
        "approval_gate_auto_requests_total",
        r#"result="timeout""#,
    );
    assert_eq!(timed_out, HELD as f64);
    // Two Events per denial, a queue of 1,024 and at most one in flight: the
    // rest were dropped and counted, never waited for.
    let dropped = value(&metrics, "approval_gate_events_dropped_total", "") - dropped_before;
    assert!(
        dropped >= (2 * HELD - 1025) as f64,
        "only {dropped} Events dropped"
    );
    assert!(
        gate.log()
            .contains("the Event queue is full; the Event is dropped and kept in this log line"),
        "{}",
        gate.log()
    );

    drop(gate);
    Api::<ValidatingWebhookConfiguration>::all(admin)
        .delete(CONFIGURATION_NAME, &DeleteParams::default())
        .await
        .unwrap();
}

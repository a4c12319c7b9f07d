//! The operator registers its own webhook, as it does in a cluster, but as a
//! local process registered by URL (`--webhook-url`), acting as approval-gate's
//! service account under the chart's RBAC: it issues the certificate into the
//! chart's Secret, keeps the ValidatingWebhookConfiguration's rules in step
//! with the policies, rotates the CA without a single failed handshake, and
//! puts back a configuration someone deleted.
//!
//! Every test here shares one operator and the one configuration, so they run
//! one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use approval_gate::{
    crd::ApprovalPolicy,
    pki::{self, CA_BUNDLE, CA_KEY, TLS_CERT, TLS_KEY},
};
use approval_gate_testenv::{CONTROL_NAMESPACE, webhook::LocalWebhook};
use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingWebhook, ValidatingWebhookConfiguration},
    core::v1::Secret,
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use support::*;
use tokio::sync::{Mutex, MutexGuard};

const CONFIGURATION: &str = "approval-gate";
const SECRET: &str = "approval-gate-tls";

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
static OPERATOR: OnceLock<LocalWebhook> = OnceLock::new();

/// The operator, started on first use, and the lock that keeps the tests apart.
async fn operator() -> (&'static LocalWebhook, MutexGuard<'static, ()>) {
    let guard = ONE_AT_A_TIME.lock().await;
    let operator = OPERATOR.get_or_init(|| {
        let plane = plane();
        LocalWebhook::spawn_registering(
            std::path::Path::new(env!("CARGO_BIN_EXE_approval-gate")),
            &plane.dir().join("operator"),
            &plane.kubeconfig(&CONTROLLER),
            &["--rotation-step=2s", "--lease-seconds=5"],
        )
        .unwrap()
    });
    operator.wait_ready(Duration::from_secs(60)).await.unwrap();
    configuration_where(|_| true).await;
    (operator, guard)
}

async fn configurations() -> Api<ValidatingWebhookConfiguration> {
    Api::all(client(&ADMIN).await)
}

async fn secret() -> Secret {
    Api::<Secret>::namespaced(client(&ADMIN).await, CONTROL_NAMESPACE)
        .get(SECRET)
        .await
        .unwrap()
}

fn data(secret: &Secret, key: &str) -> Vec<u8> {
    secret.data.as_ref().unwrap()[key].0.clone()
}

/// Polls until the configuration exists and satisfies `ok`; returns it.
async fn configuration_where(
    ok: impl Fn(&ValidatingWebhookConfiguration) -> bool,
) -> ValidatingWebhookConfiguration {
    let api = configurations().await;
    for _ in 0..300 {
        if let Some(config) = api.get_opt(CONFIGURATION).await.unwrap()
            && ok(&config)
        {
            return config;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = api.get_opt(CONFIGURATION).await.unwrap();
    panic!("the webhook configuration never got there; last seen: {last:#?}");
}

/// The CAs the apiserver is told to trust (the same in both webhooks).
fn trusted(config: &ValidatingWebhookConfiguration) -> Vec<pki::CertInfo> {
    let bundle = config.webhooks.as_ref().unwrap()[0]
        .client_config
        .ca_bundle
        .as_ref()
        .map(|b| b.0.clone())
        .unwrap_or_default();
    pki::parse_bundle(&bundle).unwrap_or_default()
}

fn gated_resources(config: &ValidatingWebhookConfiguration) -> Vec<String> {
    config
        .webhooks
        .iter()
        .flatten()
        .filter(|w| w.name != "guard.approvalgate.dev")
        .flat_map(|w| w.rules.iter().flatten())
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect()
}

/// Creates the policy `<ns>-<suffix>` on ConfigMap CREATEs in `ns` (with
/// `extra` spec lines) and waits until the registration gates ConfigMaps.
async fn configmaps_policy(ns: &str, suffix: &str, extra: &str) -> String {
    let policy = format!("{ns}-{suffix}");
    create_policy(
        &policy,
        &format!(
            "rules: [{{apiGroups: [''], resources: [configmaps], operations: [CREATE], namespaces: [{ns}]}}]\n\
             approvers: {{groups: [sre]}}\n{extra}"
        ),
    )
    .await;
    configuration_where(|c| gated_resources(c).contains(&"configmaps".to_owned())).await;
    policy
}

async fn delete_policy(name: &str) {
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn operator_issues_its_certificate_and_registers_with_safe_defaults() {
    let (operator, _one) = operator().await;
    let secret = secret().await;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    for key in [CA_BUNDLE, CA_KEY, TLS_CERT, TLS_KEY] {
        assert!(!data(&secret, key).is_empty(), "{key} is empty");
    }
    let ca = pki::parse_bundle(&data(&secret, CA_BUNDLE)).unwrap();
    let leaf = &pki::parse_bundle(&data(&secret, TLS_CERT)).unwrap()[0];
    assert!(leaf.signed_by(&ca[0]));
    assert_eq!(leaf.hosts, ["127.0.0.1"]);

    let config = configurations().await.get(CONFIGURATION).await.unwrap();
    let owner = &config.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ClusterRole", "approval-gate")
    );
    let webhooks = config.webhooks.unwrap();
    let names: Vec<_> = webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        ["validate.approvalgate.dev", "guard.approvalgate.dev"]
    );
    for webhook in &webhooks {
        assert_eq!(
            webhook.client_config.url.as_deref(),
            Some(format!("{}/validate", operator.url).as_str())
        );
        assert_eq!(
            webhook.client_config.ca_bundle.as_ref().unwrap().0,
            data(&secret, CA_BUNDLE)
        );
        assert_eq!(webhook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(webhook.timeout_seconds, Some(5));
        assert_eq!(webhook.side_effects, "NoneOnDryRun");
    }
    let conditions = |w: &ValidatingWebhook| -> Vec<String> {
        w.match_conditions
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(
        conditions(&webhooks[0]),
        ["not-a-node", "not-recovery-objects"]
    );
    assert!(
        conditions(&webhooks[1]).is_empty(),
        "the guard exempts nobody, nodes included"
    );
    let excluded = webhooks[0].namespace_selector.as_ref().unwrap();
    let excluded = excluded.match_expressions.as_ref().unwrap()[0]
        .values
        .clone()
        .unwrap();
    assert_eq!(excluded, ["kube-system", CONTROL_NAMESPACE]);
    let guarded: Vec<String> = webhooks[1]
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        guarded,
        [
            "approvalrequests",
            "approvalrequests/status",
            "approvalpolicies"
        ]
    );

    // The apiserver can reach it: a guarded write goes through the webhook.
    let bad = kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(
            "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: reg-bad}\n\
             spec: {rules: [{apiGroups: [apps], resources: [deployments], operations: [UPDATE]}], \
             approvers: {groups: [sre]}, approvalTTL: 48h}\n",
        )
        .run()
        .fails();
    assert!(bad.contains("guard.approvalgate.dev"), "{bad}");
    assert!(bad.contains("spec.approvalTTL: 48h"), "{bad}");

    // Once the configuration is as desired (no policy here: no rules), the
    // leader leaves it alone: a leader whose read-back never compares
    // equal rewrites it many times a second.
    let settled = configurations().await.get(CONFIGURATION).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = configurations().await.get(CONFIGURATION).await.unwrap();
    assert_eq!(
        later.metadata.resource_version, settled.metadata.resource_version,
        "the configuration was rewritten although nothing changed"
    );
}

/// `kubectl create service` as alice.
fn create_service(ns: &str) -> KubectlOutput {
    kubectl(&ALICE)
        .args([
            "-n",
            ns,
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80",
        ])
        .run()
}

/// The rules follow a new and a deleted policy (each wait bounded at 30 s by
/// `configuration_where`; the time taken is printed, not asserted), and the
/// derived rule really holds a change.
#[tokio::test]
async fn a_new_policy_changes_the_rules_and_gates_through_them() {
    let (_operator, _one) = operator().await;
    let ns = namespace("reg-rules").await;
    let before = configurations().await.get(CONFIGURATION).await.unwrap();
    assert!(!gated_resources(&before).contains(&"services".to_owned()));

    let started = Instant::now();
    let policy = format!("{ns}-services");
    create_policy(
        &policy,
        &format!(
            "rules: [{{apiGroups: [''], resources: [services], operations: [CREATE], namespaces: [{ns}]}}]\n\
             approvers: {{groups: [sre]}}\n"
        ),
    )
    .await;
    configuration_where(|c| gated_resources(c).contains(&"services".to_owned())).await;
    eprintln!(
        "rules followed the new policy after {:?}",
        started.elapsed()
    );

    // The derived rule really sends the request to the webhook, which holds it.
    let held = create_service(&ns).fails();
    assert!(held.contains("validate.approvalgate.dev"), "{held}");
    assert!(held.contains("needs approval"), "{held}");

    delete_policy(&policy).await;
    configuration_where(|c| !gated_resources(c).contains(&"services".to_owned())).await;
    create_service(&ns).ok();
}

#[tokio::test]
async fn a_deleted_configuration_is_put_back_and_the_repair_is_logged() {
    let (operator, _one) = operator().await;
    kubectl(&ADMIN)
        .args(["delete", "validatingwebhookconfiguration", CONFIGURATION])
        .run()
        .ok();
    let restored = configuration_where(|_| true).await;
    assert_eq!(restored.webhooks.unwrap().len(), 2);
    // The log line comes with the watch's delete event, which may arrive
    // after the re-created configuration is readable.
    for _ in 0..100 {
        if operator
            .log()
            .contains("the ValidatingWebhookConfiguration was deleted; re-creating it")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        operator
            .log()
            .contains("the ValidatingWebhookConfiguration was deleted; re-creating it"),
        "{}",
        operator.log()
    );
    // The repair also leaves a Warning Event.
    let notes = restored_events(1).await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("was deleted while approval-gate runs")),
        "no Warning Event: {notes:?}"
    );
}

/// Creates ConfigMaps as alice until `stop`; every create passes through the
/// webhook (an Audit policy covers them). Returns how many succeeded and the
/// errors.
async fn admissions(ns: String, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<String> {
    let api = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client(&ALICE).await, &ns);
    let mut errors = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": "stream-"}, "data": {"n": n.to_string()}
        }))
        .unwrap();
        match api.create(&PostParams::default(), &cm).await {
            Ok(_) => {
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => errors.push(err.to_string()),
        }
    }
    errors
}

fn decisions(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("approval_gate_admission_decisions_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_of(operator: &LocalWebhook) -> String {
    reqwest::get(format!("{}/metrics", operator.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_forced_rotation_keeps_admissions_flowing_without_a_tls_error() {
    let (operator, _one) = operator().await;
    let ns = namespace("reg-rotate").await;
    let policy = configmaps_policy(&ns, "stream", "mode: Audit\n").await;
    let before = secret().await;
    let decided_before = decisions(&metrics_of(operator).await);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let streams: Vec<_> = (0..4)
        .map(|_| tokio::spawn(admissions(ns.clone(), Arc::clone(&stop), Arc::clone(&done))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let token = format!("test-{}", jiff::Timestamp::now().as_millisecond());
    kubectl(&ADMIN)
        .args([
            "-n",
            CONTROL_NAMESPACE,
            "annotate",
            "secret",
            SECRET,
            "--overwrite",
        ])
        .args([format!("approvalgate.dev/rotate={token}")])
        .run()
        .ok();

    // The rotation passes through a state where the apiserver trusts both CAs.
    let old_ca = pki::parse_bundle(&data(&before, CA_BUNDLE)).unwrap()[0].clone();
    let both = trusted(&configuration_where(|c| trusted(c).len() == 2).await);
    assert_eq!(
        both[1], old_ca,
        "the old CA stays trusted during the rotation"
    );

    // ... and ends with only the new CA, and a serving certificate from it.
    let finished = configuration_where(|c| {
        let cas = trusted(c);
        cas.len() == 1 && cas[0] != old_ca
    })
    .await;
    let after = secret().await;
    assert_eq!(
        after.metadata.annotations.as_ref().unwrap()["approvalgate.dev/rotated"],
        token
    );
    let new_ca = &trusted(&finished)[0];
    let new_leaf = &pki::parse_bundle(&data(&after, TLS_CERT)).unwrap()[0];
    assert!(new_leaf.signed_by(new_ca));
    assert_ne!(data(&after, TLS_CERT), data(&before, TLS_CERT));
    // Keep the stream running a little past the end of the rotation.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for stream in streams {
        errors.extend(stream.await.unwrap());
    }
    let admitted = done.load(Ordering::Relaxed);
    eprintln!(
        "{admitted} admissions during the rotation, {} errors",
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "admissions failed during the rotation: {errors:#?}"
    );
    assert!(
        admitted >= 20,
        "too few admissions to show anything: {admitted}"
    );
    // They really went through the webhook, not around it.
    let decided = decisions(&metrics_of(operator).await) - decided_before;
    assert!(
        decided >= admitted as f64,
        "the webhook decided {decided} times for {admitted} admissions"
    );
    let log = operator.log();
    assert!(!log.contains("TLS handshake failed"), "{log}");
    for step in [
        "CARotationStarted",
        "CertificateIssued",
        "CARotationFinished",
    ] {
        assert!(log.contains(step), "no {step} in the log");
    }
    delete_policy(&policy).await;
}

/// The notes of the Warning Events `WebhookConfigurationRestored`
/// (cluster-scoped objects' Events live in `default`), once at least
/// `at_least` exist.
async fn restored_events(at_least: usize) -> Vec<String> {
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = operator::events_where(
            "default",
            "reason=WebhookConfigurationRestored,type=Warning",
        )
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect();
        if notes.len() >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    notes
}

#[tokio::test]
async fn an_edited_configuration_is_put_back_rules_failure_policy_and_ca_bundle() {
    let (operator, _one) = operator().await;
    let ns = namespace("reg-edited").await;
    // A policy, so that the configuration has rules to lose.
    let policy = configmaps_policy(&ns, "configmaps", "").await;
    let kept = configuration_where(|c| gated_resources(c).contains(&"configmaps".to_owned())).await;
    let restored_before = restored_events(0).await.len();

    // Someone with the rights to do it turns the gate into a no-op: no rules,
    // failing open, and trusting another CA.
    let other_ca = pki::new_authority(jiff::Timestamp::now(), Duration::from_secs(3600)).unwrap();
    let other_bundle = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(other_ca.cert_pem)
    };
    let edits = [
        serde_json::json!([{"op": "replace", "path": "/webhooks/0/rules", "value": []}]),
        serde_json::json!([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]),
        serde_json::json!([{"op": "replace", "path": "/webhooks/1/failurePolicy", "value": "Ignore"}]),
        serde_json::json!([
            {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": other_bundle}
        ]),
    ];
    // Each edit alone is put back.
    for edit in edits {
        let edited = kubectl(&ADMIN)
            .args([
                "patch",
                "validatingwebhookconfiguration",
                CONFIGURATION,
                "--type=json",
            ])
            .args([
                "-p",
                &edit.to_string(),
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ])
            .run()
            .ok();
        let put_back = configuration_where(|c| {
            c.webhooks == kept.webhooks && c.metadata.resource_version.as_deref() != Some(&edited)
        })
        .await;
        assert_ne!(
            put_back.metadata.resource_version, kept.metadata.resource_version,
            "the edit {edit} never landed"
        );
    }
    let notes = restored_events(restored_before + 1).await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("was edited while approval-gate runs")),
        "no Warning Event for the edit: {notes:?}"
    );
    assert!(
        operator.log().contains(
            "the ValidatingWebhookConfiguration was edited by someone else; putting it back"
        ),
        "{}",
        operator.log()
    );
    // The derived rule holds again.
    let held = kubectl(&ALICE)
        .args([
            "create",
            "configmap",
            "settings",
            "-n",
            &ns,
            "--dry-run=server",
        ])
        .run()
        .fails();
    assert!(held.contains("needs approval"), "{held}");

    delete_policy(&policy).await;
    configuration_where(|c| !gated_resources(c).contains(&"configmaps".to_owned())).await;
}

/// A release of the chart in `ns` with cert-manager on: its ServiceAccount and
/// RBAC as `helm template` renders them, applied by the admin. Returns the
/// release's full name and a kubeconfig with a token of that ServiceAccount.
async fn cert_manager_release(ns: &str) -> (String, std::path::PathBuf) {
    let rendered = support::helm::helm_ok([
        "template",
        ns,
        support::helm::chart().to_str().unwrap(),
        "--namespace",
        ns,
        "--kube-version",
        "1.35.4",
        "--set",
        "certManager.enabled=true",
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ]);
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(rendered)
        .run()
        .ok();
    let fullname = format!("{ns}-approval-gate");
    let token = kubectl(&ADMIN)
        .args(["create", "token", &fullname, "-n", ns, "--duration=1h"])
        .run()
        .ok();
    let kubeconfig = plane().token_kubeconfig(ns, token.trim()).unwrap();
    (fullname, kubeconfig)
}

/// With `--external-certs` (cert-manager), the operator writes nothing into the
/// Secret: it trusts the Secret's `ca.crt` and the webhook serves its pair. It
/// runs as its own release's ServiceAccount, under that release's RBAC.
#[tokio::test]
async fn certificates_from_cert_manager_are_served_and_trusted_as_given() {
    let (_shared, _one) = operator().await;
    let ns = namespace("reg-external").await;
    let (fullname, kubeconfig) = cert_manager_release(&ns).await;
    let now = jiff::Timestamp::now();
    let year = Duration::from_secs(365 * 24 * 3600);
    let ca = pki::new_authority(now, year).unwrap();
    let serving = pki::issue_serving(&ca, &["127.0.0.1".to_owned()], now, year).unwrap();
    // What cert-manager writes for the chart's serving Certificate.
    let tls_secret = format!("{fullname}-tls");
    let given: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": tls_secret}, "type": "kubernetes.io/tls",
        "stringData": {"ca.crt": ca.cert_pem, "tls.crt": serving.cert_pem, "tls.key": serving.key_pem}
    }))
    .unwrap();
    let secrets = Api::<Secret>::namespaced(client(&ADMIN).await, &ns);
    secrets
        .create(&PostParams::default(), &given)
        .await
        .unwrap();

    let name = fullname.clone();
    let external = LocalWebhook::spawn_registering(
        std::path::Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &plane().dir().join(&ns),
        &kubeconfig,
        &[
            "--external-certs",
            &format!("--tls-secret={tls_secret}"),
            &format!("--webhook-configuration={name}"),
            &format!("--owner-cluster-role={fullname}"),
            &format!("--control-namespace={ns}"),
        ],
    )
    .unwrap();
    external.wait_ready(Duration::from_secs(30)).await.unwrap();
    let api = configurations().await;
    let mut config = None;
    for _ in 0..300 {
        config = api.get_opt(&name).await.unwrap();
        if config.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = config.expect("the operator registered the webhook");
    assert_eq!(
        trusted(&config),
        pki::parse_bundle(ca.cert_pem.as_bytes()).unwrap()
    );
    // The Secret is cert-manager's: nothing was added or replaced.
    let after = secrets.get(&tls_secret).await.unwrap();
    assert!(!after.data.as_ref().unwrap().contains_key(CA_KEY));
    assert_eq!(data(&after, TLS_CERT), serving.cert_pem.as_bytes());
    // The webhook serves exactly that pair: a client trusting only this CA
    // connects (as the apiserver, whose client certificate the webhook requires).
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .identity(apiserver_identity())
        .build()
        .unwrap();
    let health = http
        .get(format!("{}/healthz", external.url))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());

    // Stop it before removing its configuration, or it would put it back.
    drop(external);
    api.delete(&name, &DeleteParams::default()).await.unwrap();
}

/// `kubectl label namespace NS ARGS` as `id`.
fn label(id: &approval_gate_testenv::Identity, ns: &str, args: &[&str]) -> KubectlOutput {
    kubectl(id)
        .args(["label", "namespace", ns])
        .args(args)
        .run()
}

#[tokio::test]
async fn relabelling_a_namespace_out_of_a_policys_scope_is_held_until_approved() {
    let (_operator, _one) = operator().await;
    let ns = namespace("reg-scope").await;
    let selected = format!("scope-test={ns}");
    label(&ADMIN, &ns, &[&selected]).ok();
    create_policy(
        &format!("{ns}-by-label"),
        &format!(
            "rules: [{{apiGroups: [apps], resources: [deployments], operations: [UPDATE], \
             namespaceSelector: {{matchLabels: {{scope-test: {ns}}}}}}}]\n\
             approvers: {{groups: [sre]}}\n"
        ),
    )
    .await;
    // Namespace updates now reach the webhook, derived from the policy.
    configuration_where(|c| gated_resources(c).contains(&"namespaces".to_owned())).await;
    // The webhook holds the policy once a change inside its scope is held.
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let mut image = 0;
    loop {
        image += 1;
        let out = apply(
            &ALICE,
            &deployment(&ns, "checkout", &format!("app:v{image}")),
        );
        if !out.success() {
            assert!(out.stderr().contains("needs approval"), "{}", out.stderr());
            break;
        }
        assert!(image < 100, "the policy never held a change in scope");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // alice may label namespaces: a label the selector does not read is not held.
    label(&ALICE, &ns, &["team=payments"]).ok();
    // But she cannot take this one out of scope alone.
    let held = label(&ALICE, &ns, &["scope-test-"]).fails();
    assert!(held.contains("UPDATE namespaces/"), "{held}");
    let name = request_name(&held, CONTROL_NAMESPACE);

    support::operator::approve(&BOB, CONTROL_NAMESPACE, &name).await;
    for attempt in 0.. {
        let out = label(&ALICE, &ns, &["scope-test-"]);
        if out.success() {
            break;
        }
        assert!(
            attempt < 100,
            "the approved relabel stayed held: {}",
            out.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let labels = kubectl(&ADMIN)
        .args(["get", "namespace", &ns, "-o", "jsonpath={.metadata.labels}"])
        .run()
        .ok();
    assert!(!labels.contains("scope-test"), "{labels}");
}

#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Router tests: AdmissionReview fixtures through the webhook's axum router,
//! with an index filled by hand and no control plane.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use approval_gate::{
    admission::{Attempt, Review, digest::digest_as_admitted, review},
    change::{Action, Redactor, record, verify::verify},
    crd::{
        Approval, ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestSpec,
        ApprovalRequestStatus, Operation,
    },
    index::Index,
    webhook::{
        Readiness, Webhook, WebhookConfig,
        handler::{MAX_BODY, metrics_router, router},
    },
};
use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::{
    DynamicObject,
    admission::{self, AdmissionResponse, AdmissionReview},
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const DEPLOYMENT_UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

/// Deployments in any namespace, approved by the `sre` group; tests append fields.
const DEPLOYMENTS: &str = "
rules:
- apiGroups: [apps]
  resources: [deployments]
  operations: ['*']
approvers:
  groups: [sre]
";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// The fixture with `request.dryRun` set, so that a hold makes no API call.
fn dry_run(name: &str) -> Vec<u8> {
    let mut review = fixture_json(name);
    review["request"]["dryRun"] = json!(true);
    serde_json::to_vec(&review).unwrap()
}

fn mk_policy(name: &str, yaml: &str) -> ApprovalPolicy {
    let spec: ApprovalPolicySpec = serde_yaml_ng::from_str(yaml).unwrap();
    ApprovalPolicy::new(name, spec)
}

/// The deployments policy with extra top-level fields, e.g. `"mode: Warn"`.
fn deployments_policy(name: &str, extra: &str) -> ApprovalPolicy {
    mk_policy(name, &format!("{DEPLOYMENTS}{extra}\n"))
}

/// An ApprovalRequest for exactly the fixture's attempt, approved by bob of
/// `sre` a minute ago (the handler judges at the wall clock).
fn mk_approved(name: &str, policy: &str, fixture_name: &str) -> ApprovalRequest {
    let attempt = Attempt::from_request(&Review::parse(&fixture(fixture_name)).unwrap()).unwrap();
    let now = jiff::Timestamp::now();
    let ago = |secs: i64| Time(now - jiff::SignedDuration::from_secs(secs));
    let mut req = ApprovalRequest::new(
        name,
        ApprovalRequestSpec {
            requester: attempt.user.clone(),
            operation: attempt.operation,
            target: attempt.target.clone(),
            digest: attempt.digest.clone(),
            reason: String::new(),
            policy: policy.into(),
            change: None,
            previous: None,
        },
    );
    req.metadata.namespace = Some(attempt.target.namespace.clone());
    req.metadata.creation_timestamp = Some(ago(120));
    req.metadata.resource_version = Some("1".into());
    req.status = Some(ApprovalRequestStatus {
        approvals: vec![Approval {
            user: "bob".into(),
            groups: vec!["sre".into()],
            time: ago(60),
            comment: String::new(),
        }],
        ..ApprovalRequestStatus::default()
    });
    req
}

/// The webhook over an index holding `policies` and `requests`. Its client
/// points at a closed port: any API call it makes fails at once.
fn mk_webhook(policies: Vec<ApprovalPolicy>, requests: Vec<ApprovalRequest>) -> Arc<Webhook> {
    approval_gate::server::tls::install_crypto_provider();
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let mut index = Index::default();
    policies.into_iter().for_each(|p| index.apply_policy(p));
    requests.into_iter().for_each(|r| index.requests.apply(r));
    let config = WebhookConfig::new("approval-gate", Duration::from_millis(500));
    let ready = Arc::new(Readiness::default());
    Webhook::new(
        client,
        config,
        Arc::new(RwLock::new(index)),
        ready,
        "test".into(),
    )
}

/// A ready router over `policies`.
fn mk_router(policies: Vec<ApprovalPolicy>) -> Router {
    let webhook = mk_webhook(policies, Vec::new());
    webhook.ready.mark_all_ready();
    router(webhook)
}

/// POSTs a body to /validate and returns the AdmissionReview's response.
async fn validate(app: Router, body: impl Into<Body>) -> AdmissionResponse {
    let request = Request::post("/validate")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "not an AdmissionReview ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
    assert_eq!(review.types.kind, "AdmissionReview");
    review.response.expect("a response")
}

async fn get(app: Router, path: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn annotation<'a>(response: &'a AdmissionResponse, key: &str) -> Option<&'a str> {
    response.audit_annotations.get(key).map(String::as_str)
}

#[tokio::test]
async fn malformed_body_gets_a_readable_error_and_no_panic() {
    let response = validate(mk_router(Vec::new()), fixture("malformed.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 400);
    assert!(
        response.result.message.contains("malformed"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn missing_uid_is_rejected_readably() {
    let response = validate(mk_router(Vec::new()), fixture("missing-uid.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 400);
    assert!(
        response.result.message.contains("uid"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn empty_uid_is_rejected_readably() {
    let mut review = fixture_json("deployment-update.json");
    review["request"]["uid"] = json!("");
    let response = validate(mk_router(Vec::new()), serde_json::to_vec(&review).unwrap()).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 400);
    assert!(
        response.result.message.contains("no uid"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn no_request_is_rejected_readably() {
    let response = validate(mk_router(Vec::new()), fixture("no-request.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 400);
    assert!(
        response.result.message.contains("no request"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn uid_is_echoed_even_when_the_body_is_unreadable() {
    let mut review = fixture_json("deployment-update.json");
    review["request"]["operation"] = json!(42);
    review["request"]["userInfo"] = json!("alice");
    let response = validate(mk_router(Vec::new()), serde_json::to_vec(&review).unwrap()).await;
    assert!(!response.allowed);
    assert_eq!(response.uid, DEPLOYMENT_UID);
    assert!(
        response.result.message.contains("malformed"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn huge_body_is_rejected_readably() {
    let mut review = fixture_json("deployment-update.json");
    review["request"]["object"]["metadata"]["annotations"]["padding"] = json!("x".repeat(MAX_BODY));
    let body = serde_json::to_vec(&review).unwrap();
    assert!(body.len() > MAX_BODY);
    let response = validate(
        mk_router(vec![deployments_policy("prod-deploys", "")]),
        body,
    )
    .await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 400);
    assert!(
        response.result.message.contains("larger than"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn unknown_kind_without_policy_is_allowed() {
    let app = mk_router(vec![deployments_policy("prod-deploys", "")]);
    let response = validate(app, fixture("unknown-kind.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    assert_eq!(response.uid, "e911857d-c318-11e8-bbad-025000000001");
    assert!(response.audit_annotations.is_empty());
    assert_eq!(response.warnings, None);
}

#[tokio::test]
async fn not_ready_webhook_refuses_to_decide() {
    let app = router(mk_webhook(Vec::new(), Vec::new()));
    let response = validate(app, dry_run("deployment-update.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 503);
    assert_eq!(response.uid, DEPLOYMENT_UID);
    assert!(
        response.result.message.contains("has not synced"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn matching_update_in_dry_run_is_denied_with_the_approval_message() {
    let app = mk_router(vec![deployments_policy("prod-deploys", "")]);
    let response = validate(app, dry_run("deployment-update.json")).await;
    let message = &response.result.message;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 403);
    assert_eq!(response.uid, DEPLOYMENT_UID);
    assert!(message.contains("\"prod-deploys\""), "{message}");
    assert!(
        message.contains("UPDATE deployments.apps/checkout in namespace prod"),
        "{message}"
    );
    assert!(
        message.contains("kubectl approve deployment-checkout-"),
        "{message}"
    );
    assert!(message.contains("kubectl approve wait"), "{message}");
    assert!(message.contains("would be created"), "{message}");
    assert_eq!(annotation(&response, "policy"), Some("prod-deploys"));
    assert_eq!(annotation(&response, "verdict"), Some("held"));
    assert!(
        annotation(&response, "request")
            .is_some_and(|r| r.starts_with("prod/deployment-checkout-"))
    );
}

#[tokio::test]
async fn pod_exec_is_held_by_an_exec_policy_and_not_by_a_deployments_policy() {
    let exec = mk_policy(
        "no-exec",
        "rules: [{apiGroups: [''], resources: [pods/exec], operations: [CONNECT]}]\napprovers: {groups: [sre]}",
    );
    let deployments_only = mk_router(vec![deployments_policy("prod-deploys", "")]);
    let response = validate(deployments_only, dry_run("pod-exec-connect.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    let response = validate(mk_router(vec![exec]), dry_run("pod-exec-connect.json")).await;
    assert!(!response.allowed);
    let message = &response.result.message;
    assert!(
        message.contains("CONNECT pods/exec/web-0 in namespace prod"),
        "{message}"
    );
    assert!(message.contains("kubectl approve pod-web-0-"), "{message}");
}

/// A request written by hand for an exec, showing the exec it is for: the
/// guard's check accepts its change and digest, and once approved it grants
/// that very exec.
#[tokio::test]
async fn a_hand_written_exec_request_the_guard_accepts_grants_that_exec() {
    let options = fixture_json("pod-exec-connect.json")["request"]["object"].clone();
    let change = record(
        &Action::connect("exec", &options),
        &Redactor::new(b"k", Vec::new()),
    );
    let mut by_hand = mk_approved("by-hand", "no-exec", "pod-exec-connect.json");
    by_hand.spec.digest = digest_as_admitted(Operation::Connect, Some(&options), None);
    by_hand.spec.change = Some(Box::new(change));
    assert_eq!(verify(&by_hand.spec), Ok(()), "the guard accepts it");
    let exec = mk_policy(
        "no-exec",
        "rules: [{apiGroups: [''], resources: [pods/exec], operations: [CONNECT]}]\n\
         approvers: {groups: [sre]}\nsingleUse: false",
    );
    let webhook = mk_webhook(vec![exec], vec![by_hand]);
    webhook.ready.mark_all_ready();
    let response = validate(router(webhook), fixture("pod-exec-connect.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    assert_eq!(annotation(&response, "verdict"), Some("granted"));
}

#[tokio::test]
async fn held_update_is_denied_even_when_the_request_cannot_be_created() {
    let app = mk_router(vec![deployments_policy("prod-deploys", "")]);
    let response = validate(app, fixture("deployment-update.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 403);
    assert!(
        response.result.message.contains("kubectl approve"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn reusable_approval_allows_the_update() {
    let approved = mk_approved("checkout-rollout", "prod-deploys", "deployment-update.json");
    let webhook = mk_webhook(
        vec![deployments_policy("prod-deploys", "singleUse: false")],
        vec![approved],
    );
    webhook.ready.mark_all_ready();
    let response = validate(router(webhook), fixture("deployment-update.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    assert_eq!(annotation(&response, "verdict"), Some("granted"));
    assert_eq!(
        annotation(&response, "request"),
        Some("prod/checkout-rollout")
    );
}

#[tokio::test]
async fn approval_for_other_content_does_not_allow_the_update() {
    let mut approved = mk_approved("checkout-rollout", "prod-deploys", "deployment-update.json");
    approved.spec.digest = Some(format!("sha256:{}", "0".repeat(64)));
    let webhook = mk_webhook(vec![deployments_policy("prod-deploys", "")], vec![approved]);
    webhook.ready.mark_all_ready();
    let response = validate(router(webhook), dry_run("deployment-update.json")).await;
    assert!(!response.allowed);
    assert_eq!(annotation(&response, "verdict"), Some("held"));
}

#[tokio::test]
async fn single_use_approval_that_cannot_be_recorded_is_denied() {
    let approved = mk_approved("checkout-rollout", "prod-deploys", "deployment-update.json");
    let webhook = mk_webhook(vec![deployments_policy("prod-deploys", "")], vec![approved]);
    webhook.ready.mark_all_ready();
    let response = validate(router(webhook), fixture("deployment-update.json")).await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 403);
    assert!(
        response.result.message.contains("could not record the use"),
        "{}",
        response.result.message
    );
}

#[tokio::test]
async fn warn_mode_allows_with_a_warning() {
    let app = mk_router(vec![deployments_policy("prod-deploys", "mode: Warn")]);
    let response = validate(app, fixture("deployment-update.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    let warnings = response.warnings.clone().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("prod-deploys") && warnings[0].contains("Warn"),
        "{warnings:?}"
    );
    assert_eq!(annotation(&response, "verdict"), Some("warned"));
}

#[tokio::test]
async fn break_glass_allows_with_warning_and_audit_annotation() {
    let app = mk_router(vec![deployments_policy(
        "prod-deploys",
        "breakGlass: {groups: [dev]}",
    )]);
    let response = validate(app, fixture("deployment-update.json")).await;
    assert!(response.allowed, "{}", response.result.message);
    let warnings = response.warnings.clone().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.contains("break-glass")),
        "{warnings:?}"
    );
    assert_eq!(annotation(&response, "break-glass"), Some("true"));
    assert_eq!(annotation(&response, "verdict"), Some("break_glass"));
}

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_readiness() {
    let webhook = mk_webhook(Vec::new(), Vec::new());
    let app = router(Arc::clone(&webhook));
    assert_eq!(
        get(app.clone(), "/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );
    let (status, body) = get(app.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not synced"), "{body}");
    webhook.ready.mark_all_ready();
    assert_eq!(get(app, "/readyz").await, (StatusCode::OK, "ok".to_owned()));
}

#[tokio::test]
async fn the_index_is_not_served_unless_asked_for() {
    let webhook = mk_webhook(Vec::new(), Vec::new());
    webhook.ready.mark_all_ready();
    let (status, _) = get(metrics_router(Arc::clone(&webhook), false), "/debug/index").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "request data on an open port"
    );
    let (status, body) = get(metrics_router(webhook, true), "/debug/index").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_review_finding_no_room_in_the_memory_budget_is_refused_clearly() {
    let webhook = mk_webhook(Vec::new(), Vec::new());
    webhook.ready.mark_all_ready();
    // Every byte of the budget is taken by reviews still being judged.
    let all = u32::try_from(webhook.body_budget.available_permits()).unwrap();
    let _held = webhook.body_budget.try_acquire_many(all).unwrap();
    let response = validate(
        router(Arc::clone(&webhook)),
        fixture("deployment-update.json"),
    )
    .await;
    assert!(!response.allowed);
    assert_eq!(response.result.code, 429);
    assert!(
        response
            .result
            .message
            .contains("too many large reviews at once"),
        "{}",
        response.result.message
    );
    assert!(
        metrics_text(&webhook)
            .contains("approval_gate_admission_busy_refusals_total{result=\"body_budget\"} 1")
    );
}

#[tokio::test]
async fn the_budget_is_given_back_after_each_review() {
    let webhook = mk_webhook(Vec::new(), Vec::new());
    webhook.ready.mark_all_ready();
    let before = webhook.body_budget.available_permits();
    for _ in 0..3 {
        validate(
            router(Arc::clone(&webhook)),
            fixture("deployment-update.json"),
        )
        .await;
    }
    assert_eq!(webhook.body_budget.available_permits(), before);
}

fn metrics_text(webhook: &approval_gate::webhook::Webhook) -> String {
    webhook.metrics.render()
}

/// The content digests of a set of reviews (tests/fixtures/digests/ and two
/// other fixtures), as the webhook computes them. An approval binds to its
/// digest, so a change here would silently turn every approval already given
/// into one for other content, or let one grant another. The expected values
/// were taken before the admission path was rewritten to parse once, and must
/// never be re-blessed: a difference is a bug in the new code.
#[test]
fn digests_are_byte_for_byte_what_they_were() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut names: Vec<String> = std::fs::read_dir(format!("{root}/tests/fixtures/digests"))
        .unwrap()
        .map(|e| format!("digests/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    names.sort();
    names.extend([
        "deployment-update.json".into(),
        "pod-exec-connect.json".into(),
    ]);
    let actual: String = names
        .iter()
        .map(|name| {
            let body = fixture(name);
            let review = Review::parse(&body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let attempt = Attempt::from_request(&review).unwrap();
            // The same when the object is read into its tree with the review,
            // as the webhook reads a review a policy covers: every review
            // here is in the apiserver's order, so each but a DELETE's object
            // is read that way.
            let asked = std::cell::Cell::new(0);
            let covered = |_: &review::Head<'_>| {
                asked.set(asked.get() + 1);
                true
            };
            let read_once = Review::parse_predicting(&body, &covered).unwrap();
            let delete = review.operation == admission::Operation::Delete;
            assert_eq!(asked.get(), usize::from(!delete), "{name}");
            assert_eq!(
                Attempt::from_request(&read_once).unwrap(),
                attempt,
                "{name}"
            );
            let digest = attempt.digest.as_deref().unwrap_or("none");
            format!("{name} {digest}\n")
        })
        .collect();
    let golden = format!("{root}/tests/golden/digests.txt");
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if actual != expected {
        let out = format!("{root}/target/golden");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(format!("{out}/digests.txt"), &actual).unwrap();
        panic!("digests differ from {golden} (actual in {out}/digests.txt):\n{actual}");
    }
}

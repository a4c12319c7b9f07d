//! The approvalgate.dev API as users meet it, through the real apiserver and kubectl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use approval_gate::crd::{
    ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest, Approvers, Mode, Phase, PolicyRule,
    RuleOperation, SmtpTls,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::json;
use support::*;

fn minimal_policy(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "approvalgate.dev/v1alpha1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": name},
        "spec": {
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "operations": ["UPDATE"]}],
            "approvers": {"groups": ["sre"]}
        }
    })
}

fn dynamic_api(client: kube::Client, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("approvalgate.dev", "v1alpha1", kind);
    let plural = if kind == "ApprovalPolicy" {
        "approvalpolicies"
    } else {
        "approvalrequests"
    };
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    }
}

#[tokio::test]
async fn apiserver_reports_the_pinned_version_and_each_identity() {
    let admin = client(&ADMIN).await;
    let version = admin.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.35.4");

    for id in [ALICE, BOB, CAROL, GITOPS] {
        let review = Api::<SelfSubjectReview>::all(client(&id).await)
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .unwrap();
        let info = review.status.unwrap().user_info.unwrap();
        assert_eq!(info.username.as_deref(), Some(id.username));
        let groups = info.groups.unwrap_or_default();
        for g in id.groups {
            assert!(
                groups.iter().any(|have| have == g),
                "{} lacks group {g}",
                id.key
            );
        }
    }
}

#[tokio::test]
async fn creates_and_reads_back_both_kinds() {
    let ns = namespace("crud").await;
    let policies = Api::<ApprovalPolicy>::all(client(&ADMIN).await);
    let name = format!("{ns}-policy");
    let policy = ApprovalPolicy::new(
        &name,
        ApprovalPolicySpec {
            rules: vec![PolicyRule {
                api_groups: vec!["apps".into()],
                resources: vec!["deployments".into(), "deployments/scale".into()],
                operations: vec![RuleOperation::Update, RuleOperation::Delete],
                namespaces: vec![ns.clone()],
                namespace_selector: None,
                names: vec![],
            }],
            exclude: None,
            approvers: Approvers {
                users: vec![],
                groups: vec!["sre".into()],
            },
            required_approvals: 2,
            allow_self_approval: false,
            request_ttl: "30m".parse().unwrap(),
            approval_ttl: "90s".parse().unwrap(),
            single_use: true,
            bind_to_content: true,
            require_reason: true,
            max_open_requests: 3,
            redact: vec![],
            mode: Mode::Warn,
            break_glass: None,
            remind_after: None,
            escalation: None,
            notify: vec![],
        },
    );
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let read = policies.get(&name).await.unwrap();
    assert_eq!(read.spec, policy.spec);

    // Server-side defaults come from the schema.
    dynamic_api(client(&ADMIN).await, "ApprovalPolicy", None)
        .create(
            &PostParams::default(),
            &serde_json::from_value(minimal_policy(&format!("{ns}-min"))).unwrap(),
        )
        .await
        .unwrap();
    let mut with_email = minimal_policy(&format!("{ns}-mail"));
    with_email["spec"]["notify"] = json!([{"email": {"smtp": {"host": "smtp.example.com"},
        "from": "ag@example.com", "to": ["sre@example.com"]}}]);
    dynamic_api(client(&ADMIN).await, "ApprovalPolicy", None)
        .create(
            &PostParams::default(),
            &serde_json::from_value(with_email).unwrap(),
        )
        .await
        .unwrap();
    let mailed = policies.get(&format!("{ns}-mail")).await.unwrap().spec;
    let smtp = &mailed.notify[0].email.as_ref().unwrap().smtp;
    assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::StartTls));
    let defaulted = policies.get(&format!("{ns}-min")).await.unwrap().spec;
    assert_eq!(defaulted.required_approvals, 1);
    assert_eq!(defaulted.request_ttl.to_string(), "1h");
    assert_eq!(defaulted.approval_ttl.to_string(), "15m");
    assert!(defaulted.single_use && defaulted.bind_to_content);
    assert!(!defaulted.allow_self_approval && !defaulted.require_reason);
    assert_eq!(defaulted.mode, Mode::Enforce);

    // alice, a requester, creates and reads a request in her namespace.
    let requests = Api::<ApprovalRequest>::namespaced(client(&ALICE).await, &ns);
    let req = ApprovalRequest::new("checkout-update", checkout_update(&ns));
    requests.create(&PostParams::default(), &req).await.unwrap();
    let read = requests.get("checkout-update").await.unwrap();
    assert_eq!(read.spec, req.spec);
    // Nobody but approval-gate writes a status: a new request has none, and
    // reads as Pending.
    assert_eq!(read.status, None);
    assert_eq!(read.phase(), Phase::Pending);
    let listed = requests.list(&Default::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|r| r.name_any())
            .collect::<Vec<_>>(),
        ["checkout-update"]
    );
}

#[tokio::test]
async fn kubectl_get_apr_shows_the_printer_columns() {
    let ns = namespace("columns").await;
    let requests = Api::<ApprovalRequest>::namespaced(client(&ALICE).await, &ns);
    requests
        .create(
            &PostParams::default(),
            &ApprovalRequest::new("checkout-update", checkout_update(&ns)),
        )
        .await
        .unwrap();
    // The operator maintains these status fields; here the admin stands in for it.
    let status = json!({"status": {"phase": "Pending", "target": "deployments.apps/checkout",
        "expiresAt": "2099-01-01T00:00:00Z"}});
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns)
        .patch_status(
            "checkout-update",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();

    let out = kubectl(&ALICE).args(["get", "apr", "-n", &ns]).run().ok();
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PHASE",
            "REQUESTER",
            "OPERATION",
            "TARGET",
            "EXPIRES",
            "AGE"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..5],
        [
            "checkout-update",
            "Pending",
            "alice",
            "UPDATE",
            "deployments.apps/checkout"
        ]
    );

    let wide = kubectl(&ALICE)
        .args(["get", "approvalrequests", "-n", &ns, "-o", "wide"])
        .run()
        .ok();
    let header = wide.lines().next().unwrap();
    assert!(
        header.contains("POLICY") && header.contains("REASON"),
        "{header}"
    );
    assert!(wide.contains("prod-deployments"), "{wide}");
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let out = kubectl(&ALICE)
        .args(["explain", "approvalrequest.spec.target"])
        .run()
        .ok();
    assert!(out.contains("The object the action applies to."), "{out}");
    assert!(
        out.contains("The API group of the resource; empty for the core group"),
        "{out}"
    );
    assert!(out.contains("subresource"), "{out}");

    let out = kubectl(&ALICE)
        .args(["explain", "approvalpolicy.spec.approvalTTL"])
        .run()
        .ok();
    assert!(
        out.contains("How long an approval stays valid once given"),
        "{out}"
    );

    let out = kubectl(&ALICE)
        .args(["explain", "apr.status.phase"])
        .run()
        .ok();
    assert!(
        out.contains("Where a request stands in its lifecycle"),
        "{out}"
    );
    assert!(out.contains("Revoked"), "{out}");
}

#[tokio::test]
async fn changing_a_request_spec_is_rejected_by_the_apiserver() {
    let ns = namespace("immutable").await;
    Api::<ApprovalRequest>::namespaced(client(&ALICE).await, &ns)
        .create(
            &PostParams::default(),
            &ApprovalRequest::new("checkout-update", checkout_update(&ns)),
        )
        .await
        .unwrap();
    // Even the cluster admin cannot retarget a request: the CEL rule binds it.
    let admin = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns);
    for patch in [
        json!({"spec": {"target": {"name": "payments"}}}),
        json!({"spec": {"operation": "DELETE"}}),
        json!({"spec": {"digest": DIGEST.replace('0', "f")}}),
        json!({"spec": {"requester": "mallory"}}),
    ] {
        let err = admin
            .patch(
                "checkout-update",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("expected an API error, got {err}")
        };
        assert_eq!(status.code, 422, "{patch}");
        assert!(
            status.message.contains("spec is immutable"),
            "{}",
            status.message
        );
    }
    // kubectl shows the same message to a person.
    let stderr = kubectl(&ADMIN)
        .args([
            "patch",
            "apr",
            "checkout-update",
            "-n",
            &ns,
            "--type=merge",
            "-p",
        ])
        .args([r#"{"spec":{"reason":"changed"}}"#])
        .run()
        .fails();
    assert!(stderr.contains("spec is immutable"), "{stderr}");
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_clear_messages() {
    let ns = namespace("invalid").await;
    let requests = dynamic_api(client(&ALICE).await, "ApprovalRequest", Some(&ns));
    let base = || {
        json!({
            "apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalRequest",
            "metadata": {"name": "bad"},
            "spec": {"requester": "alice", "operation": "UPDATE", "policy": "p",
                "target": {"apiGroup": "apps", "resource": "deployments", "namespace": ns, "name": "checkout"}}
        })
    };
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "unknown operation",
            json!({"spec": {"operation": "PATCH"}}),
            "Unsupported value: \"PATCH\"",
        ),
        (
            "malformed digest",
            json!({"spec": {"digest": "md5:abc"}}),
            "spec.digest: Invalid value",
        ),
        (
            "missing target name",
            json!({"spec": {"target": {"name": null}}}),
            "spec.target.name: Required value",
        ),
        (
            "missing requester",
            json!({"spec": {"requester": null}}),
            "spec.requester: Required value",
        ),
    ];
    for (what, overlay, expected) in cases {
        let mut obj = base();
        merge(&mut obj, &overlay);
        let err = requests
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj).unwrap(),
            )
            .await
            .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("{what}: expected an API error, got {err}")
        };
        assert_eq!(status.code, 422, "{what}");
        assert!(
            status.message.contains(expected),
            "{what}: {}",
            status.message
        );
    }

    let policies = dynamic_api(client(&ADMIN).await, "ApprovalPolicy", None);
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "malformed duration",
            json!({"spec": {"approvalTTL": "15 minutes"}}),
            "spec.approvalTTL: Invalid value",
        ),
        (
            "no approvers",
            json!({"spec": {"approvers": {"groups": null}}}),
            "name at least one approver user or group",
        ),
        (
            "zero approvals",
            json!({"spec": {"requiredApprovals": 0}}),
            "spec.requiredApprovals: Invalid value",
        ),
        (
            "no rules",
            json!({"spec": {"rules": []}}),
            "spec.rules: Invalid value",
        ),
        (
            "unknown mode",
            json!({"spec": {"mode": "Block"}}),
            "Unsupported value: \"Block\"",
        ),
        (
            "bad rule operation",
            json!({"spec": {"rules": [{"apiGroups": [""], "resources": ["pods"],
            "operations": ["EXEC"]}]}}),
            "Unsupported value: \"EXEC\"",
        ),
        (
            "a notify channel of two kinds",
            json!({"spec": {"notify": [{
                "slack": {"webhookUrlSecretRef": {"name": "s", "key": "url"}},
                "webhook": {"url": "https://hooks.example.com", "secretRef": {"name": "s", "key": "k"}}
            }]}}),
            "set exactly one of slack, webhook or email",
        ),
        (
            "a webhook URL that is not HTTP",
            json!({"spec": {"notify": [{
                "webhook": {"url": "ftp://hooks.example.com", "secretRef": {"name": "s", "key": "k"}}
            }]}}),
            "spec.notify[0].webhook.url: Invalid value",
        ),
        (
            "a notify channel of no kind",
            json!({"spec": {"notify": [{"name": "empty"}]}}),
            "set exactly one of slack, webhook or email",
        ),
        (
            "an unknown SMTP security",
            json!({"spec": {"notify": [{"email": {"smtp": {"host": "smtp", "tls": "Maybe"},
                "from": "ag@example.com", "to": ["sre@example.com"]}}]}}),
            "Unsupported value: \"Maybe\"",
        ),
    ];
    for (what, overlay, expected) in cases {
        let mut obj = minimal_policy(&format!("{ns}-bad"));
        merge(&mut obj, &overlay);
        let err = policies
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj).unwrap(),
            )
            .await
            .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("{what}: expected an API error, got {err}")
        };
        assert_eq!(status.code, 422, "{what}");
        assert!(
            status.message.contains(expected),
            "{what}: {}",
            status.message
        );
    }

    // What a person sees from kubectl apply.
    let manifest = format!(
        "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata:\n  name: {ns}-typo\nspec:\n  \
         rules: [{{apiGroups: [apps], resources: [deployments], operations: [UPDATE]}}]\n  \
         approvers: {{groups: [sre]}}\n  requestTTL: 1 hour\n"
    );
    let stderr = kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(manifest)
        .run()
        .fails();
    assert!(stderr.contains("spec.requestTTL"), "{stderr}");
    assert!(stderr.contains("should match"), "{stderr}");
}

#[tokio::test]
async fn carol_without_rbac_is_forbidden() {
    let ns = namespace("forbidden").await;
    let carol = Api::<ApprovalRequest>::namespaced(client(&CAROL).await, &ns);
    for result in [
        carol.list(&Default::default()).await.map(|_| ()),
        carol
            .create(
                &PostParams::default(),
                &ApprovalRequest::new("sneaky", checkout_update(&ns)),
            )
            .await
            .map(|_| ()),
    ] {
        let Err(kube::Error::Api(status)) = result else {
            panic!("carol should be forbidden")
        };
        assert_eq!(status.code, 403);
        assert!(
            status.message.contains("User \"carol\" cannot"),
            "{}",
            status.message
        );
    }
    let stderr = kubectl(&CAROL)
        .args(["get", "apr", "-n", &ns])
        .run()
        .fails();
    assert!(stderr.contains("Forbidden"), "{stderr}");

    // A requester may not write policies.
    let policies = dynamic_api(client(&ALICE).await, "ApprovalPolicy", None);
    let err = policies
        .create(
            &PostParams::default(),
            &serde_json::from_value(minimal_policy(&format!("{ns}-p"))).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
}

/// Overlays `patch` onto `base` the way a JSON merge patch does (null removes).
fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

//! The AdmissionReview both `webhook_load` and `peers` send: `alice` rolls
//! the `prod/checkout` Deployment to a new image, a Deployment UPDATE of
//! 5-10 KB (8,888 bytes) with both objects as a Helm release leaves them.
//!
//! Included by each bench with `#[path]` (a bench target cannot import
//! another's modules), so both send exactly the same bytes.

use anyhow::{Context as _, Result, ensure};
use serde::Serialize;
use serde_json::{Value, json};

pub const REVIEW_UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";
pub const NAMESPACE: &str = "prod";
pub const DEPLOYMENT: &str = "checkout";
pub const REQUESTER: &str = "alice";

/// The AdmissionReview every load request sends.
pub fn review_body() -> Result<Vec<u8>> {
    let body = serde_json::to_vec(&review(new_object()))?;
    // What the issue asks for: a Deployment UPDATE of 5-10 KB with both objects.
    ensure!(
        (5_000..=10_000).contains(&body.len()),
        "the review is {} bytes",
        body.len()
    );
    Ok(body)
}

/// The review of the change from `old_object()` to `object`, with its
/// fields in the order the apiserver writes them (Go's `AdmissionRequest`),
/// so that the object comes after the fields that name the action.
pub fn review(object: Value) -> impl Serialize {
    let group_version = |group: &str, version: &str| json!({"group": group, "version": version});
    let with = |mut gv: Value, key: &str, value: &str| {
        gv[key] = value.into();
        gv
    };
    let gv = group_version("apps", "v1");
    Envelope {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: Request {
            uid: REVIEW_UID,
            kind: with(gv.clone(), "kind", "Deployment"),
            resource: with(gv.clone(), "resource", "deployments"),
            request_kind: with(gv.clone(), "kind", "Deployment"),
            request_resource: with(gv, "resource", "deployments"),
            name: DEPLOYMENT,
            namespace: NAMESPACE,
            operation: "UPDATE",
            user_info: json!({"username": REQUESTER, "uid": "014fbff9a07c", "groups": ["dev", "system:authenticated"]}),
            object,
            old_object: old_object(),
            dry_run: false,
            options: json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions", "fieldManager": "helm"}),
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    api_version: &'static str,
    kind: &'static str,
    request: Request,
}

/// The fields of an AdmissionRequest, in the apiserver's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: &'static str,
    kind: Value,
    resource: Value,
    request_kind: Value,
    request_resource: Value,
    name: &'static str,
    namespace: &'static str,
    operation: &'static str,
    user_info: Value,
    object: Value,
    old_object: Value,
    dry_run: bool,
    options: Value,
}

/// The Deployment after the change: the new image, one generation on.
pub fn new_object() -> Value {
    deployment("1.9.0", 5, "48377")
}

/// The Deployment before the change.
pub fn old_object() -> Value {
    deployment("1.8.0", 4, "48213")
}

/// A Deployment as a Helm release leaves it: probes, env, volumes,
/// managedFields and status.
fn deployment(tag: &str, generation: i64, resource_version: &str) -> Value {
    let labels = json!({
        "app": DEPLOYMENT, "app.kubernetes.io/name": DEPLOYMENT, "app.kubernetes.io/instance": "shop",
        "app.kubernetes.io/version": tag, "app.kubernetes.io/managed-by": "Helm", "team": "payments",
    });
    let app = container(tag);
    let spec = json!({
        "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": DEPLOYMENT}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
            "spec": {
                "containers": [app],
                "volumes": [
                    {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                ],
                "serviceAccountName": "checkout", "terminationGracePeriodSeconds": 30, "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler", "securityContext": {"fsGroup": 2000},
            }
        }
    });
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": DEPLOYMENT, "namespace": NAMESPACE, "uid": "b2c3d4e5-0000-4000-8000-00000000c0de",
            "resourceVersion": resource_version, "generation": generation, "creationTimestamp": "2026-01-12T09:30:00Z",
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": (generation - 1).to_string(),
                            "meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": NAMESPACE},
            "managedFields": [
                {"manager": "helm", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-03-02T10:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:meta.helm.sh/release-name": {}},
                    "f:labels": {".": {}, "f:app": {}, "f:team": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:env": {}}}}}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-03-02T10:01:00Z",
                 "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:availableReplicas": {}, "f:conditions": {}, "f:observedGeneration": {}, "f:readyReplicas": {}}}},
            ],
        },
        "spec": spec,
        "status": {
            "observedGeneration": generation - 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
                 "lastUpdateTime": "2026-03-02T10:01:00Z", "lastTransitionTime": "2026-01-12T09:31:00Z"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"checkout-6d4cf56db6\" has successfully progressed.",
                 "lastUpdateTime": "2026-03-02T10:01:00Z", "lastTransitionTime": "2026-01-12T09:30:00Z"},
            ],
        },
    })
}

/// The application container: image, probes, env, resources, mounts.
fn container(tag: &str) -> Value {
    let env: Vec<Value> = [
        ("LOG_LEVEL", "info"),
        ("LISTEN_ADDR", ":8080"),
        ("METRICS_ADDR", ":9090"),
        ("DB_HOST", "checkout-db.prod.svc.cluster.local"),
        ("DB_NAME", "checkout"),
        ("CART_URL", "http://cart.prod.svc.cluster.local:8080"),
        ("FEATURE_FLAGS", "new-tax-engine,fast-path"),
    ]
    .iter()
    .map(|(name, value)| json!({"name": name, "value": value}))
    .collect();
    let probe = |path: &str, period: u32| {
        json!({"httpGet": {"path": path, "port": "http", "scheme": "HTTP"}, "periodSeconds": period,
               "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
    };
    json!({
        "name": "app", "image": format!("registry.example.com/shop/checkout:{tag}"), "imagePullPolicy": "IfNotPresent",
        "args": ["--config=/etc/checkout/config.yaml", "--log-format=json"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": env,
        "envFrom": [{"secretRef": {"name": "checkout-db-credentials"}}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "livenessProbe": probe("/healthz", 10), "readinessProbe": probe("/readyz", 5),
        "volumeMounts": [{"name": "config", "mountPath": "/etc/checkout", "readOnly": true}, {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    })
}

/// The ApprovalRequest in `webhook_load`'s index that grants the review.
pub const GRANT: &str = "deployment-checkout-7f3a9c01e2";

/// Fails unless `answer` allows the review; with `granted`, through
/// `webhook_load`'s approval for exactly this content (not, say, because no
/// policy matched).
pub fn verify(answer: &[u8], granted: bool) -> Result<()> {
    let review: Value = serde_json::from_slice(answer).context("the answer is not JSON")?;
    let response = &review["response"];
    ensure!(
        response["uid"] == REVIEW_UID,
        "the answer does not echo the uid: {review}"
    );
    ensure!(
        response["allowed"] == true,
        "the review was not allowed: {review}"
    );
    if granted {
        let annotations = &response["auditAnnotations"];
        ensure!(
            annotations["verdict"] == "granted",
            "not granted by an approval: {review}"
        );
        let expected = format!("{NAMESPACE}/{GRANT}");
        ensure!(
            annotations["request"] == expected.as_str(),
            "granted by another request: {review}"
        );
    }
    Ok(())
}

//! RBAC proof: the chart is installed with the real `helm`, and its
//! ServiceAccount (impersonated) performs every API call the binary makes —
//! each is allowed — and the things it must never do are forbidden.
//!
//! (Beyond this table, every other integration test runs the real binary as
//! approval-gate's service account under the chart's rendered RBAC.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod allowed;
mod forbidden;

use approval_gate::crd::{ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec};
use futures::{StreamExt as _, future::BoxFuture};
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration, coordination::v1::Lease,
    core::v1::Secret, rbac::v1::ClusterRole,
};
use kube::{
    Api, Client, Resource,
    api::{ListParams, Patch, PatchParams, PostParams, WatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use support::{helm::*, *};

const RELEASE: &str = "rbac";
const FULLNAME: &str = "rbac-approval-gate";

/// Installs the chart into `ns` as release `rbac`.
fn helm_install(ns: &str) {
    let kubeconfig = plane().kubeconfig(&ADMIN);
    helm_ok([
        "install",
        RELEASE,
        chart().to_str().unwrap(),
        "--namespace",
        ns,
        "--skip-crds",
        "--set",
        "examplePolicy.enabled=false",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
}

/// A client acting as the chart's ServiceAccount in `ns`.
async fn service_account(ns: &str) -> Client {
    plane()
        .client_impersonating(
            &format!("system:serviceaccount:{ns}:{FULLNAME}"),
            &[
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{ns}"),
            ],
        )
        .await
        .unwrap()
}

type Call = BoxFuture<'static, Result<(), kube::Error>>;

fn call<T: Send + 'static>(
    fut: impl Future<Output = Result<T, kube::Error>> + Send + 'static,
) -> Call {
    Box::pin(async move { fut.await.map(|_| ()) })
}

/// A list and the start of a watch, as kube-runtime's watcher does them.
fn list_watch<K>(api: Api<K>, fields: Option<String>) -> Call
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    Box::pin(async move {
        let mut lp = ListParams::default();
        let mut wp = WatchParams::default().timeout(1);
        if let Some(f) = &fields {
            lp = lp.fields(f);
            wp = wp.fields(f);
        }
        let list = api.list(&lp).await?;
        let version = list.metadata.resource_version.unwrap_or_default();
        let mut stream = api.watch(&wp, &version).await?.boxed();
        // A forbidden watch fails on the first event, not at the call.
        match stream.next().await {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    })
}

fn forbidden(result: &Result<(), kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 403)
}

async fn check(what: &str, expect_allowed: bool, call: Call, failures: &mut Vec<String>) {
    let result = call.await;
    let ok = if expect_allowed {
        !forbidden(&result)
    } else {
        forbidden(&result)
    };
    if !ok {
        failures.push(format!(
            "{what}: expected {}, got {result:?}",
            if expect_allowed {
                "allowed"
            } else {
                "forbidden"
            }
        ));
    }
    // Allowed calls must also succeed outright, so nothing hides behind a 404.
    if expect_allowed && let Err(e) = &result {
        failures.push(format!("{what}: allowed but failed: {e}"));
    }
}

fn ssa() -> PatchParams {
    PatchParams::apply("approval-gate").force()
}

fn apply<K: Serialize>(obj: &K) -> Patch<&K> {
    Patch::Apply(obj)
}

fn request(ns: &str) -> ApprovalRequest {
    let mut req = ApprovalRequest::new(
        "rbac-proof",
        ApprovalRequestSpec {
            reason: "rbac proof".into(),
            policy: "rbac-proof".into(),
            ..checkout_update(ns)
        },
    );
    req.metadata.namespace = Some(ns.to_owned());
    req
}

/// The API handles through which the chart's ServiceAccount makes its calls.
struct Apis {
    sa: Client,
    ns: String,
    work: String,
    requests: Api<ApprovalRequest>,
    policies: Api<ApprovalPolicy>,
    secrets: Api<Secret>,
    leases: Api<Lease>,
    configs: Api<ValidatingWebhookConfiguration>,
    roles: Api<ClusterRole>,
}

#[tokio::test]
async fn the_chart_service_account_may_make_every_call_the_binary_makes_and_nothing_else() {
    let ns = namespace("rbac").await;
    let work = namespace("rbac-work").await;
    helm_install(&ns);
    let admin = client(&ADMIN).await;
    let sa = service_account(&ns).await;
    let mut failures = Vec::new();

    // Objects the admin prepares: a policy, and things that belong to others.
    let policy: ApprovalPolicy = serde_json::from_value(json!({
        "apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalPolicy",
        "metadata": {"name": format!("{ns}-policy")},
        "spec": {"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "operations": ["UPDATE"]}],
                 "approvers": {"groups": ["sre"]}}
    }))
    .unwrap();
    Api::<ApprovalPolicy>::all(admin.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let other_secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "someone-elses"}, "stringData": {"k": "v"}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &other_secret)
        .await
        .unwrap();
    let decoy: ValidatingWebhookConfiguration =
        serde_json::from_value(json!({"metadata": {"name": format!("{ns}-decoy")}})).unwrap();
    Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .create(&PostParams::default(), &decoy)
        .await
        .unwrap();

    let apis = Apis {
        requests: Api::<ApprovalRequest>::namespaced(sa.clone(), &work),
        policies: Api::<ApprovalPolicy>::all(sa.clone()),
        secrets: Api::<Secret>::namespaced(sa.clone(), &ns),
        leases: Api::<Lease>::namespaced(sa.clone(), &ns),
        configs: Api::<ValidatingWebhookConfiguration>::all(sa.clone()),
        roles: Api::<ClusterRole>::all(sa.clone()),
        sa,
        ns,
        work,
    };

    // --- The webhook: watches, auto-requests, recording use, Events.
    allowed::webhook(&apis, &mut failures).await;

    // --- The operator: the leader Lease, its Secret, its configuration, its owner.
    allowed::operator(&apis, &mut failures).await;

    // --- What it must never do.
    forbidden::never(&apis, &policy, &mut failures).await;
    assert!(
        failures.is_empty(),
        "RBAC is not what the binary needs:\n{}",
        failures.join("\n")
    );
}

//! RBAC proof: the chart is installed with the real `helm`, and its
//! ServiceAccount (impersonated) performs every API call the binary makes —
//! each is allowed — and the things it must never do are forbidden.
//!
//! (Beyond this table, every other integration test runs the real binary as
//! approval-gate's service account under the chart's rendered RBAC.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use approval_gate::crd::{ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec, Operation, Target};
use futures::{StreamExt as _, future::BoxFuture};
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Namespace, Secret},
    events::v1::Event,
    rbac::v1::ClusterRole,
};
use kube::{
    Api, Client, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use support::{helm::*, *};

const RELEASE: &str = "rbac";
const FULLNAME: &str = "rbac-approval-gate";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

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
            requester: "alice".into(),
            operation: Operation::Update,
            target: Target {
                api_group: "apps".into(),
                resource: "deployments".into(),
                subresource: None,
                namespace: ns.into(),
                name: "checkout".into(),
            },
            digest: Some(DIGEST.into()),
            reason: "rbac proof".into(),
            policy: "rbac-proof".into(),
        },
    );
    req.metadata.namespace = Some(ns.to_owned());
    req
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

    let requests = Api::<ApprovalRequest>::namespaced(sa.clone(), &work);
    let policies = Api::<ApprovalPolicy>::all(sa.clone());
    let secrets = Api::<Secret>::namespaced(sa.clone(), &ns);
    let leases = Api::<Lease>::namespaced(sa.clone(), &ns);
    let configs = Api::<ValidatingWebhookConfiguration>::all(sa.clone());
    let roles = Api::<ClusterRole>::all(sa.clone());
    let tls = format!("{FULLNAME}-tls");
    let by_name = |name: &str| Some(format!("metadata.name={name}"));

    // --- The webhook: watches, auto-requests, recording use, Events.
    let allowed: Vec<(&str, Call)> = vec![
        (
            "list+watch approvalrequests (all namespaces)",
            list_watch(Api::<ApprovalRequest>::all(sa.clone()), None),
        ),
        (
            "list+watch approvalpolicies",
            list_watch(policies.clone(), None),
        ),
        (
            "list+watch namespaces",
            list_watch(Api::<Namespace>::all(sa.clone()), None),
        ),
        (
            "create an approvalrequest",
            call({
                let (r, req) = (requests.clone(), request(&work));
                async move { r.create(&PostParams::default(), &req).await }
            }),
        ),
    ];
    for (what, c) in allowed {
        check(what, true, c, &mut failures).await;
    }
    let mut created = requests.get_status("rbac-proof").await.unwrap();
    created.metadata.managed_fields = None;
    let status_allowed: Vec<(&str, Call)> = vec![
        (
            "replace approvalrequests/status (record use, operator phases)",
            call({
                let (r, c) = (requests.clone(), created.clone());
                async move {
                    r.replace_status("rbac-proof", &PostParams::default(), &c)
                        .await
                }
            }),
        ),
        (
            "patch approvalrequests/status",
            call({
                let r = requests.clone();
                async move {
                    r.patch_status(
                        "rbac-proof",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {}})),
                    )
                    .await
                }
            }),
        ),
        (
            "patch approvalpolicies/status",
            call({
                let (p, name) = (policies.clone(), format!("{ns}-policy"));
                async move {
                    p.patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {}})),
                    )
                    .await
                }
            }),
        ),
        (
            "create an Event (events.k8s.io)",
            call({
                let api = Api::<Event>::namespaced(sa.clone(), &work);
                let event: Event = serde_json::from_value(json!({
                "metadata": {"name": "rbac-proof"}, "eventTime": "2026-01-01T00:00:00.000000Z",
                "reportingController": "approval-gate", "reportingInstance": "proof",
                "action": "Proof", "reason": "Proof", "type": "Normal",
                "regarding": {"apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalRequest", "namespace": work, "name": "rbac-proof"}
            })).unwrap();
                async move { api.create(&PostParams::default(), &event).await }
            }),
        ),
        (
            "patch an Event (series)",
            call({
                let api = Api::<Event>::namespaced(sa.clone(), &work);
                async move {
                    api.patch("rbac-proof", &PatchParams::default(), &Patch::Merge(json!({"series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}}))).await
                }
            }),
        ),
        (
            "delete an approvalrequest (retention)",
            call({
                let r = requests.clone();
                async move { r.delete("rbac-proof", &DeleteParams::default()).await }
            }),
        ),
    ];
    for (what, c) in status_allowed {
        check(what, true, c, &mut failures).await;
    }

    // --- The operator: the leader Lease, its Secret, its configuration, its owner.
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "approval-gate-operator"}, "spec": {"holderIdentity": "proof", "leaseDurationSeconds": 15}})).unwrap();
    check(
        "create the leader Lease",
        true,
        call({
            let (l, x) = (leases.clone(), lease.clone());
            async move { l.create(&PostParams::default(), &x).await }
        }),
        &mut failures,
    )
    .await;
    let mut lease = leases.get("approval-gate-operator").await.unwrap();
    lease.spec.as_mut().unwrap().holder_identity = Some("proof-2".into());
    let operator_allowed: Vec<(&str, Call)> = vec![
        (
            "get+replace+patch the leader Lease",
            call({
                let (l, x) = (leases.clone(), lease);
                async move {
                    l.get("approval-gate-operator").await?;
                    l.replace("approval-gate-operator", &PostParams::default(), &x)
                        .await?;
                    l.patch(
                        "approval-gate-operator",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"leaseTransitions": 1}})),
                    )
                    .await
                }
            }),
        ),
        (
            "list+watch the leader Lease by name",
            list_watch(leases.clone(), by_name("approval-gate-operator")),
        ),
        (
            "create its TLS Secret",
            call({
                let (s, n) = (secrets.clone(), tls.clone());
                async move {
                    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": n}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})).unwrap();
                    s.create(&PostParams::default(), &secret).await
                }
            }),
        ),
        (
            "get+replace its TLS Secret",
            call({
                let (s, n) = (secrets.clone(), tls.clone());
                async move {
                    let mut current = s.get(&n).await?;
                    current.metadata.managed_fields = None;
                    s.replace(&n, &PostParams::default(), &current).await
                }
            }),
        ),
        (
            "list+watch its TLS Secret by name",
            list_watch(secrets.clone(), by_name(&tls)),
        ),
        (
            "server-side apply its webhook configuration (creating it)",
            call({
                let c = configs.clone();
                async move {
                    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": FULLNAME}})).unwrap();
                    c.patch(FULLNAME, &ssa(), &apply(&config)).await
                }
            }),
        ),
        (
            "list+watch its webhook configuration by name",
            list_watch(configs.clone(), by_name(FULLNAME)),
        ),
        (
            "get its owner ClusterRole",
            call({
                let r = roles.clone();
                async move { r.get(FULLNAME).await }
            }),
        ),
        (
            "delete its webhook configuration",
            call({
                let c = configs.clone();
                async move { c.delete(FULLNAME, &DeleteParams::default()).await }
            }),
        ),
    ];
    for (what, c) in operator_allowed {
        check(what, true, c, &mut failures).await;
    }

    // --- What it must never do.
    let decoy_name = format!("{ns}-decoy");
    let never: Vec<(&str, Call)> = vec![
        (
            "read another Secret in its namespace",
            call({
                let s = secrets.clone();
                async move { s.get("someone-elses").await }
            }),
        ),
        (
            "list the Secrets of its namespace",
            call({
                let s = secrets.clone();
                async move { s.list(&ListParams::default()).await }
            }),
        ),
        (
            "read a Secret elsewhere",
            call({
                let s = Api::<Secret>::namespaced(sa.clone(), &work);
                async move { s.get("anything").await }
            }),
        ),
        (
            "list Secrets cluster-wide",
            call({
                let s = Api::<Secret>::all(sa.clone());
                async move { s.list(&ListParams::default()).await }
            }),
        ),
        (
            "overwrite another Secret",
            call({
                let s = secrets.clone();
                async move {
                    s.patch(
                        "someone-elses",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"stringData": {"k": "x"}})),
                    )
                    .await
                }
            }),
        ),
        (
            "read another webhook configuration",
            call({
                let (c, n) = (configs.clone(), decoy_name.clone());
                async move { c.get(&n).await }
            }),
        ),
        (
            "edit another webhook configuration",
            call({
                let (c, n) = (configs.clone(), decoy_name.clone());
                async move {
                    c.patch(
                        &n,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
                    )
                    .await
                }
            }),
        ),
        (
            "delete another webhook configuration",
            call({
                let (c, n) = (configs.clone(), decoy_name.clone());
                async move { c.delete(&n, &DeleteParams::default()).await }
            }),
        ),
        (
            "list webhook configurations",
            call({
                let c = configs.clone();
                async move { c.list(&ListParams::default()).await }
            }),
        ),
        (
            "touch another Lease",
            call({
                let l = leases.clone();
                async move { l.get("kube-scheduler").await }
            }),
        ),
        (
            "read another ClusterRole",
            call({
                let r = roles.clone();
                async move { r.get("cluster-admin").await }
            }),
        ),
        (
            "edit its own ClusterRole (escalate)",
            call({
                let r = roles.clone();
                async move {
                    r.patch(
                        FULLNAME,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"rules": []})),
                    )
                    .await
                }
            }),
        ),
        (
            "create an ApprovalPolicy",
            call({
                let (p, mut x) = (policies.clone(), policy.clone());
                x.metadata.name = Some(format!("{ns}-mine"));
                x.metadata.resource_version = None;
                async move { p.create(&PostParams::default(), &x).await }
            }),
        ),
        (
            "change a policy's spec",
            call({
                let (p, n) = (policies.clone(), format!("{ns}-policy"));
                async move {
                    p.patch(
                        &n,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"approvals": 5}})),
                    )
                    .await
                }
            }),
        ),
        (
            "read Deployments",
            call({
                let d = Api::<Deployment>::all(sa.clone());
                async move { d.list(&ListParams::default()).await }
            }),
        ),
        (
            "delete a namespace",
            call({
                let n = Api::<Namespace>::all(sa.clone());
                let w = work.clone();
                async move { n.delete(&w, &DeleteParams::default()).await }
            }),
        ),
    ];
    for (what, c) in never {
        check(what, false, c, &mut failures).await;
    }
    assert!(
        failures.is_empty(),
        "RBAC is not what the binary needs:\n{}",
        failures.join("\n")
    );
}

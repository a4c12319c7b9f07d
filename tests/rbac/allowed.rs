//! Every API call the binary makes, made as the chart's ServiceAccount: each
//! must be allowed and succeed.

use approval_gate::crd::ApprovalRequest;
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Namespace, Secret},
    discovery::v1::EndpointSlice,
    events::v1::Event,
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{Apis, Call, FULLNAME, apply, call, check, list_watch, request, ssa};

/// The webhook's calls: watches, auto-requests, recording use, Events.
pub(super) async fn webhook(apis: &Apis, failures: &mut Vec<String>) {
    let Apis {
        sa,
        ns,
        work,
        requests,
        policies,
        ..
    } = apis;
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
                let (r, req) = (requests.clone(), request(work));
                async move { r.create(&PostParams::default(), &req).await }
            }),
        ),
    ];
    for (what, c) in allowed {
        check(what, true, c, failures).await;
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
                let api = Api::<Event>::namespaced(sa.clone(), work);
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
                let api = Api::<Event>::namespaced(sa.clone(), work);
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
        check(what, true, c, failures).await;
    }
}

/// The operator's calls: the leader Lease, its Secret, its configuration, its
/// owner, and reading a gated object to confirm a recorded use.
pub(super) async fn operator(apis: &Apis, failures: &mut Vec<String>) {
    let Apis {
        sa,
        ns,
        work,
        secrets,
        leases,
        configs,
        roles,
        ..
    } = apis;
    // A gated object the admin made, read back as a use is confirmed.
    let map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "rbac-proof"}})).unwrap();
    Api::<ConfigMap>::namespaced(super::client(&super::ADMIN).await, work)
        .create(&PostParams::default(), &map)
        .await
        .unwrap();
    let maps = Api::<ConfigMap>::namespaced(sa.clone(), work);
    let tls = format!("{FULLNAME}-tls");
    let by_name = |name: &str| Some(format!("metadata.name={name}"));
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "approval-gate-operator"}, "spec": {"holderIdentity": "proof", "leaseDurationSeconds": 15}})).unwrap();
    check(
        "create the leader Lease",
        true,
        call({
            let (l, x) = (leases.clone(), lease.clone());
            async move { l.create(&PostParams::default(), &x).await }
        }),
        failures,
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
            "list its Service's EndpointSlices (registering once one is ready)",
            call({
                let slices = Api::<EndpointSlice>::namespaced(sa.clone(), ns);
                async move {
                    slices
                        .list(&ListParams::default().labels("kubernetes.io/service-name=x"))
                        .await
                }
            }),
        ),
        (
            "get a gated object (confirming a use)",
            call(async move { maps.get("rbac-proof").await }),
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
        check(what, true, c, failures).await;
    }
}

//! What the chart's ServiceAccount must never do: each call must be forbidden.

use approval_gate::crd::ApprovalPolicy;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Secret},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{Apis, Call, FULLNAME, call, check};

/// The calls it must never make.
pub(super) async fn never(apis: &Apis, policy: &ApprovalPolicy, failures: &mut Vec<String>) {
    let Apis {
        sa,
        ns,
        work,
        policies,
        secrets,
        leases,
        configs,
        roles,
        ..
    } = apis;
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
                let s = Api::<Secret>::namespaced(sa.clone(), work);
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
        check(what, false, c, failures).await;
    }
}

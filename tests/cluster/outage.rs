//! approval-gate scaled to zero with `failurePolicy: Fail`: no deadlock.

use std::time::Duration;

use approval_gate_testenv::{
    identities::{ADMIN, ALICE},
    node::NODE_NAME,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::harness::TestCluster;

async fn heartbeat(cluster: &TestCluster) -> Option<jiff::Timestamp> {
    Api::<Lease>::namespaced(cluster.client(&ADMIN).await, "kube-node-lease")
        .get_opt(NODE_NAME)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.renew_time)
        .map(|t| t.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn scaled_to_zero_it_refuses_gated_changes_clearly_and_nothing_else_stops() {
    let cluster = TestCluster::start().await;
    cluster
        .install(&["--set", "webhook.failurePolicy=Fail"])
        .await;
    cluster.namespace("prod", &[]).await;
    cluster.namespace("dev", &[]).await;
    cluster.policy(
        "configmaps-in-prod",
        "rules: [{apiGroups: [''], resources: [configmaps], operations: [CREATE], namespaces: [prod]}]\n\
         approvers: {groups: [sre]}",
    );
    let create = |ns: &str, name: &str| {
        cluster
            .kubectl(&ALICE)
            .args(["create", "configmap", name, "-n", ns, "--from-literal=a=b"])
            .run()
    };
    cluster.held("prod", || create("prod", "held")).await;

    cluster.scale(0);
    cluster
        .eventually(
            "no approval-gate pod is left",
            Duration::from_secs(90),
            || async { cluster.pods().await.is_empty() },
        )
        .await;
    let before = heartbeat(&cluster)
        .await
        .expect("the node's heartbeat Lease");

    // Gated changes are refused, with the apiserver's reason once it has
    // seen the endpoints go. Until then (the pods are gone before the
    // apiserver's view of the Service catches up), the call to the gone pod
    // times out, and that refuses too: no attempt may pass.
    cluster
        .eventually(
            "the apiserver refuses for want of endpoints",
            Duration::from_secs(60),
            || async {
                let refused = create("prod", "during-outage").fails();
                assert!(refused.contains("failed calling webhook"), "{refused}");
                refused.contains("no endpoints available for service \"approval-gate\"")
            },
        )
        .await;
    // Ungated namespaces and kube-system work.
    create("dev", "during-outage").ok();
    cluster
        .kubectl(&ADMIN)
        .args(["create", "configmap", "during-outage", "-n", "kube-system"])
        .run()
        .ok();
    // The node keeps its heartbeat and stays Ready.
    cluster
        .eventually(
            "the node's heartbeat moves on",
            Duration::from_secs(60),
            || async { heartbeat(&cluster).await.is_some_and(|t| t > before) },
        )
        .await;
    let node = cluster
        .kubectl(&ADMIN)
        .args([
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .run()
        .ok();
    assert_eq!(node, "True");

    // Back: everything recovers without a manual step.
    cluster.scale(2);
    cluster
        .eventually("two Ready replicas", Duration::from_secs(120), || async {
            cluster.ready_pods().await.len() == 2
        })
        .await;
    let name = cluster
        .held("prod", || create("prod", "after-outage"))
        .await;
    cluster.approve("prod", &name);
    cluster.passes(|| create("prod", "after-outage")).await;
}

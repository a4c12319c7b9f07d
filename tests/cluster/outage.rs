//! approval-gate scaled to zero with `failurePolicy: Fail`: no deadlock.

use std::time::Duration;

use approval_gate::testenv::{
    identities::{ADMIN, ALICE, BOB},
    node::NODE_NAME,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::harness::{NAMESPACE, TestCluster};
use crate::support::request_name;

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
    let policy = "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalPolicy\n\
        metadata: {name: configmaps-in-prod}\n\
        spec:\n  rules:\n  - apiGroups: ['']\n    resources: [configmaps]\n    \
        operations: [CREATE]\n    namespaces: [prod]\n  approvers: {groups: [sre]}\n";
    cluster
        .kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(policy)
        .run()
        .ok();
    let create = |ns: &str, name: &str| {
        cluster
            .kubectl(&ALICE)
            .args(["create", "configmap", name, "-n", ns, "--from-literal=a=b"])
            .run()
    };
    cluster
        .eventually("the webhook holds prod", Duration::from_secs(60), || {
            let out = create("prod", "held");
            async move { out.stderr().contains("ApprovalRequest prod/") }
        })
        .await;

    cluster
        .kubectl(&ADMIN)
        .args([
            "scale",
            "deployment/approval-gate",
            "-n",
            NAMESPACE,
            "--replicas=0",
        ])
        .run()
        .ok();
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

    // Gated changes are refused, with the apiserver's reason.
    let refused = create("prod", "during-outage").fails();
    assert!(
        refused.contains("failed calling webhook")
            && refused.contains("no endpoints available for service \"approval-gate\""),
        "{refused}"
    );
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
    cluster
        .kubectl(&ADMIN)
        .args([
            "scale",
            "deployment/approval-gate",
            "-n",
            NAMESPACE,
            "--replicas=2",
        ])
        .run()
        .ok();
    cluster
        .eventually("two Ready replicas", Duration::from_secs(120), || async {
            cluster.ready_pods().await.len() == 2
        })
        .await;
    let mut held = String::new();
    cluster
        .eventually("the gate holds again", Duration::from_secs(60), || {
            let out = create("prod", "after-outage");
            held = out.stderr();
            async move { out.stderr().contains("ApprovalRequest prod/") }
        })
        .await;
    let name = request_name(&held, "prod");
    let out = cluster
        .plugin(&BOB)
        .args([name.as_str(), "-n", "prod"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster
        .eventually(
            "the approved change passes",
            Duration::from_secs(30),
            || {
                let out = create("prod", "after-outage");
                async move { out.success() }
            },
        )
        .await;
}

//! Failover between the pods: deleting the leader hands the Lease to the
//! other replica, a pending expiry still lands, and the Deployment replaces
//! the pod.

use std::time::{Duration, Instant};

use approval_gate::{
    crd::{ApprovalRequest, Phase},
    testenv::identities::{ADMIN, ALICE},
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::harness::{NAMESPACE, TestCluster};
use crate::support::request_name;

/// The chart's default `operator.leaseSeconds`.
const LEASE_SECONDS: u64 = 15;

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_leader_pod_hands_over_the_lease_and_a_pending_expiry_still_lands() {
    let cluster = TestCluster::start().await;
    cluster.install(&[]).await;
    cluster.namespace("prod", &[]).await;
    let policy = "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalPolicy\n\
        metadata: {name: configmaps-in-prod}\n\
        spec:\n  rules:\n  - apiGroups: ['']\n    resources: [configmaps]\n    \
        operations: [CREATE]\n    namespaces: [prod]\n  approvers: {groups: [sre]}\n  \
        requestTTL: 40s\n";
    cluster
        .kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(policy)
        .run()
        .ok();
    let create = || {
        cluster
            .kubectl(&ALICE)
            .args([
                "create",
                "configmap",
                "settings",
                "-n",
                "prod",
                "--from-literal=a=b",
            ])
            .run()
    };
    let mut held = String::new();
    cluster
        .eventually("the change is held", Duration::from_secs(60), || {
            let out = create();
            held = out.stderr();
            async move { out.stderr().contains("ApprovalRequest prod/") }
        })
        .await;
    let name = request_name(&held, "prod");
    let requests = Api::<ApprovalRequest>::namespaced(cluster.client(&ADMIN).await, "prod");
    let request = requests.get(&name).await.unwrap();
    let deadline = request
        .status
        .as_ref()
        .and_then(|s| s.expires_at.clone())
        .expect("a pending request has a deadline")
        .0;

    // The leader's pod goes away, as on a node drain.
    let leader = cluster.leader().await.expect("a leader");
    let deleted = Instant::now();
    cluster
        .kubectl(&ADMIN)
        .args(["delete", "pod", &leader, "-n", NAMESPACE, "--wait=false"])
        .run()
        .ok();
    let (successor, took) = cluster
        .eventually_some(
            "another replica takes the Lease",
            Duration::from_secs(60),
            || async { cluster.leader().await.filter(|h| *h != leader) },
        )
        .await;
    eprintln!("the Lease moved from {leader} to {successor} in {took:?}");
    assert!(
        deleted.elapsed() < Duration::from_secs(LEASE_SECONDS),
        "the Lease took {took:?}, longer than its duration"
    );

    // The request expires on the new leader's watch, never before its deadline.
    let (seen, _) = cluster
        .eventually_some(
            "the pending request expires",
            Duration::from_secs(90),
            || async {
                let phase = requests
                    .get(&name)
                    .await
                    .ok()
                    .and_then(|r| r.status)
                    .and_then(|s| s.phase);
                (phase == Some(Phase::Expired)).then(jiff::Timestamp::now)
            },
        )
        .await;
    let late = seen.duration_since(deadline);
    eprintln!("expired {late} after its deadline {deadline} (seen {seen})");
    assert!(
        seen >= deadline,
        "expired early: seen {seen}, due {deadline}"
    );

    // The Deployment brings a new pod back.
    let deployments = Api::<Deployment>::namespaced(cluster.client(&ADMIN).await, NAMESPACE);
    cluster
        .eventually(
            "two Ready replicas again",
            Duration::from_secs(120),
            || async {
                let ready = cluster.ready_pods().await;
                let status = deployments
                    .get("approval-gate")
                    .await
                    .ok()
                    .and_then(|d| d.status)
                    .unwrap_or_default();
                ready.len() == 2 && !ready.contains(&leader) && status.ready_replicas == Some(2)
            },
        )
        .await;
}

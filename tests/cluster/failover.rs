//! Failover between the pods: deleting the leader hands the Lease to the
//! other replica, a pending expiry still lands, and the Deployment replaces
//! the pod.

use std::time::Duration;

use approval_gate::crd::{ApprovalRequest, Phase};
use approval_gate_testenv::identities::{ADMIN, ALICE};
use k8s_openapi::api::{apps::v1::Deployment, coordination::v1::Lease};
use kube::Api;

use crate::harness::{LEASE, NAMESPACE, TestCluster};

/// The chart's default `operator.leaseSeconds`.
const LEASE_SECONDS: u64 = 15;
/// What a takeover may add to the lease duration: the successor wakes at the
/// expiry it computed and then reads and writes the Lease.
const SLACK_SECONDS: i64 = 2;

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_leader_pod_hands_over_the_lease_and_a_pending_expiry_still_lands() {
    let cluster = TestCluster::start().await;
    cluster.install(&[]).await;
    cluster.namespace("prod", &[]).await;
    cluster.policy(
        "configmaps-in-prod",
        "rules: [{apiGroups: [''], resources: [configmaps], operations: [CREATE], namespaces: [prod]}]\n\
         approvers: {groups: [sre]}\nrequestTTL: 40s",
    );
    let name = cluster
        .held("prod", || {
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
        })
        .await;
    let requests = Api::<ApprovalRequest>::namespaced(cluster.client(&ADMIN).await, "prod");
    let request = requests.get(&name).await.unwrap();
    let deadline = request
        .status
        .as_ref()
        .and_then(|s| s.expires_at.clone())
        .expect("a pending request has a deadline")
        .0;

    // The leader's pod goes away, as on a node drain. It serves on for the
    // chart's shutdown delay, then stops renewing; the other replica takes
    // the Lease once the last renewal has lapsed, within the lease duration.
    let leader = cluster.leader().await.expect("a leader");
    let leases = Api::<Lease>::namespaced(cluster.client(&ADMIN).await, NAMESPACE);
    cluster
        .kubectl(&ADMIN)
        .args(["delete", "pod", &leader, "-n", NAMESPACE, "--wait=false"])
        .run()
        .ok();
    let last_renewal = std::sync::Mutex::new(None);
    let (taken, took) = cluster
        .eventually_some(
            "another replica takes the Lease",
            Duration::from_secs(60),
            || {
                let leases = leases.clone();
                let leader = leader.clone();
                let seen = &last_renewal;
                async move {
                    let spec = leases.get(LEASE).await.ok()?.spec?;
                    match spec.holder_identity.as_deref() {
                        Some(holder) if holder != leader && !holder.is_empty() => Some(spec),
                        _ => {
                            if spec.holder_identity.as_deref() == Some(leader.as_str()) {
                                let mut seen = seen.lock().unwrap();
                                *seen = spec.renew_time.map(|t| t.0).or(*seen);
                            }
                            None
                        }
                    }
                }
            },
        )
        .await;
    let last_renewal = last_renewal
        .into_inner()
        .unwrap()
        .expect("the old leader's renewals were seen");
    let acquired = taken.acquire_time.expect("the new holder's acquireTime").0;
    let gap = acquired.duration_since(last_renewal);
    eprintln!(
        "the Lease moved from {leader} to {:?} {took:?} after the deletion; \
         acquired {gap} after the old leader's last renewal (lease {LEASE_SECONDS} s)",
        taken.holder_identity
    );
    assert!(
        gap <= jiff::SignedDuration::from_secs(LEASE_SECONDS as i64 + SLACK_SECONDS),
        "the Lease was taken {gap} after the last renewal, past its duration"
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

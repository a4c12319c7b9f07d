//! Install, the whole JIT flow through the Service (including a real
//! `kubectl exec`), the security context at runtime, and uninstall.

use std::time::Duration;

use approval_gate_testenv::identities::{ADMIN, ALICE};
use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration,
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{Pod, Secret},
};
use kube::{Api, ResourceExt, api::ListParams};

use crate::harness::{LEASE, NAMESPACE, TestCluster};

const FULLNAME: &str = "approval-gate";

#[tokio::test(flavor = "multi_thread")]
async fn helm_install_serves_the_jit_flow_through_the_service_and_uninstall_removes_everything() {
    let cluster = TestCluster::start().await;
    let took = cluster.install(&[]).await;
    eprintln!("helm install --wait took {took:?}");
    let admin = cluster.client(&ADMIN).await;

    // Both replicas Ready, one of them holds the Lease.
    let deployment = Api::<Deployment>::namespaced(admin.clone(), NAMESPACE)
        .get(FULLNAME)
        .await
        .unwrap();
    let status = deployment.status.unwrap_or_default();
    assert_eq!(status.ready_replicas, Some(2), "{status:?}");
    let ready = cluster.ready_pods().await;
    assert_eq!(ready.len(), 2, "{ready:?}");
    cluster
        .eventually(
            "a replica holds the Lease",
            Duration::from_secs(60),
            || async { cluster.leader().await.is_some() },
        )
        .await;
    let leader = cluster.leader().await.unwrap();
    assert!(ready.contains(&leader), "{leader} is not one of {ready:?}");

    // The operator issued the certificate and registered the webhook with a
    // `service:` clientConfig.
    let configs = Api::<ValidatingWebhookConfiguration>::all(admin.clone());
    cluster
        .eventually(
            "the webhook is registered",
            Duration::from_secs(60),
            || async { configs.get_opt(FULLNAME).await.ok().flatten().is_some() },
        )
        .await;
    let config = configs.get(FULLNAME).await.unwrap();
    // Registered only once a replica could answer: a configuration that
    // fails closed, made earlier, would refuse the install's own objects.
    let pods = Api::<Pod>::namespaced(admin.clone(), NAMESPACE)
        .list(&ListParams::default().labels("app.kubernetes.io/name=approval-gate"))
        .await
        .unwrap();
    let first_ready = pods
        .items
        .iter()
        .filter_map(|p| {
            let conditions = p.status.as_ref()?.conditions.as_ref()?;
            let ready = conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")?;
            ready.last_transition_time.as_ref().map(|t| t.0)
        })
        .min()
        .expect("a Ready pod");
    let registered = config.metadata.creation_timestamp.as_ref().unwrap().0;
    assert!(
        registered >= first_ready,
        "registered at {registered}, before the first pod was Ready at {first_ready}"
    );
    let hooks = config.webhooks.unwrap_or_default();
    assert!(!hooks.is_empty());
    for hook in &hooks {
        let service = hook
            .client_config
            .service
            .as_ref()
            .expect("a service reference");
        assert_eq!(
            (
                service.namespace.as_str(),
                service.name.as_str(),
                service.port
            ),
            (NAMESPACE, FULLNAME, Some(443)),
        );
        assert!(hook.client_config.url.is_none());
        assert!(hook.client_config.ca_bundle.is_some());
    }
    let secret = Api::<Secret>::namespaced(admin.clone(), NAMESPACE)
        .get(&format!("{FULLNAME}-tls"))
        .await
        .unwrap();
    assert!(secret.data.unwrap_or_default().contains_key("tls.crt"));

    // What each replica has written to disk so far (runc's set-up included).
    let mut written = std::collections::BTreeMap::new();
    for pod in cluster.pods().await {
        written.insert(
            pod.name_any(),
            write_bytes(container_process(&cluster, &pod)),
        );
    }

    // The JIT flow through the Service: exec into a running pod is held,
    // approved by another person, and then runs.
    cluster
        .namespace("prod", &[("environment", "production")])
        .await;
    cluster.shell_pod("prod", "shell").await;
    cluster.policy(
        "exec-in-prod",
        "rules: [{apiGroups: [''], resources: [pods/exec], operations: [CONNECT], namespaces: [prod]}]\n\
         approvers: {groups: [sre]}",
    );
    let exec = || {
        cluster
            .kubectl(&ALICE)
            .args([
                "exec",
                "shell",
                "-n",
                "prod",
                "--",
                "sh",
                "-c",
                "echo ran as $(id -u)",
            ])
            .run()
    };
    // Held through the Service, approved by bob, then it runs in the pod.
    let name = cluster.held("prod", exec).await;
    cluster.approve("prod", &name);
    let output = cluster.passes(exec).await;
    assert_eq!(output.trim(), "ran as 65532");

    // The security context holds at runtime, and serving the flow (the
    // webhook, the operator, the leader election) wrote nothing to disk.
    for pod in cluster.pods().await {
        let process = container_process(&cluster, &pod);
        let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        assert_eq!(
            field("Uid"),
            "65532 65532 65532 65532",
            "{}",
            pod.name_any()
        );
        assert_eq!(field("Gid"), "65532 65532 65532 65532");
        assert_eq!(field("CapEff"), "0000000000000000");
        assert_eq!(field("CapPrm"), "0000000000000000");
        assert_eq!(field("NoNewPrivs"), "1");
        assert_eq!(field("Seccomp"), "2", "seccomp filter mode");
        let mounts = std::fs::read_to_string(format!("/proc/{process}/mountinfo")).unwrap();
        let root = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .expect("a root mount");
        let options = root.split(' ').nth(5).unwrap_or_default();
        assert!(
            options.split(',').any(|o| o == "ro"),
            "root is mounted {options}"
        );
        assert_eq!(
            Some(&write_bytes(process)),
            written.get(&pod.name_any()),
            "{} wrote to disk",
            pod.name_any()
        );
    }

    // Uninstall removes everything: the chart's objects, and what the
    // operator made (webhook configuration, issued Secret, Lease).
    cluster.helm_ok(&[
        "uninstall",
        "approval-gate",
        "--namespace",
        NAMESPACE,
        "--wait",
    ]);
    cluster
        .eventually(
            "the webhook configuration is gone",
            Duration::from_secs(60),
            || async { configs.get_opt(FULLNAME).await.ok().flatten().is_none() },
        )
        .await;
    let secrets = Api::<Secret>::namespaced(admin.clone(), NAMESPACE);
    cluster
        .eventually(
            "the issued Secret is gone",
            Duration::from_secs(60),
            || async {
                secrets
                    .get_opt(&format!("{FULLNAME}-tls"))
                    .await
                    .ok()
                    .flatten()
                    .is_none()
            },
        )
        .await;
    let leases = Api::<Lease>::namespaced(admin.clone(), NAMESPACE);
    cluster
        .eventually(
            "the leader Lease is gone",
            Duration::from_secs(60),
            || async { leases.get_opt(LEASE).await.ok().flatten().is_none() },
        )
        .await;
    cluster
        .eventually(
            "approval-gate's pods are gone",
            Duration::from_secs(60),
            || async { cluster.pods().await.is_empty() },
        )
        .await;
    // Nothing is gated any more.
    exec();
    let after = exec();
    assert!(after.success(), "{}", after.stderr());
}

/// The host's id of the main process of `pod`'s first container.
fn container_process(cluster: &TestCluster, pod: &Pod) -> u32 {
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .expect("a running container");
    let id = id.trim_start_matches("containerd://");
    let tasks = cluster
        .cluster
        .ctr(&["tasks", "list"])
        .expect("ctr tasks list");
    tasks
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no task {id} in:\n{tasks}"))
}

/// The bytes a process has caused to be written to storage (`/proc/<pid>/io`).
fn write_bytes(process: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{process}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no write_bytes in {io}"))
}

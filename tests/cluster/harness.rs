//! One real single-node cluster per test, with approval-gate installed by
//! `helm install` from the locally built image (`make image-oci`).

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use approval_gate_testenv::{
    self as testenv, Identity,
    identities::{ADMIN, BOB},
    node::{self, Cluster, ClusterOptions},
};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Namespace, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, ObjectMeta, PostParams},
};

use crate::support::{self, Kubectl, KubectlOutput};

/// The release's namespace.
pub const NAMESPACE: &str = approval_gate_testenv::node::RELEASE;
/// The operator's leader Lease.
pub const LEASE: &str = "approval-gate-operator";

/// The chart's default image: what `make image-oci` names the local build.
pub fn image() -> String {
    format!(
        "ghcr.io/approval-gate/approval-gate:{}",
        env!("CARGO_PKG_VERSION")
    )
}

fn archives() -> Vec<PathBuf> {
    let dir = support::helm::repo().join("target/oci");
    ["pause", "approval-gate", "shell"]
        .iter()
        .map(|name| dir.join(format!("{name}.oci.tar")))
        .collect()
}

pub struct TestCluster {
    pub cluster: Cluster,
}

impl TestCluster {
    /// A fresh cluster: control plane, one Ready node, the three images.
    pub async fn start() -> Self {
        let mut control = support::options();
        control.install = false;
        let cluster = Cluster::start(ClusterOptions {
            control,
            images: archives(),
        })
        .await
        .unwrap_or_else(|e| panic!("starting the real node: {e}"));
        Self { cluster }
    }

    pub fn kubeconfig(&self, id: &Identity) -> PathBuf {
        self.plane().kubeconfig(id)
    }

    pub fn plane(&self) -> &approval_gate_testenv::ControlPlane {
        self.cluster.plane().expect("the control plane runs")
    }

    pub fn kubectl(&self, id: &Identity) -> Kubectl {
        support::kubectl_with(&self.kubeconfig(id))
    }

    pub fn plugin(&self, id: &Identity) -> Command {
        support::plugin_with(&self.kubeconfig(id))
    }

    pub async fn client(&self, id: &Identity) -> kube::Client {
        self.plane().client(id).await.expect("a client")
    }

    /// The pinned helm as the admin; asserts success and returns stdout.
    pub fn helm_ok(&self, args: &[&str]) -> String {
        self.cluster.helm(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `helm install` of the chart (see [`Cluster::helm_install`]), then
    /// the demo identities bound to the chart's roles; returns how long the
    /// install took to be ready.
    pub async fn install(&self, extra: &[&str]) -> Duration {
        let started = Instant::now();
        self.cluster
            .helm_install(&support::helm::chart(), extra)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let took = started.elapsed();
        self.plane()
            .install_dev_rbac()
            .await
            .expect("binding the demo identities");
        took
    }

    /// Creates the ApprovalPolicy `name` (as the admin) from the YAML of its
    /// spec, say `rules: [...]\napprovers: {groups: [sre]}`.
    pub fn policy(&self, name: &str, spec: &str) {
        let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
        let manifest = format!(
            "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalPolicy\n\
             metadata: {{name: {name}}}\nspec:\n{spec}"
        );
        self.kubectl(&ADMIN)
            .args(["apply", "-f", "-"])
            .stdin(manifest)
            .run()
            .ok();
    }

    /// Repeats `attempt` until the webhook holds it (the operator registers a
    /// new policy's rules within a second or so); returns the name of the
    /// ApprovalRequest in `ns` its denial names.
    pub async fn held(&self, ns: &str, attempt: impl Fn() -> KubectlOutput) -> String {
        let marker = format!("ApprovalRequest {ns}/");
        let (message, _) = self
            .eventually_some("the attempt is held", Duration::from_secs(60), || {
                let out = attempt();
                let held = (!out.success() && out.stderr().contains(&marker)).then(|| out.stderr());
                async move { held }
            })
            .await;
        assert!(message.contains("kubectl approve"), "{message}");
        support::request_name(&message, ns)
    }

    /// bob approves the request `ns/name` with `kubectl approve`.
    pub fn approve(&self, ns: &str, name: &str) {
        let out = self
            .plugin(&BOB)
            .args([name, "-n", ns])
            .output()
            .expect("kubectl approve runs");
        assert!(
            out.status.success(),
            "kubectl approve {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Repeats `attempt` until it succeeds (the webhook's cache has seen the
    /// approval); returns its output.
    pub async fn passes(&self, attempt: impl Fn() -> KubectlOutput) -> String {
        self.eventually_some(
            "the approved attempt passes",
            Duration::from_secs(30),
            || {
                let out = attempt();
                let passed = out.success().then(|| out.stdout());
                async move { passed }
            },
        )
        .await
        .0
    }

    /// Scales approval-gate's Deployment (as the admin).
    pub fn scale(&self, replicas: u32) {
        self.kubectl(&ADMIN)
            .args([
                "scale",
                "deployment/approval-gate",
                "-n",
                NAMESPACE,
                &format!("--replicas={replicas}"),
            ])
            .run()
            .ok();
    }

    /// approval-gate's pods, by name.
    pub async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client(&ADMIN).await, NAMESPACE)
            .list(&ListParams::default().labels("app.kubernetes.io/name=approval-gate"))
            .await
            .expect("listing approval-gate's pods")
            .items
    }

    /// The names of approval-gate's pods that are Ready.
    pub async fn ready_pods(&self) -> Vec<String> {
        self.pods()
            .await
            .into_iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none() && node::pod_is_ready(pod))
            .map(|pod| pod.name_any())
            .collect()
    }

    /// The holder of the operator's Lease, if any.
    pub async fn leader(&self) -> Option<String> {
        let lease = Api::<Lease>::namespaced(self.client(&ADMIN).await, NAMESPACE)
            .get_opt(LEASE)
            .await
            .expect("reading the Lease")?;
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty())
    }

    /// Waits until `check` holds, polling every 250 ms; panics with `what`.
    pub async fn eventually<F, Fut>(&self, what: &str, within: Duration, mut check: F) -> Duration
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.eventually_some(what, within, || {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await
        .1
    }

    /// Waits until `check` gives a value, polling every 250 ms; returns it
    /// and how long it took, or panics with `what`.
    pub async fn eventually_some<T, F, Fut>(
        &self,
        what: &str,
        within: Duration,
        mut check: F,
    ) -> (T, Duration)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(value) = check().await {
                return (value, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "{what}: not within {within:?}; kubelet log:\n{}",
            testenv::tail(&self.cluster.dir().join("kubelet.log"), 20)
        );
    }

    /// Creates a namespace (the cluster's controllers add its ServiceAccount).
    pub async fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client(&ADMIN).await)
            .create(&PostParams::default(), &ns)
            .await
            .expect("creating a namespace");
    }

    /// Runs the demo's shell pod `name` in `ns` and waits until it is Ready.
    pub async fn shell_pod(&self, ns: &str, name: &str) {
        self.cluster
            .run_shell_pod(ns, name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

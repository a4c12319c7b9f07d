//! A real single-node cluster beside the local control plane: containerd,
//! runc and the CNI bridge from the distribution's packages, kubelet,
//! kube-scheduler and kube-controller-manager with its usual controllers.
//!
//! Networking, all on this machine:
//! - the node has a bridge of its own (`agnode<N>`, `10.213.<N>.1/24`), made
//!   before anything starts. The apiserver serves on that address, so kubelet,
//!   the pods and the tests all reach it there;
//! - pods get addresses on the bridge from CNI's `host-local`, with no gateway
//!   and no NAT: the host reaches them on the link, and they reach the node;
//! - there is no kube-proxy. The apiserver calls webhooks at their Service's
//!   endpoints (`--enable-aggregator-routing`), and pods that talk to the API
//!   are told the node's address (`KUBERNETES_SERVICE_HOST`/`_PORT`), as
//!   kube-proxy-free clusters do.
//!
//! Dropping the [`Cluster`] removes every pod through the API, waits until the
//! runtime has none, then stops the processes and removes what they leave
//! behind: runc containers, shims, mounts under its folder (the pods' network
//! namespaces are mounted there too) and the bridge.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    core::v1::{ConfigMap, Node, Pod, ServiceAccount},
    rbac::v1::{ClusterRoleBinding, RoleRef, Subject},
};
use kube::{Api, api::ObjectMeta, runtime::wait::await_condition};

use super::{
    ControlPlane, Options, certs, free_ports, identities, process::ManagedProcess, tail, write,
};
use crate::error::{Error, Result};

/// The demo's shell image (busybox), built beside approval-gate's.
pub const SHELL_IMAGE: &str = "docker.io/approval-gate/shell:dev";
/// Where [`Cluster::helm_install`] installs the chart, and the release's name.
pub const RELEASE: &str = "approval-gate";
/// The ConfigMap (in the release's namespace) holding the CA of the
/// apiserver's webhook client certificate, which the chart's
/// `webhook.clientAuth.caConfigMap` names.
pub const CLIENT_CA_CONFIG_MAP: &str = "apiserver-webhook-client";
/// The node's name as the apiserver knows it.
pub const NODE_NAME: &str = "approval-gate-node";
/// The image every pod sandbox runs (`make image-oci` writes it).
pub const PAUSE_IMAGE: &str = "docker.io/approval-gate/pause:dev";
/// The user the apiserver presents to kubelet for logs, exec and port-forward.
const KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";
/// Where Debian's containernetworking-plugins package puts the plugins.
const CNI_BIN_DIR: &str = "/usr/lib/cni";
const BRIDGE_PREFIX: &str = "agnode";

/// What the node needs besides the control plane's binaries.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The control plane's binaries (kubelet and kube-scheduler included) and folder.
    pub control: Options,
    /// OCI archives imported into the node's runtime before kubelet starts;
    /// one of them must hold [`PAUSE_IMAGE`].
    pub images: Vec<PathBuf>,
}

/// A running control plane with one Ready node.
pub struct Cluster {
    bridge: Bridge,
    dir: PathBuf,
    processes: Vec<ManagedProcess>,
    containerd: Option<ManagedProcess>,
    plane: Option<ControlPlane>,
}

impl Cluster {
    /// Starts the control plane on a fresh bridge, then containerd (with the
    /// images imported), kubelet, kube-controller-manager and
    /// kube-scheduler, and waits until the node is Ready and the `default`
    /// namespace has its ServiceAccount.
    pub async fn start(opts: ClusterOptions) -> Result<Self> {
        for name in ["kubelet", "kube-scheduler", "kube-controller-manager"] {
            if !opts.control.bin_dir.join(name).exists() {
                return Err(Error::MissingBinary {
                    name: name.to_owned(),
                    dir: opts.control.bin_dir.clone(),
                });
            }
        }
        for image in &opts.images {
            if !image.exists() {
                return Err(Error::ControlPlane(format!(
                    "image archive {} not found; run `make image-oci`",
                    image.display()
                )));
            }
        }
        for program in ["containerd", "ctr", "runc", "ip"] {
            which(program)?;
        }
        let bridge = Bridge::allocate()?;
        let mut control = opts.control.clone();
        control.node_address = Some(bridge.address);
        let started = ControlPlane::start(control).await.and_then(|plane| {
            // Recorded first thing, so a sweep finds the bridge of a run
            // whose owner dies from here on.
            write(&plane.dir().join("node.bridge"), &bridge.name).map(|()| plane)
        });
        let plane = match started {
            Ok(plane) => plane,
            Err(err) => {
                bridge.delete();
                return Err(err);
            }
        };
        let dir = plane.dir().to_owned();
        let mut cluster = Self {
            bridge,
            dir,
            processes: Vec::new(),
            containerd: None,
            plane: Some(plane),
        };
        cluster.start_node(&opts).await?;
        Ok(cluster)
    }

    async fn start_node(&mut self, opts: &ClusterOptions) -> Result<()> {
        let dir = self.dir.clone();
        let bin_dir = opts.control.bin_dir.clone();
        self.write_runtime_config()?;
        self.containerd = Some(ManagedProcess::spawn(
            "containerd",
            &which("containerd")?,
            &[format!(
                "--config={}",
                dir.join("containerd.toml").display()
            )],
            &dir.join("containerd.log"),
        )?);
        self.await_containerd(Duration::from_secs(30)).await?;
        for image in &opts.images {
            self.import(image)?;
        }

        let [kubelet_port, healthz_port] = free_ports()?;
        write(
            &dir.join("kubelet.yaml"),
            &kubelet_config(&dir, self.bridge.address, kubelet_port, healthz_port),
        )?;
        let plane = self.plane()?;
        let kubelet_args = vec![
            format!("--config={}", dir.join("kubelet.yaml").display()),
            format!(
                "--kubeconfig={}",
                plane.kubeconfig(&identities::NODE).display()
            ),
            format!("--root-dir={}", dir.join("kubelet").display()),
            format!("--hostname-override={NODE_NAME}"),
            format!("--node-ip={}", self.bridge.address),
            "--v=1".to_owned(),
        ];
        let controller_manager_args = vec![
            format!(
                "--kubeconfig={}",
                plane.kubeconfig(&identities::CONTROLLER_MANAGER).display()
            ),
            "--controllers=*".to_owned(),
            "--use-service-account-credentials=true".to_owned(),
            format!("--root-ca-file={}", dir.join("ca.crt").display()),
            format!(
                "--service-account-private-key-file={}",
                dir.join("sa.key").display()
            ),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
            "--v=1".to_owned(),
        ];
        let scheduler_args = vec![
            format!(
                "--kubeconfig={}",
                plane.kubeconfig(&identities::SCHEDULER).display()
            ),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
            "--v=1".to_owned(),
        ];
        // Held until the node is Ready: see [`kubelet_start_lock`].
        let _start = kubelet_start_lock().await?;
        let kubelet = ManagedProcess::spawn(
            "kubelet",
            &bin_dir.join("kubelet"),
            &kubelet_args,
            &dir.join("kubelet.log"),
        )?;
        self.processes.push(kubelet);
        let controller_manager = ManagedProcess::spawn(
            "kube-controller-manager",
            &bin_dir.join("kube-controller-manager"),
            &controller_manager_args,
            &dir.join("kube-controller-manager.log"),
        )?;
        self.processes.push(controller_manager);
        let scheduler = ManagedProcess::spawn(
            "kube-scheduler",
            &bin_dir.join("kube-scheduler"),
            &scheduler_args,
            &dir.join("kube-scheduler.log"),
        )?;
        self.processes.push(scheduler);

        let client = self.plane()?.client(&identities::ADMIN).await?;
        super::apply_all(&client, &[kubelet_api_binding()]).await?;
        self.await_ready(&client, Duration::from_secs(120)).await
    }

    /// The control plane (kubeconfigs, clients, logs).
    pub fn plane(&self) -> Result<&ControlPlane> {
        self.plane
            .as_ref()
            .ok_or_else(|| Error::ControlPlane("the control plane has stopped".to_owned()))
    }

    /// The node's address: the apiserver's, and where its pods' bridge is.
    pub fn address(&self) -> Ipv4Addr {
        self.bridge.address
    }

    /// The apiserver's port (for `KUBERNETES_SERVICE_PORT` in pods).
    pub fn api_port(&self) -> Result<u16> {
        let url = self.plane()?.url();
        url.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::ControlPlane(format!("no port in {url}")))
    }

    /// The bridge's name (`agnode<N>`).
    pub fn bridge(&self) -> &str {
        &self.bridge.name
    }

    /// The node's folder (logs, kubelet's root, containerd's state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The containerd socket, for `ctr --address`.
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Imports an OCI archive into the runtime's `k8s.io` namespace, where
    /// kubelet finds images.
    pub fn import(&self, archive: &Path) -> Result<()> {
        self.ctr(&["images", "import", &archive.display().to_string()])
            .map(drop)
    }

    /// Gives an imported image a second name (say, a new tag for an upgrade).
    pub fn tag(&self, from: &str, to: &str) -> Result<()> {
        self.ctr(&["images", "tag", "--force", from, to]).map(drop)
    }

    /// Runs `ctr` against this node's containerd in the `k8s.io` namespace.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        let socket = self.containerd_socket().display().to_string();
        let mut all = vec!["--address", socket.as_str(), "--namespace", "k8s.io"];
        all.extend_from_slice(args);
        run("ctr", &all)
    }

    fn write_runtime_config(&self) -> Result<()> {
        let dir = &self.dir;
        let cni = dir.join("cni");
        std::fs::create_dir_all(&cni)
            .map_err(|e| Error::io(format!("creating {}", cni.display()), e))?;
        write(
            &cni.join("10-approval-gate.conflist"),
            &cni_config(&self.bridge, dir),
        )?;
        write(&dir.join("containerd.toml"), &containerd_config(dir))
    }

    async fn await_containerd(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if self.ctr(&["version"]).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.containerd.as_mut().and_then(ManagedProcess::exited) {
                return Err(Error::ControlPlane(format!(
                    "containerd exited ({status}); last log lines:\n{}",
                    tail(&self.dir.join("containerd.log"), 30)
                )));
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: "containerd to answer".to_owned(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn await_ready(&mut self, client: &kube::Client, timeout: Duration) -> Result<()> {
        let nodes = Api::<Node>::all(client.clone());
        let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
        let started = Instant::now();
        loop {
            for process in &mut self.processes {
                if let Some(status) = process.exited() {
                    let name = process.name().to_owned();
                    return Err(Error::ControlPlane(format!(
                        "{name} exited ({status}); last log lines:\n{}",
                        tail(&self.dir.join(format!("{name}.log")), 30)
                    )));
                }
            }
            let ready = nodes.get_opt(NODE_NAME).await?.is_some_and(|node| {
                node.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready && accounts.get_opt("default").await?.is_some() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!(
                        "node {NODE_NAME} to be Ready; last kubelet log lines:\n{}",
                        tail(&self.dir.join("kubelet.log"), 20)
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `helm install` of `chart` as release [`RELEASE`] in its namespace of
    /// the same name, as a user of a cluster without kube-proxy would: the
    /// pods are told where the API is, and the webhook accepts only the
    /// apiserver's client certificate. Waits until the release is ready.
    pub async fn helm_install(&self, chart: &Path, extra: &[&str]) -> Result<()> {
        let plane = self.plane()?;
        let client = plane.client(&identities::ADMIN).await?;
        let ca_file = self.dir.join(super::WEBHOOK_CLIENT_CA);
        let ca = std::fs::read_to_string(&ca_file)
            .map_err(|e| Error::io(format!("reading {}", ca_file.display()), e))?;
        let client_ca = ConfigMap {
            metadata: ObjectMeta {
                name: Some(CLIENT_CA_CONFIG_MAP.to_owned()),
                namespace: Some(RELEASE.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some([("ca.crt".to_owned(), ca)].into()),
            ..ConfigMap::default()
        };
        super::apply_all(&client, &[super::namespace(RELEASE)]).await?;
        super::apply_namespaced(&client, &[client_ca]).await?;
        let chart = chart.display().to_string();
        let host = format!("apiServer.host={}", self.address());
        let port = format!("apiServer.port={}", self.api_port()?);
        let ca = format!("webhook.clientAuth.caConfigMap={CLIENT_CA_CONFIG_MAP}");
        let mut args = vec![
            "install",
            RELEASE,
            &chart,
            "--namespace",
            RELEASE,
            "--set",
            &host,
            "--set",
            &port,
            "--set",
            &ca,
            "--wait",
            "--timeout",
            "180s",
        ];
        args.extend_from_slice(extra);
        self.helm(&args).map(drop)
    }

    /// Runs the pinned helm as the admin, with its caches in the node's folder.
    pub fn helm(&self, args: &[&str]) -> Result<String> {
        let plane = self.plane()?;
        let admin = plane.kubeconfig(&identities::ADMIN);
        let out = Command::new(plane.bin_dir().join("helm"))
            .arg("--kubeconfig")
            .arg(&admin)
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", self.dir.join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.join("helm-data"))
            .output()
            .map_err(|e| Error::io("running helm", e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::ControlPlane(format!(
                "helm {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    /// Runs the demo's shell pod `name` in `ns` (as the admin; the namespace
    /// must exist) and waits until it is Ready.
    pub async fn run_shell_pod(&self, ns: &str, name: &str) -> Result<()> {
        let client = self.plane()?.client(&identities::ADMIN).await?;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [{
                    "name": "shell",
                    "image": SHELL_IMAGE,
                    "imagePullPolicy": "Never",
                }],
            },
        }))?;
        super::apply_namespaced(&client, &[pod]).await?;
        let pods = Api::<Pod>::namespaced(client, ns);
        let ready = await_condition(pods, name, |pod: Option<&Pod>| {
            pod.is_some_and(pod_is_ready)
        });
        let timeout = Duration::from_secs(90);
        tokio::time::timeout(timeout, ready)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("pod {ns}/{name} to be Ready"),
                after: timeout,
            })?
            .map_err(|e| Error::ControlPlane(format!("watching pod {ns}/{name}: {e}")))?;
        Ok(())
    }

    /// Stops everything and removes what it leaves (dropping does the same).
    pub fn stop(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        let Some(plane) = self.plane.take() else {
            return;
        };
        // 1. No controller recreates what goes next.
        let mut kubelet = None;
        for mut process in self.processes.drain(..) {
            if process.name() == "kubelet" {
                kubelet = Some(process);
            } else {
                process.stop(Duration::from_secs(10));
            }
        }
        // 2. kubelet stops every pod: containers, sandboxes and their network
        //    namespaces. Webhooks go first, so none holds a deletion.
        let admin = plane.kubeconfig(&identities::ADMIN).display().to_string();
        let kubectl = |args: &[&str]| {
            let mut all = vec!["--kubeconfig", admin.as_str(), "--request-timeout=10s"];
            all.extend_from_slice(args);
            run("kubectl", &all)
        };
        let _ = kubectl(&[
            "delete",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
            "--all",
            "--wait=false",
        ]);
        let _ = kubectl(&[
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--grace-period=0",
            "--force",
            "--wait=false",
        ]);
        if kubelet.is_some() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !self.runtime_is_empty() {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        if let Some(mut kubelet) = kubelet {
            kubelet.stop(Duration::from_secs(10));
        }
        // 3. Whatever is left, by force, then the runtime itself.
        self.remove_containers();
        if let Some(mut containerd) = self.containerd.take() {
            containerd.stop(Duration::from_secs(10));
        }
        // Mounts go before the control plane's folder is removed with it.
        sweep(&self.dir, &self.bridge);
        drop(plane);
    }

    /// Whether the runtime runs no task (container or sandbox) any more.
    fn runtime_is_empty(&self) -> bool {
        self.ctr(&["tasks", "list", "--quiet"])
            .is_ok_and(|out| out.trim().is_empty())
    }

    fn remove_containers(&self) {
        let Ok(out) = self.ctr(&["containers", "list", "--quiet"]) else {
            return;
        };
        for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
            let _ = self.ctr(&["tasks", "delete", "--force", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Whether the pod's `Ready` condition is true.
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What a node run leaves behind once its processes are stopped, removed:
/// runc containers, shims, mounts under `dir` (the pods' network namespaces
/// among them), and the bridge. Also used for the folders
/// of runs whose owner died without tearing down.
pub(super) fn sweep(dir: &Path, bridge: &Bridge) {
    let runc_root = dir.join("runc/k8s.io").display().to_string();
    let runc = |args: &[&str]| {
        let mut all = vec!["--root", runc_root.as_str()];
        all.extend_from_slice(args);
        run("runc", &all)
    };
    if let Ok(out) = runc(&["list", "--quiet"]) {
        for id in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = runc(&["delete", "--force", id]);
        }
    }
    super::process::kill_processes_mentioning(dir);
    unmount_under(dir);
    bridge.delete();
}

/// Every mount point at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mounts_of_type_under(dir, None)
}

/// The pods' network namespaces: the runtime mounts them under its state
/// folder (`netns_mounts_under_state_dir`), so every one this node made is
/// under `dir`, and no other run's is.
pub fn namespaces_under(dir: &Path) -> Vec<PathBuf> {
    mounts_of_type_under(dir, Some("nsfs"))
}

fn mounts_of_type_under(dir: &Path, fs_type: Option<&str>) -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = mounts
        .lines()
        .filter(|line| {
            // After the optional fields, " - " then the filesystem type.
            let kind = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
            fs_type.is_none_or(|wanted| kind == Some(wanted))
        })
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unmount_under(dir: &Path) {
    // A point can be mounted more than once (kubelet bind-mounts its root dir
    // onto itself); repeat until nothing is left or nothing changes. The
    // pods' network namespaces are among them: unmounted, and with no
    // process left in them, they are gone.
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for point in mounts {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The node's own bridge and the /24 on it.
#[derive(Debug)]
pub struct Bridge {
    pub name: String,
    pub address: Ipv4Addr,
}

impl Bridge {
    /// Creates the first free `agnode<N>` (from a random start), with
    /// `10.213.<N>.1/24` on it. Creating the link is what reserves N.
    fn allocate() -> Result<Self> {
        let start: u8 = rand::random();
        for step in 0..=u8::MAX {
            let n = start.wrapping_add(step);
            if n == 0 || n == u8::MAX {
                continue;
            }
            let name = format!("{BRIDGE_PREFIX}{n}");
            if run("ip", &["link", "add", &name, "type", "bridge"]).is_err() {
                continue;
            }
            let bridge = Self {
                name,
                address: Ipv4Addr::new(10, 213, n, 1),
            };
            let cidr = format!("{}/24", bridge.address);
            run("ip", &["addr", "add", &cidr, "dev", &bridge.name])?;
            run("ip", &["link", "set", &bridge.name, "up"])?;
            return Ok(bridge);
        }
        Err(Error::ControlPlane(
            "no free bridge name agnode1..agnode254".to_owned(),
        ))
    }

    /// The bridge of a node folder whose owner died (its `node.bridge` file).
    pub(super) fn recorded_in(dir: &Path) -> Option<Self> {
        let name = std::fs::read_to_string(dir.join("node.bridge")).ok()?;
        let n: u8 = name.trim().strip_prefix(BRIDGE_PREFIX)?.parse().ok()?;
        Some(Self {
            name: name.trim().to_owned(),
            address: Ipv4Addr::new(10, 213, n, 1),
        })
    }

    /// Whether the link still exists.
    pub fn exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.name).exists()
    }

    fn delete(&self) {
        if self.exists() {
            let _ = run("ip", &["link", "delete", &self.name]);
        }
    }
}

/// Flags the apiserver needs to work with a node: certificates for talking
/// to kubelet (both ways verified), endpoint routing for webhooks, the Node
/// authorizer and its admission plugin, and the `kubernetes` Service's
/// endpoints. Writes the certificates into `dir`.
pub(super) fn apiserver_args(dir: &Path, address: Ipv4Addr) -> Result<Vec<String>> {
    let client = certs::ServingCerts::client(KUBELET_CLIENT)?;
    write(&dir.join("kubelet-client-ca.crt"), &client.ca_pem)?;
    write(&dir.join("kubelet-client.crt"), &client.cert_pem)?;
    write(&dir.join("kubelet-client.key"), &client.key_pem)?;
    let serving = certs::ServingCerts::generate(NODE_NAME, &[&address.to_string(), NODE_NAME])?;
    write(&dir.join("kubelet-ca.crt"), &serving.ca_pem)?;
    write(&dir.join("kubelet.crt"), &serving.cert_pem)?;
    write(&dir.join("kubelet.key"), &serving.key_pem)?;
    let file = |name: &str| dir.join(name).display().to_string();
    Ok(vec![
        "--authorization-mode=Node,RBAC".to_owned(),
        "--enable-admission-plugins=NodeRestriction".to_owned(),
        "--endpoint-reconciler-type=lease".to_owned(),
        "--enable-aggregator-routing=true".to_owned(),
        "--kubelet-preferred-address-types=InternalIP".to_owned(),
        format!(
            "--kubelet-client-certificate={}",
            file("kubelet-client.crt")
        ),
        format!("--kubelet-client-key={}", file("kubelet-client.key")),
        format!("--kubelet-certificate-authority={}", file("kubelet-ca.crt")),
    ])
}

/// Lets the apiserver's kubelet client use kubelet's API (logs, exec), as
/// kubeadm binds it.
fn kubelet_api_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some("approval-gate-dev:kubelet-api-admin".to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: "system:kubelet-api-admin".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "User".to_owned(),
            name: KUBELET_CLIENT.to_owned(),
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            ..Subject::default()
        }]),
    }
}

/// An exclusive lock, across processes, that one kubelet holds from its
/// start until its node is Ready. kubelet binds its device plugin socket at a
/// fixed path (`/var/lib/kubelet/device-plugins/kubelet.sock`) whatever its
/// `--root-dir`, after clearing that folder. Two kubelets starting at once can
/// both clear it before either listens, and the second one then exits with
/// "address already in use". The lock is released when the file closes, so a
/// run that dies cannot hold it.
async fn kubelet_start_lock() -> Result<std::fs::File> {
    let path = std::env::temp_dir().join("approval-gate-kubelet-start.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| Error::ControlPlane(format!("waiting for {}: {e}", path.display())))?
        .map_err(|e| Error::io(format!("locking {}", path.display()), e))
}

fn kubelet_config(dir: &Path, address: Ipv4Addr, port: u16, healthz_port: u16) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {address}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {client_ca}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://{socket}
podLogsDirectory: {logs}
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
",
        cert = file("kubelet.crt"),
        key = file("kubelet.key"),
        client_ca = file("kubelet-client-ca.crt"),
        socket = file("containerd.sock"),
        logs = file("pod-logs"),
    )
}

/// containerd with every path in `dir`, runc with its state there too, and
/// the CRI settings this kind of machine needs (see the README's "Real node").
fn containerd_config(dir: &Path) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni}"
"#,
        root = file("containerd/root"),
        state = file("containerd/state"),
        socket = file("containerd.sock"),
        opt = file("containerd/opt"),
        runc = file("runc"),
        cni = file("cni"),
    )
}

/// A bridge with `host-local` addresses and no gateway: nothing is forwarded
/// or masqueraded, and the host's sysctls and firewall stay as they are.
fn cni_config(bridge: &Bridge, dir: &Path) -> String {
    let [a, b, c, _] = bridge.address.octets();
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "approval-gate",
        "plugins": [{
            "type": "bridge",
            "bridge": bridge.name,
            "isGateway": false,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": dir.join("cni-ipam").display().to_string(),
                "ranges": [[{
                    "subnet": format!("{a}.{b}.{c}.0/24"),
                    "rangeStart": format!("{a}.{b}.{c}.10"),
                    "rangeEnd": format!("{a}.{b}.{c}.250"),
                }]],
            },
        }],
    })
    .to_string()
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            Error::ControlPlane(format!(
                "{program} not found on PATH; run hack/node-deps.sh (as root) to install it"
            ))
        })
}

/// Runs a program to completion; its stdout, or its stderr as the error.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::io(format!("running {program}"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::ControlPlane(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

//! A real local control plane (etcd + kube-apiserver) for integration tests and
//! `make dev`, in the spirit of controller-runtime's envtest.
//!
//! The binaries come from `hack/build-tools.sh` (built from their Go modules) or
//! from `KUBEBUILDER_ASSETS`. Processes are stopped when the [`ControlPlane`] is
//! dropped, and by their watchdogs when the owning process dies.

pub mod certs;
pub mod console;
mod error;
pub mod identities;
mod kubeconfig;
pub mod node;
pub mod oidc;
pub mod process;
pub mod rbac;
pub mod webhook;

use std::{
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Namespace, ServiceAccount},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use rand::Rng as _;
use serde::{Serialize, de::DeserializeOwned};

pub use identities::Identity;
use process::ManagedProcess;

pub use error::{Error, Result};

/// The repository's root (this crate lives in `crates/testenv`): where the
/// chart and the scripts the harness runs are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const FIELD_MANAGER: &str = "approval-gate-testenv";
const DIR_PREFIX: &str = "approval-gate-env-";
/// approval-gate's own namespace: requests about cluster-scoped objects live here.
pub const CONTROL_NAMESPACE: &str = "approval-gate";

/// The CA of the client certificate the local apiserver presents to every
/// webhook, written beside the kubeconfigs; webhooks started here require it.
pub const WEBHOOK_CLIENT_CA: &str = "webhook-client-ca.crt";
/// The common name of that client certificate.
pub const WEBHOOK_CLIENT_NAME: &str = "kube-apiserver-webhook-client";

/// Where the binaries are and where the control plane keeps its files.
#[derive(Clone, Debug)]
pub struct Options {
    /// Holds `etcd` and `kube-apiserver`.
    pub bin_dir: PathBuf,
    /// Keep files (kubeconfigs, logs, data) here instead of a temporary directory.
    pub dir: Option<PathBuf>,
    /// Install approval-gate's CRDs and the demo RBAC once the apiserver is ready.
    pub install: bool,
    /// Serve on this address instead of loopback, for a real node whose pods
    /// and kubelet reach the apiserver there (see [`node::Cluster`]). The
    /// apiserver then also routes webhook calls to the Service's endpoints
    /// (`--enable-aggregator-routing`), authorizes kubelets with the Node
    /// authorizer, and keeps the `kubernetes` Service's endpoints.
    pub node_address: Option<Ipv4Addr>,
    /// Trust this OpenID Connect issuer's ID tokens through the apiserver's
    /// structured authentication configuration (a JWT authenticator).
    pub jwt: Option<oidc::JwtIssuer>,
}

impl Options {
    /// Binaries from `APPROVAL_GATE_BIN_DIR`, else from `KUBEBUILDER_ASSETS`.
    pub fn from_env() -> Result<Self> {
        let bin_dir = ["APPROVAL_GATE_BIN_DIR", "KUBEBUILDER_ASSETS"]
            .iter()
            .filter_map(std::env::var_os)
            .map(PathBuf::from)
            .find(|dir| dir.join("etcd").exists() && dir.join("kube-apiserver").exists())
            .ok_or_else(|| {
                Error::ControlPlane(
                    "no etcd and kube-apiserver found: set APPROVAL_GATE_BIN_DIR to the folder \
                     `hack/build-tools.sh` prints, or KUBEBUILDER_ASSETS"
                        .to_owned(),
                )
            })?;
        Ok(Self {
            bin_dir,
            dir: None,
            install: true,
            node_address: None,
            jwt: None,
        })
    }
}

/// A running etcd and kube-apiserver on loopback, with one kubeconfig per identity.
pub struct ControlPlane {
    url: String,
    dir: PathBuf,
    bin_dir: PathBuf,
    // Fields drop in order: the apiserver stops before etcd, then the files go.
    apiserver: ManagedProcess,
    etcd: ManagedProcess,
    _tmp: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until the apiserver is ready.
    pub async fn start(opts: Options) -> Result<Self> {
        approval_gate::server::tls::install_crypto_provider();
        for name in ["etcd", "kube-apiserver", "helm"] {
            if !opts.bin_dir.join(name).exists() {
                return Err(Error::MissingBinary {
                    name: name.to_owned(),
                    dir: opts.bin_dir.clone(),
                });
            }
        }
        let (tmp, dir) = prepare_dir(opts.dir.as_deref())?;
        let address = opts.node_address.unwrap_or(Ipv4Addr::LOCALHOST);
        let certs = certs::ControlPlaneCerts::generate(address)?;
        let tokens: Vec<(Identity, String)> = identities::ALL
            .iter()
            .map(|id| (id.clone(), random_token()))
            .collect();
        write(&dir.join("ca.crt"), &certs.serving.ca_pem)?;
        write(&dir.join("apiserver.crt"), &certs.serving.cert_pem)?;
        write(&dir.join("apiserver.key"), &certs.serving.key_pem)?;
        write(&dir.join("sa.key"), &certs.sa_key_pem)?;
        write(&dir.join("sa.pub"), &certs.sa_pub_pem)?;
        write(&dir.join("tokens.csv"), &identities::token_file(&tokens))?;
        write(&dir.join("audit-policy.yaml"), AUDIT_POLICY)?;
        write_webhook_client(&dir)?;
        let authentication = match &opts.jwt {
            Some(issuer) => {
                let path = dir.join("authentication-config.yaml");
                write(&path, &issuer.authentication_config()?)?;
                Some(format!("--authentication-config={}", path.display()))
            }
            None => None,
        };

        let [etcd_port, peer_port, api_port] = free_ports()?;
        let mut args = apiserver_args(&dir, etcd_port, address, api_port);
        args.extend(authentication);
        if opts.node_address.is_some() {
            args.extend(node::apiserver_args(&dir, address)?);
        } else {
            args.push("--authorization-mode=RBAC".to_owned());
            args.push("--endpoint-reconciler-type=none".to_owned());
        }
        let etcd = ManagedProcess::spawn(
            "etcd",
            &opts.bin_dir.join("etcd"),
            &etcd_args(&dir, etcd_port, peer_port),
            &dir.join("etcd.log"),
        )?;
        let apiserver = ManagedProcess::spawn(
            "kube-apiserver",
            &opts.bin_dir.join("kube-apiserver"),
            &args,
            &dir.join("kube-apiserver.log"),
        )?;
        let url = format!("https://{address}:{api_port}");
        for (id, token) in &tokens {
            let config = kubeconfig::render(&url, &certs.serving.ca_pem, id.key, token)?;
            write(&dir.join(id.kubeconfig_name()), &config)?;
        }
        let mut plane = Self {
            url,
            dir,
            bin_dir: opts.bin_dir.clone(),
            apiserver,
            etcd,
            _tmp: tmp,
        };
        plane.wait_ready(Duration::from_secs(120)).await?;
        if opts.install {
            plane.install().await?;
        }
        Ok(plane)
    }

    /// Starts kube-controller-manager running only its garbage collector, as
    /// its own identity with per-controller service-account credentials (as
    /// kubeadm runs it). It stops when the returned process drops.
    pub fn start_controller_manager(&self) -> Result<ManagedProcess> {
        let program = self.bin_dir.join("kube-controller-manager");
        if !program.exists() {
            return Err(Error::MissingBinary {
                name: "kube-controller-manager".to_owned(),
                dir: self.bin_dir.clone(),
            });
        }
        let kubeconfig = self.kubeconfig(&identities::CONTROLLER_MANAGER);
        let args = [
            format!("--kubeconfig={}", kubeconfig.display()),
            "--controllers=garbagecollector".to_owned(),
            "--use-service-account-credentials=true".to_owned(),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
            "--v=1".to_owned(),
        ];
        ManagedProcess::spawn(
            "kube-controller-manager",
            &program,
            &args,
            &self.dir.join("kube-controller-manager.log"),
        )
    }

    /// Writes a kubeconfig that authenticates with `token` (say, a
    /// ServiceAccount's, from the TokenRequest API) as `kubeconfig-<name>`
    /// in the control plane's folder, and returns its path.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> Result<PathBuf> {
        let ca_file = self.dir.join("ca.crt");
        let ca = std::fs::read_to_string(&ca_file)
            .map_err(|e| Error::io(format!("reading {}", ca_file.display()), e))?;
        let path = self.dir.join(format!("kubeconfig-{name}"));
        write(&path, &kubeconfig::render(&self.url, &ca, name, token)?)?;
        Ok(path)
    }

    /// The apiserver's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder holding kubeconfigs, logs (including `audit.log`) and data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder holding etcd, kube-apiserver and (when built) helm.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The kubeconfig for an identity; usable by kube-rs and by kubectl.
    pub fn kubeconfig(&self, id: &Identity) -> PathBuf {
        self.dir.join(id.kubeconfig_name())
    }

    /// The apiserver's audit log.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// A client acting as `id`.
    pub async fn client(&self, id: &Identity) -> Result<Client> {
        kubeconfig::client_from_file(&self.kubeconfig(id), None).await
    }

    /// A client acting as the admin, impersonating `user` with `groups`.
    pub async fn client_impersonating(&self, user: &str, groups: &[String]) -> Result<Client> {
        kubeconfig::client_from_file(&self.kubeconfig(&identities::ADMIN), Some((user, groups)))
            .await
    }

    /// Creates a fresh namespace `<prefix>-<random>` (with its `default`
    /// ServiceAccount, which kube-controller-manager would normally add).
    pub async fn create_namespace(&self, prefix: &str) -> Result<String> {
        let name = format!("{prefix}-{:06x}", rand::rng().random_range(0..0xff_ffff));
        self.create_namespace_named(&name).await?;
        Ok(name)
    }

    /// Whether a namespace exists.
    pub async fn namespace_exists(&self, name: &str) -> Result<bool> {
        let client = self.client(&identities::ADMIN).await?;
        Ok(Api::<Namespace>::all(client).get_opt(name).await?.is_some())
    }

    /// Creates the namespace `name` with its `default` ServiceAccount.
    pub async fn create_namespace_named(&self, name: &str) -> Result<()> {
        let client = self.client(&identities::ADMIN).await?;
        let name = name.to_owned();
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        // On a real node the serviceaccount controller may be first.
        match Api::<ServiceAccount>::namespaced(client, &name)
            .create(&PostParams::default(), &sa)
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            other => other.map(drop).map_err(Error::from),
        }
    }

    /// Stops the apiserver and etcd now (dropping does the same).
    pub fn stop(mut self) {
        self.apiserver.stop(Duration::from_secs(10));
        self.etcd.stop(Duration::from_secs(10));
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("not yet contacted");
        while started.elapsed() < timeout {
            for proc in [&mut self.etcd, &mut self.apiserver] {
                if let Some(status) = proc.exited() {
                    let name = proc.name().to_owned();
                    let log = tail(&self.dir.join(format!("{name}.log")), 30);
                    return Err(Error::ControlPlane(format!(
                        "{name} exited ({status}); last log lines:\n{log}"
                    )));
                }
            }
            match self.readyz().await {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(Error::Timeout {
            what: format!("kube-apiserver /readyz ({last_error})"),
            after: timeout,
        })
    }

    async fn readyz(&self) -> Result<()> {
        let client = self.client(&identities::ADMIN).await?;
        let req = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Error::ControlPlane(e.to_string()))?;
        let body = client.request_text(req).await?;
        if body.trim() == "ok" {
            Ok(())
        } else {
            Err(Error::ControlPlane(format!("/readyz said {body:?}")))
        }
    }

    /// Installs approval-gate's CRDs, the chart's RBAC and the demo RBAC, and
    /// waits for the CRDs to be established.
    pub async fn install(&self) -> Result<()> {
        let client = self.client(&identities::ADMIN).await?;
        apply_all(&client, &[namespace(CONTROL_NAMESPACE)]).await?;
        let chart = rbac::chart_rbac(&self.bin_dir.join("helm"))?;
        apply_all(&client, &chart.cluster_roles).await?;
        apply_all(&client, &chart.cluster_role_bindings).await?;
        apply_namespaced(&client, &chart.service_accounts).await?;
        apply_namespaced(&client, &chart.roles).await?;
        apply_namespaced(&client, &chart.role_bindings).await?;
        self.install_dev_rbac().await?;
        install_crds(&client, &approval_gate::crd::all()).await
    }

    /// Installs the demo RBAC only: who may request, approve and change
    /// workloads (the chart's user roles are bound to the demo identities).
    pub async fn install_dev_rbac(&self) -> Result<()> {
        let client = self.client(&identities::ADMIN).await?;
        let (roles, bindings) = rbac::dev_rbac();
        apply_all(&client, &roles).await?;
        apply_all(&client, &bindings).await
    }
}

/// Applies CRDs and waits until each is established.
pub async fn install_crds(client: &Client, crds: &[CustomResourceDefinition]) -> Result<()> {
    apply_all(client, crds).await?;
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in crds {
        let name = crd.name_any();
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("CRD {name} to be established"),
                after: Duration::from_secs(30),
            })?
            .map_err(|e| Error::ControlPlane(format!("watching CRD {name}: {e}")))?;
    }
    Ok(())
}

/// Server-side applies cluster-scoped objects.
async fn apply_all<K>(client: &Client, objects: &[K]) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = Api::<K>::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for obj in objects {
        api.patch(&obj.name_any(), &params, &Patch::Apply(obj))
            .await?;
    }
    Ok(())
}

/// Server-side applies namespaced objects into the namespace each names.
async fn apply_namespaced<K>(client: &Client, objects: &[K]) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for obj in objects {
        let namespace = obj
            .namespace()
            .unwrap_or_else(|| CONTROL_NAMESPACE.to_owned());
        Api::<K>::namespaced(client.clone(), &namespace)
            .patch(&obj.name_any(), &params, &Patch::Apply(obj))
            .await?;
    }
    Ok(())
}

fn etcd_args(dir: &Path, port: u16, peer: u16) -> Vec<String> {
    let data = dir.join("etcd-data");
    vec![
        format!("--data-dir={}", data.display()),
        "--name=approval-gate-dev".to_owned(),
        format!("--listen-client-urls=http://127.0.0.1:{port}"),
        format!("--advertise-client-urls=http://127.0.0.1:{port}"),
        format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
        format!("--initial-cluster=approval-gate-dev=http://127.0.0.1:{peer}"),
        "--unsafe-no-fsync=true".to_owned(),
        "--log-level=warn".to_owned(),
    ]
}

fn apiserver_args(dir: &Path, etcd_port: u16, address: Ipv4Addr, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--secure-port={port}"),
        format!("--bind-address={address}"),
        format!("--advertise-address={address}"),
        format!("--cert-dir={}", file("apiserver-certs")),
        format!("--tls-cert-file={}", file("apiserver.crt")),
        format!("--tls-private-key-file={}", file("apiserver.key")),
        format!("--token-auth-file={}", file("tokens.csv")),
        "--service-cluster-ip-range=10.96.0.0/16".to_owned(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!("--service-account-key-file={}", file("sa.pub")),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        format!(
            "--admission-control-config-file={}",
            file("admission-config.yaml")
        ),
        format!("--audit-policy-file={}", file("audit-policy.yaml")),
        format!("--audit-log-path={}", file("audit.log")),
        "--audit-log-mode=blocking".to_owned(),
        "--allow-privileged=true".to_owned(),
        "--profiling=false".to_owned(),
        "--v=1".to_owned(),
    ]
}

/// The apiserver authenticates itself to webhooks with a client certificate,
/// as the documented AdmissionConfiguration `kubeConfigFile` lets it, so every
/// admission call in tests and `make dev` is an authenticated one.
fn write_webhook_client(dir: &Path) -> Result<()> {
    let client = certs::ServingCerts::client(WEBHOOK_CLIENT_NAME)?;
    let (cert, key) = (
        dir.join("webhook-client.crt"),
        dir.join("webhook-client.key"),
    );
    write(&dir.join(WEBHOOK_CLIENT_CA), &client.ca_pem)?;
    write(&cert, &client.cert_pem)?;
    write(&key, &client.key_pem)?;
    let kubeconfig = dir.join("admission-kubeconfig.yaml");
    write(
        &kubeconfig,
        &format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: '*'\n  user:\n    \
             client-certificate: {}\n    client-key: {}\n",
            cert.display(),
            key.display()
        ),
    )?;
    let plugin = |name: &str| {
        format!(
            "- name: {name}\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    \
             kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n",
            kubeconfig.display()
        )
    };
    write(
        &dir.join("admission-config.yaml"),
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n{}{}",
            plugin("ValidatingAdmissionWebhook"),
            plugin("MutatingAdmissionWebhook")
        ),
    )
}

/// Metadata-level audit for everything: enough to see users, impersonators
/// and the admission webhooks' audit annotations.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: [/readyz, /livez, /healthz]
- level: Metadata
";

fn prepare_dir(dir: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    if let Some(dir) = dir {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| Error::io(format!("clearing {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        return Ok((None, dir.to_owned()));
    }
    let tmp = scratch_dir()?;
    let path = tmp.path().to_owned();
    Ok((Some(tmp), path))
}

/// Removes what runs whose owner died left behind: their folders, and for a
/// real node its containers, mounts, network namespaces and bridge.
/// Every start does this too.
pub fn sweep_stale() {
    remove_stale_dirs();
}

/// Removes temporary directories whose owning process is gone: a test binary
/// that exits never drops its shared control plane, so its files stay behind.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        let owner = std::fs::read_to_string(path.join("owner.pid")).ok();
        let alive = owner
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if is_ours && !alive {
            if let Some(bridge) = node::Bridge::recorded_in(&path) {
                node::sweep(&path, &bridge);
            }
            process::kill_processes_mentioning(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A temporary folder of this run that a later run removes once this
/// process is gone (with whatever still runs from it), for files that a
/// test binary's shared fixtures keep until it exits.
pub fn scratch_dir() -> Result<tempfile::TempDir> {
    remove_stale_dirs();
    let tmp = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))?;
    write(
        &tmp.path().join("owner.pid"),
        &std::process::id().to_string(),
    )?;
    Ok(tmp)
}

pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N]> {
    // Hold every listener until all ports are chosen so none repeats.
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("finding a free port", e)))
        .collect::<Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|e| Error::io("finding a free port", e))?
            .port();
    }
    Ok(ports)
}

pub(crate) fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// A namespace object named `name`, to apply.
fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

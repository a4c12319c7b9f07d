//! Shared support for the integration tests: one real control plane per test
//! binary, named identities, and the real `kubectl`.
#![allow(dead_code, unused_imports)]

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use approval_gate_testenv::{ControlPlane, Identity, Options};

pub mod golden;
pub mod helm;
pub mod proxy;
pub mod receiver;
pub mod webhook;

pub use approval_gate_testenv::identities::{ADMIN, ALICE, BOB, CAROL, CONTROLLER, DAVE, GITOPS};

static PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// An OpenID Connect issuer the control plane trusts, when a test binary sets
/// it before its first use of [`plane`] (the console's tests do).
pub static JWT: OnceLock<approval_gate_testenv::oidc::JwtIssuer> = OnceLock::new();

/// The control plane shared by every test in this binary, started on first use.
///
/// It is started on a thread with a runtime of its own, so that it does not
/// depend on any one test's runtime. Its processes end with the test binary.
pub fn plane() -> &'static ControlPlane {
    PLANE.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to start the control plane");
            runtime
                .block_on(ControlPlane::start(options()))
                .unwrap_or_else(|e| panic!("starting the local control plane: {e}"))
        })
        .join()
        .expect("the control plane thread")
    })
}

/// Binaries from the environment, or built (or found in the cache) by hack/build-tools.sh.
pub fn options() -> Options {
    if let Ok(mut opts) = Options::from_env() {
        opts.jwt = JWT.get().cloned();
        return opts;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/build-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("running hack/build-tools.sh");
    assert!(out.status.success(), "hack/build-tools.sh failed");
    let bin_dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Options {
        bin_dir: bin_dir.into(),
        dir: None,
        install: true,
        node_address: None,
        jwt: JWT.get().cloned(),
    }
}

/// A client acting as `id`.
pub async fn client(id: &Identity) -> kube::Client {
    plane().client(id).await.expect("a client for the identity")
}

/// A fresh namespace for one test.
pub async fn namespace(prefix: &str) -> String {
    plane()
        .create_namespace(prefix)
        .await
        .expect("creating a test namespace")
}

/// The real `kubectl`, run as `id`.
pub fn kubectl(id: &Identity) -> Kubectl {
    kubectl_with(&plane().kubeconfig(id))
}

/// The real `kubectl` with the given kubeconfig.
pub fn kubectl_with(kubeconfig: &std::path::Path) -> Kubectl {
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .env_remove("KUBECTL_EXTERNAL_DIFF");
    Kubectl { cmd, stdin: None }
}

pub struct Kubectl {
    cmd: Command,
    stdin: Option<String>,
}

impl Kubectl {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Feeds `text` on stdin (for `-f -`).
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn run(mut self) -> KubectlOutput {
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("kubectl is installed");
        if let Some(text) = self.stdin.take() {
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(text.as_bytes())
                .expect("writing kubectl's stdin");
        }
        KubectlOutput(child.wait_with_output().expect("waiting for kubectl"))
    }
}

pub struct KubectlOutput(pub Output);

impl KubectlOutput {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn success(&self) -> bool {
        self.0.status.success()
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert!(self.success(), "kubectl failed:\n{}", self.stderr());
        self.stdout()
    }

    /// Asserts failure and returns stderr.
    pub fn fails(self) -> String {
        assert!(
            !self.success(),
            "kubectl should have failed, printed:\n{}",
            self.stdout()
        );
        self.stderr()
    }
}
pub mod operator;

/// A well-formed content digest for hand-made requests.
pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// alice asks to UPDATE deployments.apps/checkout in `ns` (tests override
/// the reason, policy or digest with struct update syntax).
pub fn checkout_update(ns: &str) -> approval_gate::crd::ApprovalRequestSpec {
    use approval_gate::crd::{ApprovalRequestSpec, Operation, Target};
    ApprovalRequestSpec {
        requester: "alice".into(),
        operation: Operation::Update,
        target: Target {
            api_group: "apps".into(),
            resource: "deployments".into(),
            subresource: None,
            namespace: ns.into(),
            name: "checkout".into(),
        },
        digest: Some(DIGEST.into()),
        reason: "INC-123 roll back checkout".into(),
        policy: "prod-deployments".into(),
        change: None,
        previous: None,
    }
}

/// The request a denial names: "ApprovalRequest <ns>/<name> ...".
pub fn request_name(message: &str, ns: &str) -> String {
    let marker = format!("ApprovalRequest {ns}/");
    let start = message
        .find(&marker)
        .unwrap_or_else(|| panic!("no request named in: {message}"))
        + marker.len();
    message[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Creates the cluster-wide ApprovalPolicy `name` from YAML for its `spec`, as the admin.
pub async fn create_policy(name: &str, spec: &str) {
    use approval_gate::crd::ApprovalPolicy;
    let policy = ApprovalPolicy::new(name, serde_yaml_ng::from_str(spec).unwrap());
    kube::Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .create(&kube::api::PostParams::default(), &policy)
        .await
        .unwrap();
}

/// Creates a cluster-wide ApprovalPolicy `<ns>-policy` from YAML for its
/// `spec`, and waits until the shared webhook holds it.
pub async fn install_policy(ns: &str, spec: &str) -> String {
    let name = format!("{ns}-policy");
    create_policy(&name, spec).await;
    webhook::webhook();
    webhook::await_policy(&name).await;
    name
}

/// A one-container Deployment manifest.
pub fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  \
         replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      \
         labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

/// `live` with its first container's image set to `image`: the object an
/// apply of [`deployment`] at that image writes.
pub fn with_image(
    live: &k8s_openapi::api::apps::v1::Deployment,
    image: &str,
) -> k8s_openapi::api::apps::v1::Deployment {
    let mut desired = live.clone();
    let pod = desired.spec.as_mut().and_then(|s| s.template.spec.as_mut());
    let container = pod.and_then(|p| p.containers.first_mut());
    container.expect("a container").image = Some(image.into());
    desired
}

/// Waits until `id`'s server dry run of `manifest` is allowed: the webhook's
/// cache has seen the approval. A dry run neither uses an approval nor makes
/// a request, so a retry after it tests the approval, not the cache's lag.
pub async fn await_allowed(id: &Identity, manifest: &str) {
    for _ in 0..100 {
        let probe = kubectl(id)
            .args(["apply", "--dry-run=server", "-f", "-"])
            .stdin(manifest)
            .run();
        if probe.success() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{}'s change never became allowed:\n{manifest}", id.username);
}

/// `kubectl apply -f -` of `manifest` as `id`.
pub fn apply(id: &Identity, manifest: &str) -> KubectlOutput {
    kubectl(id).args(["apply", "-f", "-"]).stdin(manifest).run()
}

/// `kubectl approve` as `id`: the real kubectl, with the freshly built plugin
/// first on PATH, without colour.
pub fn plugin(id: &Identity) -> Command {
    plugin_with(&plane().kubeconfig(id))
}

/// `kubectl approve` with the given kubeconfig (see [`plugin`]).
pub fn plugin_with(kubeconfig: &std::path::Path) -> Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-approve"));
    let dir = bin.parent().expect("the plugin's folder");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", kubeconfig)
        .env("PATH", std::env::join_paths(paths).expect("a PATH"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .stdin(Stdio::null())
        .arg("approve");
    cmd
}

/// `kubectl approve ARGS` as `id`: asserts success and returns stdout.
pub fn plugin_ok(id: &Identity, args: &[&str]) -> String {
    let out = plugin(id).args(args).output().expect("kubectl runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "kubectl approve {args:?} as {} failed ({:?}):\n{}{}",
        id.username,
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The client certificate the local apiserver presents to webhooks, for a
/// test that calls a webhook directly as the apiserver would.
pub fn apiserver_identity() -> reqwest::Identity {
    let read = |name: &str| std::fs::read_to_string(plane().dir().join(name)).expect(name);
    let pem = format!(
        "{}{}",
        read("webhook-client.crt"),
        read("webhook-client.key")
    );
    reqwest::Identity::from_pem(pem.as_bytes()).expect("the apiserver's client identity")
}

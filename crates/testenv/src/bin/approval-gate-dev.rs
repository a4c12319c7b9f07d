//! `approval-gate-dev`: runs a local control plane for development (`make dev`).
//!
//! Starts etcd and kube-apiserver, installs approval-gate's CRDs and demo RBAC,
//! writes `<dir>/kubeconfig` plus one kubeconfig per demo identity, prints what
//! to try, and stays in the foreground until Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use approval_gate::{
    crd::{ApprovalPolicy, ApprovalPolicySpec},
    registration::CONFIGURATION_NAME,
};
use approval_gate_testenv::{
    ControlPlane, Options,
    console::{ConsolePlan, LocalConsole},
    identities,
    node::{Cluster, ClusterOptions},
    oidc::{self, CONSOLE_CLIENT_ID, DEMO_USERS, IdentityProvider},
    webhook::LocalWebhook,
};
use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use tokio::signal::unix::{SignalKind, signal};

/// Run approval-gate's local development control plane.
#[derive(Debug, Parser)]
#[command(name = "approval-gate-dev", version)]
struct Args {
    /// Where to write kubeconfigs, logs and data (wiped at start).
    #[arg(long, default_value = ".dev")]
    dir: PathBuf,
    /// Folder holding etcd and kube-apiserver (what `hack/build-tools.sh` prints).
    #[arg(long, env = "APPROVAL_GATE_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Run a real node too (containerd, kubelet, scheduler, all controllers)
    /// and `helm install` the chart onto it from the images in `--images`
    /// (`make dev-cluster`; needs root and `make image-oci`).
    #[arg(long)]
    cluster: bool,
    /// Where `make image-oci` wrote the OCI archives (with `--cluster`).
    #[arg(long, default_value = "target/oci")]
    images: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    approval_gate::server::tls::install_crypto_provider();
    let args = Args::parse();
    let mut opts = match args.bin_dir {
        Some(bin_dir) => Options {
            bin_dir,
            dir: None,
            install: true,
            node_address: None,
            jwt: None,
        },
        None => Options::from_env()?,
    };
    let dir = std::path::absolute(&args.dir).context("resolving --dir")?;
    opts.dir = Some(dir.join("run"));
    if args.cluster {
        return run_cluster(opts, &dir, &args.images).await;
    }
    let identity = start_identity_provider(&dir).await?;
    opts.jwt = identity
        .as_ref()
        .map(|(_, provider)| provider.jwt_issuer(CONSOLE_CLIENT_ID));
    let plane = ControlPlane::start(opts)
        .await
        .context("starting the control plane")?;
    // Garbage collection, so that `helm uninstall` in the dev cluster cleans up
    // as it would in a real one.
    let controller_manager = plane
        .start_controller_manager()
        .context("starting kube-controller-manager")?;
    let console_url = identity.as_ref().map(|(plan, _)| plan.url());
    let webhook = start_webhook(&plane, console_url.as_deref()).await?;
    let console = match &identity {
        Some((plan, provider)) => Some(start_console(&plane, &dir, plan, provider).await?),
        None => None,
    };
    link_kubeconfigs(&plane, &dir)?;
    print_banner(&plane, &dir);
    if let Some(console) = &console {
        print_console(console, &dir);
    }
    std::fs::write(dir.join("ready"), plane.url()).context("writing the ready marker")?;

    until_stopped().await?;
    eprintln!("stopping the control plane...");
    let _ = std::fs::remove_file(dir.join("ready"));
    drop(console);
    drop(identity);
    drop(webhook);
    drop(controller_manager);
    plane.stop();
    Ok(())
}

/// The local OpenID Connect provider for the web console, when Node.js and
/// the provider are installed (`make oidc-provider`); without, `make dev`
/// runs with no console and says why.
async fn start_identity_provider(
    dir: &std::path::Path,
) -> anyhow::Result<Option<(ConsolePlan, IdentityProvider)>> {
    if let Err(e) = oidc::provider_dir() {
        eprintln!("no web console: {e}");
        return Ok(None);
    }
    let files = dir.join("oidc");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).context("creating the identity provider's folder")?;
    let plan = ConsolePlan::new()?;
    let provider = IdentityProvider::start(&files, std::slice::from_ref(&plan.client))
        .await
        .context("starting the local identity provider")?;
    Ok(Some((plan, provider)))
}

/// `approval-gate console` as its own read-only service account.
async fn start_console(
    plane: &ControlPlane,
    dir: &std::path::Path,
    plan: &ConsolePlan,
    provider: &IdentityProvider,
) -> anyhow::Result<LocalConsole> {
    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("approval-gate"))
        .context("locating the approval-gate binary")?;
    let files = dir.join("console");
    let _ = std::fs::remove_dir_all(&files);
    let console = LocalConsole::start(
        &binary,
        &files,
        &plane.kubeconfig(&identities::CONSOLE),
        plan,
        provider,
        &[],
    )
    .await
    .context("starting the web console")?;
    std::fs::write(files.join("ca.crt"), &console.ca_pem).context("writing the console's CA")?;
    std::fs::write(dir.join("console-url"), &console.url).context("writing the console's URL")?;
    Ok(console)
}

fn print_console(console: &LocalConsole, dir: &std::path::Path) {
    let rel = relative_to_cwd(dir);
    println!();
    println!("Web console: {}", console.url);
    println!("  (its certificate and the identity provider's are signed by CAs made for this run:");
    println!(
        "   {} and {}; let the browser accept them)",
        rel("console/ca.crt".into()),
        rel("oidc/oidc-ca.crt".into())
    );
    println!("  Sign in through the local identity provider as:");
    for user in &DEMO_USERS {
        println!(
            "    {:<6} password {:<16} groups {}",
            user.name,
            user.password,
            if user.groups.is_empty() {
                "none".to_owned()
            } else {
                user.groups.join(", ")
            }
        );
    }
    println!(
        "  bob and dave see alice's held change under \"Waiting for me\" and approve it there."
    );
}

async fn until_stopped() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    Ok(())
}

/// `make dev-cluster`: the control plane with a real node, approval-gate
/// installed by `helm install` from the local image, the demo policy, and a
/// shell pod in `prod` to `kubectl exec` into.
async fn run_cluster(
    mut opts: Options,
    dir: &std::path::Path,
    images: &std::path::Path,
) -> anyhow::Result<()> {
    opts.install = false;
    let images = ["pause", "approval-gate", "shell"]
        .iter()
        .map(|name| images.join(format!("{name}.oci.tar")))
        .collect();
    eprintln!("starting the control plane and a real node...");
    let cluster = Cluster::start(ClusterOptions {
        control: opts,
        images,
    })
    .await
    .context("starting the real node")?;
    let plane = cluster.plane()?;
    eprintln!("helm install approval-gate (two replicas, from the local image)...");
    let chart = std::env::current_dir()?.join("charts/approval-gate");
    cluster
        .helm_install(&chart, &[])
        .await
        .context("installing the chart")?;
    plane.install_dev_rbac().await?;
    install_demo_policy(plane).await?;
    cluster.run_shell_pod("prod", "shell").await?;
    let admin = plane.client(&identities::ADMIN).await?;
    wait_registered(&admin, CLUSTER_CONFIGURATION).await?;
    link_kubeconfigs(plane, dir)?;
    print_identities(plane, dir);
    print_cluster_walkthrough(dir);
    std::fs::write(dir.join("ready"), plane.url()).context("writing the ready marker")?;
    until_stopped().await?;
    eprintln!("stopping the node and the control plane...");
    let _ = std::fs::remove_file(dir.join("ready"));
    cluster.stop();
    Ok(())
}

/// The webhook configuration the chart's release registers.
const CLUSTER_CONFIGURATION: &str = "approval-gate";

fn print_cluster_walkthrough(dir: &std::path::Path) {
    let rel = relative_to_cwd(dir);
    let alice = rel("kubeconfig-alice".into());
    let bob = rel("kubeconfig-bob".into());
    println!("approval-gate runs as two pods on a real node (helm release approval-gate).");
    println!("ApprovalPolicy demo-prod holds kubectl exec (and every other way into a pod),");
    println!(
        "changes to Deployments and deleting the namespace in `prod` until group sre approves."
    );
    println!();
    println!("Try:");
    println!("  export KUBECONFIG={}", rel("kubeconfig".into()));
    println!("  kubectl get nodes,pods -A -o wide");
    println!(
        "  kubectl --kubeconfig {alice} -n prod exec shell -- id        # held: names the request (NAME)"
    );
    println!(
        "  export PATH=\"$PWD/target/debug:$PATH\"                 # puts `kubectl approve` on PATH"
    );
    println!(
        "  kubectl approve describe NAME -n prod --kubeconfig {bob}   # bob sees the command line"
    );
    println!("  kubectl approve NAME -n prod --kubeconfig {bob}            # bob approves");
    println!(
        "  kubectl --kubeconfig {alice} -n prod exec shell -- id        # runs in the pod, once"
    );
    println!();
    println!(
        "Logs: {} (kubelet.log, containerd.log, ...)   Press Ctrl-C to stop.",
        rel("run".into())
    );
}

/// The demo policy: changes to Deployments (scaling included), `kubectl exec`
/// and every other way into a pod (attach, port-forward, proxy, debug), and
/// deleting the namespace `prod` need an approval from the `sre` group. It
/// leaves no coverage gap.
const DEMO_POLICY: &str = "
rules:
- {apiGroups: [apps], resources: [deployments, deployments/scale], operations: [UPDATE, DELETE], namespaces: [prod]}
- {apiGroups: [''], resources: [pods/exec, pods/attach, pods/portforward, pods/proxy], operations: [CONNECT], namespaces: [prod]}
- {apiGroups: [''], resources: [pods/ephemeralcontainers], operations: [UPDATE], namespaces: [prod]}
- {apiGroups: [''], resources: [namespaces], operations: [DELETE], names: [prod]}
approvers: {groups: [sre]}
approvalTTL: 15m
";

/// Installs the demo policy and the `prod` namespace, and runs `approval-gate
/// serve` (the binary beside this one) as approval-gate's service account,
/// under the chart's RBAC: its operator issues the certificate and registers
/// the webhook by URL, with rules derived from the policies, exactly as it
/// registers the Service in a cluster.
async fn start_webhook(
    plane: &ControlPlane,
    console_url: Option<&str>,
) -> anyhow::Result<LocalWebhook> {
    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("approval-gate"))
        .context("locating the approval-gate binary")?;
    let admin = plane.client(&identities::ADMIN).await?;
    install_demo_policy(plane).await?;
    let link = console_url.map(|url| format!("--console-url={url}"));
    let webhook = LocalWebhook::spawn_registering(
        &binary,
        &plane.dir().join("webhook"),
        &plane.kubeconfig(&identities::CONTROLLER),
        &link.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    webhook
        .wait_ready(std::time::Duration::from_secs(60))
        .await?;
    wait_registered(&admin, CONFIGURATION_NAME).await?;
    Ok(webhook)
}

/// The demo policy and the namespace `prod`.
async fn install_demo_policy(plane: &ControlPlane) -> anyhow::Result<()> {
    let admin = plane.client(&identities::ADMIN).await?;
    let spec: ApprovalPolicySpec = serde_yaml_ng::from_str(DEMO_POLICY)?;
    let policy = ApprovalPolicy::new("demo-prod", spec);
    let ssa = PatchParams::apply("approval-gate-dev").force();
    Api::<ApprovalPolicy>::all(admin)
        .patch("demo-prod", &ssa, &Patch::Apply(&policy))
        .await
        .context("installing the demo policy")?;
    if !plane.namespace_exists("prod").await? {
        plane.create_namespace_named("prod").await?;
    }
    Ok(())
}

/// Waits until the operator has registered the webhook for the demo policy.
async fn wait_registered(admin: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api = Api::<ValidatingWebhookConfiguration>::all(admin.clone());
    for _ in 0..300 {
        let registered = api.get_opt(name).await?.is_some_and(|c| {
            c.webhooks
                .unwrap_or_default()
                .first()
                .and_then(|w| w.rules.clone())
                .is_some_and(|rules| !rules.is_empty())
        });
        if registered {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "the operator did not register the webhook within 30 s; see .dev/run/webhook/webhook.log"
    )
}

fn link_kubeconfigs(plane: &ControlPlane, dir: &std::path::Path) -> anyhow::Result<()> {
    for id in &identities::ALL {
        let target = dir.join(id.kubeconfig_name());
        let _ = std::fs::remove_file(&target);
        std::fs::copy(plane.kubeconfig(id), &target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// `dir/<name>`, relative to the working directory when it is inside it.
fn relative_to_cwd(dir: &std::path::Path) -> impl Fn(String) -> String + '_ {
    move |name: String| {
        let path = dir.join(name);
        std::env::current_dir()
            .ok()
            .and_then(|cwd| {
                path.strip_prefix(cwd)
                    .ok()
                    .map(std::path::Path::to_path_buf)
            })
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn print_identities(plane: &ControlPlane, dir: &std::path::Path) {
    let rel = relative_to_cwd(dir);
    println!(
        "approval-gate local control plane is ready at {}",
        plane.url()
    );
    println!();
    println!("Identities (one kubeconfig each):");
    for id in &identities::ALL {
        println!(
            "  {:<14} {:<60} {}",
            id.key,
            rel(id.kubeconfig_name()),
            id.role
        );
    }
    println!();
}

fn print_banner(plane: &ControlPlane, dir: &std::path::Path) {
    let rel = relative_to_cwd(dir);
    print_identities(plane, dir);
    let alice = rel("kubeconfig-alice".into());
    let bob = rel("kubeconfig-bob".into());
    println!("The webhook is registered. ApprovalPolicy demo-prod holds changes to Deployments");
    println!(
        "(scaling too), kubectl exec, attach, port-forward and debug, and deleting the namespace"
    );
    println!("in `prod` until someone in group sre approves.");
    println!();
    println!("Try:");
    println!("  export KUBECONFIG={}", rel("kubeconfig".into()));
    println!("  kubectl get apol,crd");
    println!(
        "  kubectl -n prod create deployment checkout --image=nginx:1.27    # CREATE is not held"
    );
    println!(
        "  kubectl --kubeconfig {alice} -n prod set image deployment/checkout nginx=nginx:1.28"
    );
    println!("      # held: the message names the ApprovalRequest it created (NAME below)");
    println!("  kubectl --kubeconfig {alice} -n prod get apr");
    println!(
        "  export PATH=\"$PWD/target/debug:$PATH\"                     # puts `kubectl approve` on PATH"
    );
    println!("  kubectl approve list -n prod --kubeconfig {alice}");
    println!(
        "  kubectl approve describe NAME -n prod --kubeconfig {bob}     # bob sees the change as a diff"
    );
    println!("  kubectl approve NAME -n prod --kubeconfig {bob}              # bob approves");
    println!(
        "  kubectl --kubeconfig {alice} -n prod set image deployment/checkout nginx=nginx:1.28"
    );
    println!("      # passes, once");
    println!();
    println!("Logs: {}   Press Ctrl-C to stop.", rel("run".into()));
}

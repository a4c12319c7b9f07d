//! The `approval-gate` command line.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    admission::{decision::DecisionConfig, guard::GuardConfig},
    crd,
    webhook::{self, ServeOptions, WebhookConfig},
};

/// Just-in-time approval for sensitive Kubernetes changes.
#[derive(Debug, Parser)]
#[command(name = "approval-gate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the validating admission webhook.
    Webhook(WebhookArgs),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD.
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Crds { out_dir } => write_crds(out_dir),
            Command::Webhook(args) => run_webhook(args).await,
        }
    }
}

/// Flags of the webhook.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Address for the HTTPS admission endpoint (`/validate`).
    #[arg(long, default_value = "0.0.0.0:8443", env = "APPROVAL_GATE_LISTEN")]
    pub listen: SocketAddr,
    /// Address for plain-HTTP `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        default_value = "0.0.0.0:8080",
        env = "APPROVAL_GATE_METRICS_LISTEN"
    )]
    pub metrics_listen: SocketAddr,
    /// PEM certificate chain to serve; re-read when it changes on disk.
    #[arg(long, default_value = "/tls/tls.crt")]
    pub tls_cert_file: PathBuf,
    /// PEM private key to serve; re-read when it changes on disk.
    #[arg(long, default_value = "/tls/tls.key")]
    pub tls_key_file: PathBuf,
    /// Namespace for requests about cluster-scoped objects.
    #[arg(long, default_value = "approval-gate", env = "APPROVAL_GATE_NAMESPACE")]
    pub control_namespace: String,
    /// Longest time a denial waits for its pending request to be created, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub auto_request_timeout_ms: u64,
    /// approval-gate's own service account: the only identity allowed to create
    /// requests for others and to record their use.
    #[arg(
        long,
        default_value = "system:serviceaccount:approval-gate:approval-gate",
        env = "APPROVAL_GATE_SERVICE_ACCOUNT"
    )]
    pub service_account: String,
    /// Groups whose members may withdraw anyone's ApprovalRequest.
    #[arg(long = "admin-group", default_value = "system:masters")]
    pub admin_groups: Vec<String>,
    /// This replica's name in Events (defaults to the host name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
}

async fn run_webhook(args: WebhookArgs) -> anyhow::Result<()> {
    init_tracing();
    let client = kube::Client::try_default()
        .await
        .context("no usable kubeconfig or in-cluster configuration")?;
    let config = WebhookConfig {
        decision: DecisionConfig {
            control_namespace: args.control_namespace,
        },
        guard: GuardConfig {
            controller: args.service_account,
            admin_groups: args.admin_groups,
        },
        auto_request_bound: Duration::from_millis(args.auto_request_timeout_ms),
    };
    let instance = args
        .instance
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "approval-gate".to_owned());
    let opts = ServeOptions {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls_cert: args.tls_cert_file,
        tls_key: args.tls_key_file,
        instance,
    };
    webhook::serve(client, config, opts, shutdown_signal()?).await?;
    Ok(())
}

/// One shutdown signal (SIGTERM or SIGINT) for every server and controller.
fn shutdown_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    Ok(rx)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .try_init();
}

fn write_crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(dir) = out_dir else {
        print!("{}", crd::all_yaml()?);
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for def in crd::all() {
        let path = dir.join(crd::file_name(&def));
        std::fs::write(&path, crd::to_yaml(&def)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}

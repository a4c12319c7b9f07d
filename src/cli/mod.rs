//! The `approval-gate` command line.

mod registration_args;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::{
    admission::guard::GuardConfig,
    console::{self, ConsoleConfig, auth::OidcConfig},
    crd,
    metrics::Metrics,
    operator::{self, OperatorConfig},
    server::{
        probes::{self, Once},
        shutdown, tls,
    },
    webhook::{self, ClientAuth, ServeOptions, TlsSource, WebhookConfig},
};
pub use registration_args::RegistrationArgs;

/// Just-in-time approval for sensitive Kubernetes changes.
#[derive(Debug, Parser)]
#[command(name = "approval-gate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook on every replica and the operator on the elected leader.
    Serve(ServeArgs),
    /// Run the validating admission webhook only.
    Webhook(WebhookArgs),
    /// Run the operator only (with leader election).
    Operator(OperatorArgs),
    /// Serve the approvers' web inbox (sign-in through OpenID Connect).
    Console(ConsoleArgs),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD.
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Flags shared by every long-running command.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Address for plain-HTTP `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        default_value = "0.0.0.0:8080",
        env = "APPROVAL_GATE_METRICS_LISTEN"
    )]
    pub metrics_listen: SocketAddr,
    /// approval-gate's namespace: requests about cluster-scoped objects and the leader Lease live here.
    #[arg(
        long = "control-namespace",
        default_value = "approval-gate",
        env = "APPROVAL_GATE_NAMESPACE"
    )]
    pub namespace: String,
    /// This replica's name in Events and the Lease (defaults to the host name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// The Secret (in the control namespace) holding the webhook's `tls.crt`,
    /// `tls.key` and `ca.crt`: the webhook serves from it, the operator issues
    /// and rotates it.
    #[arg(long, default_value = "approval-gate-tls")]
    pub tls_secret: String,
}

/// A certificate and key to serve from files, re-read when they change on disk.
#[derive(Debug, Args)]
pub struct TlsFiles {
    /// PEM certificate chain to serve (re-read when it changes on disk).
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `--tls-cert-file`.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// Both files, when both are given.
    pub fn pair(&self) -> Option<(PathBuf, PathBuf)> {
        self.tls_cert_file.clone().zip(self.tls_key_file.clone())
    }
}

/// Flags of the webhook.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address for the HTTPS admission endpoint (`/validate`).
    #[arg(long, default_value = "0.0.0.0:8443", env = "APPROVAL_GATE_LISTEN")]
    pub listen: SocketAddr,
    /// A PEM certificate and key to serve instead of the `--tls-secret` Secret.
    #[command(flatten)]
    pub tls_files: TlsFiles,
    /// Require callers of `/validate` to present a client certificate signed by
    /// one of these PEM CAs: the apiserver's, configured through its
    /// AdmissionConfiguration `kubeConfigFile`. Others are refused during the
    /// TLS handshake.
    #[arg(long, value_name = "PATH", env = "APPROVAL_GATE_CLIENT_CA_FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// With `--client-ca-file`: the client certificate must name one of these
    /// (common name or DNS subject alternative name). Repeatable; none = any name.
    #[arg(long = "client-name", value_name = "NAME", requires = "client_ca_file")]
    pub client_names: Vec<String>,
    /// Serve `/debug/index` (what the webhook's index holds, request data
    /// included) on the unauthenticated metrics port. Off by default.
    #[arg(long)]
    pub debug_index: bool,
    /// Connections open at once on the HTTPS port; past it, a new connection
    /// is closed at once and counted in `approval_gate_admission_busy_refusals_total`.
    #[arg(long, default_value_t = crate::server::tls::Limits::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
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
}

/// Flags of the operator.
#[derive(Debug, Args)]
pub struct OperatorFlags {
    /// How long finished requests are kept for audits (Kubernetes-style duration).
    #[arg(long, default_value = "168h")]
    pub retention: crd::Duration,
    /// How long after a recorded use its write must show on the object before
    /// the use is reported as unconfirmed (a Warning Event `UseUnconfirmed`).
    #[arg(long, default_value = "30s")]
    pub use_confirm_window: crd::Duration,
    /// Leader Lease duration in seconds: a dead leader is replaced within it.
    #[arg(long, default_value_t = 15)]
    pub lease_seconds: u64,
    /// The web console's URL (`approval-gate console --public-url`): Slack,
    /// email and webhook notifications link to the request's page there.
    #[arg(long, value_name = "URL")]
    pub console_url: Option<String>,
    #[command(flatten)]
    pub registration: RegistrationArgs,
}

#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub operator: OperatorFlags,
}

/// Flags of the console.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address for the console's HTTPS (or, without `--tls-cert-file`, HTTP) port.
    #[arg(
        long,
        default_value = "0.0.0.0:8643",
        env = "APPROVAL_GATE_CONSOLE_LISTEN"
    )]
    pub listen: SocketAddr,
    /// The URL people open (`https://approvals.example.com`): the sign-in
    /// returns to `<URL>/callback`, and forms are accepted only from it.
    #[arg(long, env = "APPROVAL_GATE_CONSOLE_URL")]
    pub public_url: String,
    /// The OpenID Connect issuer (its `/.well-known/openid-configuration`
    /// is read on the first sign-in). The apiserver must trust the same
    /// issuer and this client id as an audience (a JWT authenticator).
    #[arg(long, env = "APPROVAL_GATE_OIDC_ISSUER")]
    pub issuer_url: String,
    /// The console's client id at the identity provider.
    #[arg(
        long,
        default_value = "approval-gate-console",
        env = "APPROVAL_GATE_OIDC_CLIENT_ID"
    )]
    pub client_id: String,
    /// A file holding the client secret (never a flag value: argv is readable by others).
    #[arg(long, env = "APPROVAL_GATE_OIDC_CLIENT_SECRET_FILE")]
    pub client_secret_file: PathBuf,
    /// A PEM CA to trust for the issuer, besides the system's roots.
    #[arg(long, env = "APPROVAL_GATE_OIDC_CA_FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    /// How long a sign-in lasts at most; never past the ID token's expiry.
    #[arg(long, default_value = "8h")]
    pub session_ttl: crd::Duration,
    /// A PEM certificate and key to serve HTTPS with.
    #[command(flatten)]
    pub tls_files: TlsFiles,
    /// Act on the apiserver by impersonating the signed-in person (user and
    /// groups from the ID token the console verified) with the console's own
    /// credentials, for an apiserver that cannot trust the identity provider.
    /// The console's account then needs `impersonate` on users and groups,
    /// and can act as anyone. Off: the person's own ID token is forwarded.
    #[arg(long)]
    pub impersonate: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub operator: OperatorFlags,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Crds { out_dir } => write_crds(out_dir),
            Command::Webhook(args) => run(args, None).await,
            Command::Operator(args) => run_operator_only(args).await,
            Command::Serve(args) => run(args.webhook, Some(args.operator)).await,
            Command::Console(args) => run_console(args).await,
        }
    }
}

async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("no usable kubeconfig or in-cluster configuration")
}

fn instance(common: &CommonArgs) -> String {
    common
        .instance
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "approval-gate".to_owned())
}

fn operator_config(common: &CommonArgs, flags: &OperatorFlags) -> OperatorConfig {
    OperatorConfig {
        retention: flags.retention.as_std(),
        use_confirm_window: flags.use_confirm_window.as_std(),
        lease_namespace: common.namespace.clone(),
        instance: instance(common),
        lease_seconds: flags.lease_seconds,
        console_url: flags.console_url.clone(),
        registration: flags
            .registration
            .config(&common.namespace, &common.tls_secret),
    }
}

/// The webhook, plus the operator when `operator` is given; one shutdown signal for both.
async fn run(args: WebhookArgs, operator: Option<OperatorFlags>) -> anyhow::Result<()> {
    init_tracing();
    let client = client().await?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = shutdown::on_signal()?;
    let config = WebhookConfig {
        guard: GuardConfig {
            controller: args.service_account.clone(),
            admin_groups: args.admin_groups.clone(),
        },
        ..WebhookConfig::new(
            args.common.namespace.clone(),
            Duration::from_millis(args.auto_request_timeout_ms),
        )
    };
    let opts = ServeOptions {
        listen: args.listen,
        metrics_listen: args.common.metrics_listen,
        tls: match args.tls_files.pair() {
            Some((cert, key)) => TlsSource::Files { cert, key },
            None => TlsSource::Secret {
                namespace: args.common.namespace.clone(),
                name: args.common.tls_secret.clone(),
            },
        },
        instance: instance(&args.common),
        client_auth: args.client_ca_file.clone().map(|ca_file| ClientAuth {
            ca_file,
            names: args.client_names.clone(),
        }),
        debug_index: args.debug_index,
        max_connections: args.max_connections,
    };
    let serving = webhook::serve(
        client.clone(),
        config,
        opts,
        Arc::clone(&metrics),
        shutdown.clone(),
    );
    match operator {
        None => serving.await?,
        Some(flags) => {
            // The webhook's readiness is the port's: a replica that serves
            // admission is ready whether or not it leads.
            let operating = operator::run(
                client,
                operator_config(&args.common, &flags),
                metrics,
                Arc::new(Once::new(operator::NOT_JOINED)),
                shutdown,
            );
            let (served, operated) = tokio::join!(serving, operating);
            served?;
            operated?;
        }
    }
    Ok(())
}

async fn run_console(args: ConsoleArgs) -> anyhow::Result<()> {
    init_tracing();
    let base = kube::Config::infer()
        .await
        .context("no usable kubeconfig or in-cluster configuration")?;
    let own = kube::Client::try_from(base.clone()).context("building the console's client")?;
    let secret = std::fs::read_to_string(&args.client_secret_file).with_context(|| {
        format!(
            "reading the client secret from {}",
            args.client_secret_file.display()
        )
    })?;
    let config = ConsoleConfig {
        listen: args.listen,
        public_url: args.public_url,
        oidc: OidcConfig {
            issuer: args.issuer_url,
            client_id: args.client_id,
            client_secret: secret.trim().to_owned(),
            issuer_ca: args.issuer_ca_file,
            mode: if args.impersonate {
                console::auth::Mode::Impersonate
            } else {
                console::auth::Mode::Token
            },
        },
        session_ttl: args.session_ttl.as_std(),
        tls: args.tls_files.pair(),
    };
    console::serve(own, base, config, shutdown::on_signal()?).await?;
    Ok(())
}

async fn run_operator_only(args: OperatorArgs) -> anyhow::Result<()> {
    init_tracing();
    let client = client().await?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = shutdown::on_signal()?;
    let listener = tokio::net::TcpListener::bind(args.common.metrics_listen)
        .await
        .with_context(|| format!("binding {}", args.common.metrics_listen))?;
    let joined = Arc::new(Once::new(operator::NOT_JOINED));
    let router = probes::with_metrics(Arc::clone(&metrics), Arc::clone(&joined));
    let plain = tls::serve_plain(listener, router, shutdown::fired(shutdown.clone()));
    let operating = operator::run(
        client,
        operator_config(&args.common, &args.operator),
        metrics,
        joined,
        shutdown,
    );
    let (served, operated) = tokio::join!(plain, operating);
    served?;
    operated?;
    Ok(())
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .try_init();
}

#[cfg(test)]
mod tests;

//! The validating admission webhook: watches, index, HTTPS server.

mod admit;
mod approval_writes;
pub mod certificate;
mod effects;
pub mod handler;
pub mod uses;
pub mod watch;

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use kube::{Client, runtime::events::Reporter};
use tokio::sync::watch as signal;

use crate::{
    admission::{decision::DecisionConfig, guard::GuardConfig},
    error::{Error, Result},
    events::EventQueue,
    index::Index,
    metrics::Metrics,
    server::{client_auth, shutdown::fired, tls},
};
pub use certificate::TlsSource;
pub use watch::Readiness;

/// How the webhook behaves.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub decision: DecisionConfig,
    pub guard: GuardConfig,
    /// How long a denial may wait for its pending request to be created.
    pub auto_request_bound: Duration,
    /// The review bodies being read and judged at once may take this many
    /// bytes together; a review that finds no room within `body_wait` is
    /// refused with a clear error instead of growing the process past its limit.
    pub body_budget: usize,
    /// How long a review waits for room in `body_budget`.
    pub body_wait: Duration,
}

impl WebhookConfig {
    /// The webhook's defaults (the guard's default controller and admin
    /// groups, the default memory budget), with `auto_request_bound` for a
    /// denial's wait on its pending request.
    pub fn new(control_namespace: impl Into<String>, auto_request_bound: Duration) -> Self {
        Self {
            decision: DecisionConfig {
                control_namespace: control_namespace.into(),
            },
            guard: GuardConfig::default(),
            auto_request_bound,
            body_budget: Self::DEFAULT_BODY_BUDGET,
            body_wait: Self::DEFAULT_BODY_WAIT,
        }
    }

    /// Room for one review of the largest size at a time, charged at
    /// [`handler::PARSE_FACTOR`] times its size (or some 600 of a typical
    /// 9 KB): a 6 MiB review of many small keys peaks at about 120 MiB while
    /// it is parsed, hashed and recorded, so two would pass the chart's
    /// 256 MiB memory limit (`tests/memory.rs` measures it).
    pub const DEFAULT_BODY_BUDGET: usize = handler::PARSE_FACTOR * handler::MAX_BODY;
    pub const DEFAULT_BODY_WAIT: Duration = Duration::from_secs(2);
}

/// Shared state of the webhook's handlers.
pub struct Webhook {
    pub client: Client,
    pub index: Arc<RwLock<Index>>,
    pub ready: Arc<Readiness>,
    pub config: WebhookConfig,
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    /// Kibibytes of review bodies that may be in flight, see [`WebhookConfig::body_budget`].
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// The key of the hashes that stand for redacted values in recorded
    /// changes, drawn at random per process so that no hash can be looked up.
    pub redaction_key: [u8; 32],
    /// Uses of reusable approvals not yet written to their requests.
    pub uses: uses::UseLedger,
}

/// Where to listen and which certificate to serve.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub tls: TlsSource,
    pub instance: String,
    /// Require the caller's client certificate (the apiserver's), if set.
    pub client_auth: Option<ClientAuth>,
    /// Serve `/debug/index` on the metrics port.
    pub debug_index: bool,
    /// Connections open at once on the HTTPS port.
    pub max_connections: usize,
}

/// Which client certificates `/validate` accepts.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// PEM CA certificates the client certificate must chain to.
    pub ca_file: std::path::PathBuf,
    /// Names (common name or DNS SAN) of which the certificate must carry one; empty: any.
    pub names: Vec<String>,
}

impl Webhook {
    /// Builds the state and starts the watches that fill the index.
    pub fn start(
        client: Client,
        config: WebhookConfig,
        instance: String,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let index = Arc::new(RwLock::new(Index::default()));
        let ready = Arc::new(Readiness::default());
        tokio::spawn(watch::run(
            client.clone(),
            Arc::clone(&index),
            Arc::clone(&ready),
        ));
        let webhook = Self::with_metrics(client, config, index, ready, instance, metrics);
        tokio::spawn(uses::flush_forever(Arc::clone(&webhook)));
        webhook
    }

    /// Builds the state over an index someone else fills (tests fill it by hand).
    pub fn new(
        client: Client,
        config: WebhookConfig,
        index: Arc<RwLock<Index>>,
        ready: Arc<Readiness>,
        instance: String,
    ) -> Arc<Self> {
        Self::with_metrics(
            client,
            config,
            index,
            ready,
            instance,
            Arc::new(Metrics::default()),
        )
    }

    /// Like [`Self::new`], sharing a metrics registry (one per process).
    pub fn with_metrics(
        client: Client,
        config: WebhookConfig,
        index: Arc<RwLock<Index>>,
        ready: Arc<Readiness>,
        instance: String,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let body_budget = Arc::new(tokio::sync::Semaphore::new(
            config.body_budget.div_ceil(1024),
        ));
        let reporter = Reporter {
            controller: "approval-gate".to_owned(),
            instance: Some(instance),
        };
        Arc::new(Self {
            events: EventQueue::start(client.clone(), reporter, Arc::clone(&metrics)),
            client,
            index,
            ready,
            config,
            metrics,
            redaction_key: rand::random(),
            body_budget,
            uses: uses::UseLedger::default(),
        })
    }
}

/// A denial with an HTTP-style status code (400 unreadable, 403 held or
/// rejected, 503 not ready) and a message for the person who tried.
fn deny(
    response: kube::core::admission::AdmissionResponse,
    code: u16,
    text: &str,
) -> kube::core::admission::AdmissionResponse {
    let mut response = response.deny(text);
    response.result.code = code;
    response
}

/// Runs the webhook until `shutdown` fires, then drains in-flight requests.
pub async fn serve(
    client: Client,
    config: WebhookConfig,
    opts: ServeOptions,
    metrics: Arc<Metrics>,
    shutdown: signal::Receiver<bool>,
) -> Result<()> {
    tls::install_crypto_provider();
    let webhook = Webhook::start(client.clone(), config, opts.instance.clone(), metrics);
    // Certificate files are validated before anything is bound.
    let certs = certificate::start(&client, &opts.tls, &webhook.ready, shutdown.clone())?;
    let clients = match &opts.client_auth {
        Some(auth) => {
            let source = auth.ca_file.display().to_string();
            let pem = std::fs::read(&auth.ca_file)
                .map_err(|e| Error::io(format!("reading the client CA {source}"), e))?;
            tracing::info!(ca = %source, names = ?auth.names, "callers must present a client certificate");
            Some(client_auth::verifier(&source, &pem, &auth.names)?)
        }
        None => None,
    };
    let listener = bind(opts.listen).await?;
    let metrics_listener = bind(opts.metrics_listen).await?;
    tracing::info!(listen = %opts.listen, metrics = %opts.metrics_listen, "webhook serving");
    let https = tls::serve_tls(
        listener,
        handler::router(Arc::clone(&webhook)),
        tls::server_config(certs, clients),
        tls::Limits {
            max_connections: opts.max_connections,
            tls_refusals: webhook.metrics.tls_refusals.clone(),
            busy_refusals: webhook.metrics.busy_refusals.clone(),
        },
        fired(shutdown.clone()),
    );
    let plain = tls::serve_plain(
        metrics_listener,
        handler::metrics_router(webhook, opts.debug_index),
        fired(shutdown),
    );
    let (a, b) = tokio::join!(https, plain);
    a.and(b)
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("binding {addr}"), e))
}

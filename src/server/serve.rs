//! Serving HTTP/1.1 over TLS (the webhook's and the console's HTTPS ports)
//! and plain HTTP (metrics and probes): the accept loop, its limits, and the
//! drain on shutdown. The certificate it serves comes from [`super::tls`].

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Extension, Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
    service::TowerToHyperService,
};
use rustls::ServerConfig;
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;
use tower::Layer;

use crate::{
    error::{Error, Result},
    metrics::{Metrics, ReasonLabels, ResultLabels},
};
use prometheus_client::metrics::{counter::Counter, family::Family};

/// A client that opens a socket and never finishes the handshake must not
/// hold a task (and a drain slot) forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds both slow request headers and idle keep-alive connections. It is
/// longer than the apiserver's own idle timeout for webhook connections (90 s,
/// Go's default), so that the apiserver closes an idle connection first: a
/// server that closes one just as the apiserver reuses it fails that
/// admission with "broken pipe" (a POST is not retried), which
/// `tests/cluster/upgrade.rs` saw with 30 s.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Once draining starts, how long open connections keep being served with
/// `Connection: close` on every answer before idle ones are closed. A client
/// that sends on a connection in this window is told to close it after the
/// answer and closes it itself; closing it from the server just as the
/// client (the apiserver) reuses it would fail that admission with "broken
/// pipe", since a POST is not retried (`tests/cluster/upgrade.rs` saw it).
const CLOSE_NOTICE: Duration = Duration::from_secs(2);

/// Upper bound on draining in-flight requests: below the default 30s pod
/// termination grace period, so the process exits before the kubelet kills it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// What bounds the TLS server, and where it counts what it refuses.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once; past it, a new one is closed at once and
    /// counted, so a flood of idle connections cannot take the memory.
    pub max_connections: usize,
    /// Handshakes refused for want of a valid client certificate, by reason.
    pub tls_refusals: Family<ReasonLabels, Counter>,
    /// Connections refused because `max_connections` were open (result `connections`).
    pub busy_refusals: Family<ResultLabels, Counter>,
}

impl Limits {
    /// Each open connection holds TLS and HTTP buffers (some tens of KiB).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            tls_refusals: Family::default(),
            busy_refusals: Family::default(),
        }
    }
}

/// Serve `app` over TLS until `shutdown` resolves, then drain.
///
/// After `shutdown` the listener is closed at once. Open connections are
/// served for [`CLOSE_NOTICE`] more, each answer saying `Connection: close`;
/// then idle ones are closed, and requests still in flight get up to
/// [`DRAIN_TIMEOUT`] to finish, after which the remaining connections are
/// dropped. Per-connection failures are logged, never fatal.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    config: Arc<ServerConfig>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let draining = Arc::new(AtomicBool::new(false));
    let app = app.layer(tower::util::MapResponseLayer::new({
        let draining = Arc::clone(&draining);
        move |mut response: axum::response::Response| {
            if draining.load(Ordering::Relaxed) {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            response
        }
    }));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = connections.join_next() => log_panicked(joined),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        Metrics::count(&limits.busy_refusals, "connections");
                        tracing::warn!(%peer, max = limits.max_connections, "too many open connections; closing a new one");
                        continue;
                    };
                    // Small request/response exchanges: do not wait for delayed ACKs.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "setting TCP_NODELAY failed");
                    }
                    // The watcher is taken before the handshake so the drain
                    // also waits for connections that are still handshaking.
                    let conn = serve_connection(stream, peer, acceptor.clone(), app.clone(), graceful.watcher(), limits.tls_refusals.clone());
                    connections.spawn(async move {
                        conn.await;
                        drop(slot);
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a TCP connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    draining.store(true, Ordering::Relaxed);
    if graceful.count() > 0 {
        tokio::time::sleep(CLOSE_NOTICE).await;
    }
    drain(graceful, connections).await;
    Ok(())
}

fn log_panicked(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        tracing::warn!(error = %err, "an HTTPS connection task failed");
    }
}

async fn drain(graceful: GracefulShutdown, mut connections: JoinSet<()>) {
    tracing::info!(open = graceful.count(), "HTTPS server draining connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after = ?DRAIN_TIMEOUT,
            "connections still open after the drain timeout; closing them"
        );
    }
    connections.shutdown().await;
}

/// Handshake, then HTTP/1.1 with keep-alive until the client leaves or the
/// server drains. The peer address is exposed to handlers as
/// [`ConnectInfo<SocketAddr>`], as `axum::serve` would.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    watcher: Watcher,
    refusals: Family<ReasonLabels, Counter>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => match super::client_auth::refusal(&err) {
            Some(reason) => {
                refusals
                    .get_or_create(&ReasonLabels {
                        reason: reason.to_owned(),
                    })
                    .inc();
                tracing::warn!(%peer, reason, error = %err, "refused a caller without a valid client certificate");
                return;
            }
            None => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                return;
            }
        },
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(app));
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %err, "HTTPS connection closed with an error");
    }
}

/// Serve plain HTTP (metrics, health) until `shutdown` resolves.
///
/// Nothing secret travels here, and probes from the kubelet cannot present
/// the webhook's CA, so this port stays unencrypted.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|err| Error::io("serving plain HTTP", err))
}

//! TLS for the webhook's HTTPS port: loading the serving certificate, reloading
//! it when it rotates, and the accept loop that serves HTTP/1.1 over it.
//!
//! The certificate comes from a Secret volume. The kubelet updates such a
//! volume by writing a new timestamped directory and swapping the `..data`
//! symlink, so an inotify watch on the files themselves never fires (the
//! kubewarden policy-server learned this the hard way). Instead a watcher
//! re-reads both files on a timer and compares their bytes; reading through
//! the symlinks always sees the current generation.

use std::{
    fmt::{self, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Once,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use axum::{Extension, Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::{GracefulShutdown, Watcher},
    service::TowerToHyperService,
};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
    time::MissedTickBehavior,
};
use tokio_rustls::TlsAcceptor;
use tower::Layer;

use crate::{
    error::{Error, Result},
    metrics::{Metrics, ReasonLabels, ResultLabels},
};
use prometheus_client::metrics::{counter::Counter, family::Family};
use rustls::server::danger::ClientCertVerifier;

/// How often callers should poll the certificate files. Secret volume updates
/// already lag the API by up to a minute, so one second adds nothing visible.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

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

/// Install rustls' ring provider as the process default.
///
/// With more than one provider compiled in (kube and reqwest pull in their
/// own features), rustls refuses to guess, so this must run before any TLS
/// config is built. Calling it again, or after someone else installed a
/// provider, is harmless.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
        {
            tracing::debug!("a rustls crypto provider was already installed; keeping it");
        }
    });
}

pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    install_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// One validated generation of the certificate files.
struct Generation {
    certified: Arc<CertifiedKey>,
    /// Hex SHA-256 of the leaf certificate's DER, for logs and tests.
    fingerprint: String,
    /// Hash of the raw file bytes; a change here is what triggers a reload.
    source_digest: [u8; 32],
}

/// Serves whichever certificate the files currently hold.
///
/// The key sits behind an [`ArcSwap`] so handshakes never take a lock and a
/// rotation is a single pointer swap: every handshake sees either the whole
/// old pair or the whole new one.
pub struct CertReloader {
    /// The files to poll; `None` when certificates arrive through
    /// [`Self::install_pem`] (from a watched Secret).
    files: Option<(PathBuf, PathBuf)>,
    /// `None` until the first certificate arrives: handshakes fail meanwhile
    /// and readiness stays false.
    current: ArcSwapOption<Generation>,
}

impl CertReloader {
    /// Read and validate the PEM chain and private key.
    ///
    /// Call this before binding the listener: a Secret with a mismatched or
    /// unreadable key should crash the pod with a message naming the file,
    /// not leave the apiserver staring at failed handshakes.
    pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>> {
        let (cert_pem, key_pem) = read_pair(&cert_path, &key_path)?;
        let generation = parse_pair(
            &cert_path.display().to_string(),
            &cert_pem,
            &key_path.display().to_string(),
            &key_pem,
        )?;
        tracing::info!(
            cert = %cert_path.display(),
            fingerprint = %generation.fingerprint,
            "loaded TLS serving certificate"
        );
        Ok(Arc::new(Self {
            files: Some((cert_path, key_path)),
            current: ArcSwapOption::from_pointee(generation),
        }))
    }

    /// A reloader with no certificate yet, fed by [`Self::install_pem`].
    pub fn empty() -> Arc<Self> {
        Arc::new(Self {
            files: None,
            current: ArcSwapOption::empty(),
        })
    }

    /// Whether a certificate is being served.
    pub fn has_certificate(&self) -> bool {
        self.current.load().is_some()
    }

    /// Re-read both files and swap in the new pair if their bytes changed.
    ///
    /// Returns `Ok(false)` when nothing changed. On error the previous
    /// certificate stays in place, so a half-written pair (new cert, old key)
    /// is simply retried on the next call.
    pub fn reload_now(&self) -> Result<bool> {
        let Some((cert_path, key_path)) = &self.files else {
            return Ok(false);
        };
        let (cert_pem, key_pem) = read_pair(cert_path, key_path)?;
        self.install(
            &cert_path.display().to_string(),
            &cert_pem,
            &key_path.display().to_string(),
            &key_pem,
        )
    }

    /// Validate a PEM pair from elsewhere (`source` names it in errors) and
    /// serve it if it differs from the current one. Same contract as
    /// [`Self::reload_now`].
    pub fn install_pem(&self, source: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<bool> {
        self.install(
            &format!("{source} {}", crate::pki::TLS_CERT),
            cert_pem,
            &format!("{source} {}", crate::pki::TLS_KEY),
            key_pem,
        )
    }

    fn install(
        &self,
        cert_label: &str,
        cert_pem: &[u8],
        key_label: &str,
        key_pem: &[u8],
    ) -> Result<bool> {
        let current = self.current.load();
        if current.as_ref().map(|g| g.source_digest) == Some(source_digest(cert_pem, key_pem)) {
            return Ok(false);
        }
        let next = parse_pair(cert_label, cert_pem, key_label, key_pem)?;
        let new_fingerprint = next.fingerprint.clone();
        let previous = self.current.swap(Some(Arc::new(next)));
        tracing::info!(
            old = %previous.map(|g| g.fingerprint.clone()).unwrap_or_default(),
            new = %new_fingerprint,
            source = %cert_label,
            "rotated TLS serving certificate"
        );
        Ok(true)
    }

    /// Hex SHA-256 of the leaf certificate being served right now.
    pub fn current_fingerprint(&self) -> String {
        self.current
            .load()
            .as_ref()
            .map(|g| g.fingerprint.clone())
            .unwrap_or_default()
    }

    /// Poll the files every `interval` until `true` is sent on `shutdown`.
    ///
    /// A dropped sender does *not* stop the watcher: losing rotation silently
    /// is worse than a leftover task. The task holds only a weak reference,
    /// so it also ends once every server using this reloader is gone.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let reloader = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // The first tick fires at once; `load` has just read the files.
            ticker.tick().await;
            let mut last_error = None;
            loop {
                tokio::select! {
                    () = stop_requested(&mut shutdown) => return,
                    _ = ticker.tick() => {}
                }
                let Some(reloader) = reloader.upgrade() else {
                    return;
                };
                last_error = reloader.watcher_tick(last_error).await;
            }
        })
    }

    /// One watcher round. Warns once per distinct failure rather than every
    /// tick, while still retrying every tick.
    async fn watcher_tick(self: Arc<Self>, last_error: Option<String>) -> Option<String> {
        let reloader = Arc::clone(&self);
        match tokio::task::spawn_blocking(move || reloader.reload_now()).await {
            Ok(Ok(_)) => {
                if last_error.is_some() {
                    tracing::info!("TLS files are usable again");
                }
                None
            }
            Ok(Err(err)) => {
                let message = err.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        error = %message,
                        serving = %self.current_fingerprint(),
                        "ignoring unusable TLS files; still serving the previous certificate"
                    );
                }
                Some(message)
            }
            Err(join_err) => {
                tracing::warn!(error = %join_err, "TLS reload task failed");
                last_error
            }
        }
    }
}

impl fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertReloader")
            .field("files", &self.files)
            .field("fingerprint", &self.current_fingerprint())
            .finish()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .load()
            .as_ref()
            .map(|g| Arc::clone(&g.certified))
    }
}

async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|err| Error::io(format!("reading TLS {what} {}", path.display()), err))
    };
    Ok((
        read("certificate", cert_path)?,
        read("private key", key_path)?,
    ))
}

fn source_digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    // Length-prefix the certificate so moving bytes between files still counts.
    hasher.update((cert_pem.len() as u64).to_be_bytes());
    hasher.update(cert_pem);
    hasher.update(key_pem);
    hasher.finalize().into()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Validate a PEM pair into a servable key; every error names the file
/// (or the Secret key) it came from.
fn parse_pair(
    cert_path: &str,
    cert_pem: &[u8],
    key_path: &str,
    key_pem: &[u8],
) -> Result<Generation> {
    let chain = parse_chain(cert_path, cert_pem)?;
    let fingerprint = chain
        .first()
        .map(|leaf| sha256_hex(leaf))
        .unwrap_or_default();
    let key = parse_key(key_path, key_pem)?;
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|err| Error::tls(format!("private key {}", key_path), err))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Strict, unlike `CertifiedKey::from_der`: "cannot tell" is a failure too.
    certified.keys_match().map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => Error::tls_invalid(format!(
            "private key {} does not match the certificate in {}",
            key_path, cert_path
        )),
        other => Error::tls(format!("certificate {}", cert_path), other),
    })?;
    Ok(Generation {
        certified: Arc::new(certified),
        fingerprint,
        source_digest: source_digest(cert_pem, key_pem),
    })
}

fn parse_chain(path: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::tls(format!("certificate {}", path), err))?;
    if chain.is_empty() {
        return Err(Error::tls_invalid(format!(
            "certificate {} contains no PEM CERTIFICATE block",
            path
        )));
    }
    Ok(chain)
}

fn parse_key(path: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => Error::tls_invalid(format!(
            "private key {} contains no PEM private key (PKCS#8, EC or RSA)",
            path
        )),
        other => Error::tls(format!("private key {}", path), other),
    })
}

/// TLS settings for the webhook port.
///
/// Only `http/1.1` is offered: the apiserver calls webhooks over HTTP/1.1
/// keep-alive, and the accept loop below speaks nothing else.
///
/// With `clients`, a client certificate that verifier accepts is required
/// (see [`super::client_auth`]); without, any client may connect.
pub fn server_config(
    resolver: Arc<CertReloader>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Arc<ServerConfig> {
    // `ServerConfig::builder` needs a process default provider.
    install_crypto_provider();
    let builder = ServerConfig::builder();
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

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

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

//! Tests for the TLS server and certificate reloading.
use std::{
    net::SocketAddr,
    os::unix::fs::symlink,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{Router, extract::ConnectInfo, http::StatusCode, routing::get};
use prometheus_client::metrics::{counter::Counter, family::Family};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::{ClientConfig, RootCertStore, client::Resumption};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

use super::*;
use crate::metrics::ResultLabels;

/// Only a guard against hangs; nothing is measured against it.
const GUARD: Duration = Duration::from_secs(20);

struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A directory laid out like a kubelet-mounted Secret volume:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>/`.
struct SecretDir {
    dir: tempfile::TempDir,
    generation: u32,
}

impl SecretDir {
    fn new(cert_pem: &str, key_pem: &str) -> Self {
        let mut secret = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        secret.publish(cert_pem, key_pem);
        for name in ["tls.crt", "tls.key"] {
            symlink(format!("..data/{name}"), secret.dir.path().join(name)).unwrap();
        }
        secret
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    fn load(&self) -> Result<Arc<CertReloader>> {
        CertReloader::load(self.cert_path(), self.key_path())
    }

    /// Publish a new version the way the kubelet does: write a fresh
    /// timestamped directory, then atomically rename a new symlink over
    /// `..data`, then remove the old directory.
    fn publish(&mut self, cert_pem: &str, key_pem: &str) {
        let root = self.dir.path();
        let previous = format!("..2025_01_01_00_00_00.{}", self.generation);
        self.generation += 1;
        let next = format!("..2025_01_01_00_00_00.{}", self.generation);
        std::fs::create_dir(root.join(&next)).unwrap();
        std::fs::write(root.join(&next).join("tls.crt"), cert_pem).unwrap();
        std::fs::write(root.join(&next).join("tls.key"), key_pem).unwrap();
        symlink(&next, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(root.join(previous));
    }
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<()>>,
}

impl TestServer {
    async fn start(app: Router, reloader: Arc<CertReloader>) -> Self {
        Self::start_limited(app, reloader, Limits::default()).await
    }

    async fn start_limited(app: Router, reloader: Arc<CertReloader>, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let config = server_config(reloader, None);
        let handle = tokio::spawn(serve_tls(listener, app, config, limits, shutdown));
        Self {
            addr,
            stop: Some(stop),
            handle,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(GUARD, self.handle).await;
        served.unwrap().unwrap().unwrap();
    }
}

fn app() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
}

/// A client that trusts only the test CA and speaks only HTTP/1.1.
fn client(ca: &TestCa, addr: SocketAddr, pooled: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .http1_only()
        .no_proxy()
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(10));
    if !pooled {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().unwrap()
}

/// Handshake with a raw TLS client (no session resumption, which would
/// replay the old certificate) and report the leaf and ALPN it got.
async fn handshake(ca: &TestCa, addr: SocketAddr) -> (Vec<u8>, Option<Vec<u8>>) {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (_, session) = tls.get_ref();
    let leaf = session.peer_certificates().unwrap()[0].to_vec();
    (leaf, session.alpn_protocol().map(<[u8]>::to_vec))
}

/// Poll until `done` holds; the guard only stops a broken test hanging.
async fn eventually(mut done: impl AsyncFnMut() -> bool) {
    let waited = tokio::time::timeout(GUARD, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    waited.await.unwrap();
}

#[tokio::test]
async fn rejects_mismatched_key_before_binding() {
    let ca = TestCa::new();
    let (first, second) = (ca.leaf(), ca.leaf());
    let secret = SecretDir::new(&first.cert_pem, &second.key_pem);

    let message = secret.load().unwrap_err().to_string();

    assert!(message.contains("does not match"), "{message}");
    assert!(
        message.contains(&secret.key_path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&secret.cert_path().display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn rejects_files_without_pem_blocks_naming_the_file() {
    let leaf = TestCa::new().leaf();
    let no_cert = SecretDir::new("not a certificate", &leaf.key_pem);
    let no_key = SecretDir::new(&leaf.cert_pem, "");

    let cert_error = no_cert.load().unwrap_err().to_string();
    let key_error = no_key.load().unwrap_err().to_string();

    assert!(
        cert_error.contains(&no_cert.cert_path().display().to_string()),
        "{cert_error}"
    );
    assert!(
        key_error.contains(&no_key.key_path().display().to_string()),
        "{key_error}"
    );
}

#[tokio::test]
async fn serves_https_over_http1_keep_alive() {
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let secret = SecretDir::new(&leaf.cert_pem, &leaf.key_pem);
    let server = TestServer::start(app(), secret.load().unwrap()).await;
    let client = client(&ca, server.addr, true);

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.version(), reqwest::Version::HTTP_11);
    assert_eq!(health.text().await.unwrap(), "ok");
    let first = client.get(server.url("/peer")).send().await.unwrap();
    let first = first.text().await.unwrap();
    let second = client.get(server.url("/peer")).send().await.unwrap();
    let second = second.text().await.unwrap();

    assert_eq!(first, second, "both requests should reuse one connection");
    let (_, alpn) = handshake(&ca, server.addr).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_through_secret_symlink_swap_serves_new_cert_without_failed_handshakes() {
    let ca = Arc::new(TestCa::new());
    let (old, new) = (ca.leaf(), ca.leaf());
    let mut secret = SecretDir::new(&old.cert_pem, &old.key_pem);
    let reloader = secret.load().unwrap();
    let (stop_watcher, watcher_stop) = watch::channel(false);
    let watcher = reloader.spawn_watcher(Duration::from_millis(100), watcher_stop);
    let server = TestServer::start(app(), Arc::clone(&reloader)).await;

    let progress = Arc::new(AtomicUsize::new(0));
    let stop_client = Arc::new(AtomicBool::new(false));
    let client_task = tokio::spawn(fresh_connection_loop(
        Arc::clone(&ca),
        server.addr,
        server.url("/healthz"),
        Arc::clone(&progress),
        Arc::clone(&stop_client),
    ));

    eventually(async || progress.load(Ordering::SeqCst) >= 5).await;
    secret.publish(&new.cert_pem, &new.key_pem);
    eventually(async || handshake(&ca, server.addr).await.0 == new.der).await;
    let after_rotation = progress.load(Ordering::SeqCst);
    eventually(async || progress.load(Ordering::SeqCst) >= after_rotation + 5).await;
    stop_client.store(true, Ordering::SeqCst);
    let outcome = client_task.await.unwrap();

    assert_eq!(outcome.failures, Vec::<String>::new());
    assert!(
        outcome.leaves_seen.contains(&old.der),
        "never saw the old cert"
    );
    assert!(
        outcome.leaves_seen.contains(&new.der),
        "never saw the new cert"
    );
    assert_eq!(reloader.current_fingerprint(), sha256_hex(&new.der));
    stop_watcher.send(true).unwrap();
    tokio::time::timeout(GUARD, watcher).await.unwrap().unwrap();
    server.shut_down().await;
}

#[derive(Default)]
struct LoopOutcome {
    failures: Vec<String>,
    leaves_seen: Vec<Vec<u8>>,
}

/// Requests on fresh connections (a new client each time, so every
/// request is a full handshake), bounded in count in case nobody stops it.
async fn fresh_connection_loop(
    ca: Arc<TestCa>,
    addr: SocketAddr,
    url: String,
    progress: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> LoopOutcome {
    let mut outcome = LoopOutcome::default();
    for _ in 0..1_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(rustls_client(&ca))
            .http1_only()
            .no_proxy()
            .resolve("localhost", addr)
            .timeout(Duration::from_secs(10))
            .tls_info(true)
            .build()
            .unwrap();
        match client.get(&url).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                record_leaf(&mut outcome, &response);
            }
            Ok(response) => outcome.failures.push(response.status().to_string()),
            Err(err) => outcome.failures.push(format!("{err:?}")),
        }
        progress.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    outcome
}

fn record_leaf(outcome: &mut LoopOutcome, response: &reqwest::Response) {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>();
    let leaf = info
        .and_then(|info| info.peer_certificate())
        .unwrap()
        .to_vec();
    if !outcome.leaves_seen.contains(&leaf) {
        outcome.leaves_seen.push(leaf);
    }
}

fn rustls_client(ca: &TestCa) -> ClientConfig {
    install_crypto_provider();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn invalid_new_files_keep_the_old_certificate() {
    let ca = TestCa::new();
    let (old, new) = (ca.leaf(), ca.leaf());
    let mut secret = SecretDir::new(&old.cert_pem, &old.key_pem);
    let reloader = secret.load().unwrap();
    let (_stop, watcher_stop) = watch::channel(false);
    reloader.spawn_watcher(Duration::from_millis(50), watcher_stop);
    let server = TestServer::start(app(), Arc::clone(&reloader)).await;
    assert!(
        !reloader.reload_now().unwrap(),
        "unchanged files are not a rotation"
    );

    secret.publish("garbage", &new.key_pem);
    assert!(reloader.reload_now().is_err());
    secret.publish(&new.cert_pem, &old.key_pem);
    let mismatch = reloader.reload_now().unwrap_err().to_string();
    assert!(mismatch.contains("does not match"), "{mismatch}");
    // Give the watcher a few ticks to (wrongly) act on the broken pair.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(reloader.current_fingerprint(), sha256_hex(&old.der));
    assert_eq!(handshake(&ca, server.addr).await.0, old.der);
    secret.publish(&new.cert_pem, &new.key_pem);
    eventually(async || reloader.current_fingerprint() == sha256_hex(&new.der)).await;
    server.shut_down().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let secret = SecretDir::new(&leaf.cert_pem, &leaf.key_pem);
    let started = Arc::new(Notify::new());
    let handler_started = Arc::clone(&started);
    let app = Router::new().route(
        "/slow",
        get(move || async move {
            handler_started.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let mut server = TestServer::start(app, secret.load().unwrap()).await;
    let client = client(&ca, server.addr, true);
    let request = tokio::spawn(client.get(server.url("/slow")).send());

    tokio::time::timeout(GUARD, started.notified())
        .await
        .unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    let response = tokio::time::timeout(GUARD, request)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "done");
    let served = tokio::time::timeout(GUARD, server.handle).await.unwrap();
    served.unwrap().unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "listener should be closed"
    );
}

/// A keep-alive connection that is used once draining has started is told
/// to close after its answer (and the answer is served), instead of being
/// closed under the client, which would fail a POST with "broken pipe".
#[tokio::test]
async fn while_draining_answers_tell_the_client_to_close_the_connection() {
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let secret = SecretDir::new(&leaf.cert_pem, &leaf.key_pem);
    let mut server = TestServer::start(app(), secret.load().unwrap()).await;
    let client = client(&ca, server.addr, true);
    let before = client.get(server.url("/peer")).send().await.unwrap();
    assert!(before.headers().get("connection").is_none());
    let first_peer = before.text().await.unwrap();

    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = client.get(server.url("/peer")).send().await.unwrap();
    assert_eq!(during.status(), StatusCode::OK);
    assert_eq!(
        during.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    // The same connection: the listener is closed, so no new one was opened.
    assert_eq!(during.text().await.unwrap(), first_peer);
    let served = tokio::time::timeout(GUARD, server.handle).await.unwrap();
    served.unwrap().unwrap();
}

#[tokio::test]
async fn plain_port_serves_health_and_stops_on_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(serve_plain(listener, app(), shutdown));

    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = client.get(url).send().await.unwrap().text().await.unwrap();
    stop.send(()).unwrap();

    assert_eq!(body, "ok");
    let served = tokio::time::timeout(GUARD, server).await.unwrap();
    served.unwrap().unwrap();
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_is_closed_and_counted() {
    let ca = TestCa::new();
    let leaf = ca.leaf();
    let secret = SecretDir::new(&leaf.cert_pem, &leaf.key_pem);
    let busy = Family::<ResultLabels, Counter>::default();
    let limits = Limits {
        max_connections: 2,
        busy_refusals: busy.clone(),
        ..Limits::default()
    };
    let server = TestServer::start_limited(app(), secret.load().unwrap(), limits).await;
    // Two clients, each holding its keep-alive connection open.
    let held = [
        client(&ca, server.addr, true),
        client(&ca, server.addr, true),
    ];
    for c in &held {
        let answer = c.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let third = client(&ca, server.addr, false);
    assert!(
        third.get(server.url("/healthz")).send().await.is_err(),
        "a third connection is closed at once"
    );
    let refused = busy
        .get_or_create(&ResultLabels {
            result: "connections".to_owned(),
        })
        .get();
    assert!(refused >= 1, "counted: {refused}");
    // Once one closes, there is room again.
    drop(held);
    eventually(async || third.get(server.url("/healthz")).send().await.is_ok()).await;
    server.shut_down().await;
}

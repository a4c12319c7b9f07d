//! Real local receivers for notifications: an HTTP server (axum) that keeps
//! every delivery and can fail the first few (with a status of the test's
//! choice) or hold them unanswered, and a minimal SMTP server with optional
//! STARTTLS.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::TlsAcceptor;

/// One HTTP delivery as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Delivery>>,
    fail_first: AtomicUsize,
    failed: AtomicUsize,
    /// The status of a failure; 500 when 0.
    fail_status: AtomicU16,
    /// While set, a delivery is kept and left unanswered.
    holding: AtomicBool,
}

/// An HTTP server on 127.0.0.1 that answers 200 (after `fail_first` 500s)
/// and keeps what it accepted.
pub struct HttpReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HttpReceiver {
    pub async fn start(fail_first: usize) -> Self {
        let shared = Arc::new(Shared::default());
        shared.fail_first.store(fail_first, Ordering::SeqCst);
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    /// Like [`Self::start`], failing with `status` instead of 500.
    pub async fn start_failing_with(fail_first: usize, status: u16) -> Self {
        let receiver = Self::start(fail_first).await;
        receiver.shared.fail_status.store(status, Ordering::SeqCst);
        receiver
    }

    /// From now on keeps each delivery but does not answer it, as a receiver
    /// whose reply is lost, until [`Self::answer`].
    pub fn hold(&self) {
        self.shared.holding.store(true, Ordering::SeqCst);
    }

    /// Answers held and new deliveries again.
    pub fn answer(&self) {
        self.shared.holding.store(false, Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What was accepted so far.
    pub fn received(&self) -> Vec<Delivery> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many requests got a failure status.
    pub fn failed(&self) -> usize {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Waits until `count` deliveries on `path` were accepted; returns them.
    pub async fn await_on(&self, path: &str, count: usize, within: Duration) -> Vec<Delivery> {
        let started = tokio::time::Instant::now();
        loop {
            let on: Vec<Delivery> = self
                .received()
                .into_iter()
                .filter(|d| d.path == path)
                .collect();
            if on.len() >= count || started.elapsed() > within {
                return on;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let to_fail = shared.fail_first.load(Ordering::SeqCst);
    if shared.failed.load(Ordering::SeqCst) < to_fail {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        let status = shared.fail_status.load(Ordering::SeqCst);
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    shared.received.lock().unwrap().push(Delivery {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    while shared.holding.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    StatusCode::OK
}

/// One message as the SMTP server received it.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether it came after a completed STARTTLS handshake.
    pub encrypted: bool,
    /// The user and password of a successful AUTH PLAIN, if any.
    pub login: Option<(String, String)>,
}

impl Mail {
    /// The message with folded header lines joined (RFC 5322 section 2.2.3).
    pub fn unfolded(&self) -> String {
        self.data.replace("\n ", " ")
    }
}

/// An SMTP server on 127.0.0.1 speaking just enough of RFC 5321 (EHLO,
/// MAIL, RCPT, DATA, RSET, NOOP, QUIT) and, when started with a certificate,
/// STARTTLS (RFC 3207) through rustls.
/// A recipient whose local part is `nobody` is refused with 550, a
/// permanent failure. Inside TLS it offers AUTH PLAIN and accepts any
/// credentials except the password `wrong` (535).
pub struct SmtpReceiver {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    sessions: Arc<AtomicUsize>,
}

impl SmtpReceiver {
    /// A server that offers no STARTTLS.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// A server that offers STARTTLS with this certificate chain and key (PEM).
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::serve(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sessions = Arc::new(AtomicUsize::new(0));
        let (keep, count) = (Arc::clone(&mails), Arc::clone(&sessions));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(session(stream, Arc::clone(&keep), tls.clone()));
            }
        });
        Self {
            addr,
            mails,
            sessions,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// How many connections the server accepted.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }
}

/// What ended a stretch of conversation.
enum Next {
    Closed,
    StartTls,
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<Mail>>>, tls: Option<TlsAcceptor>) {
    let mut plain = BufReader::new(stream);
    if plain
        .write_all(b"220 localhost ESMTP test\r\n")
        .await
        .is_err()
    {
        return;
    }
    let offer_tls = tls.is_some();
    let next = converse(&mut plain, &mails, offer_tls, false).await;
    if let (Next::StartTls, Some(acceptor)) = (next, tls) {
        // The client sends nothing more until the handshake, so no
        // plaintext is left in the buffer (RFC 3207's injection concern).
        assert!(plain.buffer().is_empty(), "plaintext after STARTTLS");
        let Ok(secure) = acceptor.accept(plain.into_inner()).await else {
            return;
        };
        converse(&mut BufReader::new(secure), &mails, false, true).await;
    }
}

/// One conversation, in the clear or (`encrypted`) inside TLS.
async fn converse<S>(
    s: &mut BufReader<S>,
    mails: &Mutex<Vec<Mail>>,
    offer_tls: bool,
    encrypted: bool,
) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut mail = Mail::default();
    let mut login = None;
    loop {
        let Some(line) = read_line(s).await else {
            return Next::Closed;
        };
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if offer_tls {
                b"250-localhost\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else if encrypted {
                b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
            } else {
                b"250-localhost\r\n250 8BITMIME\r\n"
            }
        } else if let (true, Some(response)) = (encrypted, upper.strip_prefix("AUTH PLAIN ")) {
            match plain_credentials(&line[line.len() - response.len()..]) {
                Some((_, password)) if password == "wrong" => b"535 5.7.8 bad credentials\r\n",
                Some(credentials) => {
                    login = Some(credentials);
                    b"235 2.7.0 authenticated\r\n"
                }
                None => b"501 5.5.2 cannot decode\r\n",
            }
        } else if upper == "STARTTLS" && offer_tls {
            let _ = s.write_all(b"220 ready to start TLS\r\n").await;
            let _ = s.flush().await;
            return Next::StartTls;
        } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
            mail = Mail {
                from: addr_of(&line[line.len() - from.len()..]),
                encrypted,
                login: login.clone(),
                ..Mail::default()
            };
            b"250 OK\r\n"
        } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
            let to = addr_of(&line[line.len() - to.len()..]);
            if to.starts_with("nobody@") {
                b"550 5.1.1 no such user\r\n"
            } else {
                mail.to.push(to);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            let _ = s.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let _ = s.flush().await;
            while let Some(data) = read_line(s).await {
                if data == "." {
                    break;
                }
                mail.data.push_str(data.strip_prefix('.').unwrap_or(&data));
                mail.data.push('\n');
            }
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            let _ = s.write_all(b"221 bye\r\n").await;
            let _ = s.flush().await;
            return Next::Closed;
        } else {
            b"250 OK\r\n"
        };
        if s.write_all(reply).await.is_err() || s.flush().await.is_err() {
            return Next::Closed;
        }
    }
}

/// The next line without its CRLF; `None` at the end or on an error.
async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) -> Option<String> {
    let mut line = String::new();
    match s.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// The user and password of an AUTH PLAIN response (`\0user\0password`, base64).
fn plain_credentials(response: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(response.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let mut parts = text.split('\0');
    let _authzid = parts.next()?;
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// `<a@b>` (maybe with parameters) to `a@b`.
fn addr_of(arg: &str) -> String {
    arg.split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches(['<', '>'])
        .to_owned()
}

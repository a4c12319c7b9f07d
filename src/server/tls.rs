//! TLS for the webhook's HTTPS port: loading the serving certificate and
//! reloading it when it rotates ([`super::serve`] has the accept loop that
//! serves HTTP/1.1 over it).
//!
//! The certificate comes from a Secret volume. The kubelet updates such a
//! volume by writing a new timestamped directory and swapping the `..data`
//! symlink, so an inotify watch on the files themselves never fires (the
//! kubewarden policy-server learned this the hard way). Instead a watcher
//! re-reads both files on a timer and compares their bytes; reading through
//! the symlinks always sees the current generation.

use std::{
    fmt::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Once},
    time::Duration,
};

use arc_swap::ArcSwapOption;
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio::{sync::watch, task::JoinHandle, time::MissedTickBehavior};

use crate::error::{Error, Result};
use rustls::server::danger::ClientCertVerifier;

/// How often callers should poll the certificate files. Secret volume updates
/// already lag the API by up to a minute, so one second adds nothing visible.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

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

/// The accept loops live in [`super::serve`]; they are named here too, beside
/// the configuration they serve.
pub use super::serve::{Limits, serve_plain, serve_tls};

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

//! Where the webhook's serving certificate comes from: files re-read when they
//! change (a mounted Secret, or files written by hand), or a Secret watched
//! through the API, which the operator creates and rotates.

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt as _, watcher},
};
use tokio::sync::watch as signal;

use super::Readiness;
use crate::{
    error::Result,
    pki::{TLS_CERT, TLS_KEY},
    server::tls::{CertReloader, DEFAULT_RELOAD_INTERVAL},
};

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, polled for changes.
    Files { cert: PathBuf, key: PathBuf },
    /// `tls.crt` and `tls.key` of a Secret, watched.
    Secret { namespace: String, name: String },
}

/// Starts serving from `source`. Files are validated before this returns; a
/// Secret may not exist yet, and readiness waits for it.
pub fn start(
    client: &Client,
    source: &TlsSource,
    ready: &Arc<Readiness>,
    shutdown: signal::Receiver<bool>,
) -> Result<Arc<CertReloader>> {
    match source {
        TlsSource::Files { cert, key } => {
            let reloader = CertReloader::load(cert.clone(), key.clone())?;
            reloader.spawn_watcher(DEFAULT_RELOAD_INTERVAL, shutdown);
            ready.mark_certificate_ready();
            Ok(reloader)
        }
        TlsSource::Secret { namespace, name } => {
            let reloader = CertReloader::empty();
            let api = Api::<Secret>::namespaced(client.clone(), namespace);
            tokio::spawn(follow_secret(
                api,
                format!("Secret {namespace}/{name}"),
                name.clone(),
                Arc::clone(&reloader),
                Arc::clone(ready),
            ));
            Ok(reloader)
        }
    }
}

/// Installs every version of the Secret that carries a usable pair. An
/// unusable version is logged and the previous certificate keeps serving.
async fn follow_secret(
    api: Api<Secret>,
    label: String,
    name: String,
    reloader: Arc<CertReloader>,
    ready: Arc<Readiness>,
) {
    // RBAC can limit a watch to one name only through this field selector.
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff().applied_objects());
    let mut waiting_logged = false;
    let mut last_error: Option<String> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        let secret = match next {
            Err(_) => {
                if !reloader.has_certificate() && !waiting_logged {
                    tracing::warn!(secret = %label, "no serving certificate yet; waiting for the operator to create it");
                    waiting_logged = true;
                }
                continue;
            }
            Ok(None) => return,
            Ok(Some(Err(err))) => {
                tracing::warn!(secret = %label, error = %err, "watching the TLS Secret failed; retrying");
                continue;
            }
            Ok(Some(Ok(secret))) => secret,
        };
        let data = secret.data.unwrap_or_default();
        let (Some(cert), Some(key)) = (data.get(TLS_CERT), data.get(TLS_KEY)) else {
            tracing::warn!(secret = %label, "the TLS Secret has no {TLS_CERT} and {TLS_KEY} yet");
            continue;
        };
        match reloader.install_pem(&label, &cert.0, &key.0) {
            Ok(_) => {
                last_error = None;
                ready.mark_certificate_ready();
            }
            Err(err) => {
                let message = err.to_string();
                if last_error.as_deref() != Some(&message) {
                    tracing::warn!(
                        secret = %label,
                        error = %message,
                        serving = %reloader.current_fingerprint(),
                        "ignoring an unusable certificate; still serving the previous one"
                    );
                }
                last_error = Some(message);
            }
        }
    }
}

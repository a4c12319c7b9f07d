//! `approval-gate console`: the approver's inbox on the web.
//!
//! People sign in through the company's identity provider (OpenID Connect,
//! authorization code with PKCE, see [`auth`]). The console then talks to the
//! apiserver **as that person**: it forwards their own ID token, which the
//! apiserver verifies through its JWT authenticator. RBAC and approval-gate's
//! guard judge the person exactly as they judge `kubectl approve`; the
//! console's own service account may only read requests, to learn when one
//! changes ([`live`]).
//!
//! Pages are server-rendered ([`pages`], pure: views in, HTML out); the one
//! script updates a request's page from server-sent events.

pub mod auth;
pub mod live;
pub mod pages;
mod routes;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use kube::Client;
use tokio::net::TcpListener;

use crate::{
    error::{Error, Result},
    server::tls,
};

/// How the console runs.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The address people open, e.g. `https://approvals.example.com`: the
    /// OIDC redirect is `<public_url>/callback`, and forms must come from it.
    pub public_url: String,
    pub oidc: auth::OidcConfig,
    /// How long a sign-in lasts at most (never past the ID token's expiry).
    pub session_ttl: Duration,
    /// Serve HTTPS with this certificate and key (re-read when they change);
    /// without, plain HTTP for a TLS-terminating proxy in front.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Serves the console until `shutdown` resolves. `own` is the console's own
/// client (its service account): it only watches requests. `base` is the
/// apiserver connection people's clients are built from, with their tokens.
pub async fn serve(
    own: Client,
    base: kube::Config,
    config: ConsoleConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let changes = live::Changes::watch(own);
    let state = Arc::new(routes::State::new(&config, base, changes)?);
    let app = routes::router(state);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
    tracing::info!(listen = %config.listen, public_url = %config.public_url, mode = ?config.oidc.mode, "console listening");
    if config.oidc.mode == auth::Mode::Impersonate {
        tracing::warn!(
            "impersonation mode: the console acts as whoever the identity provider signed in, \
             with its own account; the apiserver trusts the console, not the ID token"
        );
    }
    let mut stop = shutdown.clone();
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    match &config.tls {
        Some((cert, key)) => {
            let resolver = tls::CertReloader::load(cert.clone(), key.clone())?;
            let _watcher = resolver.spawn_watcher(tls::DEFAULT_RELOAD_INTERVAL, shutdown);
            let server = tls::server_config(resolver, None);
            tls::serve_tls(listener, app, server, tls::Limits::default(), stopped).await
        }
        None => tls::serve_plain(listener, app, stopped).await,
    }
}

//! Sign-in through the company's identity provider, and the sessions it opens.
//!
//! The flow is OpenID Connect's authorization code with PKCE (S256), a
//! `state` and a `nonce`, done by the `openidconnect` crate. The ID token it
//! returns is kept only in the server-side session and sent only to the
//! apiserver, as a bearer token: never in a URL, a cookie or a log line.
//! The browser holds a random session id in an HttpOnly, Secure,
//! SameSite=Lax cookie; every form also carries the session's CSRF token.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use kube::{Client, config::AuthInfo};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::plugin::client::{Conn, Me};

/// The identity provider and this console's registration with it.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The issuer URL; its discovery document is read on the first sign-in.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Trust this PEM CA for the issuer, besides the system's roots.
    pub issuer_ca: Option<PathBuf>,
    /// How people's calls reach the apiserver.
    pub mode: Mode,
}

/// How the console acts on the apiserver for a signed-in person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// With the person's own ID token; the apiserver verifies it (a JWT
    /// authenticator trusting the same issuer). The console adds no power.
    #[default]
    Token,
    /// With the console's own credentials, impersonating the user (`sub`) and
    /// groups (`groups`) of the ID token the console verified. The apiserver
    /// then trusts the console, and the console's account may act as anyone.
    Impersonate,
}

/// Why a sign-in failed; shown to the person as is, so it never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider could not be reached or read: {0}")]
    Provider(String),
    #[error("this sign-in was not started here, or took too long; start again")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("the cluster does not accept your sign-in: {0}")]
    Cluster(String),
}

type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A sign-in that went to the identity provider and has not come back yet.
struct Pending {
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    /// Where to go after signing in (a path on this console).
    next: String,
    started: Instant,
}

/// A signed-in person.
pub struct Session {
    /// Who the apiserver says they are (a SelfSubjectReview with their token).
    pub me: Me,
    /// A client that authenticates as them, with their ID token.
    pub client: Client,
    /// The token forms must carry.
    pub csrf: String,
    pub expires: Instant,
}

impl Session {
    /// A connection for the plugin's request functions, in `namespace`.
    pub fn conn(&self, namespace: &str) -> Conn {
        Conn {
            client: self.client.clone(),
            namespace: namespace.to_owned(),
            url: "the cluster".to_owned(),
        }
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        let (a, b) = (Sha256::digest(self.csrf.as_bytes()), Sha256::digest(token));
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

/// Sign-ins under way are bounded, so a flood of `/login` cannot take the memory.
const MAX_PENDING: usize = 10_000;
const PENDING_TTL: Duration = Duration::from_secs(600);

/// Sessions and sign-ins under way, in memory (one console replica, or
/// sticky sessions in front of several).
pub struct Auth {
    config: OidcConfig,
    redirect: String,
    session_ttl: Duration,
    base: kube::Config,
    http: reqwest::Client,
    client: OnceCell<Oidc>,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Auth {
    pub fn new(
        config: OidcConfig,
        public_url: &str,
        session_ttl: Duration,
        base: kube::Config,
    ) -> crate::error::Result<Self> {
        let mut http = reqwest::Client::builder()
            // OpenID Connect clients must not follow redirects (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            // No idle connections are kept: sign-ins are rare, and an
            // identity provider may close an idle one just as it is reused
            // (Node's default is after 5 s), which failed a token exchange
            // with "peer closed connection" in a clean-clone test run.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10));
        if let Some(path) = &config.issuer_ca {
            let pem = std::fs::read(path)
                .map_err(|e| crate::error::Error::io(format!("reading {}", path.display()), e))?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                crate::error::Error::tls(format!("the issuer CA {}", path.display()), e)
            })?;
            http = http.add_root_certificate(ca);
        }
        let http = http
            .build()
            .map_err(|e| crate::error::Error::tls("building the OIDC client", e))?;
        Ok(Self {
            config,
            redirect: format!("{}/callback", public_url.trim_end_matches('/')),
            session_ttl,
            base,
            http,
            client: OnceCell::new(),
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The OIDC client, from the issuer's discovery document (read once; a
    /// failed read is retried on the next sign-in).
    async fn oidc(&self) -> Result<&Oidc, SignInError> {
        self.client
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.config.issuer.clone())
                    .map_err(|e| SignInError::Provider(e.to_string()))?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| SignInError::Provider(error_chain(&e)))?;
                let redirect = RedirectUrl::new(self.redirect.clone())
                    .map_err(|e| SignInError::Provider(e.to_string()))?;
                Ok(CoreClient::from_provider_metadata(
                    metadata,
                    ClientId::new(self.config.client_id.clone()),
                    Some(ClientSecret::new(self.config.client_secret.clone())),
                )
                .set_redirect_uri(redirect))
            })
            .await
    }

    /// Starts a sign-in: returns the sign-in's id (for its cookie) and the
    /// identity provider's URL to send the browser to.
    pub async fn start(&self, next: &str) -> Result<(String, String), SignInError> {
        let oidc = self.oidc().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = oidc
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("groups".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let id = random_id();
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            return Err(SignInError::Provider(
                "too many sign-ins under way; try again in a few minutes".to_owned(),
            ));
        }
        pending.insert(
            id.clone(),
            Pending {
                state,
                nonce,
                verifier,
                next: safe_next(next),
                started: Instant::now(),
            },
        );
        Ok((id, url.to_string()))
    }

    /// Finishes the sign-in `id` with the provider's answer: checks `state`,
    /// exchanges the code with the PKCE verifier, verifies the ID token
    /// (signature, issuer, audience, expiry, nonce) and asks the apiserver
    /// who the token's bearer is. Returns the new session's id and where to go.
    pub async fn finish(
        &self,
        id: &str,
        state: &str,
        code: &str,
    ) -> Result<(String, String), SignInError> {
        let pending = lock(&self.pending)
            .remove(id)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
            .ok_or(SignInError::UnknownState)?;
        if pending.state.secret().as_bytes() != state.as_bytes() {
            return Err(SignInError::UnknownState);
        }
        let oidc = self.oidc().await?;
        let response = oidc
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Refused(error_chain(&e)))?;
        let token = response.id_token().ok_or(SignInError::NoIdToken)?;
        let claims = token
            .claims(&oidc.id_token_verifier(), &pending.nonce)
            .map_err(|e| SignInError::InvalidToken(e.to_string()))?;
        let left =
            u64::try_from(claims.expiration().timestamp() - jiff::Timestamp::now().as_second())
                .map(Duration::from_secs)
                .unwrap_or_default();
        let client = match self.config.mode {
            Mode::Token => self.client_for(&token.to_string())?,
            Mode::Impersonate => {
                let groups = verified_groups(&token.to_string())?;
                let (user, groups) = impersonable(claims.subject().as_str(), groups)?;
                self.impersonating(&user, groups)?
            }
        };
        let me = Conn {
            client: client.clone(),
            namespace: String::new(),
            url: "the cluster".to_owned(),
        }
        .whoami()
        .await
        .map_err(|e| SignInError::Cluster(e.to_string()))?;
        let session = Session {
            me,
            client,
            csrf: random_id(),
            expires: Instant::now() + left.min(self.session_ttl),
        };
        tracing::info!(user = %session.me.user, "signed in");
        let sid = random_id();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > Instant::now());
        sessions.insert(sid.clone(), Arc::new(session));
        Ok((sid, pending.next))
    }

    /// A client that authenticates with `token` and nothing else.
    fn client_for(&self, token: &str) -> Result<Client, SignInError> {
        let mut config = self.base.clone();
        config.auth_info = AuthInfo {
            token: Some(token.to_owned().into()),
            ..AuthInfo::default()
        };
        Client::try_from(config).map_err(|e| SignInError::Cluster(e.to_string()))
    }

    /// The console's own client, impersonating `user` with `groups`.
    fn impersonating(&self, user: &str, groups: Vec<String>) -> Result<Client, SignInError> {
        let mut config = self.base.clone();
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = Some(groups);
        Client::try_from(config).map_err(|e| SignInError::Cluster(e.to_string()))
    }

    /// The live session with this id, if any.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let mut sessions = lock(&self.sessions);
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(Arc::clone(s)),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn sign_out(&self, id: &str) {
        if let Some(s) = lock(&self.sessions).remove(id) {
            tracing::info!(user = %s.me.user, "signed out");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 32 random bytes, URL-safe base64.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A path on this console to return to; anything else (another host,
/// `//host`, a scheme) becomes `/`.
pub fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if ok { next.to_owned() } else { "/".to_owned() }
}

/// The `groups` claim of an ID token whose signature and claims
/// `openidconnect` has already verified (it reads only standard claims).
fn verified_groups(token: &str) -> Result<Vec<String>, SignInError> {
    let invalid = |why: &str| SignInError::InvalidToken(why.to_owned());
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("its payload is not base64url"))?;
    #[derive(serde::Deserialize)]
    struct Groups {
        #[serde(default)]
        groups: Vec<String>,
    }
    let claims: Groups = serde_json::from_slice(&bytes)
        .map_err(|_| invalid("its groups claim is not a list of strings"))?;
    Ok(claims.groups)
}

/// The identity to impersonate for an ID token's `sub` and `groups`:
/// never a built-in one. A `system:` user is refused, and `system:` groups
/// (`system:masters` would make anyone a cluster admin) are left out.
fn impersonable(user: &str, groups: Vec<String>) -> Result<(String, Vec<String>), SignInError> {
    if user.is_empty() || user.starts_with("system:") {
        return Err(SignInError::Cluster(format!(
            "the console does not impersonate the user {user:?}: system identities are not signed in here"
        )));
    }
    let groups = groups
        .into_iter()
        .filter(|g| !g.starts_with("system:"))
        .collect();
    Ok((user.to_owned(), groups))
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(next) = cur {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cur = next.source();
    }
    text
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

//! A real OpenID Connect provider for the console's tests and `make dev`:
//! the certified `oidc-provider` package run by Node.js (`hack/oidc/`,
//! installed outside the repository by `hack/oidc-provider.sh`), with its own
//! login form and the static demo users below.
//!
//! The local apiserver trusts it through its structured authentication
//! configuration (a JWT authenticator, see [`JwtIssuer`]), so an ID token it
//! issues authenticates its user to the apiserver as that same user name.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{certs::ServingCerts, free_ports, process::ManagedProcess, write};
use crate::error::{Error, Result};

/// The OAuth client id of the console, and the audience the apiserver accepts.
pub const CONSOLE_CLIENT_ID: &str = "approval-gate-console";

/// One demo user of the identity provider (see `hack/oidc/server.mjs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoUser {
    pub name: &'static str,
    pub password: &'static str,
    pub groups: &'static [&'static str],
}

/// The provider's users: the same names and groups as the static-token
/// identities, so RBAC and policies treat both sign-ins alike.
pub const DEMO_USERS: [DemoUser; 4] = [
    DemoUser {
        name: "alice",
        password: "alice-password",
        groups: &["dev", "approval-gate:requesters"],
    },
    DemoUser {
        name: "bob",
        password: "bob-password",
        groups: &["sre", "approval-gate:approvers"],
    },
    DemoUser {
        name: "dave",
        password: "dave-password",
        groups: &["sre", "approval-gate:approvers"],
    },
    DemoUser {
        name: "carol",
        password: "carol-password",
        groups: &["support"],
    },
];

/// What the apiserver needs to trust an issuer's ID tokens.
#[derive(Clone, Debug)]
pub struct JwtIssuer {
    pub url: String,
    pub ca_pem: String,
    pub audience: String,
}

impl JwtIssuer {
    /// An `AuthenticationConfiguration` with one JWT authenticator: user
    /// name from `sub`, groups from `groups`, both unprefixed (the demo
    /// users are the same people as the token identities).
    pub fn authentication_config(&self) -> Result<String> {
        let config = serde_json::json!({
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthenticationConfiguration",
            "jwt": [{
                "issuer": {
                    "url": self.url,
                    "certificateAuthority": self.ca_pem,
                    "audiences": [self.audience],
                },
                "claimMappings": {
                    "username": {"claim": "sub", "prefix": ""},
                    "groups": {"claim": "groups", "prefix": ""},
                },
            }],
        });
        Ok(serde_yaml_ng::to_string(&config)?)
    }
}

/// One client registered with the provider.
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
    pub post_logout_redirect_uri: String,
}

/// The running provider; it stops when dropped.
pub struct IdentityProvider {
    issuer: String,
    ca_pem: String,
    ca_file: PathBuf,
    log: PathBuf,
    _process: ManagedProcess,
}

impl IdentityProvider {
    /// Starts the provider on a free loopback port over HTTPS, with files in
    /// `dir`, and waits until it listens.
    pub async fn start(dir: &Path, clients: &[OidcClient]) -> Result<Self> {
        let server = provider_dir()?.join("server.mjs");
        let [port] = free_ports()?;
        let issuer = format!("https://127.0.0.1:{port}");
        let certs = ServingCerts::generate("approval-gate demo identity provider", &["127.0.0.1"])?;
        let (ca_file, cert, key) = (
            dir.join("oidc-ca.crt"),
            dir.join("oidc.crt"),
            dir.join("oidc.key"),
        );
        write(&ca_file, &certs.ca_pem)?;
        write(&cert, &certs.cert_pem)?;
        write(&key, &certs.key_pem)?;
        let clients: Vec<serde_json::Value> = clients
            .iter()
            .map(|c| {
                serde_json::json!({
                    "client_id": c.id,
                    "client_secret": c.secret,
                    "redirect_uris": [c.redirect_uri],
                    "post_logout_redirect_uris": [c.post_logout_redirect_uri],
                })
            })
            .collect();
        let clients = serde_json::to_string(&clients)?;
        let log = dir.join("oidc-provider.log");
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let process = ManagedProcess::spawn_with_env(
            "oidc-provider",
            Path::new("node"),
            &[server.display().to_string()],
            &[
                ("OIDC_ISSUER", issuer.as_str()),
                ("OIDC_TLS_CERT", cert.as_str()),
                ("OIDC_TLS_KEY", key.as_str()),
                ("OIDC_CLIENTS", clients.as_str()),
            ],
            &log,
        )?;
        let provider = Self {
            issuer,
            ca_pem: certs.ca_pem,
            ca_file,
            log,
            _process: process,
        };
        provider.wait_listening(Duration::from_secs(30)).await?;
        Ok(provider)
    }

    async fn wait_listening(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let ready = format!("listening on {}", self.issuer);
        while tokio::time::Instant::now() < deadline {
            if self.log_text().contains(&ready) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Timeout {
            what: format!(
                "the identity provider to listen; its log:\n{}",
                self.log_text()
            ),
            after: timeout,
        })
    }

    /// The issuer URL (`https://127.0.0.1:<port>`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The PEM file of the CA that signed the provider's serving certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// What the apiserver needs to trust this provider's ID tokens for `audience`.
    pub fn jwt_issuer(&self, audience: &str) -> JwtIssuer {
        JwtIssuer {
            url: self.issuer.clone(),
            ca_pem: self.ca_pem.clone(),
            audience: audience.to_owned(),
        }
    }

    /// The provider's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The installed provider: `APPROVAL_GATE_OIDC_DIR`, else whatever
/// `hack/oidc-provider.sh --dir` names (installed by `make test` and `make dev`).
pub fn provider_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("APPROVAL_GATE_OIDC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = crate::repo_root().join("hack/oidc-provider.sh");
            let out = std::process::Command::new(&script)
                .arg("--dir")
                .output()
                .map_err(|e| Error::io(format!("running {}", script.display()), e))?;
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    if dir.join("server.mjs").exists() && dir.join("node_modules").exists() {
        Ok(dir)
    } else {
        Err(Error::MissingBinary {
            name: "oidc-provider (run hack/oidc-provider.sh)".to_owned(),
            dir,
        })
    }
}

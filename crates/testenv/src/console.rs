//! The real `approval-gate console` binary beside the local control plane,
//! signing people in through the local [`super::oidc::IdentityProvider`].

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    certs::ServingCerts,
    free_ports,
    oidc::{CONSOLE_CLIENT_ID, IdentityProvider, OidcClient},
    process::ManagedProcess,
    random_token, write,
};
use crate::error::{Error, Result};

/// A console's address and secret, chosen before the provider starts (the
/// provider must know the console's redirect URI).
pub struct ConsolePlan {
    pub port: u16,
    pub client: OidcClient,
}

impl ConsolePlan {
    /// A free loopback port and a fresh client secret, for the console's
    /// client id (the audience the local apiserver accepts).
    pub fn new() -> Result<Self> {
        Self::for_client(CONSOLE_CLIENT_ID)
    }

    /// Like [`Self::new`], registered at the provider as `client_id`.
    pub fn for_client(client_id: &str) -> Result<Self> {
        let [port] = free_ports()?;
        let url = format!("https://127.0.0.1:{port}");
        Ok(Self {
            port,
            client: OidcClient {
                id: client_id.to_owned(),
                secret: random_token(),
                redirect_uri: format!("{url}/callback"),
                post_logout_redirect_uri: format!("{url}/"),
            },
        })
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// The running console; it stops when dropped.
pub struct LocalConsole {
    pub url: String,
    /// The CA of the console's serving certificate.
    pub ca_pem: String,
    log: PathBuf,
    process: ManagedProcess,
}

impl LocalConsole {
    /// Starts `binary console` acting as `kubeconfig`'s identity (its own
    /// service account), with its files in `dir` and `extra` flags.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        kubeconfig: &Path,
        plan: &ConsolePlan,
        provider: &IdentityProvider,
        extra: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let certs = ServingCerts::generate("approval-gate console", &["127.0.0.1", "localhost"])?;
        let (cert, key, secret) = (
            dir.join("console.crt"),
            dir.join("console.key"),
            dir.join("client-secret"),
        );
        write(&cert, &certs.cert_pem)?;
        write(&key, &certs.key_pem)?;
        write(&secret, &plan.client.secret)?;
        let url = plan.url();
        let path = |p: &Path| p.display().to_string();
        let mut args = vec![
            "console".to_owned(),
            format!("--listen=127.0.0.1:{}", plan.port),
            format!("--public-url={url}"),
            format!("--issuer-url={}", provider.issuer()),
            format!("--issuer-ca-file={}", path(provider.ca_file())),
            format!("--client-id={}", plan.client.id),
            format!("--client-secret-file={}", path(&secret)),
            format!("--tls-cert-file={}", path(&cert)),
            format!("--tls-key-file={}", path(&key)),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let log = dir.join("console.log");
        let kubeconfig = path(kubeconfig);
        let process = ManagedProcess::spawn_with_env(
            "approval-gate-console",
            binary,
            &args,
            &[
                ("KUBECONFIG", kubeconfig.as_str()),
                ("RUST_LOG", "info,kube=warn,hyper=warn"),
            ],
            &log,
        )?;
        let console = Self {
            url,
            ca_pem: certs.ca_pem,
            log,
            process,
        };
        console.wait_ready(Duration::from_secs(30)).await?;
        Ok(console)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).map_err(Error::Http)?,
            )
            .build()
            .map_err(Error::Http)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("{}/healthz", self.url);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Timeout {
            what: format!("the console to answer; its log:\n{}", self.log()),
            after: timeout,
        })
    }

    /// The console's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the console.
    pub fn stop(mut self) {
        self.process.stop(Duration::from_secs(5));
    }
}

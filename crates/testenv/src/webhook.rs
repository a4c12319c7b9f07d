//! Runs the real `approval-gate webhook` binary beside the local control plane
//! and registers it by URL, as `make dev` and the integration tests do.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhookConfiguration,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

use super::{
    CONTROL_NAMESPACE, WEBHOOK_CLIENT_CA, WEBHOOK_CLIENT_NAME, certs::ServingCerts, free_ports,
    process::ManagedProcess, write,
};
use crate::error::{Error, Result};
use approval_gate::registration::{
    CONFIGURATION_NAME, Endpoint, NamespaceScope, Registration, ScopedRules, configuration,
};

/// A webhook process serving on loopback.
pub struct LocalWebhook {
    pub url: String,
    pub metrics_url: String,
    pub ca_pem: String,
    pub dir: PathBuf,
    process: ManagedProcess,
}

impl LocalWebhook {
    /// Starts `binary webhook` acting through `kubeconfig`, with a fresh
    /// certificate in `dir`. It is not registered and may not be ready yet.
    pub fn spawn(binary: &Path, dir: &Path, kubeconfig: &Path) -> Result<Self> {
        Self::spawn_with(binary, dir, kubeconfig, &["webhook"])
    }

    /// Like [`Self::spawn`] with another subcommand and extra flags, for
    /// example `["serve", "--retention=5s"]` to run the operator too.
    pub fn spawn_with(
        binary: &Path,
        dir: &Path,
        kubeconfig: &Path,
        command: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let certs = ServingCerts::generate("approval-gate-webhook", &["127.0.0.1", "localhost"])?;
        write(&dir.join("tls.crt"), &certs.cert_pem)?;
        write(&dir.join("tls.key"), &certs.key_pem)?;
        let files = [
            format!("--tls-cert-file={}", dir.join("tls.crt").display()),
            format!("--tls-key-file={}", dir.join("tls.key").display()),
        ];
        Self::start(binary, dir, kubeconfig, command, &files, certs.ca_pem)
    }

    /// Runs `binary serve` as a cluster would, but outside it: the operator
    /// issues the certificate into the chart's Secret, and registers this
    /// process by URL in the chart's ValidatingWebhookConfiguration, owned by
    /// the chart's ClusterRole. `extra` adds flags (e.g. `--rotation-step=2s`,
    /// or another `--control-namespace` or `--owner-cluster-role`).
    /// `ca_pem` stays empty: the CA lives in the Secret and the configuration.
    pub fn spawn_registering(
        binary: &Path,
        dir: &Path,
        kubeconfig: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut command = vec!["serve"];
        if !extra.iter().any(|a| a.starts_with("--owner-cluster-role")) {
            command.push("--owner-cluster-role=approval-gate");
        }
        command.extend_from_slice(extra);
        Self::start(binary, dir, kubeconfig, &command, &[], String::new())
    }

    fn start(
        binary: &Path,
        dir: &Path,
        kubeconfig: &Path,
        command: &[&str],
        tls_files: &[String],
        ca_pem: String,
    ) -> Result<Self> {
        let [port, metrics_port] = free_ports()?;
        let url = format!("https://127.0.0.1:{port}");
        let mut args: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
        if tls_files.is_empty() {
            args.push(format!("--webhook-url={url}"));
        }
        if !command.iter().any(|a| a.starts_with("--control-namespace")) {
            args.push(format!("--control-namespace={CONTROL_NAMESPACE}"));
        }
        args.extend_from_slice(tls_files);
        // Beside a local control plane's kubeconfigs lies the CA of the client
        // certificate its apiserver presents: require it, as a cluster should.
        let client_ca = kubeconfig
            .parent()
            .map(|d| d.join(WEBHOOK_CLIENT_CA))
            .filter(|p| p.exists());
        if let Some(ca) = client_ca {
            args.push(format!("--client-ca-file={}", ca.display()));
            args.push(format!("--client-name={WEBHOOK_CLIENT_NAME}"));
        }
        args.extend([
            // Tests wait on the index to know the webhook saw a policy.
            "--debug-index".to_owned(),
            format!("--listen=127.0.0.1:{port}"),
            format!("--metrics-listen=127.0.0.1:{metrics_port}"),
            format!(
                "--instance=local-{}",
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("webhook")
            ),
        ]);
        let kubeconfig = kubeconfig.display().to_string();
        let process = ManagedProcess::spawn_with_env(
            "approval-gate-webhook",
            binary,
            &args,
            &[
                ("KUBECONFIG", &kubeconfig),
                ("RUST_LOG", "info,approval_gate=debug"),
            ],
            &dir.join("webhook.log"),
        )?;
        Ok(Self {
            url,
            metrics_url: format!("http://127.0.0.1:{metrics_port}"),
            ca_pem,
            dir: dir.to_owned(),
            process,
        })
    }

    /// The id of the webhook process itself (`binary`, which it was started
    /// with), for reading its memory use from `/proc`.
    pub fn pid(&self, binary: &Path) -> Option<u32> {
        self.process.program_id(binary)
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("webhook.log")).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("{}/readyz", self.metrics_url);
        while tokio::time::Instant::now() < deadline {
            if http_get_ok(&url).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Timeout {
            what: format!("the webhook to become ready; its log:\n{}", self.log()),
            after: timeout,
        })
    }

    /// Registers this webhook by URL for `rules`, in any namespace.
    pub async fn register(&self, client: &Client, rules: Vec<RuleWithOperations>) -> Result<()> {
        let registration = Registration::new(Endpoint::Url(self.url.clone()), CONTROL_NAMESPACE);
        let any = ScopedRules {
            scope: NamespaceScope::Any,
            rules,
        };
        let config = configuration(&registration, self.ca_pem.as_bytes(), vec![any]);
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .patch(
                CONFIGURATION_NAME,
                &PatchParams::apply("approval-gate-testenv").force(),
                &Patch::Apply(&config),
            )
            .await?;
        Ok(())
    }
}

/// A plain-HTTP GET on loopback without another client library: the metrics
/// port speaks HTTP/1.1.
async fn http_get_ok(url: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return false;
    };
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.ends_with(b"200")
}

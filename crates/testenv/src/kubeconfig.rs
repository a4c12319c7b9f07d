//! Kubeconfig files for the local control plane's identities.

use std::path::Path;

use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::error::{Error, Result};

/// A kubeconfig with one cluster, one user (a bearer token) and one context.
pub fn render(server: &str, ca_pem: &str, user: &str, token: &str) -> Result<String> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "approval-gate-dev", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "approval-gate-dev", "user": user, "namespace": "default"}}],
        "current-context": user,
    });
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// Builds a client from a kubeconfig file, optionally impersonating someone.
pub async fn client_from_file(
    path: &Path,
    impersonate: Option<(&str, &[String])>,
) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    if let Some((user, groups)) = impersonate {
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.to_vec());
    }
    kube::Client::try_from(config).map_err(Error::from)
}

//! The harness's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while starting or driving the local control
/// plane, its node, identity provider, console or webhook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binary {name} not found in {dir}; run hack/build-tools.sh or set KUBEBUILDER_ASSETS")]
    MissingBinary { name: String, dir: PathBuf },

    #[error("local control plane: {0}")]
    ControlPlane(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },

    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),

    #[error("the kubeconfig could not be used: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    #[error("YAML error: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),

    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),

    #[error("certificate error: {0}")]
    Certificate(#[from] rcgen::Error),

    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),

    #[error(transparent)]
    Product(#[from] approval_gate::Error),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in approval-gate's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),

    #[error("the kubeconfig could not be used: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("YAML error: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),

    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),

    #[error("certificate error: {0}")]
    Certificate(#[from] rcgen::Error),

    #[error("TLS: {0}")]
    Tls(String),

    #[error("binary {name} not found in {dir}; run hack/build-tools.sh or set KUBEBUILDER_ASSETS")]
    MissingBinary { name: String, dir: PathBuf },

    #[error("local control plane: {0}")]
    ControlPlane(String),

    #[error("notification over {channel}: {message}")]
    Notify {
        channel: &'static str,
        message: String,
    },

    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Kubeconfig(_) => "kubeconfig",
            Self::Io { .. } => "io",
            Self::Yaml(_) | Self::Json(_) => "serialization",
            Self::Certificate(_) => "certificate",
            Self::Tls(_) => "tls",
            Self::MissingBinary { .. } | Self::ControlPlane(_) => "control_plane",
            Self::Timeout { .. } => "timeout",
            Self::Notify { .. } => "notify",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

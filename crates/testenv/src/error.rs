//! The harness's one error type. What the product's own error type already
//! says (I/O, the Kubernetes API, serialization, certificates) is carried as
//! [`Error::Product`]; the harness adds its own failures.

use std::path::PathBuf;

/// Everything that can go wrong while starting or driving the local control
/// plane, its node, identity provider, console or webhook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binary {name} not found in {dir}; run hack/build-tools.sh or set KUBEBUILDER_ASSETS")]
    MissingBinary { name: String, dir: PathBuf },

    #[error("local control plane: {0}")]
    ControlPlane(String),

    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        what: String,
        after: std::time::Duration,
    },

    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),

    #[error(transparent)]
    Product(#[from] approval_gate::Error),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Product(approval_gate::Error::io(context, source))
    }
}

/// Errors the product's error type wraps, converted through it.
macro_rules! through_product {
    ($($from:ty),*) => {
        $(impl From<$from> for Error {
            fn from(e: $from) -> Self {
                Self::Product(e.into())
            }
        })*
    };
}

through_product!(
    kube::Error,
    kube::config::KubeconfigError,
    serde_yaml_ng::Error,
    serde_json::Error,
    rcgen::Error
);

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The crate's one error type.
//!
//! Every variant that wraps another error keeps it as its `source`, so a log
//! line or an Event can show the whole chain ([`report`]). Each variant knows
//! its metric label and the reason of the Warning Event it becomes.

use crate::events::Reason;

/// The cause of an error whose type varies (a TLS library's, an HTTP
/// client's, a parser's).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

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

    #[error("TLS: {context}{}", with_cause(.source.as_ref()))]
    Tls {
        context: String,
        #[source]
        source: Option<Cause>,
    },

    #[error("leader election: {0}")]
    LeaderElection(#[source] kube_lease_manager::LeaseManagerError),

    /// A write conditioned on the resourceVersion lost every retry.
    #[error("{what}: it kept changing")]
    Conflict { what: String },

    /// The name is taken by an object that is not the one meant.
    #[error("{what} already exists and asks for a different action")]
    Taken { what: String },

    /// A task the work was handed to ended without an answer.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),

    #[error("notification over {channel}: {message}{}", with_cause(.source.as_ref()))]
    Notify {
        channel: &'static str,
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

fn with_cause(source: Option<&Cause>) -> String {
    source.map(|s| format!(": {s}")).unwrap_or_default()
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A TLS error caused by `source`.
    pub fn tls(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Tls {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A TLS error with no underlying error (say, a file holds no certificate).
    pub fn tls_invalid(context: impl Into<String>) -> Self {
        Self::Tls {
            context: context.into(),
            source: None,
        }
    }

    /// A notification that failed with `message`, caused by `source` if given.
    pub fn notify(
        channel: &'static str,
        message: impl Into<String>,
        source: Option<Cause>,
    ) -> Self {
        Self::Notify {
            channel,
            message: message.into(),
            source,
        }
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Kubeconfig(_) => "kubeconfig",
            Self::Io { .. } => "io",
            Self::Yaml(_) | Self::Json(_) => "serialization",
            Self::Certificate(_) => "certificate",
            Self::Tls { .. } => "tls",
            Self::LeaderElection(_) => "leader_election",
            Self::Conflict { .. } => "conflict",
            Self::Taken { .. } => "taken",
            Self::Task(_) => "task",
            Self::Notify { .. } => "notify",
        }
    }

    /// The reason of the Warning Event this error becomes.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Kube(_) | Self::Kubeconfig(_) => Reason::ApiError,
            Self::Io { .. } => Reason::IoError,
            Self::Yaml(_) | Self::Json(_) => Reason::SerializationError,
            Self::Certificate(_) | Self::Tls { .. } => Reason::CertificateError,
            Self::LeaderElection(_) => Reason::LeaderElectionFailed,
            Self::Conflict { .. } | Self::Taken { .. } => Reason::WriteConflict,
            Self::Task(_) => Reason::InternalError,
            Self::Notify { .. } => Reason::NotificationFailed,
        }
    }
}

/// `error` with every cause its message does not already show, as one line:
/// what a log line or an Event says.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_shows_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Error::tls("certificate tls.crt", io);
        assert_eq!(error.to_string(), "TLS: certificate tls.crt: no such file");
        assert_eq!(report(&error), "TLS: certificate tls.crt: no such file");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause is kept"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let quiet = Outer(std::io::Error::other("the cause"));
        assert_eq!(report(&quiet), "outer: the cause");
    }

    #[test]
    fn every_variant_has_a_label_and_a_reason() {
        let conflict = Error::Conflict {
            what: "recording notifications of r".into(),
        };
        assert_eq!(conflict.metric_label(), "conflict");
        assert_eq!(conflict.reason(), Reason::WriteConflict);
        let invalid = Error::tls_invalid("ca.pem: holds no CA certificate");
        assert_eq!(invalid.to_string(), "TLS: ca.pem: holds no CA certificate");
        assert_eq!(invalid.reason(), Reason::CertificateError);
    }
}

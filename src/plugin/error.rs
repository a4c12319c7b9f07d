//! The plugin's errors, each one a sentence a person can act on, with the exit
//! code it ends the command with.

use super::{format::duration, sanitize::inert};

/// Exit codes. `wait` (and `run`) document the decision codes in their help.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const NOT_FOUND: u8 = 2;
    pub const DENIED: u8 = 3;
    pub const EXPIRED: u8 = 4;
    pub const REVOKED: u8 = 5;
    pub const TIMEOUT: u8 = 6;
    pub const SUPERSEDED: u8 = 7;
}

/// Everything that can go wrong in `kubectl approve`.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "approvalrequest {} not found in namespace {}",
        inert(name),
        inert(namespace)
    )]
    NotFound { name: String, namespace: String },

    /// Some of several names to approve do not exist, so none was approved.
    #[error(
        "approvalrequest {} not found in namespace {}; nothing was approved",
        inert(&names.join(", ")),
        inert(namespace)
    )]
    Missing {
        names: Vec<String>,
        namespace: String,
    },

    /// A first word that is no request but looks like a mistyped command.
    #[error(
        "unknown command \"{}\" for \"kubectl approve\"\n\nDid you mean this?\n\t{}\n\n\
         Run 'kubectl approve --help' for usage.",
        inert(word),
        suggestions.join("\n\t")
    )]
    UnknownCommand {
        word: String,
        suggestions: Vec<&'static str>,
    },

    #[error("no cluster reachable at {url}: {why}")]
    Unreachable { url: String, why: String },

    #[error("the kubeconfig could not be used: {0}")]
    Kubeconfig(String),

    #[error("you are not an approver for this policy ({policy}); its approvers are {approvers}")]
    NotApprover { policy: String, approvers: String },

    #[error("you cannot {verb} your own request: a second person must")]
    OwnRequest { verb: &'static str },

    #[error("you have already approved this request")]
    AlreadyApproved,

    #[error("the request expired {} ago", duration(*.ago))]
    Expired { ago: jiff::SignedDuration },

    /// The webhook's rejection, without the apiserver's wrapping.
    #[error("approval-gate refused: {0}")]
    Rejected(String),

    #[error("you are not allowed to do this: {0}")]
    Forbidden(String),

    #[error("the request changed while you were deciding, twice; look at it again and retry")]
    Conflict,

    #[error("{0}")]
    Usage(String),

    #[error("the Kubernetes API answered: {0}")]
    Api(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl PluginError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } | Self::Missing { .. } => exit::NOT_FOUND,
            Self::Expired { .. } => exit::EXPIRED,
            _ => exit::ERROR,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// A kube error in plain words; `url` names the cluster for connection errors.
/// The apiserver's message is made inert: a webhook's denial quotes what the
/// requester wrote.
pub fn from_kube(err: kube::Error, url: &str) -> PluginError {
    match err {
        kube::Error::Api(status) => {
            let message = inert(&status.message);
            match status.code {
                403 if message.contains("admission webhook") => {
                    PluginError::Rejected(webhook_message(&message))
                }
                403 => PluginError::Forbidden(message),
                409 => PluginError::Conflict,
                _ if message.contains("admission webhook") => {
                    PluginError::Rejected(webhook_message(&message))
                }
                _ => PluginError::Api(message),
            }
        }
        kube::Error::HyperError(e) => PluginError::Unreachable {
            url: inert(url),
            why: inert(&root_cause(&e)),
        },
        kube::Error::Service(e) => PluginError::Unreachable {
            url: inert(url),
            why: inert(&root_cause(e.as_ref())),
        },
        kube::Error::Auth(e) => PluginError::Kubeconfig(inert(&e.to_string())),
        kube::Error::InferKubeconfig(e) => PluginError::Kubeconfig(inert(&e.to_string())),
        other => PluginError::Api(inert(&other.to_string())),
    }
}

/// The innermost cause, which is the one that says what happened
/// ("Connection refused", "certificate not valid").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The webhook's own words out of the apiserver's message
/// `admission webhook "guard.approvalgate.dev" denied the request: approval-gate: ...`.
pub fn webhook_message(message: &str) -> String {
    let rest = message
        .split_once("denied the request: ")
        .map_or(message, |(_, rest)| rest);
    rest.strip_prefix("approval-gate: ")
        .unwrap_or(rest)
        .trim()
        .to_owned()
}

/// The stable rule name at the end of a guard rejection: `... [rule: no-self-approval]`.
pub fn guard_rule(message: &str) -> Option<&str> {
    let start = message.rfind("[rule: ")? + "[rule: ".len();
    let end = message[start..].find(']')? + start;
    Some(&message[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_rejections_lose_the_apiserver_wrapping() {
        let msg = "admission webhook \"guard.approvalgate.dev\" denied the request: approval-gate: \
                   you cannot decide your own request: a second person must (separation of duties) \
                   [rule: no-self-approval]";
        let plain = webhook_message(msg);
        assert!(plain.starts_with("you cannot decide"), "{plain}");
        assert_eq!(guard_rule(&plain), Some("no-self-approval"));
        assert_eq!(guard_rule("no rule here"), None);
    }

    #[test]
    fn apiserver_messages_print_inert() {
        let status = kube::core::Status::failure(
            "admission webhook \"guard.approvalgate.dev\" denied the request: approval-gate: \
             reason \x1b[2Jcleared\r [rule: x]",
            "Forbidden",
        )
        .with_code(403);
        let e = from_kube(kube::Error::Api(status.boxed()), "https://k");
        let shown = e.to_string();
        assert!(
            !shown.contains('\x1b') && !shown.contains('\r'),
            "{shown:?}"
        );
        assert!(shown.contains("\\u{1b}[2Jcleared\\u{d}"), "{shown}");
    }

    #[test]
    fn unknown_commands_read_like_kubectl() {
        let e = PluginError::UnknownCommand {
            word: "descibe".into(),
            suggestions: vec!["describe"],
        };
        assert_eq!(
            e.to_string(),
            "unknown command \"descibe\" for \"kubectl approve\"\n\nDid you mean this?\n\tdescribe\n\n\
             Run 'kubectl approve --help' for usage."
        );
        assert_eq!(e.exit_code(), exit::ERROR);
        let e = PluginError::Missing {
            names: vec!["a".into(), "b\x1b[2J".into()],
            namespace: "prod".into(),
        };
        assert_eq!(
            e.to_string(),
            "approvalrequest a, b\\u{1b}[2J not found in namespace prod; nothing was approved"
        );
        assert_eq!(e.exit_code(), exit::NOT_FOUND);
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = PluginError::Expired {
            ago: jiff::SignedDuration::from_secs(180),
        };
        assert_eq!(e.to_string(), "the request expired 3m ago");
        assert_eq!(e.exit_code(), exit::EXPIRED);
        let e = PluginError::NotFound {
            name: "r1".into(),
            namespace: "prod".into(),
        };
        assert_eq!(
            e.to_string(),
            "approvalrequest r1 not found in namespace prod"
        );
    }
}

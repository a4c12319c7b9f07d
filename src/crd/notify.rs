//! Where approval-gate tells people about requests: the channels an
//! ApprovalPolicy lists under `spec.notify`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// One place to send notifications to. Set exactly one of `slack`, `webhook`
/// or `email`. When a request becomes Pending its approvers are told; when it
/// is Approved, Denied, Expired or Revoked its requester is told.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.slack) ? 1 : 0) + (has(self.webhook) ? 1 : 0) + (has(self.email) ? 1 : 0) == 1").message("set exactly one of slack, webhook or email"))]
pub struct NotifyChannel {
    /// Names the channel in `status.notified` of requests, which is how a
    /// notification is sent once per transition. Defaults to the kind and the
    /// position in the list (`webhook-0`); set it to keep the record when
    /// channels are reordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,
    /// A Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    /// An HTTPS endpoint receiving a signed JSON document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
    /// Email over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailChannel>,
}

impl NotifyChannel {
    /// `slack`, `webhook` or `email`: the metric label and the default name's prefix.
    pub fn kind(&self) -> &'static str {
        if self.slack.is_some() {
            "slack"
        } else if self.webhook.is_some() {
            "webhook"
        } else {
            "email"
        }
    }

    /// The name recorded in `status.notified`: `name`, or kind and position.
    pub fn key(&self, position: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{position}", self.kind()))
    }
}

/// A key of a Secret in approval-gate's control namespace. approval-gate can
/// read only the Secrets its RBAC allows: with the Helm chart,
/// `<fullname>-notify` and those listed in `operator.notificationSecrets`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name, in approval-gate's control namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key in the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret in approval-gate's control namespace, readable by approval-gate
/// (see the `secretRef` of a webhook channel).
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The Secret's name, in approval-gate's control namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A Slack incoming webhook; its URL is a credential, so it is read from a Secret.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlackChannel {
    /// The key of a Secret in the control namespace holding the incoming webhook URL.
    pub webhook_url_secret_ref: SecretKeyRef,
}

/// A generic webhook: approval-gate POSTs a JSON document signed with
/// HMAC-SHA256 (header `X-Approval-Gate-Signature: sha256=<hex>` over
/// `<timestamp>.<body>`, with `X-Approval-Gate-Timestamp`), and an
/// `X-Approval-Gate-Idempotency-Key` of `<request uid>/<transition>` so that
/// receivers can drop repeats.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookChannel {
    /// Where to POST, for example `https://hooks.example.com/approval-gate`.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub url: String,
    /// The key of a Secret in the control namespace holding the HMAC key.
    pub secret_ref: SecretKeyRef,
}

/// Email over SMTP. Approvers are mailed at `to`; for outcomes, the requester
/// too when their username is an email address.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailChannel {
    /// The SMTP server to submit mail to.
    pub smtp: SmtpServer,
    /// The sender address, for example `approval-gate@example.com`.
    #[schemars(length(min = 3, max = 254))]
    pub from: String,
    /// The recipient addresses, for example the approvers' team list.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// A Secret in the control namespace with keys `username` and `password`
    /// for SMTP authentication; none means no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

/// An SMTP server.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmtpServer {
    /// The server's host name.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// The submission port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// `StartTls` upgrades the connection before anything is sent and fails
    /// if the server cannot; `None` sends in the clear (only for a relay on
    /// the same host or for tests).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The key of a Secret in the control namespace holding PEM CA
    /// certificates to trust for STARTTLS besides the public roots, for a
    /// relay with a certificate from a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
}

/// Transport security of an SMTP connection.
#[derive(
    schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub enum SmtpTls {
    /// Require STARTTLS.
    #[default]
    StartTls,
    /// No TLS at all.
    None,
}

fn default_smtp_port() -> u16 {
    587
}

//! Delivery: one [`Notice`] to one [`Destination`], retried with bounded
//! exponential backoff. At least once: a receiver may see a repeat (say, the
//! reply was lost), and drops it by the idempotency key.

use std::time::Duration;

use jiff::Timestamp;

use super::{
    content::Notice,
    email::{self, Mailer},
    slack,
    webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature},
};
use crate::error::{Error, Result};

/// A channel with its secrets resolved, ready to send to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Slack { url: String },
    Webhook { url: String, key: Vec<u8> },
    Email(Mailer),
}

impl Destination {
    /// `slack`, `webhook` or `email`, for metrics and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Slack { .. } => "slack",
            Self::Webhook { .. } => "webhook",
            Self::Email(_) => "email",
        }
    }
}

/// How often and how patiently to try: `attempts` tries, waiting `base`,
/// then twice as long, and so on, between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    /// The time limit of one attempt.
    pub timeout: Duration,
}

impl Default for Backoff {
    /// At most about 30 s in all (five attempts of 5 s, 7.5 s of waits), so
    /// that a dead receiver holds a reconcile only briefly; the reconcile is
    /// requeued to try again later.
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.base.saturating_mul(1 << (n.saturating_sub(1)).min(16))
    }
}

/// Sends notices; cheap to share.
#[derive(Clone, Debug)]
pub struct Notifier {
    http: reqwest::Client,
    backoff: Backoff,
}

/// Why one attempt failed, and whether trying again could help.
pub(super) struct Failure {
    pub error: Error,
    pub retry: bool,
}

impl Notifier {
    pub fn new(backoff: Backoff) -> Result<Self> {
        crate::server::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(backoff.timeout)
            .user_agent(concat!("approval-gate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::notify("http", "building the client", Some(e.into())))?;
        Ok(Self { http, backoff })
    }

    /// Delivers `notice`, retrying failures that may pass; returns how many
    /// attempts it took.
    pub async fn deliver(&self, to: &Destination, notice: &Notice) -> Result<u32> {
        let mut attempt = 1;
        loop {
            match self.attempt(to, notice).await {
                Ok(()) => return Ok(attempt),
                Err(failure) if failure.retry && attempt < self.backoff.attempts => {
                    tracing::debug!(error = %failure.error, attempt, channel = to.kind(), "notification failed; retrying");
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn attempt(&self, to: &Destination, notice: &Notice) -> Result<(), Failure> {
        match to {
            Destination::Slack { url } => {
                let body = serde_json::to_vec(&slack::payload(notice)).map_err(json)?;
                self.post("slack", url, body, Vec::new()).await
            }
            Destination::Webhook { url, key } => {
                let body = serde_json::to_vec(notice).map_err(json)?;
                let now = Timestamp::now().as_second();
                let headers = vec![
                    (SIGNATURE_HEADER, signature(key, now, &body)),
                    (TIMESTAMP_HEADER, now.to_string()),
                    (IDEMPOTENCY_HEADER, notice.idempotency_key()),
                ];
                self.post("webhook", url, body, headers).await
            }
            Destination::Email(mailer) => {
                // A malformed address will not get better by waiting.
                let message = email::message(mailer, notice).map_err(|error| Failure {
                    error,
                    retry: false,
                })?;
                email::send(mailer, message, self.backoff.timeout).await
            }
        }
    }

    async fn post(
        &self,
        channel: &'static str,
        url: &str,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(), Failure> {
        let mut request = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| Failure {
            error: Error::notify(channel, "sending", Some(e.without_url().into())),
            retry: true,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // A client error will not pass by itself, except throttling and timeouts.
        let retry = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
        Err(Failure {
            error: Error::notify(channel, format!("the receiver answered {status}"), None),
            retry,
        })
    }
}

fn json(e: serde_json::Error) -> Failure {
    Failure {
        error: Error::Json(e),
        retry: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_base() {
        let b = Backoff {
            attempts: 5,
            base: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600]);
    }
}

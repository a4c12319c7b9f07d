//! Email over SMTP (lettre), with STARTTLS unless a channel says `tls: None`.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::header::ContentType,
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use super::{
    content::{Audience, Notice},
    deliver::Failure,
};
use crate::{
    crd::SmtpTls,
    error::{Error, Result},
};

/// Where and how to send mail; credentials already read from their Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailer {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub credentials: Option<(String, String)>,
    /// PEM CA certificates trusted for STARTTLS besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
}

fn failed(message: &str) -> Error {
    Error::notify("email", message, None)
}

fn failed_by(message: &str, cause: impl Into<crate::error::Cause>) -> Error {
    Error::notify("email", message, Some(cause.into()))
}

/// The recipients: `to`, plus the requester for outcomes when their
/// username is an email address.
pub fn recipients(mailer: &Mailer, notice: &Notice) -> Vec<String> {
    let mut to = mailer.to.clone();
    let requester = &notice.requester;
    if notice.audience == Audience::Requester && requester.contains('@') && !to.contains(requester)
    {
        to.push(requester.clone());
    }
    to
}

/// The message: the headline as subject, the facts as a plain-text body and
/// a Message-ID derived from the idempotency key, so a repeat threads as one.
pub fn message(mailer: &Mailer, notice: &Notice) -> Result<Message> {
    let mut builder = Message::builder()
        .from(
            mailer
                .from
                .parse()
                .map_err(|e| failed_by("the sender address", e))?,
        )
        .subject(format!("[approval-gate] {}", notice.headline))
        .message_id(Some(format!(
            "<{}.{}@approval-gate>",
            notice.uid,
            notice.transition.as_str()
        )))
        .header(ContentType::TEXT_PLAIN);
    for to in recipients(mailer, notice) {
        builder = builder.to(to
            .parse()
            .map_err(|e| failed_by("a recipient address", e))?);
    }
    builder
        .body(notice.text())
        .map_err(|e| failed_by("building the message", e))
}

/// One attempt to submit `email` (see [`message`]). A 5xx reply or a failed
/// TLS verification is not worth another attempt.
pub(super) async fn send(
    mailer: &Mailer,
    email: Message,
    timeout: Duration,
) -> std::result::Result<(), Failure> {
    let refused = |error: Error| Failure {
        error,
        retry: false,
    };
    let tls = match mailer.tls {
        SmtpTls::StartTls => Tls::Required(tls_parameters(mailer).map_err(refused)?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mailer.host)
        .port(mailer.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &mailer.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = builder.build();
    transport.send(email).await.map_err(|e| Failure {
        retry: !(e.is_permanent() || e.is_tls()),
        error: failed_by("sending over SMTP", e),
    })?;
    Ok(())
}

/// The public roots, plus the channel's own CA when it names one.
fn tls_parameters(mailer: &Mailer) -> Result<TlsParameters> {
    let mut builder = TlsParameters::builder(mailer.host.clone());
    if let Some(pem) = &mailer.ca_pem {
        let has_certificate = String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----");
        if !has_certificate {
            return Err(failed("the CA Secret key holds no PEM certificate"));
        }
        let ca = Certificate::from_pem(pem)
            .map_err(|e| failed_by("the CA Secret key holds no valid PEM", e))?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build_rustls()
        .map_err(|e| failed_by("the TLS settings", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::content::tests::sample;

    fn mailer() -> Mailer {
        Mailer {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            from: "approval-gate@example.com".into(),
            to: vec!["sre@example.com".into()],
            credentials: None,
            ca_pem: None,
        }
    }

    #[test]
    fn a_ca_secret_without_a_certificate_is_a_clear_error() {
        let mut m = mailer();
        m.ca_pem = Some(b"not a certificate".to_vec());
        let err = tls_parameters(&m).err().unwrap().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        m.ca_pem = Some(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n".to_vec());
        let err = tls_parameters(&m).err().unwrap().to_string();
        assert!(err.contains("no valid PEM"), "{err}");
        m.ca_pem = None;
        assert!(tls_parameters(&m).is_ok());
    }

    #[test]
    fn approvers_are_mailed_with_the_headline_as_subject() {
        let email = message(&mailer(), &sample()).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(raw.contains("To: sre@example.com"), "{raw}");
        assert!(
            raw.contains("Subject: [approval-gate] alice asks for approval"),
            "{raw}"
        );
        assert!(
            raw.contains("Message-ID: <0f3c.Requested@approval-gate>"),
            "{raw}"
        );
        assert!(
            raw.contains("kubectl approve checkout-x7k2p -n prod"),
            "{raw}"
        );
    }

    #[test]
    fn a_requester_with_an_address_hears_the_outcome() {
        let mut notice = sample();
        notice.requester = "alice@example.com".into();
        assert_eq!(recipients(&mailer(), &notice), ["sre@example.com"]);
        notice.audience = Audience::Requester;
        assert_eq!(
            recipients(&mailer(), &notice),
            ["sre@example.com", "alice@example.com"]
        );
    }
}

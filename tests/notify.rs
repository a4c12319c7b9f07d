//! Notifications reach real receivers: a local HTTP server stands in for
//! Slack and for a generic webhook (whose signature the test verifies), and a
//! local SMTP server receives the email, over STARTTLS when it offers it.
//! No apiserver is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::{
    crd::{ApprovalRequest, ApprovalRequestSpec, SmtpTls, Transition},
    notify::{Backoff, Destination, Mailer, Notice, Notifier, notice, webhook},
};
use approval_gate_testenv::certs::ServingCerts;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use support::receiver::{HttpReceiver, SmtpReceiver};

const KEY: &[u8] = b"a shared secret";

fn fast() -> Notifier {
    Notifier::new(Backoff {
        attempts: 5,
        base: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// alice's pending request to update deployments.apps/checkout in prod.
fn pending_notice() -> Notice {
    let now = Timestamp::now();
    let mut req = ApprovalRequest::new(
        "checkout-x7k2p",
        ApprovalRequestSpec {
            digest: Some(format!("sha256:{}", "b".repeat(64))),
            reason: "INC-42".into(),
            policy: "prod-deploys".into(),
            ..support::checkout_update("prod")
        },
    );
    req.metadata.namespace = Some("prod".into());
    req.metadata.uid = Some("6b1d0c6e-uid".into());
    req.metadata.creation_timestamp = Some(Time(now - jiff::SignedDuration::from_secs(90)));
    req.status.get_or_insert_with(Default::default).expires_at =
        Some(Time(now + jiff::SignedDuration::from_secs(3600)));
    notice(&req, None, Transition::Requested, now).unwrap()
}

#[tokio::test]
async fn slack_receives_a_block_kit_message_with_a_text_fallback() {
    let receiver = HttpReceiver::start(0).await;
    let to = Destination::Slack {
        url: receiver.url("/services/T0/B0/x"),
    };
    assert_eq!(fast().deliver(&to, &pending_notice()).await.unwrap(), 1);

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/services/T0/B0/x");
    assert_eq!(got[0].header("content-type"), "application/json");
    let body = got[0].json();
    assert_eq!(
        body["text"],
        "alice asks for approval: UPDATE deployments.apps/checkout in prod"
    );
    let blocks = body["blocks"].as_array().unwrap();
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["section", "section", "section", "context"]);
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for fact in [
        "*Requester*\nalice",
        "*Operation*\nUPDATE deployments.apps/checkout",
        "*Namespace*\nprod",
        "*Reason*\nINC-42",
        "*Policy*\nprod-deploys",
        "*Age*\n1m30s",
    ] {
        assert!(fields.contains(&fact), "{fact} not in {fields:?}");
    }
    let command = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(
        command.contains("kubectl approve checkout-x7k2p -n prod"),
        "{command}"
    );
}

#[tokio::test]
async fn webhook_deliveries_are_signed_and_carry_an_idempotency_key() {
    let receiver = HttpReceiver::start(0).await;
    let to = Destination::Webhook {
        url: receiver.url("/hook"),
        key: KEY.to_vec(),
    };
    let sent = pending_notice();
    fast().deliver(&to, &sent).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let d = &got[0];
    let timestamp: i64 = d.header("X-Approval-Gate-Timestamp").parse().unwrap();
    assert!((Timestamp::now().as_second() - timestamp).abs() < 60);
    let signature = d.header("X-Approval-Gate-Signature");
    assert!(
        webhook::verify(KEY, timestamp, &d.body, &signature),
        "bad signature {signature}"
    );
    assert!(!webhook::verify(
        b"another key",
        timestamp,
        &d.body,
        &signature
    ));
    assert_eq!(
        d.header("X-Approval-Gate-Idempotency-Key"),
        "6b1d0c6e-uid/Requested"
    );
    let body = d.json();
    assert_eq!(body["transition"], "Requested");
    assert_eq!(body["audience"], "Approvers");
    assert_eq!(body["requester"], "alice");
    assert_eq!(body["resource"], "deployments.apps");
    assert_eq!(body["object"], "checkout");
    assert_eq!(body["namespace"], "prod");
    assert_eq!(body["reason"], "INC-42");
    assert_eq!(body["digest"], format!("sha256:{}", "b".repeat(64)));
    assert_eq!(
        body["approveCommand"],
        "kubectl approve checkout-x7k2p -n prod"
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_exactly_one_successful_delivery() {
    let receiver = HttpReceiver::start(2).await;
    let to = Destination::Webhook {
        url: receiver.url("/flaky"),
        key: KEY.to_vec(),
    };
    let started = std::time::Instant::now();
    let attempts = fast().deliver(&to, &pending_notice()).await.unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(receiver.failed(), 2);
    assert_eq!(receiver.received().len(), 1);
    // 200 ms, then 400 ms between the attempts.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt() {
    let receiver = HttpReceiver::start(usize::MAX).await;
    let to = Destination::Slack {
        url: receiver.url("/down"),
    };
    let notifier = Notifier::new(Backoff {
        attempts: 3,
        base: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let err = notifier.deliver(&to, &pending_notice()).await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(receiver.failed(), 3);
    assert!(receiver.received().is_empty());
}

/// A 408 (timeout) or 429 (too many requests) may pass later and is retried;
/// any other 4xx will fail the same way again and is given up at once.
#[tokio::test]
async fn a_408_or_429_is_retried_and_another_4xx_is_not() {
    for status in [408, 429] {
        let receiver = HttpReceiver::start_failing_with(1, status).await;
        let to = Destination::Webhook {
            url: receiver.url("/busy"),
            key: KEY.to_vec(),
        };
        let attempts = fast().deliver(&to, &pending_notice()).await.unwrap();
        assert_eq!((attempts, receiver.failed()), (2, 1), "{status}");
        assert_eq!(receiver.received().len(), 1, "{status}");
    }
    for status in [400, 401, 403, 404, 410, 413, 422] {
        let receiver = HttpReceiver::start_failing_with(usize::MAX, status).await;
        let to = Destination::Webhook {
            url: receiver.url("/refusing"),
            key: KEY.to_vec(),
        };
        let err = fast().deliver(&to, &pending_notice()).await.unwrap_err();
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        assert_eq!(receiver.failed(), 1, "{status} was retried");
    }
}

fn mailer(smtp: &SmtpReceiver, tls: SmtpTls) -> Mailer {
    Mailer {
        host: smtp.addr.ip().to_string(),
        port: smtp.addr.port(),
        tls,
        from: "approval-gate@example.com".into(),
        to: vec!["sre@example.com".into()],
        credentials: None,
        ca_pem: None,
    }
}

#[tokio::test]
async fn email_reaches_the_smtp_server() {
    let smtp = SmtpReceiver::start().await;
    let to = Destination::Email(mailer(&smtp, SmtpTls::None));
    fast().deliver(&to, &pending_notice()).await.unwrap();

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "approval-gate@example.com");
    assert_eq!(mail.to, ["sre@example.com"]);
    assert!(
        mail.data
            .contains("Subject: [approval-gate] alice asks for approval"),
        "{}",
        mail.data
    );
    for line in [
        "Requester: alice",
        "Reason: INC-42",
        "kubectl approve checkout-x7k2p -n prod",
    ] {
        assert!(mail.data.contains(line), "{line} not in:\n{}", mail.data);
    }
}

#[tokio::test]
async fn email_requires_starttls_unless_told_otherwise() {
    let smtp = SmtpReceiver::start().await;
    let to = Destination::Email(mailer(&smtp, SmtpTls::StartTls));
    let notifier = Notifier::new(Backoff {
        attempts: 1,
        base: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(notifier.deliver(&to, &pending_notice()).await.is_err());
    assert!(smtp.mails().is_empty(), "mail went out in the clear");
}

#[tokio::test]
async fn email_goes_over_starttls_to_a_relay_whose_ca_the_channel_names() {
    let certs = ServingCerts::generate("smtp.test", &["127.0.0.1"]).unwrap();
    let smtp = SmtpReceiver::start_tls(&certs.cert_pem, &certs.key_pem).await;
    let mut trusting = mailer(&smtp, SmtpTls::StartTls);
    trusting.ca_pem = Some(certs.ca_pem.clone().into_bytes());
    fast()
        .deliver(&Destination::Email(trusting), &pending_notice())
        .await
        .unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].encrypted, "sent before the TLS handshake");
    assert!(
        mails[0]
            .data
            .contains("kubectl approve checkout-x7k2p -n prod")
    );
    assert_eq!(mails[0].login, None, "no credentials were configured");

    // The public roots alone do not vouch for a private CA: nothing is sent.
    let once = Notifier::new(Backoff {
        attempts: 1,
        base: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let untrusting = Destination::Email(mailer(&smtp, SmtpTls::StartTls));
    let err = once
        .deliver(&untrusting, &pending_notice())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn email_authenticates_inside_tls_and_a_rejected_login_is_not_retried() {
    let certs = ServingCerts::generate("smtp.test", &["127.0.0.1"]).unwrap();
    let smtp = SmtpReceiver::start_tls(&certs.cert_pem, &certs.key_pem).await;
    let mut mailer = mailer(&smtp, SmtpTls::StartTls);
    mailer.ca_pem = Some(certs.ca_pem.clone().into_bytes());
    mailer.credentials = Some(("approval-gate".into(), "s3cret".into()));
    fast()
        .deliver(&Destination::Email(mailer.clone()), &pending_notice())
        .await
        .unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].encrypted);
    assert_eq!(
        mails[0].login,
        Some(("approval-gate".to_owned(), "s3cret".to_owned()))
    );

    let sessions = smtp.sessions();
    mailer.credentials = Some(("approval-gate".into(), "wrong".into()));
    let err = fast()
        .deliver(&Destination::Email(mailer), &pending_notice())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad credentials"), "{err}");
    assert_eq!(smtp.sessions(), sessions + 1, "a 535 was tried again");
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn a_permanent_smtp_refusal_is_not_retried() {
    let smtp = SmtpReceiver::start().await;
    let mut refused = mailer(&smtp, SmtpTls::None);
    refused.to = vec!["nobody@example.com".into()];
    let err = fast()
        .deliver(&Destination::Email(refused), &pending_notice())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such user"), "{err}");
    assert_eq!(smtp.sessions(), 1, "a 550 was tried again");
    assert!(smtp.mails().is_empty());
}

#[tokio::test]
async fn a_malformed_address_fails_at_once_without_retries() {
    let smtp = SmtpReceiver::start().await;
    let mut bad = mailer(&smtp, SmtpTls::None);
    bad.to = vec!["not an address".into()];
    let notifier = Notifier::new(Backoff {
        attempts: 5,
        base: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = notifier
        .deliver(&Destination::Email(bad), &pending_notice())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "it was retried");
    assert!(err.to_string().contains("email"), "{err}");
    assert!(smtp.mails().is_empty());
}

//! The operator tells people, once: the real `approval-gate serve` binary
//! against a real apiserver delivers a signed webhook when a request becomes
//! Pending and when it is approved (and an email over STARTTLS to a relay
//! with a private CA), records what it sent in the request's
//! status, sends nothing again after a restart, sends again with the same
//! idempotency key when it died between sending and recording, and turns a
//! failing channel into a Warning Event and a metric until it works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::{
    crd::{ApprovalRequest, Phase},
    notify::webhook,
};
use approval_gate_testenv::{CONTROL_NAMESPACE, certs::ServingCerts};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, api::PostParams};
use support::{
    operator::*,
    receiver::{Delivery, HttpReceiver, Mail, SmtpReceiver},
    *,
};

const KEY: &[u8] = b"hmac key for the test";

/// Asserts the delivery is signed with [`KEY`] and returns its JSON body.
fn verified(d: &Delivery) -> serde_json::Value {
    let timestamp: i64 = d.header("X-Approval-Gate-Timestamp").parse().unwrap();
    let signature = d.header("X-Approval-Gate-Signature");
    assert!(
        webhook::verify(KEY, timestamp, &d.body, &signature),
        "bad signature {signature} over {}",
        String::from_utf8_lossy(&d.body)
    );
    d.json()
}

/// The (transition, channel) pairs the request's status records as sent.
async fn notified(ns: &str, name: &str) -> Vec<(String, String)> {
    let req: ApprovalRequest = get_request(ns, name).await.unwrap();
    req.status
        .unwrap_or_default()
        .notified
        .into_iter()
        .map(|n| (n.transition.as_str().to_owned(), n.channel))
        .collect()
}

/// A signed webhook, Slack and STARTTLS email (to a relay with a private CA,
/// logging in with the Secret's credentials), as a policy's `notify` lines.
async fn channels(ns: &str, receiver: &HttpReceiver) -> (SmtpReceiver, String) {
    let hmac_key = format!("{ns}-hmac");
    secret(&hmac_key, KEY).await;
    let slack_key = format!("{ns}-slack");
    let slack_url = receiver.url("/services/T0/B0/x");
    secret(&slack_key, slack_url.as_bytes()).await;
    let certs = ServingCerts::generate("smtp.test", &["127.0.0.1"]).unwrap();
    let smtp = SmtpReceiver::start_tls(&certs.cert_pem, &certs.key_pem).await;
    let ca_key = format!("{ns}-smtp-ca");
    secret(&ca_key, certs.ca_pem.as_bytes()).await;
    secret("username", b"approval-gate").await;
    secret("password", b"s3cret").await;
    let lines = format!(
        "notify:\n- name: hook\n  webhook: {{url: '{}', \
         secretRef: {{name: {SECRET}, key: {hmac_key}}}}}\n\
         - slack: {{webhookUrlSecretRef: {{name: {SECRET}, key: {slack_key}}}}}\n\
         - name: mail\n  email: {{from: approval-gate@example.com, to: [sre@example.com], \
         smtp: {{host: 127.0.0.1, port: {}, caSecretRef: {{name: {SECRET}, key: {ca_key}}}}}, \
         credentialsSecretRef: {{name: {SECRET}}}}}\n",
        receiver.url("/hook"),
        smtp.addr.port()
    );
    (smtp, lines)
}

#[tokio::test]
async fn approvers_and_the_requester_are_told_once_even_across_a_restart() {
    // One operator leads at a time: the tests here take turns.
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("notify").await;
    let (smtp, channels) = channels(&ns, &receiver).await;
    let operator = start_leader("notify-first").await;
    let extra = format!("bindToContent: false\n{channels}");
    let policy = policy(&operator, &ns, &extra).await;
    ask(&ns, "req", &policy);
    await_phase(&ns, "req", Phase::Pending, SLACK).await;

    let got = receiver.await_on("/hook", 1, SLACK).await;
    assert_eq!(got.len(), 1, "the approvers' notification");
    let body = verified(&got[0]);
    assert_eq!(body["transition"], "Requested");
    assert_eq!(body["audience"], "Approvers");
    assert_eq!(body["requester"], "alice");
    assert_eq!(body["operation"], "UPDATE");
    assert_eq!(body["resource"], "deployments.apps");
    assert_eq!(body["object"], "checkout");
    assert_eq!(body["namespace"], ns.as_str());
    assert_eq!(body["reason"], "INC-7");
    assert_eq!(body["policy"], policy.as_str());
    assert_eq!(
        body["approveCommand"],
        format!("kubectl approve req -n {ns}")
    );
    let page = format!("{CONSOLE_URL}/requests/{ns}/req");
    assert_eq!(body["link"], page.as_str(), "the webhook links the console");
    let uid = get_request(&ns, "req").await.unwrap().metadata.uid.unwrap();
    assert_eq!(
        got[0].header("X-Approval-Gate-Idempotency-Key"),
        format!("{uid}/Requested")
    );
    let slack = receiver.await_on("/services/T0/B0/x", 1, SLACK).await;
    assert_eq!(
        slack.len(),
        1,
        "the Slack channel, its URL read from a Secret"
    );
    let blocks = slack[0].json()["blocks"].to_string();
    assert!(
        blocks.contains(&format!("<{page}|Review it in the console>")),
        "{blocks}"
    );
    let text = slack[0].json()["text"].as_str().unwrap().to_owned();
    assert_eq!(
        text,
        format!("alice asks for approval: UPDATE deployments.apps/checkout in {ns}")
    );
    let mails = await_mails(&smtp, 1).await;
    assert_eq!(mails.len(), 1, "the approvers' email");
    assert!(mails[0].encrypted, "the email went out before STARTTLS");
    assert_eq!(
        mails[0].login,
        Some(("approval-gate".to_owned(), "s3cret".to_owned())),
        "logged in with the Secret's credentials, inside TLS"
    );
    assert_eq!(mails[0].to, ["sre@example.com"]);
    let subject = format!(
        "Subject: [approval-gate] alice asks for approval: UPDATE deployments.apps/checkout in {ns}"
    );
    assert!(mails[0].unfolded().contains(&subject), "{}", mails[0].data);
    assert!(
        mail_body(&mails[0]).contains(&format!("Open it in the console: {page}")),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0]
            .data
            .contains(&format!("kubectl approve req -n {ns}")),
        "{}",
        mails[0].data
    );
    for _ in 0..50 {
        if notified(&ns, "req").await.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut recorded = notified(&ns, "req").await;
    recorded.sort();
    assert_eq!(
        recorded,
        [
            ("Requested".to_owned(), "hook".to_owned()),
            ("Requested".to_owned(), "mail".to_owned()),
            ("Requested".to_owned(), "slack-1".to_owned())
        ]
    );

    // A new operator finds the record and sends nothing again.
    drop(operator);
    let again = start_leader("notify-second").await;
    // Only once it has looked at every request does "nothing again" mean something.
    let all = Api::<ApprovalRequest>::all(client(&ADMIN).await);
    let total = all.list(&Default::default()).await.unwrap().items.len() as f64;
    let reconciled = |m: &str| {
        let labels = r#"controller="approvalrequest""#;
        value(m, "approval_gate_reconciles_total", labels) >= total
    };
    let metrics = scrape_until(&again, reconciled).await;
    assert!(
        reconciled(&metrics),
        "not every request was reconciled:\n{metrics}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "nothing again after a restart"
    );
    assert_eq!(smtp.mails().len(), 1, "no email again after a restart");

    approve(&BOB, &ns, "req").await;
    let got = receiver.await_on("/hook", 2, SLACK).await;
    assert_eq!(got.len(), 2, "the requester's notification");
    let body = verified(&got[1]);
    assert_eq!(body["transition"], "Approved");
    assert_eq!(body["audience"], "Requester");
    assert_eq!(body["decidedBy"], "bob");
    let slack = receiver.await_on("/services/T0/B0/x", 2, SLACK).await;
    let text = slack[1].json()["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("Approved: UPDATE"), "{text}");
    let mails = await_mails(&smtp, 2).await;
    assert!(mails[1].encrypted);
    assert!(
        mails[1]
            .unfolded()
            .contains("Subject: [approval-gate] Approved: UPDATE"),
        "{}",
        mails[1].data
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 4, "nothing is sent twice");
    assert_eq!(smtp.mails().len(), 2, "no email is sent twice");
    assert_eq!(notified(&ns, "req").await.len(), 6);
    let grew = |m: &str| {
        let success = |channel: &str| {
            let labels = format!("channel=\"{channel}\",outcome=\"success\"");
            value(m, "approval_gate_notifications_total", &labels)
        };
        let approved = r#"outcome="Approved""#;
        success("webhook") >= 1.0
            && success("slack") >= 1.0
            && success("email") >= 1.0
            && value(m, "approval_gate_request_decisions_total", approved) >= 1.0
    };
    let metrics = scrape_until(&again, grew).await;
    assert!(grew(&metrics), "{metrics}");
}

#[tokio::test]
async fn a_failing_channel_warns_and_is_retried_until_it_works() {
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("notify-fail").await;
    let late_key = format!("{ns}-late");
    let operator = start_leader("notify-fail").await;
    // A Secret approval-gate may not read, whatever a policy says.
    let elsewhere = format!("{ns}-not-for-notifications");
    let other = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(elsewhere.clone()),
            ..Default::default()
        },
        string_data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client(&ADMIN).await, CONTROL_NAMESPACE)
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    // The key is not in the Secret yet.
    let extra = format!(
        "bindToContent: false\nnotify:\n- webhook: {{url: '{}', \
         secretRef: {{name: {SECRET}, key: {late_key}}}}}\n\
         - webhook: {{url: '{}', secretRef: {{name: {elsewhere}, key: k}}}}\n",
        receiver.url("/late"),
        receiver.url("/never"),
    );
    let policy = policy(&operator, &ns, &extra).await;
    ask(&ns, "req", &policy);

    let failures = |m: &str| {
        value(
            m,
            "approval_gate_notifications_total",
            r#"channel="webhook",outcome="failure""#,
        )
    };
    let text = scrape_until(&operator, |m| failures(m) >= 1.0).await;
    assert!(failures(&text) >= 1.0, "{text}");
    // Failures of one request fold into one Event series; the log has each.
    await_event(&ns, "req", "NotificationFailed", "failed").await;
    let logged = |channel: &str, containing: &str| {
        log_lines(&operator).iter().any(|l| {
            let f = &l["fields"];
            f["request"] == "req"
                && f["namespace"] == ns.as_str()
                && f["channel"] == channel
                && f["error"].as_str().unwrap_or_default().contains(containing)
        })
    };
    assert!(logged("webhook-0", SECRET), "the Secret is named");
    assert!(logged("webhook-1", "forbidden"), "{elsewhere} stays unread");
    assert_eq!(
        phase_of(&get_request(&ns, "req").await.unwrap()),
        Some(Phase::Pending),
        "the request is not lost"
    );

    secret(&late_key, KEY).await;
    let got = receiver.await_on("/late", 1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "delivered once the Secret holds the key");
    assert_eq!(verified(&got[0])["transition"], "Requested");
    assert!(
        receiver
            .await_on("/never", 1, Duration::ZERO)
            .await
            .is_empty()
    );
}

/// An operator that dies after sending but before recording leaves no
/// record, so the next leader sends again, with the same idempotency key, for
/// the receiver to drop the repeat; then it records the delivery once.
#[tokio::test]
async fn a_crash_between_send_and_record_resends_with_the_same_idempotency_key() {
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("notify-crash").await;
    let hmac_key = format!("{ns}-hmac");
    secret(&hmac_key, KEY).await;
    let first = start_leader("notify-crash-first").await;
    let extra = format!(
        "bindToContent: false
notify:
- name: hook
  webhook: {{url: '{}', \
         secretRef: {{name: {SECRET}, key: {hmac_key}}}}}
",
        receiver.url("/hook")
    );
    let policy = policy(&first, &ns, &extra).await;
    // The receiver takes the delivery but its answer never comes back.
    receiver.hold();
    ask(&ns, "req", &policy);
    let sent = receiver.await_on("/hook", 1, SLACK).await;
    assert_eq!(sent.len(), 1, "the first leader sent it");
    crash(&first);
    drop(first);
    assert!(
        notified(&ns, "req").await.is_empty(),
        "recorded although no answer came"
    );

    receiver.answer();
    let second = start_leader("notify-crash-second").await;
    let got = receiver.await_on("/hook", 2, SLACK).await;
    assert_eq!(got.len(), 2, "the second leader sends again");
    let uid = get_request(&ns, "req").await.unwrap().metadata.uid.unwrap();
    for delivery in &got {
        assert_eq!(
            delivery.header("X-Approval-Gate-Idempotency-Key"),
            format!("{uid}/Requested")
        );
        assert_eq!(verified(delivery)["transition"], "Requested");
    }
    for _ in 0..100 {
        if !notified(&ns, "req").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        notified(&ns, "req").await,
        [("Requested".to_owned(), "hook".to_owned())]
    );
    drop(second);
}

/// Waits until the SMTP server holds `n` mails (or 10 s); returns them.
async fn await_mails(smtp: &SmtpReceiver, n: usize) -> Vec<Mail> {
    for _ in 0..100 {
        if smtp.mails().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    smtp.mails()
}

/// A mail's body as written: quoted-printable or base64 undone.
fn mail_body(mail: &Mail) -> String {
    use base64::Engine as _;
    let data = mail.data.replace("\r\n", "\n");
    let (head, body) = data.split_once("\n\n").unwrap_or(("", &data));
    if head.contains("Content-Transfer-Encoding: base64") {
        let compact: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.trim_end_matches('.'))
            .unwrap_or_default();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    if head.contains("Content-Transfer-Encoding: quoted-printable") {
        let joined = body.replace("=\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match (bytes[i], bytes.get(i + 1..i + 3)) {
                (b'=', Some(hex)) => {
                    let hex = std::str::from_utf8(hex).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        return String::from_utf8_lossy(&out).into_owned();
    }
    body.to_owned()
}

/// Removes the webhook registration when dropped, so that the other tests
/// here (which run the operator unregistered) are not sent to a stopped process.
struct Unregister;

impl Drop for Unregister {
    fn drop(&mut self) {
        let name = approval_gate::registration::CONFIGURATION_NAME;
        kubectl(&ADMIN)
            .args([
                "delete",
                "validatingwebhookconfiguration",
                name,
                "--ignore-not-found",
            ])
            .run();
    }
}

#[tokio::test]
async fn a_secret_change_shows_keys_and_hashes_and_its_values_appear_nowhere() {
    use base64::Engine as _;
    const OLD: &str = "hunter2-old-plaintext";
    const NEW: &str = "correct-horse-new-plaintext";
    let forms = |v: &str| {
        [
            v.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(v),
        ]
    };
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("secret-change").await;
    let (smtp, channels) = channels(&ns, &receiver).await;
    let operator = start_leader("secret-change").await;
    let rules = vec![
        k8s_openapi::api::admissionregistration::v1::RuleWithOperations {
            api_groups: Some(vec![String::new()]),
            api_versions: Some(vec!["*".into()]),
            operations: Some(vec!["*".into()]),
            resources: Some(vec!["secrets".into()]),
            scope: Some("*".into()),
        },
    ];
    operator
        .register(&client(&ADMIN).await, rules)
        .await
        .unwrap();
    let _unregister = Unregister;
    policy_on(&operator, &ns, "", "secrets", &channels).await;
    let manifest = |password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {ns}}}\n\
             stringData: {{password: {password}, user: admin}}\n"
        )
    };
    kubectl(&ADMIN)
        .args(["create", "-f", "-"])
        .stdin(manifest(OLD))
        .run()
        .ok();
    let msg = kubectl(&ALICE)
        .args(["replace", "-f", "-"])
        .stdin(manifest(NEW))
        .run()
        .fails();
    let name = request_name(&msg, &ns);

    // The request lists the changed key, with a hash on each side.
    let req = get_request(&ns, &name).await.unwrap();
    let change = req.spec.change.clone().unwrap();
    assert_eq!(change.fields.len(), 1, "{change:?}");
    let field = &change.fields[0];
    assert_eq!(
        (field.path.as_str(), field.redacted),
        ("data.password", true)
    );
    assert_ne!(
        field.before, field.after,
        "a changed value shows as changed"
    );
    assert_eq!(change.summary, "data.password changed (value redacted)");

    // Everywhere it could travel, no value does.
    let hooks = receiver.await_on("/hook", 1, SLACK).await;
    let slack = receiver.await_on("/services/T0/B0/x", 1, SLACK).await;
    let mails = await_mails(&smtp, 1).await;
    await_event(&ns, &name, "Requested", "data.password").await;
    let hook = verified(&hooks[0]);
    assert_eq!(hook["change"]["fields"][0]["path"], "data.password");
    let mut places = vec![
        (
            "request",
            kubectl(&ADMIN)
                .args(["get", "apr", &name, "-n", &ns, "-o", "json"])
                .run()
                .ok(),
        ),
        (
            "events",
            kubectl(&ADMIN)
                .args(["get", "events", "-n", &ns, "-o", "json"])
                .run()
                .ok(),
        ),
        (
            "log",
            std::fs::read_to_string(operator.dir.join("webhook.log")).unwrap(),
        ),
        ("webhook", hook.to_string()),
        ("slack", slack[0].json().to_string()),
    ];
    places.extend(mails.iter().map(|m| ("email", mail_body(m))));
    for (place, text) in &places {
        assert!(
            text.contains("data.password"),
            "{place} names the changed key: {text}"
        );
        for secret in forms(OLD).iter().chain(&forms(NEW)) {
            assert!(
                !text.contains(secret.as_str()),
                "{place} leaks {secret}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_pending_request_is_reminded_then_escalated_once_each_and_both_are_recorded() {
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("follow-up").await;
    let hmac_key = format!("{ns}-hmac");
    secret(&hmac_key, KEY).await;
    let hook = |path: &str| {
        format!(
            "{{url: '{}', secretRef: {{name: {SECRET}, key: {hmac_key}}}}}",
            receiver.url(path)
        )
    };
    let extra = format!(
        "bindToContent: false\nnotify:\n- name: team\n  webhook: {}\nremindAfter: 3s\n\
         escalation:\n  after: 6s\n  notify:\n  - name: leads\n    webhook: {}\n",
        hook("/team"),
        hook("/leads")
    );
    let operator = start_leader("follow-up").await;
    let policy = policy(&operator, &ns, &extra).await;
    ask(&ns, "req", &policy);

    // The request, then the reminder, to the team; the escalation to the leads.
    let team = receiver.await_on("/team", 2, SLACK).await;
    let leads = receiver.await_on("/leads", 1, SLACK).await;
    let uid = get_request(&ns, "req").await.unwrap().metadata.uid.unwrap();
    let first = verified(&team[0]);
    assert_eq!(first["followUp"], serde_json::Value::Null);
    let reminder = verified(&team[1]);
    assert_eq!(reminder["followUp"], "Reminder");
    assert_eq!(reminder["audience"], "Approvers");
    let headline = reminder["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("Reminder: still waiting after ")
            && headline.ends_with(&format!(
                "alice asks for approval: UPDATE deployments.apps/checkout in {ns}"
            )),
        "{headline}"
    );
    assert_eq!(
        team[1].header("X-Approval-Gate-Idempotency-Key"),
        format!("{uid}/Requested/Reminder")
    );
    let escalation = verified(&leads[0]);
    assert_eq!(escalation["followUp"], "Escalation");
    assert!(
        escalation["headline"]
            .as_str()
            .unwrap()
            .starts_with("Escalation: still waiting after ")
    );
    let since = |n: &serde_json::Value| n["ageSeconds"].as_i64().unwrap();
    assert!(since(&reminder) >= 3, "{reminder}");
    assert!(since(&escalation) >= 6, "{escalation}");

    // Recorded like the rest, and sent once each: the next looks send nothing.
    let req = get_request(&ns, "req").await.unwrap();
    let recorded: Vec<(String, String, Option<String>)> = req
        .status
        .unwrap_or_default()
        .notified
        .into_iter()
        .map(|n| {
            (
                n.transition.as_str().to_owned(),
                n.channel,
                n.follow_up.map(|f| f.as_str().to_owned()),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("Requested".to_owned(), "team".to_owned(), None),
            (
                "Requested".to_owned(),
                "team".to_owned(),
                Some("Reminder".to_owned())
            ),
            (
                "Requested".to_owned(),
                "leads".to_owned(),
                Some("Escalation".to_owned())
            ),
        ]
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 3, "a follow-up was sent twice");
    drop(operator);
}

/// A receiver that hangs holds up nothing but its own notices. Deliveries run
/// off the reconcile, so the requests it is told about still expire at their
/// deadline while their first notice is unanswered, long before the notifier
/// would give up on it (five attempts of 5 s each).
#[tokio::test]
async fn a_hanging_receiver_does_not_delay_an_expiry() {
    let _only_us = exclusive().await;
    let receiver = HttpReceiver::start(0).await;
    // It takes every delivery and answers none until the end of the test.
    receiver.hold();
    let ns = namespace("notify-hang").await;
    let hmac_key = format!("{ns}-hmac");
    secret(&hmac_key, KEY).await;
    let operator = start_leader("notify-hang").await;
    let ttl = Duration::from_secs(4);
    let extra = format!(
        "bindToContent: false\nrequestTTL: {}s\nnotify:\n- name: hook\n  webhook: {{url: '{}', \
         secretRef: {{name: {SECRET}, key: {hmac_key}}}}}\n",
        ttl.as_secs(),
        receiver.url("/hook")
    );
    let policy = policy(&operator, &ns, &extra).await;
    let names = ["first", "second", "third"];
    for name in names {
        ask(&ns, name, &policy);
    }
    let held = receiver.await_on("/hook", names.len(), SLACK).await;
    assert_eq!(
        held.len(),
        names.len(),
        "each request's notice is in flight"
    );

    for name in names {
        let req = get_request(&ns, name).await.unwrap();
        let deadline = plus(time_of(req.metadata.creation_timestamp.as_ref()), ttl);
        let expired = await_phase(&ns, name, Phase::Expired, until_late(deadline)).await;
        let expires_at = time_of(expired.status.as_ref().unwrap().expires_at.as_ref());
        assert_eq!(expires_at, deadline, "{name} expired at its deadline");
        let key = format!("{}/Requested", expired.metadata.uid.unwrap());
        let attempts = receiver
            .received()
            .iter()
            .filter(|d| d.header("X-Approval-Gate-Idempotency-Key") == key)
            .count();
        assert!(
            (1..5).contains(&attempts),
            "{name} expired after {attempts} attempts to tell the hanging receiver: \
             the expiry waited for the notifier to give up"
        );
    }
    receiver.answer();
}

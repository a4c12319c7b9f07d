//! The operator as people meet it: the real `approval-gate serve` binary
//! against a real apiserver keeps requests' phases true over time, leaves one
//! Event and one audit log line per transition, survives restarts and leader
//! changes, removes finished requests after retention, and exports metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::{
    crd::{ApprovalPolicy, Phase},
    testenv::Identity,
};
use jiff::{SignedDuration, Timestamp};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use support::{operator::*, *};

/// Longest wait past a deadline before a late expiry fails a test.
const SLACK: Duration = Duration::from_secs(10);

fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  \
         replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    \
         metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: app, image: {image}}}]}}\n"
    )
}

fn apply(id: &Identity, manifest: &str) -> KubectlOutput {
    kubectl(id).args(["apply", "-f", "-"]).stdin(manifest).run()
}

/// alice changes a deployment and is held; returns the request approval-gate created.
fn held_change(ns: &str, deploy: &str) -> String {
    let message = apply(&ALICE, &deployment(ns, deploy, "app:v2")).fails();
    let marker = format!("ApprovalRequest {ns}/");
    let start = message
        .find(&marker)
        .unwrap_or_else(|| panic!("no request named in: {message}"))
        + marker.len();
    message[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn time_of(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Timestamp {
    t.as_ref().expect("the timestamp is set").0
}

fn plus(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(d).unwrap())
        .unwrap()
}

/// How long from now until `at` plus the slack a late expiry gets.
fn until_late(at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(Timestamp::now()))
        .unwrap_or(Duration::ZERO)
        .saturating_add(SLACK)
}

/// Waits for the request to expire; asserts it expired at `deadline`, not before.
async fn assert_expires_at(ns: &str, name: &str, deadline: Timestamp) {
    let expired = await_phase(ns, name, Phase::Expired, until_late(deadline)).await;
    let seen = Timestamp::now();
    let status = expired.status.unwrap();
    assert_eq!(time_of(&status.expires_at), deadline, "{ns}/{name}");
    assert!(
        seen >= deadline,
        "{ns}/{name} expired early: seen at {seen}, due {deadline}"
    );
}

#[tokio::test]
async fn pending_requests_expire_on_time() {
    let gate = shared().await;
    let ns = namespace("expire").await;
    let extra = "requestTTL: 10s\napprovalTTL: 2s\nbindToContent: false\n";
    let policy = policy(&gate, &ns, extra).await;
    let pending = ["first", "second", "third"];
    for name in pending.iter().chain(&["approved"]) {
        ask(&ns, name, &policy);
    }
    for name in pending {
        await_phase(&ns, name, Phase::Pending, SLACK).await;
    }
    approve(&BOB, &ns, "approved").await;
    let approved = await_phase(&ns, "approved", Phase::Approved, SLACK).await;

    // An approval expires approvalTTL after it was given.
    let given = approved.status.unwrap().approvals[0].time.0;
    assert_expires_at(&ns, "approved", plus(given, Duration::from_secs(2))).await;
    // A pending request expires requestTTL after it was created.
    for name in pending {
        let req = get_request(&ns, name).await.unwrap();
        let created = time_of(&req.metadata.creation_timestamp);
        assert_expires_at(&ns, name, plus(created, Duration::from_secs(10))).await;
    }
    let listed = kubectl(&ALICE)
        .args(["get", "apr", "-n", &ns, "--no-headers"])
        .run()
        .ok();
    assert_eq!(listed.matches("Expired").count(), 4, "{listed}");
}

/// The Event reasons `kubectl describe` shows for a request, with how often.
fn described_reasons(ns: &str, name: &str) -> Vec<String> {
    let described = kubectl(&ADMIN)
        .args(["describe", "apr", name, "-n", ns])
        .run()
        .ok();
    let events = described
        .split_once("\nEvents:")
        .unwrap_or_else(|| panic!("no events section:\n{described}"))
        .1;
    let mut reasons: Vec<String> = events
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|r| TRANSITIONS.contains(r))
        .map(str::to_owned)
        .collect();
    reasons.sort();
    reasons
}

#[tokio::test]
async fn approve_deny_revoke_and_use_each_produce_their_phase_and_event() {
    let gate = shared().await;
    let ns = namespace("paths").await;
    policy(&gate, &ns, "").await;
    for deploy in ["deny", "revoke", "use", "approve"] {
        apply(&ADMIN, &deployment(&ns, deploy, "app:v1")).ok();
    }
    let denied = held_change(&ns, "deny");
    let revoked = held_change(&ns, "revoke");
    let used = held_change(&ns, "use");
    let approved = held_change(&ns, "approve");

    deny(&BOB, &ns, &denied).await;
    approve(&BOB, &ns, &revoked).await;
    revoke(&BOB, &ns, &revoked).await;
    approve(&BOB, &ns, &used).await;
    apply(&ALICE, &deployment(&ns, "use", "app:v2")).ok();
    approve(&BOB, &ns, &approved).await;

    // Finished requests first: retention removes them a few seconds after they finish.
    let cases = [
        (&denied, Phase::Denied, &["Requested", "Denied"][..]),
        (
            &revoked,
            Phase::Revoked,
            &["Requested", "Approved", "Revoked"],
        ),
        (&used, Phase::Used, &["Requested", "Approved", "Used"]),
        (&approved, Phase::Approved, &["Requested", "Approved"]),
    ];
    for (name, phase, reasons) in cases {
        await_phase(&ns, name, phase, SLACK).await;
        let seen = await_transition_events(&ns, name, reasons).await;
        assert_eq!(seen, once_each(reasons), "{phase} request {name}");
        let mut expected: Vec<String> = reasons.iter().map(|r| (*r).to_owned()).collect();
        expected.sort();
        assert_eq!(
            described_reasons(&ns, name),
            expected,
            "{phase} request {name}"
        );
    }
    for (name, _, reasons) in cases {
        assert_eq!(
            audit_transitions(&gate, &ns, name),
            reasons,
            "audit log for {name}"
        );
    }
}

/// Asserts no operator leads now: nobody holds a live Lease.
async fn assert_no_operator() {
    for _ in 0..100 {
        if live_holder().await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("an operator still leads: {:?}", live_holder().await);
}

#[tokio::test]
async fn overdue_requests_expire_at_once_after_a_restart_without_duplicate_events() {
    let _only_us = exclusive().await;
    assert_no_operator().await;
    // Admission keeps working while no operator runs.
    let admission = start("restart-webhook", &["webhook".to_owned()]).await;
    register(&admission).await;
    let ns = namespace("restart").await;
    let extra = "requestTTL: 10s\napprovalTTL: 1s\nbindToContent: false\n";
    let policy = policy(&admission, &ns, extra).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let held = held_change(&ns, "checkout");
    for name in ["pending", "approved"] {
        ask(&ns, name, &policy);
    }
    approve(&BOB, &ns, "approved").await;
    let names = [held.as_str(), "pending", "approved"];

    // Every deadline passes while no operator runs.
    let mut last_deadline = Timestamp::now();
    for name in names {
        let created = time_of(
            &get_request(&ns, name)
                .await
                .unwrap()
                .metadata
                .creation_timestamp,
        );
        last_deadline = last_deadline.max(plus(created, Duration::from_secs(10)));
    }
    let overdue = until_late(last_deadline).saturating_sub(SLACK) + Duration::from_secs(1);
    tokio::time::sleep(overdue).await;
    for name in names {
        let req = get_request(&ns, name).await.unwrap();
        assert_ne!(
            phase_of(&req),
            Some(Phase::Expired),
            "{name} expired without an operator"
        );
        assert!(
            transition_events(&ns, name).is_empty(),
            "{name} has events without an operator"
        );
    }

    // A starting operator expires them at once, and records each transition once.
    let restarted = start("restart-serve", &serve_args(Duration::from_secs(60))).await;
    await_leader(
        &instance(&restarted),
        Duration::from_secs(3 * LEASE_SECONDS),
    )
    .await;
    let expected = [
        (held.as_str(), &["Requested", "Expired"][..]),
        ("pending", &["Requested", "Expired"]),
        ("approved", &["Requested", "Approved", "Expired"]),
    ];
    for (name, reasons) in expected {
        await_phase(&ns, name, Phase::Expired, Duration::from_secs(5)).await;
        let seen = await_transition_events(&ns, name, reasons).await;
        assert_eq!(seen, once_each(reasons), "{name}");
        assert_eq!(audit_transitions(&restarted, &ns, name), reasons, "{name}");
    }

    // Another restart finds everything recorded already.
    drop(restarted);
    let again = start("restart-again", &serve_args(Duration::from_secs(60))).await;
    await_leader(&instance(&again), Duration::from_secs(3 * LEASE_SECONDS)).await;
    let reconciled = r#"controller="approvalrequest""#;
    for _ in 0..100 {
        let metrics = scrape(&again).await;
        let expired = sample(&metrics, "approval_gate_requests", r#"phase="Expired""#);
        let reconciles = sample(&metrics, "approval_gate_reconciles_total", reconciled);
        if expired.unwrap_or(0.0) >= 3.0 && reconciles.unwrap_or(0.0) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, reasons) in expected {
        assert_eq!(transition_events(&ns, name), once_each(reasons), "{name}");
        assert!(audit_transitions(&again, &ns, name).is_empty(), "{name}");
    }
}

#[tokio::test]
async fn leader_failover_finishes_pending_expiries() {
    let _only_us = exclusive().await;
    let args = serve_args(Duration::from_secs(60));
    let mut replicas = vec![
        start("failover-a", &args).await,
        start("failover-b", &args).await,
    ];
    let names: Vec<String> = replicas.iter().map(instance).collect();
    let (leader_name, _) = await_any_leader(&names, Duration::from_secs(3 * LEASE_SECONDS)).await;
    let leader = replicas.remove(names.iter().position(|n| *n == leader_name).unwrap());
    let follower = replicas.pop().unwrap();
    register(&follower).await;

    let ns = namespace("failover").await;
    let policy = policy(&follower, &ns, "requestTTL: 10s\nbindToContent: false\n").await;
    let requests = ["one", "two", "three"];
    for name in requests {
        ask(&ns, name, &policy);
    }
    for name in requests {
        await_transition_events(&ns, name, &["Requested"]).await;
        assert_eq!(audit_transitions(&leader, &ns, name), ["Requested"]);
    }

    crash(&leader);
    let killed = Timestamp::now();
    drop(leader);
    let within = Duration::from_secs(LEASE_SECONDS) + SLACK;
    await_leader(&instance(&follower), within).await;
    for name in requests {
        let req = get_request(&ns, name).await.unwrap();
        let deadline = plus(
            time_of(&req.metadata.creation_timestamp),
            Duration::from_secs(10),
        );
        assert!(deadline > killed, "{name} was due before the leader died");
        assert_expires_at(&ns, name, deadline).await;
        let reasons = ["Requested", "Expired"];
        assert_eq!(
            await_transition_events(&ns, name, &reasons).await,
            once_each(&reasons)
        );
        assert_eq!(audit_transitions(&follower, &ns, name), ["Expired"]);
    }
}

#[tokio::test]
async fn retention_removes_finished_requests() {
    let gate = shared().await;
    let ns = namespace("retention").await;
    let policy = policy(&gate, &ns, "bindToContent: false\n").await;
    for name in ["kept", "denied"] {
        ask(&ns, name, &policy);
    }
    await_phase(&ns, "denied", Phase::Pending, SLACK).await;
    deny(&BOB, &ns, "denied").await;
    let denied = await_phase(&ns, "denied", Phase::Denied, SLACK).await;
    let decided = denied.status.unwrap().denial.unwrap().time.0;

    let started = tokio::time::Instant::now();
    while get_request(&ns, "denied").await.is_some() {
        assert!(
            started.elapsed() < RETENTION + SLACK,
            "the denied request outlived retention"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = Timestamp::now();
    let kept_for = Duration::try_from(gone.duration_since(decided)).unwrap_or_default();
    assert!(
        kept_for + Duration::from_secs(1) >= RETENTION,
        "deleted after {kept_for:?}"
    );
    assert!(
        get_request(&ns, "kept").await.is_some(),
        "a pending request is kept"
    );
    let logged = log_lines(&gate).into_iter().any(|l| {
        l["fields"]["request"] == "denied"
            && l["fields"]["namespace"] == ns.as_str()
            && l["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("deleted")
    });
    assert!(logged, "no log line about deleting {ns}/denied");
}

/// The READY column of `kubectl get apol`.
fn ready_column(policy: &str) -> String {
    let out = kubectl(&ALICE).args(["get", "apol", policy]).run().ok();
    let mut lines = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let column = header.iter().position(|h| *h == "READY").unwrap();
    lines.next().unwrap()[column].to_owned()
}

/// Waits until the policy's status describes its current generation as Ready.
async fn await_ready_generation(name: &str) -> i64 {
    let api = Api::<ApprovalPolicy>::all(client(&ADMIN).await);
    for _ in 0..100 {
        let policy = api.get(name).await.unwrap();
        let status = policy.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready && status.observed_generation == policy.metadata.generation {
            return policy.metadata.generation.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("policy {name} never reported Ready for its generation");
}

#[tokio::test]
async fn policy_status_reports_ready_and_observed_generation() {
    let gate = shared().await;
    let ns = namespace("ready").await;
    let name = policy(&gate, &ns, "").await;
    assert_eq!(await_ready_generation(&name).await, 1);
    assert_eq!(ready_column(&name), "True");

    let change = serde_json::json!({"spec": {"approvalTTL": "20m"}});
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&change))
        .await
        .unwrap();
    assert_eq!(await_ready_generation(&name).await, 2);
    assert_eq!(ready_column(&name), "True");
}

#[tokio::test]
async fn metrics_move_with_the_flow() {
    let gate = shared().await;
    let counter = |text: &str, name: &str, labels: &str| sample(text, name, labels).unwrap_or(0.0);
    let transitions = "approval_gate_request_transitions_total";
    let reconciles = "approval_gate_reconciles_total";
    let of_requests = r#"controller="approvalrequest""#;
    let before = scrape(&gate).await;

    let ns = namespace("metrics").await;
    let policy = policy(&gate, &ns, "bindToContent: false\n").await;
    for name in ["waiting", "approved", "denied"] {
        ask(&ns, name, &policy);
    }
    approve(&BOB, &ns, "approved").await;
    deny(&BOB, &ns, "denied").await;
    await_phase(&ns, "approved", Phase::Approved, SLACK).await;
    await_phase(&ns, "denied", Phase::Denied, SLACK).await;

    // Counters only grow, whatever other tests do; the gauges count at
    // least this test's live requests.
    let grew = |after: &str| {
        let rose = |name: &str, labels: &str, by: f64| {
            counter(after, name, labels) >= counter(&before, name, labels) + by
        };
        rose(transitions, r#"transition="Requested""#, 3.0)
            && rose(transitions, r#"transition="Approved""#, 1.0)
            && rose(transitions, r#"transition="Denied""#, 1.0)
            && rose(reconciles, of_requests, 3.0)
            && rose(reconciles, r#"controller="approvalpolicy""#, 1.0)
            && counter(after, "approval_gate_requests", r#"phase="Pending""#) >= 1.0
            && counter(after, "approval_gate_requests", r#"phase="Approved""#) >= 1.0
    };
    let mut after = scrape(&gate).await;
    for _ in 0..100 {
        if grew(&after) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape(&gate).await;
    }
    assert!(grew(&after), "before:\n{before}\nafter:\n{after}");
    for phase in [
        "Pending", "Approved", "Denied", "Expired", "Used", "Revoked",
    ] {
        let labels = format!("phase=\"{phase}\"");
        assert!(
            sample(&after, "approval_gate_requests", &labels).is_some(),
            "no gauge for {phase}:\n{after}"
        );
    }
}

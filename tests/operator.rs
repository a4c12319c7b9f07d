//! The operator as people meet it: the real `approval-gate serve` binary,
//! against a real apiserver, keeps requests' phases true over time, leaves one
//! Event and one audit log line per transition, survives restarts and leader
//! changes, removes finished requests after retention, and exports metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::{ApprovalPolicy, ApprovalRequest, Phase};
use approval_gate_testenv::webhook::LocalWebhook;
use jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use support::{operator::*, *};

/// Waits for the request to expire; asserts it expired at `deadline`, not before.
async fn assert_expires_at(ns: &str, name: &str, deadline: Timestamp) {
    let expired = await_phase(ns, name, Phase::Expired, until_late(deadline)).await;
    let seen = Timestamp::now();
    let status = expired.status.unwrap();
    assert_eq!(time_of(status.expires_at.as_ref()), deadline, "{ns}/{name}");
    assert!(
        seen >= deadline,
        "{ns}/{name} expired early: seen {seen}, due {deadline}"
    );
}

/// Each request expires with `expiresAt` at its TTL deadline, and is never seen
/// Expired before it; how late after the deadline is bounded only by `SLACK`
/// here and measured by `make bench-operator` (expiry lateness).
#[tokio::test]
async fn pending_requests_expire_at_their_deadline_never_before() {
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

    // An approval expires approvalTTL after it was given...
    let given = approved.status.unwrap().approvals[0].time.0;
    assert_expires_at(&ns, "approved", plus(given, Duration::from_secs(2))).await;
    // ...a pending request requestTTL after it was created.
    for name in pending {
        let req = get_request(&ns, name).await.unwrap();
        let created = time_of(req.metadata.creation_timestamp.as_ref());
        assert_expires_at(&ns, name, plus(created, Duration::from_secs(10))).await;
    }
    // Retention may have removed the approved one already.
    let listed = kubectl(&ALICE)
        .args(["get", "apr", "-n", &ns, "--no-headers"])
        .args(pending)
        .run()
        .ok();
    assert_eq!(listed.matches(" Expired ").count(), 3, "{listed}");
}

/// The transition reasons in the Events section of `kubectl describe apr`, sorted.
fn described_reasons(ns: &str, name: &str) -> Vec<String> {
    let described = kubectl(&ADMIN)
        .args(["describe", "apr", name, "-n", ns])
        .run()
        .ok();
    let (_, events) = described
        .split_once("\nEvents:")
        .unwrap_or_else(|| panic!("no Events in:\n{described}"));
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
    // An operator of its own, keeping finished requests a minute: under load,
    // the shared one's short retention removed a Used request before
    // `kubectl describe` could show its Events.
    let _only_us = exclusive().await;
    let gate = start_leader("paths").await;
    register(&gate).await;
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
    await_allowed(&ALICE, &deployment(&ns, "use", "app:v2")).await;
    apply(&ALICE, &deployment(&ns, "use", "app:v2")).ok();
    approve(&BOB, &ns, &approved).await;

    // Finished requests first, though retention keeps them a minute here.
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
        let mut sorted = reasons.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            described_reasons(&ns, name),
            sorted,
            "{phase} request {name}"
        );
    }
    for (name, phase, reasons) in cases {
        let logged = audit_transitions(&gate, &ns, name);
        assert_eq!(logged, reasons, "audit log of {phase} request {name}");
        assert_logged_in_their_spans(&gate, &ns, name).await;
    }
}

/// Each audit line about request `name` was logged inside the span of what
/// it is about: a reconcile of that request, or the admission that used it
/// (whose uid the `Used` line names). So any log line can be followed to its
/// request.
async fn assert_logged_in_their_spans(gate: &LocalWebhook, ns: &str, name: &str) {
    let about = || -> Vec<serde_json::Value> {
        log_lines(gate)
            .into_iter()
            .filter(|l| l["target"] == "approval_gate::audit")
            .filter(|l| l["fields"]["namespace"] == ns && l["fields"]["request"] == name)
            .collect()
    };
    // The line follows the status write a test waits for.
    let mut lines = about();
    for _ in 0..100 {
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = about();
    }
    assert!(!lines.is_empty(), "no audit line about {ns}/{name}");
    for line in lines {
        let span = &line["span"];
        let uid = span["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{line}");
        assert_eq!(span["namespace"], ns, "{line}");
        assert_eq!(span["operation"], "UPDATE", "{line}");
        match span["name"].as_str() {
            Some("reconcile") => {
                assert_eq!(span["request"], name, "{line}");
                assert_eq!(span["user"], "alice", "{line}");
            }
            Some("admission") => {
                assert_eq!(span["user"], "alice", "{line}");
                if line["fields"]["transition"] == "Used" {
                    let message = line["fields"]["message"].as_str().unwrap_or_default();
                    assert!(message.contains(uid), "{line}");
                }
            }
            _ => panic!("an audit line outside a reconcile or an admission: {line}"),
        }
    }
}

/// Requests whose deadlines all pass while no operator runs (`admission`
/// serves the webhook): one approval-gate created for a held change, one
/// alice made by hand, and one bob approved. Returns the namespace, and each
/// request with the transitions it went through.
async fn overdue_without_an_operator(
    admission: &LocalWebhook,
) -> (String, Vec<(String, &'static [&'static str])>) {
    await_no_operator().await;
    let ns = namespace("restart").await;
    let extra = "requestTTL: 10s\napprovalTTL: 1s\nbindToContent: false\n";
    let policy = policy(admission, &ns, extra).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let held = held_change(&ns, "checkout");
    ask(&ns, "pending", &policy);
    ask(&ns, "approved", &policy);
    approve(&BOB, &ns, "approved").await;
    let requests: Vec<(String, &'static [&'static str])> = vec![
        (held, &["Requested", "Expired"]),
        ("pending".to_owned(), &["Requested", "Expired"]),
        ("approved".to_owned(), &["Requested", "Approved", "Expired"]),
    ];

    let mut last_deadline = Timestamp::now();
    for (name, _) in &requests {
        let req = get_request(&ns, name).await.unwrap();
        let created = time_of(req.metadata.creation_timestamp.as_ref());
        last_deadline = last_deadline.max(plus(created, Duration::from_secs(10)));
    }
    tokio::time::sleep(until_late(last_deadline) - SLACK + Duration::from_secs(1)).await;
    for (name, _) in &requests {
        let req = get_request(&ns, name).await.unwrap();
        assert_ne!(
            phase_of(&req),
            Some(Phase::Expired),
            "{name}: yet no operator ran"
        );
        assert!(
            transition_events(&ns, name).is_empty(),
            "{name}: yet no operator ran"
        );
    }
    (ns, requests)
}

#[tokio::test]
async fn overdue_requests_expire_at_once_after_a_restart_without_duplicate_events() {
    let _only_us = exclusive().await;
    let admission = start("restart-webhook", &["webhook".to_owned()]).await;
    register(&admission).await;
    let (ns, requests) = overdue_without_an_operator(&admission).await;

    let operator = start_leader("restart-serve").await;
    for (name, reasons) in &requests {
        await_phase(&ns, name, Phase::Expired, Duration::from_secs(5)).await;
        let seen = await_transition_events(&ns, name, reasons).await;
        assert_eq!(seen, once_each(reasons), "{name}");
        assert_eq!(audit_transitions(&operator, &ns, name), *reasons, "{name}");
    }
}

#[tokio::test]
async fn a_second_restart_records_nothing_again() {
    let _only_us = exclusive().await;
    let admission = start("again-webhook", &["webhook".to_owned()]).await;
    register(&admission).await;
    let (ns, requests) = overdue_without_an_operator(&admission).await;
    let operator = start_leader("again-serve").await;
    for (name, reasons) in &requests {
        await_phase(&ns, name, Phase::Expired, Duration::from_secs(5)).await;
        await_transition_events(&ns, name, reasons).await;
    }
    drop(operator);

    let again = start_leader("again-serve").await;
    let all = Api::<ApprovalRequest>::all(client(&ADMIN).await);
    let total = all.list(&Default::default()).await.unwrap().items.len() as f64;
    let labels = r#"controller="approvalrequest""#;
    // Only once the new leader has looked at every request does "nothing
    // again" mean something.
    let reconciled = |m: &str| value(m, "approval_gate_reconciles_total", labels) >= total;
    let metrics = scrape_until(&again, reconciled).await;
    assert!(
        reconciled(&metrics),
        "not every request was reconciled:\n{metrics}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, reasons) in &requests {
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
    let (leading, _) = await_any_leader(&names, Duration::from_secs(3 * LEASE_SECONDS)).await;
    let leader = replicas.remove(names.iter().position(|n| *n == leading).unwrap());
    let follower = replicas.pop().unwrap();
    register(&follower).await;

    let ns = namespace("failover").await;
    // Long enough that the requests are still pending when the leader dies;
    // the dead leader's own audit log below proves they were.
    let policy = policy(&follower, &ns, "requestTTL: 20s\nbindToContent: false\n").await;
    let requests = ["one", "two", "three"];
    for name in requests {
        ask(&ns, name, &policy);
    }
    for name in requests {
        await_transition_events(&ns, name, &["Requested"]).await;
        assert_eq!(audit_transitions(&leader, &ns, name), ["Requested"]);
    }

    crash(&leader);
    // The leader is dead, so its log is final: it expired none of them, and
    // every expiry below is the follower's work.
    for name in requests {
        assert_eq!(
            audit_transitions(&leader, &ns, name),
            ["Requested"],
            "{name} was no longer pending when the leader crashed"
        );
    }
    drop(leader);
    let within = Duration::from_secs(LEASE_SECONDS) + SLACK;
    let (_, took) = await_any_leader(&[instance(&follower)], within).await;
    eprintln!("the follower took over {took:?} after the leader crashed");
    for name in requests {
        let req = get_request(&ns, name).await.unwrap();
        let created = time_of(req.metadata.creation_timestamp.as_ref());
        let deadline = plus(created, Duration::from_secs(20));
        assert_expires_at(&ns, name, deadline).await;
        let reasons = ["Requested", "Expired"];
        let seen = await_transition_events(&ns, name, &reasons).await;
        assert_eq!(seen, once_each(&reasons), "{name}");
        assert_eq!(audit_transitions(&follower, &ns, name), ["Expired"]);
    }
}

/// A second control namespace, holding what the chart grants approval-gate's
/// service account in its own (the namespaced Roles and RoleBindings, copied).
async fn second_control_namespace() -> String {
    let ns = namespace("second-home").await;
    let chart = approval_gate_testenv::rbac::chart_rbac(&plane().bin_dir().join("helm")).unwrap();
    create_in(&ns, chart.roles).await;
    create_in(&ns, chart.role_bindings).await;
    ns
}

/// Creates each of `objects` in `ns`, as the admin.
async fn create_in<K>(ns: &str, objects: Vec<K>)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(client(&ADMIN).await, ns);
    for mut object in objects {
        object.meta_mut().namespace = Some(ns.to_owned());
        api.create(&PostParams::default(), &object).await.unwrap();
    }
}

/// Two leaders at once, as in a split brain: two operators whose Leases live
/// in different control namespaces, both reconciling every request at the
/// same moments (when each is created, and at its deadline). Each transition
/// is still recorded once in all, because a status write is conditioned on
/// the resourceVersion it was planned from, and only its winner records.
#[tokio::test]
async fn two_leaders_writing_at_once_record_each_transition_once() {
    let _only_us = exclusive().await;
    let second_home = second_control_namespace().await;
    let first = start_leader("split-first").await;
    let mut args = serve_args(Duration::from_secs(60));
    args.push(format!("--control-namespace={second_home}"));
    let second = start("split-second", &args).await;
    await_leader_in(&second_home, &instance(&second)).await;
    register(&first).await;

    let ns = namespace("split").await;
    let policy = policy(&first, &ns, "requestTTL: 10s\nbindToContent: false\n").await;
    let names: Vec<String> = (0..20).map(|i| format!("req-{i}")).collect();
    for name in &names {
        ask(&ns, name, &policy);
    }
    let reasons = ["Requested", "Expired"];
    for name in &names {
        let req = get_request(&ns, name).await.unwrap();
        let created = time_of(req.metadata.creation_timestamp.as_ref());
        assert_expires_at(&ns, name, plus(created, Duration::from_secs(10))).await;
        let seen = await_transition_events(&ns, name, &reasons).await;
        assert_eq!(seen, once_each(&reasons), "{name}");
        let mut audited = audit_transitions(&first, &ns, name);
        audited.extend(audit_transitions(&second, &ns, name));
        audited.sort();
        assert_eq!(audited, ["Expired", "Requested"], "{name}");
    }
    // Both really reconciled every request: neither stood by.
    let labels = r#"controller="approvalrequest""#;
    let all = names.len() as f64;
    for running in [&first, &second] {
        let metrics = scrape_until(running, |m| {
            value(m, "approval_gate_reconciles_total", labels) >= 2.0 * all
        })
        .await;
        assert!(
            value(&metrics, "approval_gate_reconciles_total", labels) >= 2.0 * all,
            "{} did not reconcile every request twice:\n{metrics}",
            running.dir.display()
        );
    }
}

#[tokio::test]
async fn retention_removes_finished_requests() {
    let gate = shared().await;
    let ns = namespace("retention").await;
    let policy = policy(&gate, &ns, "bindToContent: false\n").await;
    ask(&ns, "kept", &policy);
    ask(&ns, "denied", &policy);
    await_phase(&ns, "denied", Phase::Pending, SLACK).await;
    deny(&BOB, &ns, "denied").await;
    let denied = await_phase(&ns, "denied", Phase::Denied, SLACK).await;
    let decided = denied.status.unwrap().denial.unwrap().time.0;

    let started = tokio::time::Instant::now();
    while get_request(&ns, "denied").await.is_some() {
        let waited = started.elapsed();
        assert!(waited < RETENTION + SLACK, "still there after {waited:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kept_for = Duration::try_from(Timestamp::now().duration_since(decided)).unwrap();
    // Denial times are stored in whole seconds.
    assert!(
        kept_for + Duration::from_secs(1) >= RETENTION,
        "gone after {kept_for:?}"
    );
    assert!(
        get_request(&ns, "kept").await.is_some(),
        "a pending request stays"
    );
    let logged = log_lines(&gate).into_iter().any(|l| {
        let fields = &l["fields"];
        fields["namespace"] == ns.as_str()
            && fields["request"] == "denied"
            && fields["message"]
                .as_str()
                .unwrap_or_default()
                .contains("deleted")
    });
    assert!(logged, "no log line about deleting {ns}/denied");
}

/// The READY column `kubectl get apol` shows for a policy.
fn ready_column(policy: &str) -> String {
    apol_column(policy, "READY")
}

/// One column of `kubectl get apol` for a policy.
fn apol_column(policy: &str, column: &str) -> String {
    let out = kubectl(&ALICE).args(["get", "apol", policy]).run().ok();
    let mut rows = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    let header = rows.next().unwrap();
    let at = header.iter().position(|h| *h == column).unwrap();
    rows.next().unwrap()[at].to_owned()
}

/// Waits until the policy's status says Ready for its current generation; returns it.
async fn await_ready_generation(name: &str) -> i64 {
    let api = Api::<ApprovalPolicy>::all(client(&ADMIN).await);
    for _ in 0..100 {
        let policy = api.get(name).await.unwrap();
        let status = policy.status.unwrap_or_default();
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
async fn a_policy_on_exec_alone_shows_its_coverage_gap() {
    let _gate = shared().await;
    let ns = namespace("gap").await;
    let name = format!("{ns}-exec-only");
    let spec = serde_yaml_ng::from_str(&format!(
        "rules: [{{apiGroups: [''], resources: [pods/exec], namespaces: [{ns}], \
         operations: [CONNECT]}}]\napprovers: {{groups: [sre]}}\n"
    ))
    .unwrap();
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .create(&PostParams::default(), &ApprovalPolicy::new(&name, spec))
        .await
        .unwrap();
    await_ready_generation(&name).await;
    let policy = Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .get(&name)
        .await
        .unwrap();
    let gap = policy
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "CoverageGap")
        .expect("a CoverageGap condition");
    assert_eq!(
        (gap.status.as_str(), gap.reason.as_str()),
        ("True", "SiblingsNotGated")
    );
    assert!(
        gap.message.contains("pods/attach, pods/portforward"),
        "{}",
        gap.message
    );
    assert_eq!(apol_column(&name, "COVERAGE-GAP"), "True");
}

/// One request waiting, one approved and one denied, under a fresh policy.
async fn scripted_flow(gate: &LocalWebhook) {
    let ns = namespace("metrics").await;
    let policy = policy(gate, &ns, "bindToContent: false\n").await;
    for name in ["waiting", "approved", "denied"] {
        ask(&ns, name, &policy);
    }
    approve(&BOB, &ns, "approved").await;
    deny(&BOB, &ns, "denied").await;
    await_phase(&ns, "approved", Phase::Approved, SLACK).await;
    await_phase(&ns, "denied", Phase::Denied, SLACK).await;
}

#[tokio::test]
async fn metrics_move_with_the_flow() {
    let gate = shared().await;
    let transitions = "approval_gate_request_transitions_total";
    let reconciles = "approval_gate_reconciles_total";
    let before = scrape(&gate).await;
    scripted_flow(&gate).await;

    // Counters only grow, whatever the other tests do meanwhile.
    let grew = |after: &str| {
        let rose = |name: &str, labels: &str, by: f64| {
            value(after, name, labels) >= value(&before, name, labels) + by
        };
        rose(transitions, r#"transition="Requested""#, 3.0)
            && rose(transitions, r#"transition="Approved""#, 1.0)
            && rose(transitions, r#"transition="Denied""#, 1.0)
            && rose(reconciles, r#"controller="approvalrequest""#, 3.0)
            && rose(reconciles, r#"controller="approvalpolicy""#, 1.0)
    };
    let after = scrape_until(&gate, grew).await;
    assert!(grew(&after), "before:\n{before}\nafter:\n{after}");
}

#[tokio::test]
async fn requests_gauge_counts_live_requests_by_phase() {
    let gate = shared().await;
    scripted_flow(&gate).await;
    // At least this test's waiting and approved requests, whatever other tests do.
    let counted = |text: &str| {
        value(text, "approval_gate_requests", r#"phase="Pending""#) >= 1.0
            && value(text, "approval_gate_requests", r#"phase="Approved""#) >= 1.0
    };
    let text = scrape_until(&gate, counted).await;
    assert!(counted(&text), "{text}");
    for phase in TRANSITIONS.iter().skip(1).chain(&["Pending"]) {
        let labels = format!("phase=\"{phase}\"");
        let exported = sample(&text, "approval_gate_requests", &labels);
        assert!(exported.is_some(), "no gauge for {labels}:\n{text}");
    }
}

#[tokio::test]
async fn approved_is_recorded_once_even_when_the_policy_was_briefly_missing() {
    let gate = shared().await;
    let ns = namespace("recreate").await;
    let policy = policy(&gate, &ns, "bindToContent: false\n").await;
    ask(&ns, "req", &policy);
    approve(&BOB, &ns, "req").await;
    await_phase(&ns, "req", Phase::Approved, SLACK).await;
    await_transition_events(&ns, "req", &["Requested", "Approved"]).await;

    // The policy is re-applied by deleting and creating it (`kubectl replace --force`),
    // and something makes the operator look at the request meanwhile.
    let policies = Api::<ApprovalPolicy>::all(client(&ADMIN).await);
    let spec = policies.get(&policy).await.unwrap().spec;
    policies.delete(&policy, &Default::default()).await.unwrap();
    kubectl(&ADMIN)
        .args([
            "annotate",
            "apr",
            "req",
            "-n",
            &ns,
            "example.com/touched=yes",
        ])
        .run()
        .ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = ApprovalPolicy::new(&policy, spec);
    policies
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    await_phase(&ns, "req", Phase::Approved, SLACK).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reasons = ["Requested", "Approved"];
    let seen = await_transition_events(&ns, "req", &reasons).await;
    assert_eq!(seen, once_each(&reasons));
}

#[tokio::test]
async fn requests_finished_while_no_operator_ran_are_recorded_before_retention_removes_them() {
    let _only_us = exclusive().await;
    await_no_operator().await;
    let admission = start("offline-webhook", &["webhook".to_owned()]).await;
    register(&admission).await;
    let ns = namespace("offline").await;
    let policy = policy(&admission, &ns, "bindToContent: false\n").await;
    ask(&ns, "denied", &policy);
    deny(&BOB, &ns, "denied").await;

    let retention = Duration::from_secs(2);
    tokio::time::sleep(retention + Duration::from_secs(1)).await;
    let operator = start("offline-serve", &serve_args(retention)).await;
    await_leader(&instance(&operator)).await;
    let reasons = ["Requested", "Denied"];
    let seen = await_transition_events(&ns, "denied", &reasons).await;
    assert_eq!(seen, once_each(&reasons));
    assert_eq!(audit_transitions(&operator, &ns, "denied"), reasons);
}

/// A reconcile that fails becomes a Warning Event on the object, whose note
/// carries the cause. Here a ValidatingAdmissionPolicy (the apiserver's own,
/// no webhook) refuses every status write in one namespace, so the operator
/// cannot record a new request there.
#[tokio::test]
async fn a_failing_reconcile_is_a_warning_event_that_names_its_cause() {
    let gate = shared().await;
    let ns = namespace("reconcile-fails").await;
    let policy = policy(&gate, &ns, "bindToContent: false\n").await;
    let name = format!("{ns}-freeze");
    let message = format!("status writes are frozen in {ns}");
    let manifests = format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n\
         metadata: {{name: {name}}}\nspec:\n  failurePolicy: Fail\n  matchConstraints:\n    \
         resourceRules:\n    - {{apiGroups: [approvalgate.dev], apiVersions: ['*'], \
         operations: [UPDATE], resources: [approvalrequests/status]}}\n    \
         - {{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}}\n  \
         validations:\n  - {{expression: 'false', message: '{message}'}}\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\n\
         metadata: {{name: {name}}}\nspec:\n  policyName: {name}\n  validationActions: [Deny]\n  \
         matchResources:\n    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}\n"
    );
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(manifests.clone())
        .run()
        .ok();
    // The apiserver takes a moment to load the policy: a ConfigMap it also
    // refuses tells when it is in force.
    let probe =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: probe, namespace: {ns}}}\n");
    let mut in_force = false;
    for _ in 0..300 {
        let out = kubectl(&ADMIN)
            .args(["create", "--dry-run=server", "-f", "-"])
            .stdin(probe.clone())
            .run();
        if !out.success() && out.stderr().contains(&message) {
            in_force = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(in_force, "the ValidatingAdmissionPolicy never took effect");

    ask(&ns, "frozen", &policy);
    let note = await_event(&ns, "frozen", "ApiError", &message).await;
    assert!(note.starts_with("reconcile failed: "), "{note}");
    assert!(note.len() <= 1024, "bounded: {note}");
    assert_eq!(phase_of(&get_request(&ns, "frozen").await.unwrap()), None);

    let failed = log_lines(&gate).into_iter().any(|l| {
        l["fields"]["message"] == "reconcile failed; retrying"
            && l["fields"]["name"] == "frozen"
            && l["fields"]["namespace"] == ns.as_str()
            && l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(&message))
    });
    assert!(failed, "the log names the request and the cause");

    // Once the cause is gone, the retry records the request.
    kubectl(&ADMIN)
        .args(["delete", "-f", "-"])
        .stdin(manifests)
        .run()
        .ok();
    await_phase(&ns, "frozen", Phase::Pending, SLACK).await;
    assert_logged_in_their_spans(&gate, &ns, "frozen").await;
}

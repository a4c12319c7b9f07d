//! approval-gate's operator for the tests: the real binary run as `serve`
//! (webhook plus leader-elected operator), what people do to requests, and
//! readers for what the operator leaves behind: the Lease, Events, audit log
//! lines and metrics.
//!
//! Most tests share one long-lived `serve` process ([`shared`]). Only one
//! operator leads at a time, so a test that stops and starts operators takes
//! [`exclusive`] use: it waits for the sharing tests to finish, stops the
//! shared process, and the next sharing test starts a fresh one.

use std::{
    collections::BTreeMap,
    ops::Deref,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use approval_gate::crd::{
    Approval, ApprovalPolicy, ApprovalRequest, ApprovalRequestStatus, Phase, Verdict,
};
use approval_gate_testenv::{CONTROL_NAMESPACE, Identity, webhook::LocalWebhook};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use k8s_openapi::{
    api::{admissionregistration::v1::RuleWithOperations, coordination::v1::Lease},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{ADMIN, ALICE, CONTROLLER, apply, client, deployment, kubectl, plane, request_name};

/// How long the shared operator keeps finished requests.
pub const RETENTION: Duration = Duration::from_secs(6);
/// How long after a use its write must show, for every operator here.
pub const USE_CONFIRM_WINDOW: Duration = Duration::from_secs(5);
/// The leader Lease duration of every operator here.
pub const LEASE_SECONDS: u64 = 4;
/// Longest wait past a deadline before a late change fails a test.
pub const SLACK: Duration = Duration::from_secs(10);
/// The transitions the operator records, as Event reasons.
pub const TRANSITIONS: [&str; 7] = [
    "Requested",
    "Approved",
    "Denied",
    "Expired",
    "Used",
    "Revoked",
    "Superseded",
];
const LEASE_NAME: &str = "approval-gate-operator";

static SHARED: RwLock<Option<LocalWebhook>> = RwLock::const_new(None);
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// The shared `serve` process, leading and registered while this value lives.
pub struct Shared(RwLockReadGuard<'static, Option<LocalWebhook>>);

impl Deref for Shared {
    type Target = LocalWebhook;

    fn deref(&self) -> &LocalWebhook {
        self.0
            .as_ref()
            .expect("the shared operator runs while shared")
    }
}

/// No shared operator runs while this value lives.
pub struct Exclusive(RwLockWriteGuard<'static, Option<LocalWebhook>>);

/// The shared `serve` process, started (and made leader) on first use.
pub async fn shared() -> Shared {
    loop {
        let running = SHARED.read().await;
        if running.is_some() {
            return Shared(running);
        }
        drop(running);
        let mut slot = SHARED.write().await;
        if slot.is_none() {
            let started = start("shared", &serve_args(RETENTION)).await;
            register(&started).await;
            await_leader(&instance(&started)).await;
            *slot = Some(started);
        }
    }
}

/// Stops the shared operator (gracefully: it hands the Lease back) and keeps
/// it stopped until the returned value is dropped.
pub async fn exclusive() -> Exclusive {
    let mut slot = SHARED.write().await;
    drop(slot.take());
    Exclusive(slot)
}

/// `serve` with `retention` and this module's Lease duration.
pub fn serve_args(retention: Duration) -> Vec<String> {
    serve_args_linking(retention, CONSOLE_URL)
}

/// [`serve_args`], its notifications linking to the web console at `console_url`.
pub fn serve_args_linking(retention: Duration, console_url: &str) -> Vec<String> {
    vec![
        "serve".to_owned(),
        format!("--retention={}s", retention.as_secs()),
        format!("--lease-seconds={LEASE_SECONDS}"),
        format!("--use-confirm-window={}s", USE_CONFIRM_WINDOW.as_secs()),
        format!("--console-url={console_url}"),
    ]
}

/// The web console's URL the operators here are given: notifications link there.
pub const CONSOLE_URL: &str = "https://approvals.example.test";

/// Starts the real binary with `args`, as approval-gate's own service
/// account, in a fresh directory named after `name`; waits until it is ready.
/// It is not registered. Dropping it stops it.
pub async fn start(name: &str, args: &[String]) -> LocalWebhook {
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let dir = plane().dir().join(format!("{name}-{n}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let running = LocalWebhook::spawn_with(
        Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &dir,
        &plane().kubeconfig(&CONTROLLER),
        &args,
    )
    .expect("starting approval-gate");
    running
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("approval-gate becomes ready");
    running
}

/// Starts `serve` (keeping finished requests a minute) and waits until it leads.
pub async fn start_leader(name: &str) -> LocalWebhook {
    let running = start(name, &serve_args(Duration::from_secs(60))).await;
    await_leader(&instance(&running)).await;
    running
}

/// The identity a process holds the Lease under.
pub fn instance(running: &LocalWebhook) -> String {
    let dir = running.dir.file_name().and_then(|n| n.to_str());
    format!("local-{}", dir.unwrap_or("webhook"))
}

/// Makes `running` the admission webhook for deployments and (through the
/// guard rules `register` adds) for approval-gate's own objects.
pub async fn register(running: &LocalWebhook) {
    let rules = vec![RuleWithOperations {
        api_groups: Some(vec!["apps".into()]),
        api_versions: Some(vec!["*".into()]),
        operations: Some(vec!["*".into()]),
        resources: Some(vec!["deployments".into()]),
        scope: Some("*".into()),
    }];
    running
        .register(&client(&ADMIN).await, rules)
        .await
        .expect("registering the webhook");
}

/// SIGKILLs the approval-gate binary running in `running`'s directory, as a
/// crash would: no graceful shutdown, no Lease handed back.
pub fn crash(running: &LocalWebhook) {
    use nix::{sys::signal, unistd::Pid};
    let binary = env!("CARGO_BIN_EXE_approval-gate");
    let marker = format!("--tls-cert-file={}", running.dir.join("tls.crt").display());
    for entry in std::fs::read_dir("/proc").expect("reading /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        // Its watchdog shell has the same arguments, but not the binary as argv[0].
        if args.first() == Some(&binary.as_bytes()) && args.contains(&marker.as_bytes()) {
            signal::kill(Pid::from_raw(pid), signal::Signal::SIGKILL).expect("SIGKILL");
            // Dead once it is a zombie or gone: nothing it writes comes after this.
            let stat = entry.path().join("stat");
            for _ in 0..500 {
                match std::fs::read_to_string(&stat) {
                    Ok(s) if !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => return,
                }
            }
            panic!("pid {pid} outlived SIGKILL by 5 s");
        }
    }
    panic!("no approval-gate process runs in {}", running.dir.display());
}

/// The Lease's holder, unless its lease has run out.
pub async fn live_holder() -> Option<String> {
    live_holder_in(CONTROL_NAMESPACE).await
}

/// The holder of the Lease in `namespace`, unless its lease has run out.
pub async fn live_holder_in(namespace: &str) -> Option<String> {
    let leases = Api::<Lease>::namespaced(client(&ADMIN).await, namespace);
    let spec = leases.get_opt(LEASE_NAME).await.ok()??.spec?;
    let renewed = spec.renew_time.or(spec.acquire_time)?.0;
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds?.into());
    let live = renewed.checked_add(duration).ok()? > Timestamp::now();
    spec.holder_identity.filter(|_| live)
}

/// Waits until one of `candidates` holds the Lease; returns it and how long that took.
pub async fn await_any_leader(candidates: &[String], within: Duration) -> (String, Duration) {
    await_any_leader_in(CONTROL_NAMESPACE, candidates, within).await
}

/// Like [`await_any_leader`], for the Lease in `namespace`.
pub async fn await_any_leader_in(
    namespace: &str,
    candidates: &[String],
    within: Duration,
) -> (String, Duration) {
    let started = tokio::time::Instant::now();
    let mut holder = None;
    while started.elapsed() < within {
        holder = live_holder_in(namespace).await;
        if let Some(h) = holder.as_ref().filter(|h| candidates.contains(h)) {
            return (h.clone(), started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("none of {candidates:?} took the Lease within {within:?}; {holder:?} holds it");
}

/// Waits (three Lease durations at most) until `instance` holds the Lease.
pub async fn await_leader(instance: &str) {
    await_leader_in(CONTROL_NAMESPACE, instance).await;
}

/// Like [`await_leader`], for the Lease in `namespace`.
pub async fn await_leader_in(namespace: &str, instance: &str) {
    let within = Duration::from_secs(3 * LEASE_SECONDS);
    await_any_leader_in(namespace, &[instance.to_owned()], within).await;
}

/// Waits until no operator leads: nobody holds a live Lease.
pub async fn await_no_operator() {
    for _ in 0..100 {
        if live_holder().await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("an operator still leads: {:?}", live_holder().await);
}

/// A policy holding updates of deployments in `ns`, approved by group sre,
/// with `extra` spec lines; `admission` knows it when this returns.
pub async fn policy(admission: &LocalWebhook, ns: &str, extra: &str) -> String {
    policy_on(admission, ns, "apps", "deployments", extra).await
}

/// A policy holding updates of `resources` of `group` in `ns`, approved by
/// group sre, with `extra` spec lines; `admission` knows it when this returns.
pub async fn policy_on(
    admission: &LocalWebhook,
    ns: &str,
    group: &str,
    resources: &str,
    extra: &str,
) -> String {
    let name = format!("{ns}-policy");
    let yaml = format!(
        "rules: [{{apiGroups: ['{group}'], resources: [{resources}], namespaces: [{ns}], \
         operations: [UPDATE]}}]\napprovers: {{groups: [sre]}}\n{extra}"
    );
    let policy = ApprovalPolicy::new(&name, serde_yaml_ng::from_str(&yaml).unwrap());
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let url = format!("{}/debug/index", admission.metrics_url);
    for _ in 0..200 {
        let index: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if index["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| *p == name)
        {
            return name;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook never saw policy {name}");
}

/// alice changes a deployment and is held; returns the request approval-gate created.
pub fn held_change(ns: &str, deploy: &str) -> String {
    let message = apply(&ALICE, &deployment(ns, deploy, "app:v2")).fails();
    request_name(&message, ns)
}

/// alice asks by hand (possible when the policy does not bind to content).
pub fn ask(ns: &str, name: &str, policy: &str) {
    let manifest = format!(
        "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalRequest\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  requester: alice\n  operation: UPDATE\n  policy: {policy}\n  reason: INC-7\n  \
         target: {{apiGroup: apps, resource: deployments, namespace: {ns}, name: checkout}}\n"
    );
    kubectl(&ALICE)
        .args(["create", "-f", "-"])
        .stdin(manifest)
        .run()
        .ok();
}

pub async fn get_request(ns: &str, name: &str) -> Option<ApprovalRequest> {
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns)
        .get_opt(name)
        .await
        .unwrap()
}

pub fn phase_of(req: &ApprovalRequest) -> Option<Phase> {
    req.status.as_ref().and_then(|s| s.phase)
}

/// Waits until the request shows `phase`; panics with its status otherwise.
pub async fn await_phase(ns: &str, name: &str, phase: Phase, within: Duration) -> ApprovalRequest {
    let started = tokio::time::Instant::now();
    loop {
        let req = get_request(ns, name)
            .await
            .unwrap_or_else(|| panic!("{ns}/{name} is gone while waiting for {phase}"));
        if phase_of(&req) == Some(phase) {
            return req;
        }
        assert!(
            started.elapsed() < within,
            "{ns}/{name} is not {phase} after {within:?}: {:?}",
            req.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `who` writes one decision into the status, again when the operator wrote
/// in between (writes are conditioned on the resourceVersion).
async fn decide(who: &Identity, ns: &str, name: &str, edit: impl Fn(&mut ApprovalRequestStatus)) {
    let api = Api::<ApprovalRequest>::namespaced(client(who).await, ns);
    for _ in 0..10 {
        let mut req = api.get(name).await.unwrap();
        edit(req.status.get_or_insert_with(Default::default));
        match api.replace_status(name, &PostParams::default(), &req).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("{} could not decide {ns}/{name}: {e}", who.username),
        }
    }
    panic!("{ns}/{name} kept changing under {}", who.username);
}

fn verdict(who: &Identity, reason: &str) -> Verdict {
    Verdict {
        user: who.username.to_owned(),
        time: Time(Timestamp::now()),
        reason: reason.to_owned(),
    }
}

pub async fn approve(who: &Identity, ns: &str, name: &str) {
    let approval = Approval {
        user: who.username.to_owned(),
        groups: who.groups.iter().map(|g| (*g).to_owned()).collect(),
        time: Time(Timestamp::now()),
        comment: "looks good".into(),
    };
    decide(who, ns, name, |s| s.approvals.push(approval.clone())).await;
}

pub async fn deny(who: &Identity, ns: &str, name: &str) {
    let denial = verdict(who, "not during the freeze");
    decide(who, ns, name, |s| s.denial = Some(denial.clone())).await;
}

pub async fn revoke(who: &Identity, ns: &str, name: &str) {
    let revocation = verdict(who, "wrong ticket");
    decide(who, ns, name, |s| s.revocation = Some(revocation.clone())).await;
}

pub fn time_of(t: Option<&Time>) -> Timestamp {
    t.expect("the timestamp is set").0
}

pub fn plus(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(d).unwrap())
        .unwrap()
}

/// From now until `at`, plus the slack a late change gets.
pub fn until_late(at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(Timestamp::now()))
        .unwrap_or(Duration::ZERO)
        .saturating_add(SLACK)
}

/// How often each transition was recorded as an Event about the request, as
/// `kubectl get events` lists them; a repeat folded into a series counts as
/// often as it happened.
pub fn transition_events(ns: &str, name: &str) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for event in &events_where(ns, &format!("involvedObject.name={name}")) {
        let reason = event["reason"].as_str().unwrap_or_default();
        if TRANSITIONS.contains(&reason) {
            let count = event["count"].as_u64().unwrap_or(0);
            let series = event["series"]["count"].as_u64().unwrap_or(0);
            *seen.entry(reason.to_owned()).or_default() += count.max(series).max(1);
        }
    }
    seen
}

/// Waits until each of `expected` was recorded about the request, and half a
/// second more for any repeat; returns what was recorded.
pub async fn await_transition_events(
    ns: &str,
    name: &str,
    expected: &[&str],
) -> BTreeMap<String, u64> {
    for _ in 0..100 {
        if expected
            .iter()
            .all(|r| transition_events(ns, name).contains_key(*r))
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return transition_events(ns, name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = transition_events(ns, name);
    panic!("{ns}/{name}: not all of {expected:?} were recorded; saw {seen:?}");
}

/// Each of `reasons` once.
pub fn once_each(reasons: &[&str]) -> BTreeMap<String, u64> {
    reasons.iter().map(|r| ((*r).to_owned(), 1)).collect()
}

/// The JSON log lines of `running` (its `webhook.log`).
pub fn log_lines(running: &LocalWebhook) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(running.dir.join("webhook.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The transitions `running` logged on the audit target about one request, in order.
pub fn audit_transitions(running: &LocalWebhook, ns: &str, name: &str) -> Vec<String> {
    log_lines(running)
        .into_iter()
        .filter(|l| l["target"] == "approval_gate::audit")
        .filter(|l| l["fields"]["namespace"] == ns && l["fields"]["request"] == name)
        .map(|l| {
            l["fields"]["transition"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// `running`'s /metrics text.
pub async fn scrape(running: &LocalWebhook) -> String {
    let url = format!("{}/metrics", running.metrics_url);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Scrapes until `holds` is true of the text, for ten seconds at most; returns the last text.
pub async fn scrape_until(running: &LocalWebhook, holds: impl Fn(&str) -> bool) -> String {
    let mut text = scrape(running).await;
    for _ in 0..100 {
        if holds(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(running).await;
    }
    text
}

/// One sample, `name{labels}` exactly as exposed, for example
/// `sample(text, "approval_gate_requests", r#"phase="Pending""#)`.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// A sample's value, 0 when it is not exposed (yet).
pub fn value(text: &str, name: &str, labels: &str) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

/// The one Secret the chart lets approval-gate read for notifications.
pub const SECRET: &str = "approval-gate-notify";

/// Adds `key: value` to [`SECRET`] in the control namespace, creating it if needed.
pub async fn secret(key: &str, value: &[u8]) {
    let api = Api::<Secret>::namespaced(client(&ADMIN).await, CONTROL_NAMESPACE);
    let mut data = BTreeMap::new();
    data.insert(key.to_owned(), ByteString(value.to_vec()));
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(SECRET.to_owned()),
            ..Default::default()
        },
        data: Some(data.clone()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let patch = serde_json::json!({ "data": data });
            api.patch(SECRET, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        Err(e) => panic!("creating Secret {SECRET}: {e}"),
    }
}

/// The Events with `reason` about the request, as `kubectl get events` lists them.
pub fn events_about(ns: &str, name: &str, reason: &str) -> Vec<serde_json::Value> {
    events_where(ns, &format!("involvedObject.name={name},reason={reason}"))
}

/// The Events in `ns` that `selector` (a field selector) picks.
pub fn events_where(ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = kubectl(&ADMIN)
        .args([
            "get",
            "events",
            "-n",
            ns,
            "-o",
            "json",
            "--field-selector",
            selector,
        ])
        .run()
        .ok();
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// alice applies `deploy` at `image` until it is allowed: the webhook's
/// cache has seen the approval.
pub async fn apply_until_allowed(ns: &str, deploy: &str, image: &str) {
    for _ in 0..100 {
        if apply(&ALICE, &deployment(ns, deploy, image)).success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alice's approved change of {deploy} to {image} stayed held");
}

/// Waits for an Event with `reason` about the request whose note contains
/// `containing`; returns the note.
pub async fn await_event(ns: &str, name: &str, reason: &str, containing: &str) -> String {
    for _ in 0..100 {
        let notes = events_about(ns, name, reason).into_iter().map(|e| {
            let note = e["note"].as_str().or(e["message"].as_str());
            note.unwrap_or_default().to_owned()
        });
        if let Some(note) = notes.into_iter().find(|n| n.contains(containing)) {
            return note;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {reason} Event about {ns}/{name} mentioning {containing:?}");
}

//! approval-gate's operator for the tests: the real binary run as `serve`
//! (webhook plus leader-elected operator), and readers for what the operator
//! leaves behind: the Lease, Events, audit log lines and metrics.
//!
//! Most tests share one long-lived `serve` process ([`shared`]). Only one
//! operator leads at a time, so a test that stops and starts operators takes
//! [`exclusive`] access: it waits for the sharing tests to finish, stops the
//! shared process, and the next sharing test starts a fresh one.

use std::{
    collections::BTreeMap,
    ops::Deref,
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use approval_gate::{
    crd::{Approval, ApprovalPolicy, ApprovalRequest, ApprovalRequestStatus, Phase, Verdict},
    testenv::{CONTROL_NAMESPACE, Identity, webhook::LocalWebhook},
};
use jiff::Timestamp;
use k8s_openapi::{
    api::{admissionregistration::v1::RuleWithOperations, coordination::v1::Lease},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{Api, api::PostParams};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{ADMIN, CONTROLLER, client, kubectl, plane};

/// How long finished requests are kept by the shared operator.
pub const RETENTION: Duration = Duration::from_secs(6);
/// The leader Lease duration every operator here runs with.
pub const LEASE_SECONDS: u64 = 4;
/// The Lease the operators elect their leader with.
pub const LEASE_NAME: &str = "approval-gate-operator";
/// The transitions the operator records, as Event reasons.
pub const TRANSITIONS: [&str; 6] = [
    "Requested",
    "Approved",
    "Denied",
    "Expired",
    "Used",
    "Revoked",
];

static SHARED: RwLock<Option<LocalWebhook>> = RwLock::const_new(None);
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// The shared `serve` process, leading and registered, for as long as this
/// value lives.
pub struct Shared(RwLockReadGuard<'static, Option<LocalWebhook>>);

impl Deref for Shared {
    type Target = LocalWebhook;

    fn deref(&self) -> &LocalWebhook {
        self.0
            .as_ref()
            .expect("the shared operator runs while shared")
    }
}

/// Exclusive use of the control plane's operators: no shared operator runs
/// while this value lives.
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
            *slot = Some(start_shared().await);
        }
    }
}

/// Stops the shared operator (gracefully: it hands back the Lease) and keeps
/// others from starting it until the returned value is dropped.
pub async fn exclusive() -> Exclusive {
    let mut slot = SHARED.write().await;
    drop(slot.take());
    Exclusive(slot)
}

async fn start_shared() -> LocalWebhook {
    let running = start("shared", &serve_args(RETENTION)).await;
    register(&running).await;
    await_leader(&instance(&running), Duration::from_secs(3 * LEASE_SECONDS)).await;
    running
}

/// `serve` with the given retention and this module's Lease duration.
pub fn serve_args(retention: Duration) -> Vec<String> {
    vec![
        "serve".to_owned(),
        format!("--retention={}s", retention.as_secs()),
        format!("--lease-seconds={LEASE_SECONDS}"),
    ]
}

/// Starts the real binary with `args` (as approval-gate's own service
/// account) in a fresh directory named after `name`, and waits until it is
/// ready. It is not registered; dropping it stops it.
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

/// The identity a process holds the Lease under.
pub fn instance(running: &LocalWebhook) -> String {
    let dir = running.dir.file_name().and_then(|n| n.to_str());
    format!("local-{}", dir.unwrap_or("webhook"))
}

/// Makes `running` the admission webhook for deployments (and, through the
/// guard rules `register` adds, for approval-gate's own objects).
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

/// SIGKILLs the approval-gate binary running in `running`'s directory, as
/// a crash would: no graceful shutdown, no Lease hand-back.
pub fn crash(running: &LocalWebhook) {
    use nix::{sys::signal, unistd::Pid};
    let binary = env!("CARGO_BIN_EXE_approval-gate");
    let marker = format!("--tls-cert-file={}", running.dir.join("tls.crt").display());
    let procs = std::fs::read_dir("/proc").expect("reading /proc");
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        // The watchdog shell carries the same arguments; only the binary itself has them after argv[0].
        if args.first() == Some(&binary.as_bytes()) && args.contains(&marker.as_bytes()) {
            signal::kill(Pid::from_raw(pid), signal::Signal::SIGKILL)
                .expect("killing approval-gate");
            return;
        }
    }
    panic!("no approval-gate process runs in {}", running.dir.display());
}

/// The Lease's holder, if its lease has not run out.
pub async fn live_holder() -> Option<String> {
    let leases = Api::<Lease>::namespaced(client(&ADMIN).await, CONTROL_NAMESPACE);
    let spec = leases.get_opt(LEASE_NAME).await.ok()??.spec?;
    let renewed = spec.renew_time.or(spec.acquire_time)?.0;
    let duration = jiff::SignedDuration::from_secs(spec.lease_duration_seconds?.into());
    let live = renewed.checked_add(duration).ok()? > Timestamp::now();
    spec.holder_identity.filter(|_| live)
}

/// Waits until one of `candidates` holds the Lease; returns it and how long it took.
pub async fn await_any_leader(candidates: &[String], within: Duration) -> (String, Duration) {
    let started = tokio::time::Instant::now();
    let mut holder = None;
    while started.elapsed() < within {
        holder = live_holder().await;
        if let Some(h) = holder.as_ref().filter(|h| candidates.contains(h)) {
            return (h.clone(), started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("none of {candidates:?} took the Lease within {within:?}; it is held by {holder:?}");
}

/// Waits until `instance` holds the Lease; returns how long it took.
pub async fn await_leader(instance: &str, within: Duration) -> Duration {
    await_any_leader(&[instance.to_owned()], within).await.1
}

/// Waits until `running`'s index holds `policy`.
pub async fn await_policy(running: &LocalWebhook, policy: &str) {
    let url = format!("{}/debug/index", running.metrics_url);
    for _ in 0..200 {
        let body: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let known = body["policies"].as_array().into_iter().flatten();
        if known.into_iter().any(|p| p == policy) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook never saw policy {policy}");
}

/// A policy holding updates of deployments in `ns`, approved by group sre,
/// with `extra` spec lines; known to `admission` when this returns.
pub async fn policy(admission: &LocalWebhook, ns: &str, extra: &str) -> String {
    let name = format!("{ns}-policy");
    let yaml = format!(
        "rules: [{{apiGroups: [apps], resources: [deployments], namespaces: [{ns}], \
         operations: [UPDATE]}}]\napprovers: {{groups: [sre]}}\n{extra}"
    );
    let policy = ApprovalPolicy::new(&name, serde_yaml_ng::from_str(&yaml).unwrap());
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    await_policy(admission, &name).await;
    name
}

/// Deletes a policy and waits until it is gone.
pub async fn delete_policy(name: &str) {
    let api = Api::<ApprovalPolicy>::all(client(&ADMIN).await);
    api.delete(name, &Default::default()).await.unwrap();
    while api.get_opt(name).await.unwrap().is_some() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// alice asks by hand (allowed when the policy does not bind to content).
pub fn ask(ns: &str, name: &str, policy: &str) {
    let manifest = format!(
        "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalRequest\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  requester: alice\n  operation: UPDATE\n  policy: {policy}\n  reason: INC-7\n  \
         target: {{apiGroup: apps, resource: deployments, namespace: {ns}, name: checkout}}\n"
    );
    kubectl(&super::ALICE)
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

/// `who` writes one decision into the status, retrying when the operator
/// wrote in between (the write is conditioned on the resourceVersion).
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
    decide(who, ns, name, |s| {
        s.approvals.push(Approval {
            user: who.username.to_owned(),
            groups: who.groups.iter().map(|g| (*g).to_owned()).collect(),
            time: Time(Timestamp::now()),
            comment: "looks good".into(),
        });
    })
    .await;
}

pub async fn deny(who: &Identity, ns: &str, name: &str) {
    decide(who, ns, name, |s| {
        s.denial = Some(verdict(who, "not during the freeze"))
    })
    .await;
}

pub async fn revoke(who: &Identity, ns: &str, name: &str) {
    decide(who, ns, name, |s| {
        s.revocation = Some(verdict(who, "wrong ticket"))
    })
    .await;
}

/// How often each transition reason was recorded as an Event about the
/// request, as `kubectl get events` lists them (a repeat folded into a
/// series counts as many times as it happened).
pub fn transition_events(ns: &str, name: &str) -> BTreeMap<String, u64> {
    let out = kubectl(&ADMIN)
        .args(["get", "events", "-n", ns, "-o", "json", "--field-selector"])
        .args([format!("involvedObject.name={name}")])
        .run()
        .ok();
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut seen = BTreeMap::new();
    for event in list["items"].as_array().into_iter().flatten() {
        let reason = event["reason"].as_str().unwrap_or_default();
        if TRANSITIONS.contains(&reason) {
            let times = event["count"].as_u64().unwrap_or(0).max(1);
            *seen.entry(reason.to_owned()).or_default() += times;
        }
    }
    seen
}

/// Waits until every `expected` reason was recorded about the request, then
/// a little longer for any duplicate; returns what was recorded.
pub async fn await_transition_events(
    ns: &str,
    name: &str,
    expected: &[&str],
) -> BTreeMap<String, u64> {
    for _ in 0..100 {
        let seen = transition_events(ns, name);
        if expected.iter().all(|r| seen.contains_key(*r)) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return transition_events(ns, name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{ns}/{name}: not all of {expected:?} were recorded; saw {:?}",
        transition_events(ns, name)
    );
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

/// The transitions `running` logged on the audit target for one request, in order.
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

/// One sample's value: `name{labels}` exactly as exposed, for example
/// `sample(text, "approval_gate_requests", r#"phase="Pending""#)`.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

//! Prometheus metrics (prometheus-client), served on `/metrics`.

use std::sync::{Arc, RwLock};

use kube::runtime::reflector::Store;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _, text::encode},
    metrics::{counter::Counter, family::Family, gauge::ConstGauge, histogram::Histogram},
    registry::Registry,
};

use crate::crd::{ApprovalRequest, Phase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub policy: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric approval-gate exports.
pub struct Metrics {
    registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub decision_seconds: Histogram,
    pub auto_requests: Family<ResultLabels, Counter>,
    pub single_use: Family<ResultLabels, Counter>,
    /// Recorded uses checked against their object, by result.
    pub use_checks: Family<ResultLabels, Counter>,
    pub events_dropped: Counter,
    /// Handshakes refused for want of a valid client certificate.
    pub tls_refusals: Family<ReasonLabels, Counter>,
    /// Reviews refused because the memory budget for bodies had no room.
    pub busy_refusals: Family<ResultLabels, Counter>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_seconds: Histogram,
    pub transitions: Family<TransitionLabels, Counter>,
    pub time_to_decision: Histogram,
    pub notifications: Family<NotificationLabels, Counter>,
    pub request_decisions: Family<OutcomeLabels, Counter>,
    pub request_expiries: Counter,
    /// The operator's cache, read on each scrape for the requests-by-phase gauge.
    pub requests: Arc<RwLock<Option<Store<ApprovalRequest>>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub transition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `slack`, `webhook` or `email`.
    pub channel: String,
    /// `success` or `failure`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// `approval_gate_requests{phase}`, counted from the operator's cache at scrape time.
#[derive(Debug)]
struct PhaseCollector(Arc<RwLock<Option<Store<ApprovalRequest>>>>);

impl Collector for PhaseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.0.read().ok().and_then(|s| s.clone()) else {
            return Ok(());
        };
        let mut counts = [0i64; 7];
        let phases = [
            Phase::Pending,
            Phase::Approved,
            Phase::Denied,
            Phase::Expired,
            Phase::Used,
            Phase::Revoked,
            Phase::Superseded,
        ];
        for req in store.state() {
            if let Some(i) = phases.iter().position(|p| *p == req.phase()) {
                counts[i] += 1;
            }
        }
        let mut metric = encoder.encode_descriptor(
            // The registry adds its `approval_gate_` prefix.
            "requests",
            "ApprovalRequests by phase, from the operator's cache",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (phase, count) in phases.iter().zip(counts) {
            let labels = [("phase", phase.as_str())];
            ConstGauge::new(count).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("approval_gate");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "admission_decisions",
            "Admission decisions by policy and verdict",
            decisions.clone(),
        );
        // Sub-millisecond buckets: the apiserver's own webhook histogram starts at 5 ms.
        let decision_seconds = Histogram::new([
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
            1.0,
        ]);
        registry.register(
            "admission_decision_duration_seconds",
            "Time to decide an admission request, including recording a single use",
            decision_seconds.clone(),
        );
        let auto_requests = Family::<ResultLabels, Counter>::default();
        registry.register(
            "auto_requests",
            "ApprovalRequests created on denial, by result",
            auto_requests.clone(),
        );
        let single_use = Family::<ResultLabels, Counter>::default();
        registry.register(
            "single_use_records",
            "Single-use approvals recorded, by result",
            single_use.clone(),
        );
        let use_checks = Family::<ResultLabels, Counter>::default();
        registry.register(
            "use_checks",
            "Recorded uses checked against the object they allowed a write to, by result \
             (confirmed, or unconfirmed: the write never showed)",
            use_checks.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "events_dropped",
            "Kubernetes Events dropped because the queue was full or the API failed",
            events_dropped.clone(),
        );
        let tls_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "webhook_tls_refusals",
            "Callers refused during the TLS handshake for want of a valid client certificate \
             (no_certificate, bad_certificate)",
            tls_refusals.clone(),
        );
        let busy_refusals = Family::<ResultLabels, Counter>::default();
        registry.register(
            "admission_busy_refusals",
            "Reviews refused unread because the memory budget for review bodies had no room \
             (body_budget), and connections closed because too many were open (connections)",
            busy_refusals.clone(),
        );
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by controller", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by controller and error",
            reconcile_errors.clone(),
        );
        let reconcile_seconds = Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]);
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one object",
            reconcile_seconds.clone(),
        );
        let transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "request_transitions",
            "Lifecycle transitions recorded (Requested, Approved, Denied, Expired, Used, Revoked, Superseded); \
             approval rate = Approved / Requested, expiries = Expired",
            transitions.clone(),
        );
        let time_to_decision = Histogram::new([
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0,
        ]);
        registry.register(
            "time_to_decision_seconds",
            "Time from a request's creation to its approval or denial",
            time_to_decision.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications by channel kind (slack, webhook, email) and outcome (success, failure)",
            notifications.clone(),
        );
        let request_decisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "request_decisions",
            "Requests decided by an approver, by outcome (Approved, Denied); \
             approval rate = Approved / (Approved + Denied)",
            request_decisions.clone(),
        );
        let request_expiries = Counter::default();
        registry.register(
            "request_expiries",
            "Requests or approvals that expired before they were used",
            request_expiries.clone(),
        );
        let requests = Arc::new(RwLock::new(None));
        registry.register_collector(Box::new(PhaseCollector(Arc::clone(&requests))));
        Self {
            reconciles,
            reconcile_errors,
            reconcile_seconds,
            transitions,
            time_to_decision,
            notifications,
            request_decisions,
            request_expiries,
            requests,
            registry,
            decisions,
            decision_seconds,
            auto_requests,
            single_use,
            use_checks,
            events_dropped,
            tls_refusals,
            busy_refusals,
        }
    }
}

impl Metrics {
    pub fn count_decision(&self, policy: &str, verdict: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                policy: policy.to_owned(),
                verdict: verdict.to_owned(),
            })
            .inc();
    }

    pub fn count(family: &Family<ResultLabels, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// One notification's outcome over a channel kind.
    pub fn count_notification(&self, channel: &str, success: bool) {
        self.notifications
            .get_or_create(&NotificationLabels {
                channel: channel.to_owned(),
                outcome: if success { "success" } else { "failure" }.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

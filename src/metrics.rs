//! Prometheus metrics (prometheus-client), served on `/metrics`.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub policy: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Every metric approval-gate exports.
pub struct Metrics {
    registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub decision_seconds: Histogram,
    pub auto_requests: Family<ResultLabels, Counter>,
    pub single_use: Family<ResultLabels, Counter>,
    pub events_dropped: Counter,
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
        let events_dropped = Counter::default();
        registry.register(
            "events_dropped",
            "Kubernetes Events dropped because the queue was full or the API failed",
            events_dropped.clone(),
        );
        Self {
            registry,
            decisions,
            decision_seconds,
            auto_requests,
            single_use,
            events_dropped,
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

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

//! The Grafana dashboard the chart ships: valid JSON, every panel documented,
//! and every query naming only metrics approval-gate exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, path::Path};

use approval_gate::metrics::{
    ControllerLabels, ErrorLabels, Metrics, OutcomeLabels, TransitionLabels,
};

fn dashboards() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/approval-gate/dashboards"
    ))
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(dashboards().join("approval-gate.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Metrics with one sample in every family: a family without samples is
/// not exposed at all.
fn touched() -> Metrics {
    let m = Metrics::default();
    m.count_decision("p", "held");
    m.count_notification("webhook", true);
    Metrics::count(&m.auto_requests, "created");
    Metrics::count(&m.single_use, "recorded");
    let controller = ControllerLabels {
        controller: "c".into(),
    };
    m.reconciles.get_or_create(&controller).inc();
    let error = ErrorLabels {
        controller: "c".into(),
        error: "e".into(),
    };
    m.reconcile_errors.get_or_create(&error).inc();
    let transition = TransitionLabels {
        transition: "Requested".into(),
    };
    m.transitions.get_or_create(&transition).inc();
    let outcome = OutcomeLabels {
        outcome: "Approved".into(),
    };
    m.request_decisions.get_or_create(&outcome).inc();
    m
}

/// Every series name approval-gate can expose, with the suffixes its
/// counters (`_total`) and histograms (`_bucket`, `_sum`, `_count`) add.
fn exported() -> BTreeSet<String> {
    let text = touched().render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    // Collected from the operator's cache at scrape time, so absent here.
    names.insert("approval_gate_requests".to_owned());
    names
}

#[test]
fn every_query_names_only_exported_metrics() {
    let exported = exported();
    assert!(exported.contains("approval_gate_notifications_total"));
    let mut used = 0;
    for panel in dashboard()["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("approval_gate_"));
            for name in names {
                used += 1;
                assert!(
                    exported.contains(name),
                    "panel {:?} queries {name}, which approval-gate does not export",
                    panel["title"]
                );
            }
        }
    }
    assert!(used > 0);
}

#[test]
fn every_panel_is_described_and_documented() {
    let readme = std::fs::read_to_string(dashboards().join("README.md")).unwrap();
    for panel in dashboard()["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "panel {title:?} has no description"
        );
        assert!(
            readme.contains(&format!("| {title} |")),
            "panel {title:?} is not in dashboards/README.md"
        );
    }
}

//! Memory is bounded: eight 6 MiB AdmissionReviews posted at once (as the
//! apiserver, with its client certificate) to the real webhook binary keep
//! its peak resident memory within the chart's 256 MiB limit. Each is
//! either judged (held, a request made) or refused with a clear 429.
//! The figures are printed for BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use support::{
    webhook::{metrics, webhook},
    *,
};

/// The chart's memory limit for a webhook pod.
const CHART_LIMIT_MIB: u64 = 256;
const PARALLEL: usize = 8;

/// A kB figure from `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MiB.
fn status_mib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kb / 1024
}

/// A ConfigMap of many small keys, the costliest shape to parse (about
/// `bytes` of JSON): a JSON tree takes many times its text in memory.
fn config_map(ns: &str, bytes: usize, version: &str) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    let mut size = 0;
    let mut i = 0;
    while size < bytes {
        let key = format!("key-{i:06}");
        let value = format!("{version}-{i:08}");
        size += key.len() + value.len() + 6;
        data.insert(key, value.into());
        i += 1;
    }
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns, "uid": "u-settings", "resourceVersion": "1"},
        "data": data})
}

fn review(ns: &str, n: usize) -> Vec<u8> {
    // Two objects of just under 3 MiB: a review just under the 6 MiB cap.
    let half = 3 * 1024 * 1024 - 64 * 1024;
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("{ns}-{n}"),
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "settings", "namespace": ns, "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": ALICE.groups},
            "object": config_map(ns, half, &format!("new{n}")),
            "oldObject": config_map(ns, half, "old"),
            "dryRun": false
        }
    });
    serde_json::to_vec(&review).unwrap()
}

#[tokio::test]
async fn eight_parallel_six_mib_reviews_stay_within_the_charts_memory_limit() {
    let ns = namespace("memory").await;
    install_policy(
        &ns,
        &format!(
            "rules: [{{apiGroups: [''], resources: [configmaps], namespaces: [{ns}], \
             operations: [UPDATE]}}]\napprovers: {{groups: [sre]}}\n"
        ),
    )
    .await;
    let hook = webhook();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_approval-gate"));
    let pid = hook.pid(binary).expect("the webhook process");
    let bodies: Vec<Vec<u8>> = (0..PARALLEL).map(|n| review(&ns, n)).collect();
    let largest = bodies.iter().map(Vec::len).max().unwrap();
    assert!(
        largest <= 6 * 1024 * 1024 && largest > 5 * 1024 * 1024,
        "{largest} bytes"
    );
    let idle = status_mib(pid, "VmRSS");

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(hook.ca_pem.as_bytes()).unwrap())
        .identity(apiserver_identity())
        .build()
        .unwrap();
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for body in bodies {
        let (http, url) = (http.clone(), format!("{}/validate", hook.url));
        calls.spawn(async move {
            let answer = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            answer.json::<serde_json::Value>().await.unwrap()
        });
    }
    let (mut held, mut refused) = (0, 0);
    while let Some(answer) = calls.join_next().await {
        let response = &answer.unwrap()["response"];
        assert_eq!(response["allowed"], false, "{response}");
        let message = response["status"]["message"].as_str().unwrap_or_default();
        match response["status"]["code"].as_u64() {
            Some(403) if message.contains("needs approval") => held += 1,
            Some(429) if message.contains("too many large reviews at once") => refused += 1,
            other => panic!("neither judged nor clearly refused ({other:?}): {message}"),
        }
    }
    let elapsed = started.elapsed();
    let peak = status_mib(pid, "VmHWM");
    eprintln!(
        "{PARALLEL} reviews of {:.1} MiB: {held} judged, {refused} refused (429) in {elapsed:?}; \
         RSS idle {idle} MiB, peak {peak} MiB (limit {CHART_LIMIT_MIB} MiB)",
        largest as f64 / (1024.0 * 1024.0)
    );
    assert_eq!(held + refused, PARALLEL);
    assert!(held >= 1, "the budget lets reviews through");
    assert!(
        peak < CHART_LIMIT_MIB,
        "peak RSS {peak} MiB is past the chart's {CHART_LIMIT_MIB} MiB"
    );
    if refused > 0 {
        let text = metrics().await;
        assert!(
            text.contains("approval_gate_admission_busy_refusals_total{result=\"body_budget\"}"),
            "{text}"
        );
    }
}

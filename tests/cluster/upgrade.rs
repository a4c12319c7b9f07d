//! `helm upgrade` to a new image tag while a client keeps writing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use approval_gate_testenv::identities::ALICE;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};

use crate::harness::{TestCluster, image};

#[derive(Debug, Default)]
struct Tally {
    gated_held: u64,
    ungated_passed: u64,
    /// Answers that are not the webhook's verdict: the apiserver could not
    /// reach it, or it failed.
    errors: Vec<String>,
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some([("a".to_owned(), "b".to_owned())].into()),
        ..ConfigMap::default()
    }
}

async fn load(client: kube::Client, stop: Arc<AtomicBool>) -> Tally {
    let prod = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let dev = Api::<ConfigMap>::namespaced(client, "dev");
    let mut tally = Tally::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        match prod
            .create(&PostParams::default(), &config_map("gated"))
            .await
        {
            Err(kube::Error::Api(status))
                if status.code == 403 && status.message.contains("ApprovalRequest prod/") =>
            {
                tally.gated_held += 1;
            }
            other => tally.errors.push(format!("gated write {n}: {other:?}")),
        }
        match dev
            .create(&PostParams::default(), &config_map(&format!("free-{n}")))
            .await
        {
            Ok(_) => tally.ungated_passed += 1,
            Err(e) => tally.errors.push(format!("ungated write {n}: {e}")),
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_upgrade_to_a_new_tag_under_load_keeps_answering() {
    let cluster = TestCluster::start().await;
    cluster.install(&[]).await;
    cluster.namespace("prod", &[]).await;
    cluster.namespace("dev", &[]).await;
    // prod is gated; dev is judged in Audit mode, so its writes go through
    // the webhook too and are allowed.
    for (name, ns, mode) in [("gated", "prod", "Enforce"), ("audited", "dev", "Audit")] {
        cluster.policy(
            name,
            &format!(
                "mode: {mode}\nrules: [{{apiGroups: [''], resources: [configmaps], \
                 operations: [CREATE], namespaces: [{ns}]}}]\napprovers: {{groups: [sre]}}"
            ),
        );
    }
    let client = cluster.client(&ALICE).await;
    let prod = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    cluster
        .eventually(
            "the webhook holds prod",
            Duration::from_secs(60),
            || async {
                matches!(
                    prod.create(&PostParams::default(), &config_map("gated")).await,
                    Err(kube::Error::Api(s)) if s.message.contains("ApprovalRequest prod/")
                )
            },
        )
        .await;

    let next = format!("{}-next", env!("CARGO_PKG_VERSION"));
    cluster
        .cluster
        .tag(
            &image(),
            &format!("ghcr.io/approval-gate/approval-gate:{next}"),
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(client, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tag = format!("image.tag={next}");
    let started = std::time::Instant::now();
    cluster.helm_ok(&[
        "upgrade",
        "approval-gate",
        &crate::support::helm::chart().display().to_string(),
        "--namespace",
        "approval-gate",
        "--reuse-values",
        "--set",
        &tag,
        "--wait",
        "--timeout",
        "180s",
    ]);
    let took = started.elapsed();
    // Old pods finish terminating after the rollout reports done.
    cluster
        .eventually(
            "only the new pods are left",
            Duration::from_secs(90),
            || async {
                let pods = cluster.pods().await;
                pods.len() == 2
                    && pods.iter().all(|p| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.containers.first())
                            .and_then(|c| c.image.clone())
                            == Some(format!("ghcr.io/approval-gate/approval-gate:{next}"))
                    })
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = running.await.unwrap();
    eprintln!(
        "helm upgrade --wait took {took:?}; under it: {} gated writes held, {} ungated passed, {} errors",
        tally.gated_held,
        tally.ungated_passed,
        tally.errors.len()
    );
    assert!(
        tally.gated_held > 0 && tally.ungated_passed > 0,
        "{tally:?}"
    );
    assert!(
        tally.errors.is_empty(),
        "admission errors during the upgrade: {:#?}",
        tally.errors
    );
}

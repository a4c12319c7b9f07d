//! Drift checks: deploy/ is the chart rendered with default values, and the
//! chart's CRDs are copies of crds/.

use std::path::Path;

use super::{
    KUBE_VERSION, MANIFESTS_HEADER, all_of, documents, dry_run_accepted, kind, name,
    support::{helm::*, *},
};

#[test]
fn deploy_manifests_match_the_chart() {
    let chart = chart();
    let rendered = helm_ok([
        "template",
        "approval-gate",
        chart.to_str().unwrap(),
        "--namespace",
        "approval-gate",
        "--include-crds",
        "--kube-version",
        KUBE_VERSION,
    ]);
    let expected = format!("{MANIFESTS_HEADER}{rendered}");
    let on_disk =
        std::fs::read_to_string(repo().join("deploy/approval-gate.yaml")).unwrap_or_default();
    assert!(
        on_disk == expected,
        "deploy/approval-gate.yaml is out of date with charts/approval-gate: run `make manifests` \
         and commit the result"
    );
}

#[test]
fn deploy_kustomization_is_accepted_by_the_apiserver() {
    let deploy = repo().join("deploy");
    let rendered = kubectl(&ADMIN)
        .args(["kustomize", deploy.to_str().unwrap()])
        .run()
        .ok();
    let docs = documents(&rendered);
    assert_eq!(kind(&docs[0]), "Namespace", "the namespace comes first");
    assert_eq!(name(&docs[0]), "approval-gate");
    for doc in &docs[1..] {
        let ns = doc["metadata"]["namespace"].as_str();
        assert!(
            ns.is_none() || ns == Some("approval-gate"),
            "{} {} is in {ns:?}",
            kind(doc),
            name(doc)
        );
    }
    assert_eq!(all_of(&docs, "CustomResourceDefinition").len(), 2);
    assert_eq!(all_of(&docs, "Deployment").len(), 1);
    let out = kubectl(&ADMIN)
        .args(["apply", "--dry-run=server", "-k", deploy.to_str().unwrap()])
        .run()
        .ok();
    assert_eq!(dry_run_accepted(&out), docs.len(), "{out}");
}

#[test]
fn chart_crds_are_copies_of_the_generated_crds() {
    let list = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let generated = repo().join("crds");
    let copied = chart().join("crds");
    assert_eq!(
        list(&copied),
        list(&generated),
        "charts/approval-gate/crds/ differs from crds/: run `make crds`"
    );
    for file in list(&generated) {
        assert!(
            std::fs::read(copied.join(&file)).unwrap()
                == std::fs::read(generated.join(&file)).unwrap(),
            "charts/approval-gate/crds/{file} differs from crds/{file}: run `make crds`"
        );
    }
}

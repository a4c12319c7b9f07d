//! Unit tests for the canonical digest.

use serde_json::json;

use super::*;

fn deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "prod", "labels": {"app": "checkout"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

fn with_cluster_noise(mut obj: Value, rv: &str) -> Value {
    let meta = obj["metadata"].as_object_mut().unwrap();
    meta.insert("resourceVersion".into(), json!(rv));
    meta.insert("generation".into(), json!(7));
    meta.insert("uid".into(), json!("1234"));
    meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
    meta.insert(
        "managedFields".into(),
        json!([{"manager": "kubectl", "operation": "Apply"}]),
    );
    meta.insert(
        "annotations".into(),
        json!({"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"rv\":\"{rv}\"}}"),
               "deployment.kubernetes.io/revision": rv}),
    );
    obj["status"] = json!({"observedGeneration": 7, "replicas": 2});
    obj
}

#[test]
fn digest_ignores_volatile_metadata_and_status() {
    let plain = digest(Operation::Update, Some(&deployment("v1")), None).unwrap();
    let noisy = digest(
        Operation::Update,
        Some(&with_cluster_noise(deployment("v1"), "42")),
        None,
    )
    .unwrap();
    let noisier = digest(
        Operation::Update,
        Some(&with_cluster_noise(deployment("v1"), "99")),
        None,
    )
    .unwrap();
    assert_eq!(plain, noisy);
    assert_eq!(noisy, noisier);
    assert!(plain.starts_with("sha256:") && plain.len() == 71);
}

#[test]
fn digest_changes_with_desired_state() {
    let v1 = digest(Operation::Update, Some(&deployment("v1")), None);
    let v2 = digest(Operation::Update, Some(&deployment("v2")), None);
    assert_ne!(v1, v2);
    let mut labelled = deployment("v1");
    labelled["metadata"]["annotations"] = json!({"team": "payments"});
    assert_ne!(v1, digest(Operation::Update, Some(&labelled), None));
}

#[test]
fn digest_does_not_depend_on_key_order() {
    let a: Value =
        serde_json::from_str(r#"{"spec":{"b":1,"a":[{"y":2,"x":1}]},"metadata":{"name":"n"}}"#)
            .unwrap();
    let b: Value =
        serde_json::from_str(r#"{"metadata":{"name":"n"},"spec":{"a":[{"x":1,"y":2}],"b":1}}"#)
            .unwrap();
    assert_eq!(
        digest(Operation::Create, Some(&a), None),
        digest(Operation::Create, Some(&b), None)
    );
}

#[test]
fn operation_is_part_of_the_digest() {
    let obj = deployment("v1");
    assert_ne!(
        digest(Operation::Create, Some(&obj), None),
        digest(Operation::Update, Some(&obj), None)
    );
}

#[test]
fn delete_binds_to_the_object_uid() {
    let old = |uid: &str| json!({"metadata": {"name": "checkout", "uid": uid}});
    let a = digest(Operation::Delete, None, Some(&old("uid-a"))).unwrap();
    assert_eq!(
        Some(a.clone()),
        digest(Operation::Delete, None, Some(&old("uid-a")))
    );
    assert_ne!(
        Some(a),
        digest(Operation::Delete, None, Some(&old("uid-b")))
    );
    assert_eq!(
        digest(Operation::Delete, None, Some(&json!({"metadata": {}}))),
        None
    );
}

#[test]
fn connect_binds_to_the_exec_options() {
    let exec = |cmd: &[&str], tty: bool| {
        json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": cmd, "container": "app",
               "stdin": true, "stdout": true, "tty": tty})
    };
    let sh = digest(Operation::Connect, Some(&exec(&["sh"], true)), None);
    assert_eq!(
        sh,
        digest(Operation::Connect, Some(&exec(&["sh"], true)), None)
    );
    assert_ne!(
        sh,
        digest(
            Operation::Connect,
            Some(&exec(&["sh", "-c", "rm -rf /"], true)),
            None
        )
    );
    assert_ne!(
        sh,
        digest(Operation::Connect, Some(&exec(&["sh"], false)), None)
    );
}

fn canonical(value: &Value) -> String {
    let tree = Json::of(value);
    let mut out = Canonical::new(Vec::new(), Typing::AsGiven);
    out.value(&tree).unwrap();
    String::from_utf8(out.out).unwrap()
}

/// The canonical form and the digests are pinned to values computed by a
/// separate implementation: a change to either would silently turn every
/// approval already granted into one for other content (or let one grant another).
#[test]
fn the_canonical_form_and_digests_are_pinned() {
    assert_eq!(
        canonical(&deployment("v1")),
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"checkout"},"name":"checkout","namespace":"prod"},"spec":{"replicas":2,"template":{"spec":{"containers":[{"image":"v1","name":"app"}]}}}}"#
    );
    assert_eq!(
        digest(Operation::Update, Some(&deployment("v1")), None).as_deref(),
        Some("sha256:4be8a4d37475f412217c3e8432a547a0bc2497d5f26739cbf42ef30bd2b72aff")
    );
    let exec = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"],
        "container": "app", "stdin": true, "stdout": true, "tty": true});
    assert_eq!(
        digest(Operation::Connect, Some(&exec), None).as_deref(),
        Some("sha256:928a87bb9aafa469f969236d214c677674087aaae1b3b9bebd60aedf1173cbd8")
    );
    let old = json!({"metadata": {"name": "checkout", "uid": "uid-a"}});
    assert_eq!(
        digest(Operation::Delete, None, Some(&old)).as_deref(),
        Some("sha256:d5094633b46617043cd308405e6e863f22a17b5fdfebb9a8379d3af3b2c85fc8")
    );
}

/// A review's objects are read as Kubernetes' typed metadata reads
/// them (which is how the webhook has always read them): the typed
/// fields that are set, and an empty `metadata` where there is none.
#[test]
fn a_review_is_read_as_kubernetes_types_its_metadata() {
    let sent = json!({"kind": "ConfigMap", "data": {"a": "1"}, "metadata": {"name": "c",
        "labels": null, "unknown": "x", "ownerReferences": [{"name": "o", "uid": "1",
        "controller": null, "extra": true}]}});
    let typed = json!({"kind": "ConfigMap", "data": {"a": "1"}, "metadata": {"name": "c",
        "ownerReferences": [{"name": "o", "uid": "1"}]}});
    let sent_text = sent.to_string();
    let parsed = Json::parse(&sent_text).unwrap();
    assert_eq!(
        digest_review(Operation::Update, Some(&parsed), None),
        digest(Operation::Update, Some(&typed), None)
    );
    // Connect options have no metadata; the webhook's digest has always
    // hashed an empty one (as `the_canonical_form_and_digests_are_pinned`
    // does not).
    let exec = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"]});
    let with_metadata = json!({"command": ["sh"], "metadata": {}});
    assert_eq!(
        digest_review(Operation::Connect, Some(&Json::of(&exec)), None),
        digest(Operation::Connect, Some(&with_metadata), None)
    );
}

#[test]
fn items_and_keys_are_separated_and_quoted_so_no_two_documents_collide() {
    assert_eq!(canonical(&json!([1, 2, 3])), "[1,2,3]");
    assert_ne!(canonical(&json!([1, 2, 3])), canonical(&json!([123])));
    assert_eq!(canonical(&json!({"b": 1, "a": 2})), r#"{"a":2,"b":1}"#);
    assert_ne!(
        canonical(&json!({"a": 1, "b": 2})),
        canonical(&json!({"a": "1,\"b\":2"}))
    );
    assert_eq!(canonical(&json!([])), "[]");
    assert_eq!(canonical(&json!({})), "{}");
}

#[test]
fn labels_are_desired_state() {
    // On a Namespace, labels set Pod Security Admission: an approval for
    // one set must not cover another.
    let ns = |level: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod",
            "labels": {"pod-security.kubernetes.io/enforce": level}}})
    };
    assert_ne!(
        digest(Operation::Update, Some(&ns("restricted")), None),
        digest(Operation::Update, Some(&ns("privileged")), None)
    );
}

#[test]
fn connect_binds_to_the_container_and_every_stream() {
    let exec = |container: &str, stdin: bool| {
        json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"],
               "container": container, "stdin": stdin, "stdout": true, "tty": true})
    };
    let approved = digest(Operation::Connect, Some(&exec("app", true)), None);
    assert_ne!(
        approved,
        digest(Operation::Connect, Some(&exec("sidecar", true)), None)
    );
    assert_ne!(
        approved,
        digest(Operation::Connect, Some(&exec("app", false)), None)
    );
}

/// Strings the parse borrows are written without an escape pass; those it
/// decoded, and those of values, are escaped. Either way the digest is the
/// same as over the value.
#[test]
fn parsed_and_given_strings_hash_alike() {
    let object = json!({"metadata": {"name": "c", "annotations": {"note\"key": "tab\there"}},
        "data": {"plain": "text", "quote": "say \"hi\"", "backslash": "a\\b", "control": "\u{1}\n",
                 "unicode": "caf\u{e9} \u{2028} \u{1F600}", "slash": "a/b", "escaped\u{7f}": "\u{7f}"}});
    let text = object.to_string();
    let parsed = Json::parse(&text).unwrap();
    assert!(
        matches!(
            parsed.get("data").unwrap().get("plain"),
            Some(Json::String(Cow::Borrowed(_)))
        ),
        "the fast path is taken"
    );
    assert!(matches!(
        parsed.get("data").unwrap().get("quote"),
        Some(Json::String(Cow::Owned(_)))
    ));
    for op in [Operation::Create, Operation::Update, Operation::Connect] {
        assert_eq!(
            digest_review(op, Some(&parsed), None),
            digest_as_admitted(op, Some(&object), None),
            "{op:?}"
        );
    }
}

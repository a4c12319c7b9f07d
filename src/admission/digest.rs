//! The canonical content digest that binds an approval to the exact change.
//!
//! `sha256:<hex>` over a canonical JSON document (object keys sorted, no
//! whitespace) that depends on the operation:
//!
//! - **CREATE / UPDATE**: the object as admitted, without what the cluster or the
//!   client tooling writes on its own: `metadata.{resourceVersion, generation,
//!   uid, creationTimestamp, managedFields, selfLink, deletionTimestamp,
//!   deletionGracePeriodSeconds, generateName}`, the whole `status`, and the
//!   annotations `kubectl.kubernetes.io/last-applied-configuration` and
//!   `deployment.kubernetes.io/revision`. What remains is the desired state, so
//!   client-side and server-side `kubectl apply`, `helm upgrade` and GitOps syncs
//!   of the same manifest produce the same digest, and any change of desired
//!   state produces a new one.
//! - **DELETE**: the uid of the object being deleted, so an approval to delete
//!   `checkout` does not carry over to a new object of the same name.
//! - **CONNECT**: the connect options (`PodExecOptions`, `PodAttachOptions`,
//!   `PodPortForwardOptions`) without their type fields: command, container,
//!   stdin/stdout/stderr/tty, ports.
//!
//! The document is prefixed with the operation, so an UPDATE and a CREATE of the
//! same content differ.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::crd::Operation;

const VOLATILE_METADATA: &[&str] = &[
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
];

const VOLATILE_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// The digest of an attempted action, or `None` when there is nothing to bind
/// to (for example a DELETE whose old object carries no uid).
pub fn digest(
    operation: Operation,
    object: Option<&Value>,
    old_object: Option<&Value>,
) -> Option<String> {
    let doc = match operation {
        Operation::Create | Operation::Update => desired_state(object?),
        Operation::Delete => {
            let uid = old_object?.pointer("/metadata/uid")?.as_str()?;
            Value::String(uid.to_owned())
        }
        Operation::Connect => connect_options(object?),
    };
    let mut canonical = String::from(operation.as_str());
    canonical.push('\n');
    write_canonical(&doc, &mut canonical);
    let hash = Sha256::digest(canonical.as_bytes());
    Some(format!("sha256:{}", hex(&hash)))
}

/// The object without what the cluster or client tooling writes on its own:
/// what the digest of a CREATE or UPDATE hashes, and what the change record compares.
pub fn desired_state(object: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in VOLATILE_METADATA {
                meta.remove(*key);
            }
            strip_annotations(meta);
        }
    }
    doc
}

fn strip_annotations(meta: &mut Map<String, Value>) {
    let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) else {
        return;
    };
    for key in VOLATILE_ANNOTATIONS {
        annotations.remove(*key);
    }
    if annotations.is_empty() {
        meta.remove("annotations");
    }
}

/// The connect options without their type fields.
pub fn connect_options(object: &Value) -> Value {
    let mut doc = object.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    doc
}

/// Writes `value` as JSON with object keys sorted, independent of how the
/// parser ordered them.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
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
        let mut out = String::new();
        write_canonical(value, &mut out);
        out
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
}

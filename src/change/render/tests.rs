use serde_json::json;

use super::*;
use crate::change::field;
use crate::crd::{DeleteChange, Truncation};

fn texts(op: Operation, change: &Change) -> Vec<String> {
    lines(op, change).iter().map(Line::text).collect()
}

#[test]
fn an_image_change_is_one_minus_and_one_plus_line_under_its_container() {
    let change = Change {
        fields: vec![field(
            "spec.template.spec.containers[name=app].image",
            Some(json!("nginx:1.27")),
            Some(json!("evil/backdoor:1")),
        )],
        ..Change::default()
    };
    assert_eq!(
        texts(Operation::Update, &change),
        [
            " spec:",
            "   template:",
            "     spec:",
            "       containers:",
            "       - name: app",
            "-        image: nginx:1.27",
            "+        image: evil/backdoor:1",
        ]
    );
}

#[test]
fn removed_and_added_items_and_index_changes_line_up() {
    let change = Change {
        fields: vec![
            field(
                "env[name=A]",
                Some(json!({"name": "A", "value": "1"})),
                None,
            ),
            field(
                "env[name=C]",
                None,
                Some(json!({"name": "C", "value": "3"})),
            ),
            field("args[1]", Some(json!("--b")), Some(json!("--c"))),
        ],
        ..Change::default()
    };
    let got = texts(Operation::Update, &change);
    for want in [
        "-- name: A",
        "-  value: '1'",
        "+- name: C",
        "+  value: '3'",
        "-- --b",
        "+- --c",
    ] {
        assert!(got.iter().any(|l| l == want), "{want:?} not in {got:#?}");
    }
}

#[test]
fn a_creation_is_all_plus_lines() {
    let change = Change {
        fields: vec![
            field("kind", None, Some(json!("ConfigMap"))),
            field("metadata", None, Some(json!({"name": "settings"}))),
        ],
        ..Change::default()
    };
    assert_eq!(
        texts(Operation::Create, &change),
        ["+kind: ConfigMap", "+metadata:", "+  name: settings"]
    );
}

#[test]
fn a_deletion_shows_the_uid_and_the_propagation_policy() {
    let change = Change {
        delete: Some(DeleteChange {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "checkout".into(),
            uid: "0b5f-uid".into(),
            propagation_policy: Some("Foreground".into()),
            ..DeleteChange::default()
        }),
        ..Change::default()
    };
    let got = texts(Operation::Delete, &change);
    assert!(got.contains(&"-  uid: 0b5f-uid".to_owned()), "{got:#?}");
    assert!(
        got.contains(&"# propagation policy: Foreground".to_owned()),
        "{got:#?}"
    );
}

#[test]
fn cuts_and_redactions_are_marked() {
    let mut secret = field(
        "data.password",
        Some(json!("<redacted hmac:aa>")),
        Some(json!("<redacted hmac:bb>")),
    );
    secret.redacted = true;
    secret.omitted_lines = 5;
    let change = Change {
        fields: vec![secret],
        truncated: Some(Truncation {
            omitted_fields: 2,
            omitted_lines: 812,
        }),
        ..Change::default()
    };
    let text = unified(Operation::Update, &change, "secrets/db");
    assert!(text.contains("# … 812 more lines not shown"), "{text}");
    assert!(
        text.contains("# … 2 more changed fields not shown"),
        "{text}"
    );
    assert!(text.contains("marks a redacted value"), "{text}");
    assert!(
        text.starts_with("--- secrets/db (live)\n+++ secrets/db (requested)\n"),
        "{text}"
    );
}

//! Unit tests for the console's sign-in and sessions.

use super::*;

#[test]
fn only_paths_on_this_console_are_returned_to() {
    assert_eq!(safe_next("/requests/prod/x"), "/requests/prod/x");
    assert_eq!(safe_next("//evil.example/x"), "/");
    assert_eq!(safe_next("https://evil.example/"), "/");
    assert_eq!(safe_next("/\\evil.example"), "/");
    assert_eq!(safe_next("/a\r\nSet-Cookie: x"), "/");
}

#[test]
fn the_groups_claim_is_read_from_the_payload() {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"sub":"bob","groups":["sre","approval-gate:approvers"]}"#);
    let token = format!("e30.{payload}.sig");
    assert_eq!(
        verified_groups(&token).ok(),
        Some(vec!["sre".to_owned(), "approval-gate:approvers".to_owned()])
    );
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"bob"}"#);
    assert_eq!(verified_groups(&format!("e30.{none}.s")).ok(), Some(vec![]));
    assert!(verified_groups("garbage").is_err());
}

#[test]
fn impersonation_never_reaches_a_system_identity() {
    let groups = vec!["sre".to_owned(), "system:masters".to_owned()];
    assert_eq!(
        impersonable("bob", groups).ok(),
        Some(("bob".to_owned(), vec!["sre".to_owned()]))
    );
    assert!(impersonable("system:kube-scheduler", vec![]).is_err());
    assert!(impersonable("", vec![]).is_err());
}

#[test]
fn random_ids_are_long_and_differ() {
    let (a, b) = (random_id(), random_id());
    assert_ne!(a, b);
    assert_eq!(a.len(), 43);
}

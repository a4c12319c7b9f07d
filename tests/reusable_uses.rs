//! Every use of a reusable approval is recorded: the real `approval-gate
//! serve` binary counts alice's three changes under one approval that is not
//! single use in the request's status (`uses`, `lastUsedAt`, `lastUsedBy`)
//! and leaves an Event series `UsedAgain`; the approval stays Approved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::Phase;
use support::{operator::*, *};

#[tokio::test]
async fn each_use_of_a_reusable_approval_is_counted_with_the_last_one_and_an_event_series() {
    let admission = shared().await;
    let ns = namespace("reusable").await;
    policy(&admission, &ns, "singleUse: false\nbindToContent: false\n").await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let name = held_change(&ns, "checkout");
    approve(&BOB, &ns, &name).await;

    apply_until_allowed(&ns, "checkout", "app:v2").await;
    for image in ["app:v3", "app:v4"] {
        apply(&ALICE, &deployment(&ns, "checkout", image)).ok();
    }

    let mut status = None;
    for _ in 0..100 {
        let req = get_request(&ns, &name).await.unwrap();
        let s = req.status.unwrap_or_default();
        if s.uses == Some(3) {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("three uses counted");
    assert_eq!(
        status.phase,
        Some(Phase::Approved),
        "a reusable approval stays"
    );
    assert_eq!(status.used_at, None, "not consumed");
    let last = status.last_used_by.expect("the last use");
    assert_eq!(last.user, "alice");
    assert!(!last.uid.is_empty());
    assert!(status.last_used_at.is_some());

    // One Event series about the request, however many writes it took.
    let mut series = 0;
    for _ in 0..100 {
        let items = events_about(&ns, &name, "UsedAgain");
        series = items.len();
        if series > 0 {
            let note = items[0]["message"].as_str().unwrap_or_default().to_owned();
            assert!(note.contains("reusable approval"), "{note}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(series, 1, "repeats fold into one Event");
}

//! Unit tests for the ApprovalRequest kind.

use super::*;
use crate::testing::target;

#[test]
fn target_displays_like_kubectl_resource_names() {
    assert_eq!(
        target("apps", "deployments", None, "checkout").to_string(),
        "deployments.apps/checkout"
    );
    assert_eq!(
        target("", "pods", Some("exec"), "web-0").to_string(),
        "pods/exec/web-0"
    );
    assert_eq!(
        target("apps", "deployments", Some("scale"), "api").to_string(),
        "deployments.apps/scale/api"
    );
}

#[test]
fn final_phases_are_final() {
    assert!(!Phase::Pending.is_final());
    assert!(!Phase::Approved.is_final());
    for p in [
        Phase::Denied,
        Phase::Expired,
        Phase::Used,
        Phase::Revoked,
        Phase::Superseded,
    ] {
        assert!(p.is_final(), "{p}");
    }
}

//! Builders the unit tests share: a fixed clock, a policy from YAML lines,
//! a request, an approval.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{
    Approval, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestSpec, ApprovalRequestStatus,
    Operation, Target,
};

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

pub fn policy(yaml: &str) -> ApprovalPolicySpec {
    let base = "rules: [{apiGroups: [apps], resources: [deployments], operations: ['*']}]\n\
                approvers: {groups: [sre], users: [root]}\n";
    serde_yaml_ng::from_str(&format!("{base}{yaml}")).unwrap()
}

pub fn request(requester: &str, created: i64) -> ApprovalRequest {
    let mut req = ApprovalRequest::new(
        "r",
        ApprovalRequestSpec {
            requester: requester.into(),
            operation: Operation::Update,
            target: Target {
                api_group: "apps".into(),
                resource: "deployments".into(),
                subresource: None,
                namespace: "prod".into(),
                name: "checkout".into(),
            },
            digest: None,
            reason: String::new(),
            policy: "p".into(),
            change: None,
            previous: None,
        },
    );
    req.metadata.namespace = Some("prod".into());
    req.metadata.creation_timestamp = Some(Time(ts(created)));
    req
}

pub fn approve(req: &mut ApprovalRequest, user: &str, groups: &[&str], at: i64) {
    let status = req
        .status
        .get_or_insert_with(ApprovalRequestStatus::default);
    status.approvals.push(Approval {
        user: user.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        time: Time(ts(at)),
        comment: String::new(),
    });
}

/// A target in namespace `prod`.
pub fn target(group: &str, resource: &str, sub: Option<&str>, name: &str) -> Target {
    Target {
        api_group: group.into(),
        resource: resource.into(),
        subresource: sub.map(Into::into),
        namespace: "prod".into(),
        name: name.into(),
    }
}

/// The request approval-gate creates for `action` on `target` in `prod`,
/// with its change record (redacted with a fixed key): created two minutes
/// before `now`, pending one approval for 58 more minutes.
pub fn held(
    name: &str,
    target: Target,
    action: &crate::change::Action<'_>,
    now: Timestamp,
) -> ApprovalRequest {
    use jiff::SignedDuration;
    let redactor = crate::change::Redactor::for_target(
        b"golden-key",
        &target.api_group,
        &target.resource,
        &[],
    );
    let change = crate::change::record(action, &redactor);
    let mut req = ApprovalRequest::new(
        name,
        ApprovalRequestSpec {
            requester: "alice".into(),
            operation: action.operation,
            target,
            digest: crate::admission::digest::digest(
                action.operation,
                action.object,
                action.old_object,
            ),
            reason: "INC-77".into(),
            policy: "prod".into(),
            change: Some(Box::new(change)),
            previous: None,
        },
    );
    req.metadata.namespace = Some("prod".into());
    req.metadata.creation_timestamp = Some(Time(now - SignedDuration::from_secs(120)));
    req.status = Some(ApprovalRequestStatus {
        required_approvals: Some(1),
        expires_at: Some(Time(now + SignedDuration::from_secs(3480))),
        ..ApprovalRequestStatus::default()
    });
    req
}

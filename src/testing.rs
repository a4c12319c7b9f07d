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

//! Types shared by ApprovalRequest and ApprovalPolicy.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An admission operation, as named in the Kubernetes AdmissionReview.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub const ALL: [Operation; 4] = [Self::Create, Self::Update, Self::Delete, Self::Connect];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of users and groups, as Kubernetes authenticates them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subjects {
    /// Usernames exactly as the apiserver reports them in `userInfo.username`,
    /// for example `alice` or `system:serviceaccount:argocd:argocd-application-controller`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Group names exactly as the apiserver reports them in `userInfo.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Subjects {
    /// Whether a user, or any of the groups it belongs to, is in this set.
    pub fn contains(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || groups.iter().any(|g| self.groups.contains(g))
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_serializes_in_admission_spelling() {
        assert_eq!(
            serde_json::to_string(&Operation::Connect).unwrap(),
            "\"CONNECT\""
        );
        let op: Operation = serde_json::from_str("\"DELETE\"").unwrap();
        assert_eq!(op, Operation::Delete);
        assert!(serde_json::from_str::<Operation>("\"PATCH\"").is_err());
    }

    #[test]
    fn subjects_match_by_user_or_group() {
        let s = Subjects {
            users: vec!["bob".into()],
            groups: vec!["sre".into()],
        };
        assert!(s.contains("bob", &[]));
        assert!(s.contains("dave", &["sre".into()]));
        assert!(!s.contains("alice", &["dev".into()]));
    }
}

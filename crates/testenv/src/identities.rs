//! The named identities of the local control plane, authenticated by static tokens.

/// One user the local apiserver knows, with the groups it authenticates with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Short name: the kubeconfig is written as `kubeconfig-<key>` (`kubeconfig` for admin).
    pub key: &'static str,
    /// `userInfo.username` as the apiserver reports it.
    pub username: &'static str,
    /// `userInfo.groups` (the apiserver adds `system:authenticated`).
    pub groups: &'static [&'static str],
    /// What this identity stands for, printed by `make dev`.
    pub role: &'static str,
}

/// The cluster administrator (`system:masters`).
pub const ADMIN: Identity = Identity {
    key: "admin",
    username: "admin",
    groups: &["system:masters"],
    role: "cluster admin",
};
/// A developer who performs sensitive changes and asks for approval.
pub const ALICE: Identity = Identity {
    key: "alice",
    username: "alice",
    groups: &["dev", "approval-gate:requesters"],
    role: "requester",
};
/// An SRE who approves.
pub const BOB: Identity = Identity {
    key: "bob",
    username: "bob",
    groups: &["sre", "approval-gate:approvers"],
    role: "approver",
};
/// A second SRE, for policies that need two approvals.
pub const DAVE: Identity = Identity {
    key: "dave",
    username: "dave",
    groups: &["sre", "approval-gate:approvers"],
    role: "second approver",
};
/// Somebody with no RBAC at all.
pub const CAROL: Identity = Identity {
    key: "carol",
    username: "carol",
    groups: &[],
    role: "outsider, no RBAC",
};
/// A GitOps controller's service account (Argo CD style).
pub const GITOPS: Identity = Identity {
    key: "gitops",
    username: "system:serviceaccount:gitops:argocd-application-controller",
    groups: &["system:serviceaccounts", "system:serviceaccounts:gitops"],
    role: "GitOps service account",
};
/// approval-gate's own service account, as the webhook and operator run in a cluster.
pub const CONTROLLER: Identity = Identity {
    key: "controller",
    username: "system:serviceaccount:approval-gate:approval-gate",
    groups: &[
        "system:serviceaccounts",
        "system:serviceaccounts:approval-gate",
    ],
    role: "approval-gate's own service account",
};

/// The console's own service account (`approval-gate console`): it may read
/// requests and nothing more; people act through it with their own tokens.
pub const CONSOLE: Identity = Identity {
    key: "console",
    username: "system:serviceaccount:approval-gate:approval-gate-console",
    groups: &[
        "system:serviceaccounts",
        "system:serviceaccounts:approval-gate",
    ],
    role: "the web console's own service account (read-only)",
};

/// kube-controller-manager, bound by the apiserver's bootstrap RBAC; it
/// requests each controller's service-account token itself.
pub const CONTROLLER_MANAGER: Identity = Identity {
    key: "kube-controller-manager",
    username: "system:kube-controller-manager",
    groups: &[],
    role: "kube-controller-manager (garbage collection, when started)",
};

/// kube-scheduler, bound by the apiserver's bootstrap RBAC (real node only).
pub const SCHEDULER: Identity = Identity {
    key: "kube-scheduler",
    username: "system:kube-scheduler",
    groups: &[],
    role: "kube-scheduler (real node only)",
};

/// The real node's kubelet, authorized by the Node authorizer.
pub const NODE: Identity = Identity {
    key: "node",
    username: "system:node:approval-gate-node",
    groups: &["system:nodes"],
    role: "the real node's kubelet (real node only)",
};

/// Every identity, admin first.
pub const ALL: [Identity; 11] = [
    ADMIN,
    ALICE,
    BOB,
    DAVE,
    CAROL,
    GITOPS,
    CONTROLLER,
    CONSOLE,
    CONTROLLER_MANAGER,
    SCHEDULER,
    NODE,
];

impl Identity {
    /// The kubeconfig file name for this identity.
    pub fn kubeconfig_name(&self) -> String {
        if self.key == ADMIN.key {
            "kubeconfig".to_owned()
        } else {
            format!("kubeconfig-{}", self.key)
        }
    }
}

/// Renders the apiserver's `--token-auth-file`: `token,user,uid,"group1,group2"`.
pub fn token_file(tokens: &[(Identity, String)]) -> String {
    tokens
        .iter()
        .map(|(id, token)| {
            format!(
                "{token},{},{},\"{}\"\n",
                id.username,
                id.key,
                id.groups.join(",")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lists_every_identity_with_its_groups() {
        let tokens: Vec<_> = ALL
            .iter()
            .map(|id| (id.clone(), format!("t-{}", id.key)))
            .collect();
        let file = token_file(&tokens);
        assert_eq!(file.lines().count(), ALL.len());
        assert!(file.contains("t-bob,bob,bob,\"sre,approval-gate:approvers\"\n"));
        assert!(file.contains("t-carol,carol,carol,\"\"\n"));
    }

    #[test]
    fn identity_keys_are_unique() {
        let mut keys: Vec<_> = ALL.iter().map(|i| i.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), ALL.len());
    }
}

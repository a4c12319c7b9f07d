//! Policies whose rules the apiserver refused: left out of the webhook
//! configuration until they change, and shown as `Ready=False` by the policy
//! reconciler.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use kube::ResourceExt as _;

use crate::crd::ApprovalPolicy;

/// Policies whose rules the apiserver refused in the webhook configuration,
/// by name, shared with the policy reconciler, which shows a refusal as
/// `Ready=False`; every change asks it to look at the policies again.
#[derive(Clone, Debug)]
pub struct Refusals {
    by_name: Arc<RwLock<BTreeMap<String, Refusal>>>,
    recheck: UnboundedSender<()>,
}

impl Refusals {
    /// The refusals, and the stream of requests to look at the policies again.
    pub fn new() -> (Self, UnboundedReceiver<()>) {
        let (recheck, changes) = futures::channel::mpsc::unbounded();
        let refusals = Self {
            by_name: Arc::default(),
            recheck,
        };
        (refusals, changes)
    }

    /// The apiserver's message, if it refused `policy` as it is now.
    pub fn of(&self, policy: &ApprovalPolicy) -> Option<String> {
        let by_name = self.by_name.read().ok()?;
        by_name
            .get(&policy.name_any())
            .filter(|r| still_refused(r, Some(policy)))
            .map(|r| r.message.clone())
    }

    pub(super) fn snapshot(&self) -> BTreeMap<String, Refusal> {
        self.by_name.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub(super) fn record(&self, policy: &ApprovalPolicy, message: String) {
        if let Ok(mut by_name) = self.by_name.write() {
            let refusal = Refusal {
                generation: policy.metadata.generation,
                message,
            };
            by_name.insert(policy.name_any(), refusal);
        }
        let _ = self.recheck.unbounded_send(());
    }

    /// Drops refusals of policies deleted or changed since, so that a fixed
    /// policy is tried again and its Ready condition looked at again.
    pub(super) fn forget_stale(&self, policies: &[Arc<ApprovalPolicy>]) {
        let Ok(mut by_name) = self.by_name.write() else {
            return;
        };
        let stale: Vec<String> = by_name
            .iter()
            .filter(|(name, r)| {
                let policy = policies.iter().find(|p| p.name_any() == **name);
                !still_refused(r, policy.map(AsRef::as_ref))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if stale.is_empty() {
            return;
        }
        for name in stale {
            by_name.remove(&name);
        }
        let _ = self.recheck.unbounded_send(());
    }
}

/// The apiserver refused a policy's rules at this generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub generation: Option<i64>,
    pub message: String,
}

/// Whether a refusal still applies: the policy exists, unchanged since.
fn still_refused(refusal: &Refusal, policy: Option<&ApprovalPolicy>) -> bool {
    policy.is_some_and(|p| p.metadata.generation == refusal.generation)
}

/// The policies to register: those not refused at their current generation.
pub(super) fn registrable<'a>(
    policies: &'a [Arc<ApprovalPolicy>],
    refused: &BTreeMap<String, Refusal>,
) -> Vec<&'a Arc<ApprovalPolicy>> {
    policies
        .iter()
        .filter(|p| {
            !refused
                .get(&p.name_any())
                .is_some_and(|r| still_refused(r, Some(p)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, generation: i64) -> Arc<ApprovalPolicy> {
        let spec = serde_yaml_ng::from_str(
            "rules: [{apiGroups: [''], resources: [services], operations: [UPDATE]}]\n\
             approvers: {groups: [sre]}\n",
        )
        .unwrap();
        let mut policy = ApprovalPolicy::new(name, spec);
        policy.metadata.generation = Some(generation);
        Arc::new(policy)
    }

    #[test]
    fn a_refused_policy_is_left_out_until_it_changes_and_a_stale_refusal_is_forgotten() {
        let (refusals, mut rechecks) = Refusals::new();
        let (bad, good) = (policy("bad", 1), policy("good", 1));
        refusals.record(
            &bad,
            "webhooks[0].rules[0].operations: Invalid value".into(),
        );
        assert!(
            rechecks.try_recv().is_ok(),
            "the policy reconciler looks again"
        );
        let policies = [Arc::clone(&bad), Arc::clone(&good)];
        let names = |kept: Vec<&Arc<ApprovalPolicy>>| -> Vec<String> {
            kept.iter().map(|p| p.name_any()).collect()
        };
        assert_eq!(
            names(registrable(&policies, &refusals.snapshot())),
            ["good"]
        );
        assert!(refusals.of(&bad).is_some_and(|m| m.contains("operations")));
        assert_eq!(refusals.of(&good), None);

        // Edited: tried again, and no longer shown as refused.
        let fixed = policy("bad", 2);
        assert_eq!(refusals.of(&fixed), None);
        let policies = [Arc::clone(&fixed), Arc::clone(&good)];
        assert_eq!(
            names(registrable(&policies, &refusals.snapshot())),
            ["bad", "good"]
        );
        refusals.forget_stale(&policies);
        assert!(refusals.snapshot().is_empty());
        assert!(rechecks.try_recv().is_ok());
        // Deleted: forgotten as well.
        refusals.record(&bad, "refused".into());
        refusals.forget_stale(&[good]);
        assert!(refusals.snapshot().is_empty());
    }
}

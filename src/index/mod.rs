//! In-memory indexes the webhook decides from, fed by watches.
//!
//! Plain structs with `apply`/`delete`/lookups, unit-tested without a server.
//! Request lookups cost O(1) in the number of requests: they are keyed by
//! requester, operation and target.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use kube::ResourceExt as _;

use crate::crd::{ApprovalPolicy, ApprovalRequest, Operation, Target};

/// What an approval is for: one user, one operation, one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GrantKey {
    pub requester: String,
    pub operation: Operation,
    pub target: Target,
}

impl GrantKey {
    pub fn of(req: &ApprovalRequest) -> Self {
        Self {
            requester: req.spec.requester.clone(),
            operation: req.spec.operation,
            target: req.spec.target.clone(),
        }
    }
}

type ObjectKey = (String, String);

fn object_key(req: &ApprovalRequest) -> ObjectKey {
    (req.namespace().unwrap_or_default(), req.name_any())
}

/// ApprovalRequests by [`GrantKey`]. Each key is held once and shared by
/// the three maps (some 240 bytes a copy, for every request cached).
#[derive(Debug, Default)]
pub struct RequestIndex {
    by_key: HashMap<Arc<GrantKey>, BTreeMap<ObjectKey, Arc<ApprovalRequest>>>,
    keys: HashMap<ObjectKey, Arc<GrantKey>>,
    /// The keys each requester has requests under, for the per-requester cap.
    by_requester: HashMap<String, HashSet<Arc<GrantKey>>>,
}

impl RequestIndex {
    pub fn apply(&mut self, mut req: ApprovalRequest) {
        // The change record is for people, up to 64 KiB each, and no
        // decision reads it: every replica would hold it for nothing. Nor
        // labels and annotations (two small maps, about 1 KiB a request);
        // recording a use writes the status only, which keeps them.
        req.spec.change = None;
        req.metadata.labels = None;
        req.metadata.annotations = None;
        let obj = object_key(&req);
        let key = GrantKey::of(&req);
        // The spec is immutable, but a delete and re-create may reuse a name.
        if let Some(old) = self.keys.get(&obj).filter(|old| ***old != key).cloned() {
            self.remove(&obj, &old);
        }
        let key = match self.by_key.get_key_value(&key) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::new(key),
        };
        self.by_requester
            .entry(key.requester.clone())
            .or_default()
            .insert(Arc::clone(&key));
        self.by_key
            .entry(Arc::clone(&key))
            .or_default()
            .insert(obj.clone(), Arc::new(req));
        self.keys.insert(obj, key);
    }

    pub fn delete(&mut self, req: &ApprovalRequest) {
        let obj = object_key(req);
        if let Some(key) = self.keys.remove(&obj) {
            self.remove(&obj, &key);
        }
    }

    fn remove(&mut self, obj: &ObjectKey, key: &GrantKey) {
        if let Some(bucket) = self.by_key.get_mut(key) {
            bucket.remove(obj);
            if bucket.is_empty() {
                self.by_key.remove(key);
                if let Some(keys) = self.by_requester.get_mut(&key.requester) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_requester.remove(&key.requester);
                    }
                }
            }
        }
    }

    /// Every request for exactly this user, operation and target.
    pub fn lookup(&self, key: &GrantKey) -> impl Iterator<Item = &Arc<ApprovalRequest>> {
        self.by_key.get(key).into_iter().flat_map(BTreeMap::values)
    }

    /// Every operation and target `requester` has requests for.
    pub fn keys_of(&self, requester: &str) -> impl Iterator<Item = &GrantKey> {
        self.by_requester
            .get(requester)
            .into_iter()
            .flatten()
            .map(Arc::as_ref)
    }

    /// Whether a request of this name exists in this namespace.
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.keys
            .contains_key(&(namespace.to_owned(), name.to_owned()))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Everything the admission decision reads.
#[derive(Debug, Default)]
pub struct Index {
    pub requests: RequestIndex,
    /// Policies by name (a handful; iterated in name order).
    pub policies: BTreeMap<String, Arc<ApprovalPolicy>>,
    /// Namespace labels, for `namespaceSelector`.
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
}

impl Index {
    pub fn apply_policy(&mut self, policy: ApprovalPolicy) {
        self.policies.insert(policy.name_any(), Arc::new(policy));
    }

    pub fn delete_policy(&mut self, policy: &ApprovalPolicy) {
        self.policies.remove(&policy.name_any());
    }

    pub fn policy(&self, name: &str) -> Option<&ApprovalPolicy> {
        self.policies.get(name).map(Arc::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request;

    fn named(name: &str, requester: &str, target_name: &str) -> ApprovalRequest {
        let mut req = request(requester, 0);
        req.metadata.name = Some(name.into());
        req.spec.target.name = target_name.into();
        req
    }

    fn key(requester: &str, target_name: &str) -> GrantKey {
        GrantKey::of(&named("x", requester, target_name))
    }

    #[test]
    fn lookup_finds_requests_by_requester_operation_and_target() {
        let mut index = RequestIndex::default();
        index.apply(named("a", "alice", "checkout"));
        index.apply(named("b", "alice", "payments"));
        index.apply(named("c", "bob", "checkout"));
        let found: Vec<_> = index
            .lookup(&key("alice", "checkout"))
            .map(|r| r.name_any())
            .collect();
        assert_eq!(found, ["a"]);
        assert_eq!(index.lookup(&key("carol", "checkout")).count(), 0);
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn apply_replaces_and_delete_removes() {
        let mut index = RequestIndex::default();
        index.apply(named("a", "alice", "checkout"));
        index.apply(named("a", "alice", "checkout"));
        assert_eq!(index.lookup(&key("alice", "checkout")).count(), 1);
        // Same name, different target (deleted and re-created): old key is gone.
        index.apply(named("a", "alice", "payments"));
        assert_eq!(index.lookup(&key("alice", "checkout")).count(), 0);
        assert_eq!(index.lookup(&key("alice", "payments")).count(), 1);
        index.delete(&named("a", "alice", "payments"));
        assert!(index.is_empty());
        assert_eq!(index.lookup(&key("alice", "payments")).count(), 0);
    }

    #[test]
    fn a_requesters_keys_follow_apply_and_delete_and_are_shared_not_copied() {
        let mut index = RequestIndex::default();
        index.apply(named("a", "alice", "checkout"));
        index.apply(named("b", "alice", "checkout"));
        index.apply(named("c", "alice", "payments"));
        index.apply(named("d", "bob", "checkout"));
        let mut targets: Vec<String> = index
            .keys_of("alice")
            .map(|k| k.target.name.clone())
            .collect();
        targets.sort();
        assert_eq!(targets, ["checkout", "payments"]);
        let shared = index
            .by_key
            .get_key_value(&key("alice", "checkout"))
            .unwrap()
            .0;
        assert_eq!(
            Arc::strong_count(shared),
            4,
            "by_key, by_requester and two names"
        );
        index.delete(&named("c", "alice", "payments"));
        index.delete(&named("a", "alice", "checkout"));
        assert_eq!(
            index.keys_of("alice").count(),
            1,
            "b still asks for checkout"
        );
        index.delete(&named("b", "alice", "checkout"));
        assert_eq!(index.keys_of("alice").count(), 0);
        assert!(!index.by_requester.contains_key("alice"));
    }

    #[test]
    fn the_index_keeps_no_change_record() {
        let mut index = RequestIndex::default();
        let mut req = named("a", "alice", "checkout");
        req.spec.change = Some(Box::new(crate::crd::Change {
            summary: "image app: a → b".into(),
            ..crate::crd::Change::default()
        }));
        index.apply(req);
        let kept = index.lookup(&key("alice", "checkout")).next().unwrap();
        assert_eq!(kept.spec.change, None);
    }
}

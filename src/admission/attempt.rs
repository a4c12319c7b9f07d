//! An attempted action: the parts of an AdmissionRequest that decisions use.

use std::collections::BTreeMap;

use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, Operation as AdmissionOperation},
};

use super::digest::digest;
use crate::crd::{Operation, Target};

/// What someone tried to do, as the apiserver reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The AdmissionRequest uid, echoed in the response and recorded on use.
    pub uid: String,
    /// `userInfo.username`: the only source of identity.
    pub user: String,
    /// `userInfo.groups`.
    pub groups: Vec<String>,
    pub operation: Operation,
    pub target: Target,
    /// The namespace the request was made in (for Namespace objects, their name).
    pub request_namespace: String,
    /// The canonical content digest, see [`super::digest`].
    pub digest: Option<String>,
    /// Why, from the object's `approvalgate.dev/reason` annotation; it becomes
    /// the pending request's `spec.reason`.
    pub reason: String,
    pub dry_run: bool,
    /// For an UPDATE of a Namespace that changes its labels: the labels
    /// before and after, so that a policy selecting namespaces by label can
    /// hold a relabel that takes the namespace out of its scope.
    pub relabel: Option<Box<Relabel>>,
}

/// A Namespace's labels before and after an UPDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relabel {
    pub before: BTreeMap<String, String>,
    pub after: BTreeMap<String, String>,
}

/// The annotation a requester sets on the object to say why it must change.
pub const REASON_ANNOTATION: &str = "approvalgate.dev/reason";

/// Why an AdmissionRequest cannot be turned into an [`Attempt`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttemptError {
    #[error("the admission request has no uid")]
    MissingUid,
    #[error("the admission request has no userInfo.username")]
    MissingUser,
}

impl Attempt {
    /// The attempt with its content digest.
    pub fn from_request(req: &AdmissionRequest<DynamicObject>) -> Result<Self, AttemptError> {
        let mut attempt = Self::read(req)?;
        attempt.compute_digest(req);
        Ok(attempt)
    }

    /// Computes the content digest: the costly part, done only once a policy
    /// matches, so that requests no policy covers are allowed quickly.
    pub fn compute_digest(&mut self, req: &AdmissionRequest<DynamicObject>) {
        let to_value =
            |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
        // A DELETE reads only the old object (its uid); the others only the new one.
        let (new, old) = match self.operation {
            Operation::Delete => (None, to_value(&req.old_object)),
            _ => (to_value(&req.object), None),
        };
        self.digest = digest(self.operation, new.as_ref(), old.as_ref());
    }

    /// The attempt without its digest.
    pub fn read(req: &AdmissionRequest<DynamicObject>) -> Result<Self, AttemptError> {
        if req.uid.is_empty() {
            return Err(AttemptError::MissingUid);
        }
        let user = req
            .user_info
            .username
            .clone()
            .ok_or(AttemptError::MissingUser)?;
        let operation = match req.operation {
            AdmissionOperation::Create => Operation::Create,
            AdmissionOperation::Update => Operation::Update,
            AdmissionOperation::Delete => Operation::Delete,
            AdmissionOperation::Connect => Operation::Connect,
        };
        let request_namespace = req.namespace.clone().unwrap_or_default();
        let cluster_scoped_namespace =
            req.resource.group.is_empty() && req.resource.resource == "namespaces";
        let target = Target {
            api_group: req.resource.group.clone(),
            resource: req.resource.resource.clone(),
            subresource: req.sub_resource.clone().filter(|s| !s.is_empty()),
            namespace: if cluster_scoped_namespace {
                String::new()
            } else {
                request_namespace.clone()
            },
            name: req.name.clone(),
        };
        let digest = None;
        let relabel = match (&req.old_object, &req.object) {
            (Some(old), Some(new))
                if cluster_scoped_namespace
                    && operation == Operation::Update
                    && target.subresource.is_none() =>
            {
                let labels = |o: &DynamicObject| o.metadata.labels.clone().unwrap_or_default();
                let (before, after) = (labels(old), labels(new));
                (before != after).then(|| Box::new(Relabel { before, after }))
            }
            _ => None,
        };
        let reason = [&req.object, &req.old_object]
            .into_iter()
            .flatten()
            .find_map(|o| {
                o.metadata
                    .annotations
                    .as_ref()?
                    .get(REASON_ANNOTATION)
                    .cloned()
            })
            .unwrap_or_default();
        Ok(Self {
            reason,
            uid: req.uid.clone(),
            user,
            groups: req.user_info.groups.clone().unwrap_or_default(),
            operation,
            target,
            request_namespace,
            digest,
            dry_run: req.dry_run,
            relabel,
        })
    }

    /// `UPDATE deployments.apps/checkout in prod`, for messages.
    pub fn describe(&self) -> String {
        if self.target.namespace.is_empty() {
            format!("{} {}", self.operation, self.target)
        } else {
            format!(
                "{} {} in namespace {}",
                self.operation, self.target, self.target.namespace
            )
        }
    }
}

//! An attempted action: the parts of an AdmissionRequest that decisions use.

use std::{collections::BTreeMap, sync::LazyLock};

use kube::core::admission::Operation as AdmissionOperation;
use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    digest::digest_review,
    json::Json,
    review::{Head, Objects, Review},
};
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
    /// The attempt with its content digest and reason.
    pub fn from_request(review: &Review<'_>) -> Result<Self, AttemptError> {
        let mut objects = review.objects();
        let mut attempt = Self::read(review, &mut objects)?;
        attempt.complete(review, &mut objects);
        Ok(attempt)
    }

    /// Computes the content digest and reads the reason: the costly part,
    /// done only once a policy matches, so that requests no policy covers
    /// are allowed quickly. A DELETE parses only the old object (its uid),
    /// the others only the new one.
    pub fn complete(&mut self, review: &Review<'_>, objects: &mut Objects<'_, '_>) {
        let (digest, reason) = match self.operation {
            Operation::Delete => (
                digest_review(self.operation, None, objects.old_object()),
                objects.old_object().and_then(reason_in),
            ),
            _ => {
                let digest = digest_review(self.operation, objects.object(), None);
                let reason = objects.object().and_then(reason_in);
                // Else the old object's, read without building its tree.
                (
                    digest,
                    reason.or_else(|| review.old_object.and_then(reason_in_raw)),
                )
            }
        };
        self.digest = digest;
        self.reason = reason.unwrap_or_default();
    }

    /// The attempt without its digest and reason.
    pub fn read(review: &Review<'_>, objects: &mut Objects<'_, '_>) -> Result<Self, AttemptError> {
        if review.uid.is_empty() {
            return Err(AttemptError::MissingUid);
        }
        let user = review
            .user_info
            .username
            .clone()
            .ok_or(AttemptError::MissingUser)?;
        let mut attempt = Self::of_head(&Head {
            resource: &review.resource,
            sub_resource: review.sub_resource.as_deref(),
            name: &review.name,
            namespace: review.namespace.as_deref(),
            operation: &review.operation,
        });
        if attempt.target.api_group.is_empty()
            && attempt.target.resource == "namespaces"
            && attempt.operation == Operation::Update
            && attempt.target.subresource.is_none()
        {
            attempt.relabel = relabel(objects);
        }
        attempt.uid.clone_from(&review.uid);
        attempt.user = user;
        attempt.groups = review.user_info.groups.clone().unwrap_or_default();
        attempt.dry_run = review.dry_run;
        Ok(attempt)
    }

    /// The action a review names before its object, as an attempt by nobody:
    /// enough to match it against the policies' rules, except for a
    /// Namespace's relabel, which needs both objects.
    pub fn of_head(head: &Head<'_>) -> Self {
        let operation = match head.operation {
            AdmissionOperation::Create => Operation::Create,
            AdmissionOperation::Update => Operation::Update,
            AdmissionOperation::Delete => Operation::Delete,
            AdmissionOperation::Connect => Operation::Connect,
        };
        let request_namespace = head.namespace.unwrap_or_default().to_owned();
        let cluster_scoped_namespace =
            head.resource.group.is_empty() && head.resource.resource == "namespaces";
        let target = Target {
            api_group: head.resource.group.clone(),
            resource: head.resource.resource.clone(),
            subresource: head
                .sub_resource
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            namespace: if cluster_scoped_namespace {
                String::new()
            } else {
                request_namespace.clone()
            },
            name: head.name.to_owned(),
        };
        Self {
            reason: String::new(),
            uid: String::new(),
            user: String::new(),
            groups: Vec::new(),
            operation,
            target,
            request_namespace,
            digest: None,
            dry_run: false,
            relabel: None,
        }
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

/// A Namespace's labels before and after, when both objects are there and
/// the labels differ.
fn relabel(objects: &mut Objects<'_, '_>) -> Option<Box<Relabel>> {
    let labels = |o: &Json<'_>| {
        o.get("metadata")
            .and_then(|m| m.get("labels"))
            .map(Json::string_map)
            .unwrap_or_default()
    };
    let before = labels(objects.old_object()?);
    let after = labels(objects.object()?);
    (before != after).then(|| Box::new(Relabel { before, after }))
}

/// The reason annotation of an object.
fn reason_in(object: &Json<'_>) -> Option<String> {
    let annotations = object.get("metadata")?.get("annotations")?;
    annotations
        .get(REASON_ANNOTATION)?
        .as_str()
        .map(str::to_owned)
}

/// The reason annotation of an object still in text: read by skipping
/// everything else, with nothing kept, and only when the text can hold it
/// at all (its key, or an escape that could spell the key otherwise).
fn reason_in_raw(object: &RawValue) -> Option<String> {
    static KEY: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(REASON_ANNOTATION));
    let text = object.get().as_bytes();
    let escape =
        || memchr::memchr_iter(b'\\', text).any(|at| matches!(text.get(at + 1), Some(b'u' | b'/')));
    if KEY.find(text).is_none() && !escape() {
        return None;
    }
    #[derive(Deserialize)]
    struct Object {
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        annotations: Option<BTreeMap<String, serde_json::Value>>,
    }
    let object: Object = serde_json::from_str(object.get()).ok()?;
    let mut annotations = object.metadata?.annotations?;
    match annotations.remove(REASON_ANNOTATION)? {
        serde_json::Value::String(reason) => Some(reason),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_reason(text: &str) -> Option<String> {
        reason_in_raw(serde_json::from_str::<&RawValue>(text).unwrap())
    }

    #[test]
    fn the_old_objects_reason_is_read_from_its_text_however_its_key_is_spelled() {
        let plain = r#"{"metadata":{"annotations":{"approvalgate.dev/reason":"INC-1"}}}"#;
        assert_eq!(raw_reason(plain).as_deref(), Some("INC-1"));
        let slash = r#"{"metadata":{"annotations":{"approvalgate.dev\/reason":"INC-2"}}}"#;
        assert_eq!(raw_reason(slash).as_deref(), Some("INC-2"));
        let unicode = r#"{"metadata":{"annotations":{"\u0061pprovalgate.dev/reason":"INC-3"}}}"#;
        assert_eq!(raw_reason(unicode).as_deref(), Some("INC-3"));
        let other = r#"{"metadata":{"annotations":{"k:{\"name\":\"app\"}":"x"}},"s":"a\\u"}"#;
        assert_eq!(raw_reason(other), None);
        let not_a_string = r#"{"metadata":{"annotations":{"approvalgate.dev/reason":1}}}"#;
        assert_eq!(raw_reason(not_a_string), None);
    }
}

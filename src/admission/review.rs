//! An AdmissionReview read once from its body: the request's fields, and its
//! objects as raw JSON borrowed from the body, parsed further only when a
//! policy covers the request (see [`Objects`]).

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::{
    GroupVersionKind, GroupVersionResource, TypeMeta,
    admission::{AdmissionResponse, Operation},
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::Json;

/// The request of an AdmissionReview, with the same fields as kube's
/// `AdmissionRequest`, less those approval-gate never reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review<'a> {
    /// The review's own `apiVersion` and `kind`, echoed in the answer.
    #[serde(skip)]
    pub types: TypeMeta,
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    pub user_info: UserInfo,
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub options: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    #[serde(default, borrow)]
    request: Option<Review<'a>>,
}

/// Why a body is not a review approval-gate can judge.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("malformed AdmissionReview: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("malformed AdmissionReview: it is not UTF-8 text: {0}")]
    NotText(#[source] std::str::Utf8Error),
}

impl<'a> Review<'a> {
    /// Reads a review's body. The objects are checked to be JSON and kept
    /// as text.
    pub fn parse(body: &'a [u8]) -> Result<Self, ReviewError> {
        // Checked as UTF-8 once, as a whole: the parser then borrows the
        // objects' text without checking each string again.
        let text = std::str::from_utf8(body).map_err(ReviewError::NotText)?;
        let envelope: Envelope<'a> = serde_json::from_str(text).map_err(ReviewError::Malformed)?;
        let mut review = envelope.request.ok_or(ReviewError::NoRequest)?;
        review.types = TypeMeta {
            api_version: envelope.api_version,
            kind: envelope.kind,
        };
        Ok(review)
    }

    /// The request's uid, if a body that is not a review has one at all, so
    /// that even a refusal can be matched to its request.
    pub fn uid_of(body: &[u8]) -> Option<String> {
        #[derive(Deserialize)]
        struct Uid {
            uid: String,
        }
        #[derive(Deserialize)]
        struct Request {
            request: Uid,
        }
        serde_json::from_slice::<Request>(body)
            .ok()
            .map(|r| r.request.uid)
    }

    /// The answer that allows the request, to be refined.
    pub fn response(&self) -> AdmissionResponse {
        let mut response = AdmissionResponse::invalid("");
        response.types = self.types.clone();
        response.uid.clone_from(&self.uid);
        response.allowed = true;
        response.result = Default::default();
        response
    }

    /// A user of the review's objects: parses them on first use. A
    /// CONNECT's object is its options, which are hashed whole; any other
    /// object is parsed without its status and managed fields.
    pub fn objects(&self) -> Objects<'a> {
        Objects {
            object: self.object,
            old_object: self.old_object,
            pruned: self.operation != Operation::Connect,
            parsed: [None, None],
        }
    }
}

/// The review's object and old object, each parsed into a [`Json`] tree
/// once, the first time it is asked for.
pub struct Objects<'a> {
    object: Option<&'a RawValue>,
    old_object: Option<&'a RawValue>,
    /// Parsed with [`Json::parse_pruned`].
    pruned: bool,
    parsed: [Option<Option<Json<'a>>>; 2],
}

impl<'a> Objects<'a> {
    /// The object as admitted (`None` for a DELETE).
    pub fn object(&mut self) -> Option<&Json<'a>> {
        let raw = self.object;
        Self::tree(&mut self.parsed[0], raw, self.pruned)
    }

    /// The object as it was (`None` for a CREATE or CONNECT).
    pub fn old_object(&mut self) -> Option<&Json<'a>> {
        let raw = self.old_object;
        Self::tree(&mut self.parsed[1], raw, self.pruned)
    }

    fn tree<'s>(
        slot: &'s mut Option<Option<Json<'a>>>,
        raw: Option<&'a RawValue>,
        pruned: bool,
    ) -> Option<&'s Json<'a>> {
        let parse = if pruned {
            Json::parse_pruned
        } else {
            Json::parse
        };
        // The body was checked to be JSON when the review was read.
        slot.get_or_insert_with(|| raw.and_then(|r| parse(r.get()).ok()))
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_keeps_its_objects_as_text_until_asked() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u","kind":{"group":"","version":"v1","kind":"ConfigMap"},
            "resource":{"group":"","version":"v1","resource":"configmaps"},"name":"c","namespace":"n",
            "operation":"UPDATE","userInfo":{"username":"alice"},
            "object":{"metadata":{"name":"c","labels":{"a":"b"}}},"oldObject":null,"options":null}}"#;
        let review = Review::parse(body).unwrap();
        assert_eq!(review.object.map(RawValue::get).map(str::len), Some(44));
        assert!(review.old_object.is_none());
        let mut objects = review.objects();
        let labels = objects
            .object()
            .unwrap()
            .get("metadata")
            .unwrap()
            .get("labels");
        assert_eq!(labels.unwrap().string_map()["a"], "b");
        assert!(objects.old_object().is_none());
        let response = review.response();
        assert!(response.allowed);
        assert_eq!(response.uid, "u");
        assert_eq!(response.types.kind, "AdmissionReview");
    }

    #[test]
    fn bodies_that_are_not_reviews_say_why() {
        let no_request = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(
            Review::parse(no_request),
            Err(ReviewError::NoRequest)
        ));
        let cut = br#"{"request":{"uid":"u-1","kind":"#;
        assert!(matches!(Review::parse(cut), Err(ReviewError::Malformed(_))));
        let binary = b"{\"request\":{\"uid\":\"\xff\"}}";
        assert!(matches!(
            Review::parse(binary),
            Err(ReviewError::NotText(_))
        ));
        assert_eq!(
            Review::uid_of(br#"{"request":{"uid":"u-2","operation":7}}"#).as_deref(),
            Some("u-2")
        );
    }
}

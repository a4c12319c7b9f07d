//! An AdmissionReview read once from its body: the request's fields, and its
//! objects as raw JSON borrowed from the body, parsed further only when a
//! policy covers the request (see [`Objects`]). A covered object is read
//! straight into its tree as the review is read (see
//! [`Review::parse_predicting`]).

use std::fmt;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::{
    GroupVersionKind, GroupVersionResource, TypeMeta,
    admission::{AdmissionResponse, Operation},
};
use serde::{
    Deserialize,
    de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor},
};
use serde_json::value::RawValue;

use super::json::{Json, Tree};

/// The request of an AdmissionReview, with the same fields as kube's
/// `AdmissionRequest`, less those approval-gate never reads.
#[derive(Debug)]
pub struct Review<'a> {
    /// The review's own `apiVersion` and `kind`, echoed in the answer.
    pub types: TypeMeta,
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    pub sub_resource: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: Operation,
    pub user_info: UserInfo,
    /// The object's text, unless its tree was built as the review was read
    /// (see [`Self::object`]).
    object: Option<&'a RawValue>,
    /// The object's tree, when it was built as the review was read.
    tree: Option<Json<'a>>,
    pub old_object: Option<&'a RawValue>,
    pub options: Option<&'a RawValue>,
    pub dry_run: bool,
    /// The whole body, from which the object's text is read again if asked
    /// for after its tree was built.
    body: &'a str,
}

/// What a review has said of the action by the time its object comes: enough
/// to tell whether a policy covers it, and so whether to build the object's
/// tree straight away (see [`Review::parse_predicting`]).
#[derive(Debug)]
pub struct Head<'h> {
    pub resource: &'h GroupVersionResource,
    pub sub_resource: Option<&'h str>,
    pub name: &'h str,
    pub namespace: Option<&'h str>,
    pub operation: &'h Operation,
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
        Self::parse_predicting(body, &|_| false)
    }

    /// [`Self::parse`], except that the object's tree is built as the review
    /// is read when `covered` says, from what the review has stated before
    /// its object, that a policy covers the action: the object is then read
    /// once, not skipped and read again. The apiserver sends the object after
    /// the fields that name the action. For a review in another order, or
    /// when `covered` is wrong, the result is the same, only slower: whether
    /// the action is covered is judged again on the whole review.
    pub fn parse_predicting(
        body: &'a [u8],
        covered: &dyn Fn(&Head<'_>) -> bool,
    ) -> Result<Self, ReviewError> {
        // Checked as UTF-8 once, as a whole: the parser then borrows the
        // objects' text without checking each string again.
        let text = std::str::from_utf8(body).map_err(ReviewError::NotText)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let envelope = MapSeed(EnvelopeVisitor(Reading {
            body: text,
            covered,
        }))
        .deserialize(&mut de)
        .and_then(|envelope| de.end().map(|()| envelope))
        .map_err(ReviewError::Malformed)?;
        let mut review = envelope.request.ok_or(ReviewError::NoRequest)?;
        review.types = TypeMeta {
            api_version: envelope.api_version,
            kind: envelope.kind,
        };
        Ok(review)
    }

    /// The object's text (`None` for a DELETE). If its tree was built as the
    /// review was read, the text is found by reading the body again: only
    /// the way to a denial needs it, for the change record.
    pub fn object(&self) -> Option<&'a RawValue> {
        if self.tree.is_none() {
            return self.object;
        }
        Self::parse(self.body.as_bytes()).ok()?.object
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
    pub fn objects(&self) -> Objects<'_, 'a> {
        Objects {
            given: self.tree.as_ref(),
            object: self.object,
            old_object: self.old_object,
            pruned: self.operation != Operation::Connect,
            parsed: [None, None],
        }
    }
}

/// The review's object and old object, each parsed into a [`Json`] tree
/// once, the first time it is asked for (or given, as read with the review).
pub struct Objects<'r, 'a> {
    given: Option<&'r Json<'a>>,
    object: Option<&'a RawValue>,
    old_object: Option<&'a RawValue>,
    /// Parsed with [`Json::parse_pruned`].
    pruned: bool,
    parsed: [Option<Option<Json<'a>>>; 2],
}

impl<'a> Objects<'_, 'a> {
    /// The object as admitted (`None` for a DELETE).
    pub fn object(&mut self) -> Option<&Json<'a>> {
        if let Some(tree) = self.given {
            return Some(tree);
        }
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

/// The envelope: `apiVersion`, `kind` and the request, read as a derived
/// `Deserialize` would read them (each once; unknown fields ignored).
struct Envelope<'a> {
    api_version: String,
    kind: String,
    request: Option<Review<'a>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum EnvelopeField {
    ApiVersion,
    Kind,
    Request,
    #[serde(other)]
    Other,
}

/// What reading a review needs throughout: its body, and whether a policy
/// covers the action named so far.
#[derive(Clone, Copy)]
struct Reading<'c, 'a> {
    body: &'a str,
    covered: &'c dyn Fn(&Head<'_>) -> bool,
}

/// A map visitor used as a seed: the map is read with it.
struct MapSeed<V>(V);

impl<'a, V: Visitor<'a>> DeserializeSeed<'a> for MapSeed<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self.0)
    }
}

struct EnvelopeVisitor<'c, 'a>(Reading<'c, 'a>);

impl<'a> Visitor<'a> for EnvelopeVisitor<'_, 'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut api_version, mut kind, mut request) = (None, None, None);
        while let Some(field) = map.next_key()? {
            match field {
                EnvelopeField::ApiVersion => once(&mut map, &mut api_version, "apiVersion")?,
                EnvelopeField::Kind => once(&mut map, &mut kind, "kind")?,
                EnvelopeField::Request => {
                    if request.is_some() {
                        return Err(de::Error::duplicate_field("request"));
                    }
                    request = Some(map.next_value_seed(Optional(MapSeed(RequestVisitor(self.0))))?);
                }
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            api_version: api_version.ok_or_else(|| de::Error::missing_field("apiVersion"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
            request: request.flatten(),
        })
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    Kind,
    Resource,
    SubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    Options,
    DryRun,
    #[serde(other)]
    Other,
}

/// The request, read as a derived `Deserialize` would read it, except that
/// the object may be read straight into its tree.
struct RequestVisitor<'c, 'a>(Reading<'c, 'a>);

impl<'a> Visitor<'a> for RequestVisitor<'_, 'a> {
    type Value = Review<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut uid = None;
        let mut kind = None;
        let mut resource = None;
        let mut sub_resource: Option<Option<String>> = None;
        let mut name: Option<String> = None;
        let mut namespace: Option<Option<String>> = None;
        let mut operation = None;
        let mut user_info = None;
        let mut object: Option<Option<&'a RawValue>> = None;
        let mut tree: Option<Json<'a>> = None;
        let mut old_object = None;
        let mut options = None;
        let mut dry_run = None;
        while let Some(field) = map.next_key()? {
            match field {
                RequestField::Uid => once(&mut map, &mut uid, "uid")?,
                RequestField::Kind => once(&mut map, &mut kind, "kind")?,
                RequestField::Resource => once(&mut map, &mut resource, "resource")?,
                RequestField::SubResource => once(&mut map, &mut sub_resource, "subResource")?,
                RequestField::Name => once(&mut map, &mut name, "name")?,
                RequestField::Namespace => once(&mut map, &mut namespace, "namespace")?,
                RequestField::Operation => once(&mut map, &mut operation, "operation")?,
                RequestField::UserInfo => once(&mut map, &mut user_info, "userInfo")?,
                RequestField::Object => {
                    if object.is_some() {
                        return Err(de::Error::duplicate_field("object"));
                    }
                    let head = match (&resource, &operation) {
                        (Some(resource), Some(operation)) if *operation != Operation::Delete => {
                            Some(Head {
                                resource,
                                sub_resource: sub_resource.as_ref().and_then(Option::as_deref),
                                name: name.as_deref().unwrap_or_default(),
                                namespace: namespace.as_ref().and_then(Option::as_deref),
                                operation,
                            })
                        }
                        _ => None,
                    };
                    if head.as_ref().is_some_and(|head| (self.0.covered)(head)) {
                        let pruned = operation != Some(Operation::Connect);
                        tree = map.next_value_seed(Optional(Tree::new(pruned)))?;
                        object = Some(None);
                    } else {
                        object = Some(map.next_value()?);
                    }
                }
                RequestField::OldObject => once(&mut map, &mut old_object, "oldObject")?,
                RequestField::Options => once(&mut map, &mut options, "options")?,
                RequestField::DryRun => once(&mut map, &mut dry_run, "dryRun")?,
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Review {
            types: TypeMeta::default(),
            uid: uid.ok_or_else(|| de::Error::missing_field("uid"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
            resource: resource.ok_or_else(|| de::Error::missing_field("resource"))?,
            sub_resource: sub_resource.flatten(),
            name: name.unwrap_or_default(),
            namespace: namespace.flatten(),
            operation: operation.ok_or_else(|| de::Error::missing_field("operation"))?,
            user_info: user_info.ok_or_else(|| de::Error::missing_field("userInfo"))?,
            object: object.flatten(),
            tree,
            old_object: old_object.flatten(),
            options: options.flatten(),
            dry_run: dry_run.unwrap_or_default(),
            body: self.0.body,
        })
    }
}

/// Reads a field's value, refusing a second one as a derived `Deserialize`
/// does (before reading it).
fn once<'a, T: Deserialize<'a>, A: MapAccess<'a>>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// A seed's value, or `None` for `null`, as `Option<T>` reads it.
struct Optional<S>(S);

impl<'a, S: DeserializeSeed<'a>> DeserializeSeed<'a> for Optional<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'a>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'a, S: DeserializeSeed<'a>> Visitor<'a> for Optional<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'a>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Attempt;

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

    const UPDATE: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
        "uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},
        "resource":{"group":"apps","version":"v1","resource":"deployments"},"subResource":"scale",
        "requestKind":{"group":"apps","version":"v1","kind":"Deployment"},"name":"web","namespace":"prod",
        "operation":"UPDATE","userInfo":{"username":"alice","groups":["dev"]},
        "object":{"metadata":{"name":"web","managedFields":[{"m":1}],"annotations":{"approvalgate.dev/reason":"r\u00e9"}},
                  "spec":{"replicas":-0},"status":{"x":1}},
        "oldObject":{"metadata":{"name":"web"}},"dryRun":true,"options":{"kind":"UpdateOptions"}}}"#;

    #[test]
    fn a_covered_object_is_read_into_its_tree_with_the_review_and_nothing_else_changes() {
        let seen = std::cell::RefCell::new(Vec::new());
        let covered = |head: &Head<'_>| {
            seen.borrow_mut().push(format!(
                "{} {} {:?} {} {:?} {:?}",
                head.resource.group,
                head.resource.resource,
                head.sub_resource,
                head.name,
                head.namespace,
                head.operation
            ));
            true
        };
        let once = Review::parse_predicting(UPDATE.as_bytes(), &covered).unwrap();
        assert_eq!(
            *seen.borrow(),
            [r#"apps deployments Some("scale") web Some("prod") Update"#]
        );
        assert!(once.tree.is_some() && once.object.is_none());
        let plain = Review::parse(UPDATE.as_bytes()).unwrap();
        assert!(plain.tree.is_none());
        // The text is found again when asked for, and the trees agree.
        assert_eq!(
            once.object().map(RawValue::get),
            plain.object().map(RawValue::get)
        );
        assert_eq!(
            once.objects().object(),
            Json::parse_pruned(plain.object().unwrap().get())
                .ok()
                .as_ref()
        );
        assert_eq!(
            format!("{:?}", once.response()),
            format!("{:?}", plain.response())
        );
        assert_eq!(
            Attempt::from_request(&once).unwrap(),
            Attempt::from_request(&plain).unwrap()
        );
        assert_eq!(
            once.old_object.map(RawValue::get),
            plain.old_object.map(RawValue::get)
        );
        assert_eq!(
            once.options.map(RawValue::get),
            Some(r#"{"kind":"UpdateOptions"}"#)
        );
        assert!(once.dry_run);
    }

    #[test]
    fn the_object_is_kept_as_text_when_it_comes_before_the_action_or_is_not_covered() {
        let asked = std::cell::Cell::new(0);
        let covered = |_: &Head<'_>| {
            asked.set(asked.get() + 1);
            true
        };
        // The object before the operation: nothing to judge it by yet.
        let early = UPDATE
            .replace(r#""operation":"UPDATE","#, "")
            .replace(r#""dryRun":true"#, r#""dryRun":true,"operation":"UPDATE""#);
        let review = Review::parse_predicting(early.as_bytes(), &covered).unwrap();
        assert_eq!((asked.get(), review.tree.is_some()), (0, false));
        assert!(review.object.is_some());
        // A DELETE's object is null; a null object is no tree either way.
        let delete = UPDATE.replace("UPDATE", "DELETE");
        let review = Review::parse_predicting(delete.as_bytes(), &covered).unwrap();
        assert_eq!((asked.get(), review.tree.is_some()), (0, false));
        let null = UPDATE.replace(
            r#""object":{"metadata""#,
            r#""object":null,"x":{"metadata""#,
        );
        let review = Review::parse_predicting(null.as_bytes(), &covered).unwrap();
        assert_eq!(asked.get(), 1);
        assert!(review.tree.is_none() && review.object().is_none());
        // Not covered: kept as text.
        let review = Review::parse_predicting(UPDATE.as_bytes(), &|_| false).unwrap();
        assert!(review.tree.is_none() && review.object.is_some());
    }

    /// The reader this module had before the object could be read with the
    /// review: serde's derive, over the same fields.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Derived<'a> {
        uid: String,
        kind: GroupVersionKind,
        resource: GroupVersionResource,
        #[serde(default)]
        sub_resource: Option<String>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        namespace: Option<String>,
        operation: Operation,
        user_info: UserInfo,
        #[serde(default, borrow)]
        object: Option<&'a RawValue>,
        #[serde(default, borrow)]
        old_object: Option<&'a RawValue>,
        #[serde(default, borrow)]
        options: Option<&'a RawValue>,
        #[serde(default)]
        dry_run: bool,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct DerivedEnvelope<'a> {
        api_version: String,
        kind: String,
        #[serde(default, borrow)]
        request: Option<Derived<'a>>,
    }

    /// What a review says, as text, for comparing readers.
    fn said(r: &Review<'_>) -> String {
        format!(
            "{:?} {} {:?} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {}",
            r.types,
            r.uid,
            r.kind,
            r.resource,
            r.sub_resource,
            r.name,
            r.namespace,
            r.operation,
            r.user_info,
            r.object().map(RawValue::get),
            r.old_object.map(RawValue::get),
            r.options.map(RawValue::get),
            r.dry_run
        )
    }

    fn derived(body: &str) -> Result<String, String> {
        let envelope: DerivedEnvelope<'_> =
            serde_json::from_str(body).map_err(|e| ReviewError::Malformed(e).to_string())?;
        let r = envelope.request.ok_or(ReviewError::NoRequest.to_string())?;
        let review = Review {
            types: TypeMeta {
                api_version: envelope.api_version,
                kind: envelope.kind,
            },
            uid: r.uid,
            kind: r.kind,
            resource: r.resource,
            sub_resource: r.sub_resource,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            user_info: r.user_info,
            object: r.object,
            tree: None,
            old_object: r.old_object,
            options: r.options,
            dry_run: r.dry_run,
            body,
        };
        Ok(said(&review))
    }

    #[test]
    fn a_review_reads_and_is_refused_as_the_derived_reader_read_and_refused_it() {
        let read = |body: String| {
            let plain = Review::parse(body.as_bytes())
                .map(|r| said(&r))
                .map_err(|e| e.to_string());
            let once = Review::parse_predicting(body.as_bytes(), &|_| true)
                .map(|r| said(&r))
                .map_err(|e| e.to_string());
            assert_eq!(plain, once, "{body}");
            assert_eq!(plain, derived(&body), "{body}");
            plain
        };
        assert!(read(UPDATE.to_owned()).is_ok());
        let twice = UPDATE.replace(r#""dryRun":true"#, r#""dryRun":true,"object":{}"#);
        assert!(
            read(twice)
                .unwrap_err()
                .contains("duplicate field `object`")
        );
        let twice = UPDATE.replace(r#""name":"web","#, r#""name":"web","name":"db","#);
        assert!(read(twice).unwrap_err().contains("duplicate field `name`"));
        let twice = UPDATE.replace(r#""kind":"AdmissionReview","#, r#""kind":"A","kind":"B","#);
        assert!(read(twice).unwrap_err().contains("duplicate field `kind`"));
        let no_user = UPDATE.replace(r#""userInfo":{"username":"alice","groups":["dev"]},"#, "");
        assert!(
            read(no_user)
                .unwrap_err()
                .contains("missing field `userInfo`")
        );
        let no_version = UPDATE.replace(r#""apiVersion":"admission.k8s.io/v1","#, "");
        assert!(
            read(no_version)
                .unwrap_err()
                .contains("missing field `apiVersion`")
        );
        let bad_object = UPDATE.replace(r#""status":{"x":1}"#, r#""status":{"x":tru}"#);
        assert!(
            read(bad_object)
                .unwrap_err()
                .starts_with("malformed AdmissionReview")
        );
        let null_name = UPDATE.replace(r#""name":"web","#, r#""name":null,"#);
        assert!(read(null_name).is_err());
        let nulls = UPDATE
            .replace(r#""subResource":"scale""#, r#""subResource":null"#)
            .replace(r#""namespace":"prod""#, r#""namespace":null"#)
            .replace(r#""options":{"kind":"UpdateOptions"}"#, r#""options":null"#);
        assert!(read(nulls).is_ok());
        let unknown = UPDATE.replace(
            r#""dryRun":true"#,
            r#""dryRun":true,"later":[1,{"a":null}]"#,
        );
        assert!(read(unknown).is_ok());
        assert!(
            read(r#"{"apiVersion":"v","kind":"k","request":null}"#.to_owned())
                .unwrap_err()
                .contains("no request")
        );
        // A request written as an array, which the derived reader took as
        // the fields in order, is refused outright.
        let array = r#"{"apiVersion":"v","kind":"k","request":["u"]}"#;
        assert!(derived(array).is_err());
        assert!(
            Review::parse(array.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("invalid type: sequence, expected an AdmissionRequest")
        );
        assert!(
            read(format!("{UPDATE} x"))
                .unwrap_err()
                .contains("trailing characters")
        );
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

//! The change record: what an action would do, computed from the admission
//! request when approval-gate creates a request, so that the approver sees
//! exactly what the digest binds.
//!
//! Pure functions only: [`record`] builds a [`Change`] from plain JSON values,
//! [`render`] turns one into diff lines, [`verify`] checks that a change
//! written by hand agrees with its digest.

pub mod diff;
pub mod limit;
pub mod path;
pub mod redact;
pub mod render;
pub mod summary;
pub mod verify;

use serde_json::Value;

pub use redact::Redactor;

use crate::{
    admission::digest::desired_state,
    crd::{Change, ConnectChange, DeleteChange, Operation},
};

/// What the record is computed from: the parts of an AdmissionRequest.
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    pub operation: Operation,
    /// The subresource (`exec`, `attach`, `portforward`, `scale`, ...), if any.
    pub subresource: Option<&'a str>,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    /// The operation's options (DeleteOptions for a DELETE).
    pub options: Option<&'a Value>,
}

impl<'a> Action<'a> {
    /// Creating `object`.
    pub fn create(object: &'a Value) -> Self {
        Self::of(Operation::Create, None, Some(object), None, None)
    }

    /// Updating `old` into `new`.
    pub fn update(old: &'a Value, new: &'a Value) -> Self {
        Self::of(Operation::Update, None, Some(new), Some(old), None)
    }

    /// Deleting `old` with the delete `options`.
    pub fn delete(old: &'a Value, options: Option<&'a Value>) -> Self {
        Self::of(Operation::Delete, None, None, Some(old), options)
    }

    /// Connecting to `subresource` (`exec`, `attach`, `portforward`) with `options`.
    pub fn connect(subresource: &'a str, options: &'a Value) -> Self {
        Self::of(
            Operation::Connect,
            Some(subresource),
            Some(options),
            None,
            None,
        )
    }

    fn of(
        operation: Operation,
        subresource: Option<&'a str>,
        object: Option<&'a Value>,
        old_object: Option<&'a Value>,
        options: Option<&'a Value>,
    ) -> Self {
        Self {
            operation,
            subresource,
            object,
            old_object,
            options,
        }
    }
}

/// The change an action makes, redacted and within [`crate::crd::MAX_CHANGE_BYTES`].
pub fn record(action: &Action<'_>, redactor: &Redactor<'_>) -> Change {
    let mut change = match action.operation {
        Operation::Create => Change {
            fields: action
                .object
                .map(|o| diff::created(&desired_state(o), redactor))
                .unwrap_or_default(),
            ..Change::default()
        },
        Operation::Update => Change {
            fields: match (action.old_object, action.object) {
                (Some(old), Some(new)) => diff::diff(
                    &scale_replicas(action.subresource, desired_state(old)),
                    &scale_replicas(action.subresource, desired_state(new)),
                    redactor,
                ),
                _ => Vec::new(),
            },
            base_resource_version: resource_version(action.old_object),
            ..Change::default()
        },
        Operation::Delete => Change {
            delete: action.old_object.map(|o| deleted(o, action.options)),
            base_resource_version: resource_version(action.old_object),
            ..Change::default()
        },
        Operation::Connect => Change {
            connect: action.object.map(connect),
            ..Change::default()
        },
    };
    limit::fit(&mut change);
    change.summary = summary::summarize(action.operation, action.subresource, &change);
    change
}

/// A Scale object leaves out `spec.replicas` when it is 0 (the API omits
/// empty fields), which would read as "replicas removed": show the 0.
fn scale_replicas(subresource: Option<&str>, mut object: Value) -> Value {
    if subresource == Some("scale")
        && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.entry("replicas").or_insert(Value::from(0));
    }
    object
}

fn resource_version(object: Option<&Value>) -> Option<String> {
    object?
        .pointer("/metadata/resourceVersion")?
        .as_str()
        .map(str::to_owned)
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn deleted(old: &Value, options: Option<&Value>) -> DeleteChange {
    let labels = old
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let owners = old
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let controller = r.get("controller").and_then(Value::as_bool) == Some(true);
                    format!(
                        "{}/{}{}",
                        text(r, "/kind"),
                        text(r, "/name"),
                        if controller { " (controller)" } else { "" }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    DeleteChange {
        api_version: text(old, "/apiVersion"),
        kind: text(old, "/kind"),
        name: text(old, "/metadata/name"),
        uid: text(old, "/metadata/uid"),
        labels,
        owner_references: owners,
        propagation_policy: options
            .and_then(|o| o.get("propagationPolicy"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        grace_period_seconds: options
            .and_then(|o| o.get("gracePeriodSeconds"))
            .and_then(Value::as_i64),
    }
}

/// The most arguments a recorded command line keeps (the CRD's bound).
const MAX_ARGS: usize = 1024;

fn connect(options: &Value) -> ConnectChange {
    let flag = |k: &str| options.get(k).and_then(Value::as_bool).unwrap_or(false);
    ConnectChange {
        command: options
            .get("command")
            .and_then(Value::as_array)
            .map(|args| {
                args.iter()
                    .take(MAX_ARGS)
                    .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        container: options
            .get("container")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
        ports: options
            .get("ports")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(Value::as_i64)
                    .filter_map(|n| i32::try_from(n).ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;

/// A field change for tests: `path` from `before` to `after`.
#[cfg(test)]
pub(crate) fn field(
    path: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> crate::crd::FieldChange {
    crate::crd::FieldChange {
        path: path.into(),
        before,
        after,
        ..crate::crd::FieldChange::default()
    }
}

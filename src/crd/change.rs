//! `spec.change`: what an action would do, recorded so that an approver sees
//! exactly the change the digest binds.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The upper bound of a recorded change, as JSON. A request stays far below
/// the apiserver's object size limit; what does not fit is cut, and the cut
/// is marked (`truncated`). The digest still binds the whole change.
pub const MAX_CHANGE_BYTES: usize = 64 * 1024;

/// What the action would do, recorded by approval-gate from the admission
/// request when it creates the request. Secret values and the paths a policy
/// names in `redact` appear only as keyed hashes. Part of the immutable spec.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The change in one line, for lists and notifications, for example
    /// `image app: nginx:1.27 → evil/backdoor:1` or `exec: sh -c 'curl …'`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub summary: String,
    /// UPDATE: each field that changes, with its value before and after. CREATE:
    /// each top-level field of the object as it will be created (no `before`).
    /// Volatile metadata and `status` are left out, as in the digest. Lists with
    /// a merge key (containers and env by name, ports by containerPort, ...) are
    /// compared item by item under that key, written `containers[name=app]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4096))]
    pub fields: Vec<FieldChange>,
    /// DELETE: what goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<DeleteChange>,
    /// CONNECT: the command line (exec), the container (attach) or the ports (port-forward).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectChange>,
    /// UPDATE and DELETE: the resourceVersion of the object the change was
    /// taken against. When the live object's differs, the change describes an old base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub base_resource_version: Option<String>,
    /// Set when the record was cut to stay within 64 KiB; the digest still binds the whole change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncation>,
}

/// One field that changes: where, and its value before and after.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// Where the field is: keys joined by dots, `["key"]` for keys with dots or
    /// slashes, `[3]` for a list index, `[name=app]` for a list item by its merge key.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// The value before the change; absent when the field is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub before: Option<Value>,
    /// The value after the change; absent when the field is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub after: Option<Value>,
    /// The values are redacted (Secret data, or a path the policy names in
    /// `redact`): `before` and `after` hold `<redacted sha256:…>` hashes, which
    /// differ when the value changed and reveal nothing of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    /// How many lines of this field's values were cut to keep the record within its size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_lines: u64,
}

/// What a DELETE removes.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteChange {
    /// The object's apiVersion.
    #[serde(default)]
    #[schemars(length(max = 317))]
    pub api_version: String,
    /// The object's kind.
    #[serde(default)]
    #[schemars(length(max = 63))]
    pub kind: String,
    /// The object's name.
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub name: String,
    /// The uid of the object that goes away; the digest binds it, so an approval
    /// does not carry over to a new object of the same name.
    #[serde(default)]
    #[schemars(length(max = 128))]
    pub uid: String,
    /// The object's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The objects that own it (`kind/name`, with `(controller)` for the controlling owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<String>,
    /// The delete options' propagation policy: Orphan, Background or Foreground.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub propagation_policy: Option<String>,
    /// The delete options' grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i64>,
}

/// What a CONNECT does.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectChange {
    /// The exact command line of an exec, one entry per argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub command: Vec<String>,
    /// The container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub container: Option<String>,
    /// Whether stdin is passed to the container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
    /// Whether the container's stdout is streamed back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdout: bool,
    /// Whether the container's stderr is streamed back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stderr: bool,
    /// Whether a terminal is allocated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// The ports of a port-forward.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub ports: Vec<i32>,
}

/// What was cut from the record.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Truncation {
    /// Fields that changed but are not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_fields: u64,
    /// Lines of the rendered change that are not shown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_lines: u64,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Any JSON value, kept as it is.
fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
        "nullable": true,
    })
}

//! The leader keeps the webhook registered: the certificate Secret (unless
//! cert-manager issues it) and the ValidatingWebhookConfiguration, whose rules
//! follow the ApprovalPolicies and whose caBundle follows the Secret. A
//! configuration someone deleted or edited is put back, with a log line and
//! a Warning Event.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures::{Stream, StreamExt as _};
use jiff::Timestamp;
use k8s_openapi::{
    api::{
        admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::ObjectReference,
        core::v1::Secret, discovery::v1::EndpointSlice, rbac::v1::ClusterRole,
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    api::{ListParams, Patch, PatchParams},
    runtime::{WatchStreamExt as _, reflector::Store, watcher},
};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

mod certificate;
mod configuration;

use super::{
    issuer,
    refusals::{Refusals, registrable},
};
use crate::{
    crd::ApprovalPolicy,
    error::{Error, Result},
    events::{EventQueue, Note, Reason},
    pki::rotation::{self, Settings, Step},
    registration::{Endpoint, Registration, configuration, rules_for},
};

/// What the leader registers and how it gets its certificate.
#[derive(Clone, Debug)]
pub struct RegistrationConfig {
    pub registration: Registration,
    /// The Secret, in the registration's own namespace.
    pub secret: String,
    /// `false` when cert-manager (or a person) writes the Secret: then only
    /// its `ca.crt` is copied into the caBundle.
    pub manage_certs: bool,
    pub pki: Settings,
    /// The ClusterRole that owns the configuration, for garbage collection.
    pub owner_cluster_role: Option<String>,
}

const FIELD_MANAGER: &str = "approval-gate";
const RETRY: Duration = Duration::from_secs(5);
/// After a conflict: the watch normally wakes the loop sooner.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

/// The latest version of one named object, from a field-selected watch.
struct Latest<K> {
    value: Option<K>,
    relist: Option<Option<K>>,
    synced: bool,
}

impl<K> Default for Latest<K> {
    fn default() -> Self {
        Self {
            value: None,
            relist: None,
            synced: false,
        }
    }
}

impl<K> Latest<K> {
    /// Applies one watch event; returns whether the object was deleted.
    fn apply(&mut self, event: watcher::Event<K>) -> bool {
        match event {
            watcher::Event::Init => self.relist = Some(None),
            watcher::Event::InitApply(obj) => self.relist = Some(Some(obj)),
            watcher::Event::InitDone => {
                let had = self.value.is_some();
                self.value = self.relist.take().flatten();
                self.synced = true;
                return had && self.value.is_none();
            }
            watcher::Event::Apply(obj) => self.value = Some(obj),
            watcher::Event::Delete(_) => {
                self.value = None;
                return true;
            }
        }
        false
    }
}

fn watch_named<K>(api: Api<K>, name: &str) -> impl Stream<Item = watcher::Event<K>> + Send + use<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    // RBAC limits watches to one name only through this field selector.
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            event
                .map_err(|e| tracing::warn!(error = %e, "watch failed; retrying"))
                .ok()
        })
}

struct Maintainer {
    client: Client,
    config: RegistrationConfig,
    policies: Store<ApprovalPolicy>,
    refused: Refusals,
    events: EventQueue,
    secret: Latest<Secret>,
    configuration: Latest<ValidatingWebhookConfiguration>,
    owner: Option<OwnerReference>,
    waiting_logged: bool,
    endpoints_logged: bool,
    /// The resourceVersions of this leader's last writes of the
    /// configuration: a watched version that differs from the desired one and
    /// is not among them was edited by someone else.
    own_writes: VecDeque<String>,
}

/// Whether any of a Service's EndpointSlices has an endpoint that is ready
/// (an unknown readiness counts as not ready).
fn any_ready(slices: &[EndpointSlice]) -> bool {
    slices.iter().any(|slice| {
        slice
            .endpoints
            .iter()
            .any(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
    })
}

/// How often to look again for a ready endpoint before the first registration.
const ENDPOINT_RECHECK: Duration = Duration::from_secs(1);

/// How many of its own writes the leader remembers.
const OWN_WRITES: usize = 16;

/// Keeps the Secret and the configuration right until `stop` resolves.
pub async fn maintain(
    client: Client,
    config: RegistrationConfig,
    policies: Store<ApprovalPolicy>,
    refused: Refusals,
    policy_changes: Arc<Notify>,
    events: EventQueue,
    stop: impl Future<Output = ()>,
) {
    let namespace = config.registration.own_namespace.clone();
    let secrets = watch_named(
        Api::<Secret>::namespaced(client.clone(), &namespace),
        &config.secret,
    );
    let configurations = watch_named(
        Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        &config.registration.name,
    );
    let mut secrets = std::pin::pin!(secrets);
    let mut configurations = std::pin::pin!(configurations);
    let mut stop = std::pin::pin!(stop);
    let mut maintainer = Maintainer {
        client,
        config,
        policies,
        refused,
        events,
        secret: Latest::default(),
        configuration: Latest::default(),
        owner: None,
        waiting_logged: false,
        endpoints_logged: false,
        own_writes: VecDeque::with_capacity(OWN_WRITES),
    };
    let mut wake = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => return,
            Some(event) = secrets.next() => { maintainer.secret.apply(event); }
            Some(event) = configurations.next() => {
                if maintainer.configuration.apply(event) {
                    maintainer.deleted();
                }
            }
            () = policy_changes.notified() => {}
            () = tokio::time::sleep_until(wake) => {}
        }
        wake = match maintainer.reconcile().await {
            Ok(next) => next,
            // Another leader (or a person) wrote first; the watch brings its
            // version at once, and the next pass plans from that.
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 409 => {
                tracing::debug!(reason = %status.message, "lost a write race; re-planning from the watched version");
                tokio::time::Instant::now() + CONFLICT_RETRY
            }
            Err(error) => {
                tracing::warn!(%error, "maintaining the webhook registration failed; retrying");
                tokio::time::Instant::now() + RETRY
            }
        };
    }
}

impl Maintainer {
    fn deleted(&self) {
        let name = &self.config.registration.name;
        tracing::warn!(
            configuration = %name,
            "the ValidatingWebhookConfiguration was deleted; re-creating it"
        );
        self.restored(
            "Recreate",
            "deleted while approval-gate runs; it was re-created",
        );
    }

    fn edited(&self, current: &ValidatingWebhookConfiguration) {
        let name = &self.config.registration.name;
        tracing::warn!(
            configuration = %name,
            resource_version = %current.resource_version().unwrap_or_default(),
            "the ValidatingWebhookConfiguration was edited by someone else; putting it back"
        );
        self.restored("Revert", "edited while approval-gate runs; it was put back");
    }

    /// The Warning Event; `action` differs per cause, so that an edit after a
    /// deletion is an Event of its own, not a repeat of the first.
    fn restored(&self, action: &'static str, what: &str) {
        let name = &self.config.registration.name;
        self.events.send(Note {
            regarding: configuration_reference(name),
            warning: true,
            reason: Reason::WebhookConfigurationRestored,
            action,
            note: format!(
                "ValidatingWebhookConfiguration {name} was {what}. To switch approval-gate \
                 off, scale it to zero first (see the recovery runbook)."
            ),
        });
    }

    /// One pass; returns when to look again.
    async fn reconcile(&mut self) -> Result<tokio::time::Instant> {
        let idle = tokio::time::Instant::now() + Duration::from_secs(3600);
        if !self.secret.synced || !self.configuration.synced {
            return Ok(idle);
        }
        let mut wake = idle;
        if self.config.manage_certs {
            wake = self.rotate().await?.unwrap_or(idle);
        }
        let Some(bundle) = self.secret.value.as_ref().and_then(issuer::bundle) else {
            if !self.waiting_logged {
                tracing::warn!(
                    secret = %self.config.secret,
                    "the certificate Secret has no ca.crt yet; the webhook is registered once it has"
                );
                self.waiting_logged = true;
            }
            return Ok(idle);
        };
        // A configuration that fails closed, made before any replica can
        // answer, would refuse every change it covers (a `helm install`'s own
        // example policy among them) until one can: the first one waits.
        if self.configuration.value.is_none() && !self.serving().await? {
            if !self.endpoints_logged {
                tracing::info!(
                    name = %self.config.registration.name,
                    "waiting for a ready endpoint of the webhook's Service before registering it"
                );
                self.endpoints_logged = true;
            }
            return Ok(tokio::time::Instant::now() + ENDPOINT_RECHECK);
        }
        self.register(&bundle).await?;
        Ok(wake)
    }

    /// The owner reference (of the configuration and of a Secret the
    /// operator issues), looked up once; without it both are still written
    /// (and the runbook says how to remove them).
    async fn owner(&mut self) -> Option<OwnerReference> {
        if self.owner.is_some() {
            return self.owner.clone();
        }
        let name = self.config.owner_cluster_role.as_ref()?;
        match owner_reference(&self.client, name).await {
            Ok(owner) => self.owner = owner,
            Err(err) => {
                tracing::warn!(cluster_role = %name, error = %Error::Kube(err), "cannot read the owner ClusterRole; the configuration will not be garbage-collected on uninstall");
            }
        }
        self.owner.clone()
    }
}

/// A reference to the ClusterRole `name` as a plain (not controlling) owner:
/// what approval-gate makes for itself (the webhook configuration, the issued
/// Secret, the leader Lease) carries it, so that deleting the role on
/// uninstall lets the garbage collector remove them.
pub async fn owner_reference(
    client: &Client,
    name: &str,
) -> Result<Option<OwnerReference>, kube::Error> {
    let role = Api::<ClusterRole>::all(client.clone()).get(name).await?;
    Ok(role.controller_owner_ref(&()).map(|mut o| {
        o.controller = None;
        o.block_owner_deletion = None;
        o
    }))
}

/// Whether a watched configuration that is not as desired was written by
/// someone else: this leader has written it before, and not this version.
/// (A version an earlier leader wrote is not counted: nothing here knows it.)
fn edited_by_others(
    current: &ValidatingWebhookConfiguration,
    own_writes: &VecDeque<String>,
) -> bool {
    !own_writes.is_empty()
        && current
            .resource_version()
            .is_none_or(|v| !own_writes.contains(&v))
}

fn configuration_reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("admissionregistration.k8s.io/v1".to_owned()),
        kind: Some("ValidatingWebhookConfiguration".to_owned()),
        name: Some(name.to_owned()),
        ..ObjectReference::default()
    }
}

fn instant_at(at: Timestamp, now: Timestamp) -> tokio::time::Instant {
    let wait = if at > now {
        at.duration_since(now).unsigned_abs()
    } else {
        Duration::ZERO
    };
    // Timestamps are whole seconds in annotations; a little slack avoids
    // waking a hair before the deadline.
    tokio::time::Instant::now() + wait.min(Duration::from_secs(3600)) + Duration::from_millis(50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_ready_endpoint_lets_the_first_registration_through() {
        let slice = |ready: &[Option<bool>]| -> EndpointSlice {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "s"},
                "addressType": "IPv4",
                "endpoints": ready.iter().map(|r| serde_json::json!({
                    "addresses": ["10.0.0.1"],
                    "conditions": {"ready": r},
                })).collect::<Vec<_>>(),
            }))
            .expect("an EndpointSlice")
        };
        assert!(!any_ready(&[]), "no slice yet");
        assert!(!any_ready(&[slice(&[])]), "a slice with no endpoints");
        assert!(!any_ready(&[slice(&[Some(false), None])]), "starting pods");
        assert!(any_ready(&[slice(&[Some(false)]), slice(&[Some(true)])]));
    }

    #[test]
    fn only_a_version_this_leader_did_not_write_counts_as_edited() {
        let at = |version: &str| ValidatingWebhookConfiguration {
            metadata: kube::api::ObjectMeta {
                resource_version: Some(version.to_owned()),
                ..Default::default()
            },
            webhooks: None,
        };
        let mut own = VecDeque::new();
        // A new leader has written nothing: whatever it finds is not "edited".
        assert!(!edited_by_others(&at("7"), &own));
        own.extend(["8".to_owned(), "9".to_owned()]);
        // Its own writes, the latest or an older one the watch brings late.
        assert!(!edited_by_others(&at("9"), &own));
        assert!(!edited_by_others(&at("8"), &own));
        assert!(edited_by_others(&at("10"), &own));
        assert!(edited_by_others(&at("7"), &own));
    }

    #[test]
    fn latest_follows_apply_delete_and_relists() {
        let mut latest = Latest::<String>::default();
        assert!(!latest.apply(watcher::Event::Init));
        assert!(!latest.apply(watcher::Event::InitApply("a".to_owned())));
        assert!(!latest.apply(watcher::Event::InitDone));
        assert!(latest.synced);
        assert_eq!(latest.value.as_deref(), Some("a"));
        assert!(latest.apply(watcher::Event::Delete("a".to_owned())));
        assert_eq!(latest.value, None);
        latest.apply(watcher::Event::Apply("b".to_owned()));
        // A re-list that no longer finds the object counts as a deletion.
        latest.apply(watcher::Event::Init);
        assert!(latest.apply(watcher::Event::InitDone));
        assert_eq!(latest.value, None);
    }
}

//! The operator process: takes part in leader election and, while leading,
//! runs the reconcilers ([`crate::controller`]), the notification outbox and
//! the webhook's registration ([`crate::registration`]). Every replica serves
//! admission; only the leader reconciles.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt as _, future};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt as _,
        events::Reporter,
        reflector::{self, ObjectRef},
        watcher,
    },
};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::{Notify, watch};

use crate::{
    controller::{
        Context, controller_config, error_policy,
        notifications::{Courier, Outbox},
        policy, request,
    },
    crd::{ApprovalPolicy, ApprovalRequest},
    error::{Error, Result, report},
    events::EventQueue,
    metrics::Metrics,
    notify::{Backoff, Notifier},
    registration::{self, RegistrationConfig},
    server::{probes::Once, shutdown::fired},
};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// How long finished requests are kept for audits.
    pub retention: Duration,
    /// How long after a use its write must show on the object.
    pub use_confirm_window: Duration,
    /// Where the leader Lease lives.
    pub lease_namespace: String,
    /// This replica's identity in the Lease and in Events.
    pub instance: String,
    /// Lease duration: a dead leader is replaced within this time.
    pub lease_seconds: u64,
    /// Register the webhook (and issue its certificate) while leading.
    pub registration: Option<RegistrationConfig>,
    /// The web console's URL: notifications link to the request's page there.
    pub console_url: Option<String>,
}

const LEASE_NAME: &str = "approval-gate-operator";

/// What an operator's `/readyz` says until it takes part in leader election.
pub const NOT_JOINED: &str = "not in leader election yet";

/// Takes part in leader election until `shutdown`; reconciles while leading.
/// `joined` is set once the process takes part (leading or standing by):
/// that is when the operator-only process is ready.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    metrics: Arc<Metrics>,
    joined: Arc<Once>,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let grace = (config.lease_seconds / 3).max(1);
    let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.instance)
        .with_duration(config.lease_seconds)
        .with_grace(grace)
        .build()
        .await
        .map_err(Error::LeaderElection)?;
    let (mut leading, lease_task) = manager.watch().await;
    joined.set();
    loop {
        tokio::select! {
            _ = fired(shutdown.clone()) => break,
            changed = leading.wait_for(|is_leader| *is_leader) => if changed.is_err() { break },
        }
        tracing::info!(instance = %config.instance, "became the leader; reconciling");
        if let Some(owner) = config
            .registration
            .as_ref()
            .and_then(|r| r.owner_cluster_role.as_deref())
        {
            own_lease(&client, &config.lease_namespace, owner).await;
        }
        let mut lost = leading.clone();
        let stop = async move {
            let _ = lost.wait_for(|is_leader| !*is_leader).await;
        };
        let stop_all = {
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    _ = stop => {},
                    _ = fired(shutdown) => {},
                }
            }
        };
        reconcile_all(client.clone(), &config, Arc::clone(&metrics), stop_all).await;
        tracing::info!(instance = %config.instance, "stopped reconciling");
        if *shutdown.borrow() {
            break;
        }
    }
    drop(leading);
    if let Ok(Ok(manager)) = lease_task.await {
        let _ = manager.release().await;
    }
    Ok(())
}

/// Makes the leader Lease a dependent of the owner ClusterRole, as the
/// webhook configuration and the issued Secret are, so that uninstalling
/// removes it too. Best effort: a failure is logged, and leading goes on.
async fn own_lease(client: &Client, namespace: &str, owner_role: &str) {
    let leases = Api::<Lease>::namespaced(client.clone(), namespace);
    let result = async {
        let Some(owner) = registration::owner_reference(client, owner_role).await? else {
            return Ok(());
        };
        let lease = leases.get(LEASE_NAME).await?;
        if lease.owner_references().iter().any(|o| o.uid == owner.uid) {
            return Ok(());
        }
        let patch = serde_json::json!({"metadata": {"ownerReferences": [owner]}});
        leases
            .patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(cluster_role = %owner_role, error = %Error::Kube(err), "cannot make the leader Lease a dependent of the owner ClusterRole; uninstalling will leave it");
    }
}

/// Runs both controllers, the outbox and the registration until `stop`
/// resolves.
async fn reconcile_all(
    client: Client,
    config: &OperatorConfig,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let (policies, writer) = reflector::store();
    let policy_changes = Arc::new(Notify::new());
    let policy_watch = watch_policies(&client, writer, Arc::clone(&policy_changes));
    let notifier = match Notifier::new(Backoff::default()) {
        Ok(notifier) => notifier,
        Err(error) => {
            tracing::error!(error = %report(&error), "cannot send notifications; not reconciling");
            return;
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let requests = Controller::new(
        Api::<ApprovalRequest>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(controller_config());
    if let Ok(mut slot) = metrics.requests.write() {
        *slot = Some(requests.store());
    }
    let (refused, rechecks) = registration::Refusals::new();
    let reporter = Reporter {
        controller: "approval-gate".to_owned(),
        instance: Some(config.instance.clone()),
    };
    let events = EventQueue::start(client.clone(), reporter, Arc::clone(&metrics));
    let outbox = Outbox::start(
        Courier {
            client: client.clone(),
            policies: policies.clone(),
            events: events.clone(),
            metrics: Arc::clone(&metrics),
            notifier,
            // The leader Lease lives in the control namespace.
            control_namespace: config.lease_namespace.clone(),
            console_url: config.console_url.clone(),
        },
        fired(stop_rx.clone()),
    );
    let ctx = Arc::new(Context {
        refused,
        events,
        client: client.clone(),
        policies,
        requests: requests.store(),
        metrics,
        retention: config.retention,
        use_confirm_window: config.use_confirm_window,
        outbox,
    });
    // Reconciling before the policies are known would judge approvals
    // without their approvers.
    let ready = ctx.policies.clone();
    let requests = run_requests(requests, &client, Arc::clone(&ctx), fired(stop_rx.clone()));
    let registering = keep_registered(
        config,
        &client,
        &ctx,
        policy_changes,
        fired(stop_rx.clone()),
    );
    let policy_controller = Controller::new(
        Api::<ApprovalPolicy>::all(client),
        watcher::Config::default(),
    )
    .with_config(controller_config())
    .reconcile_all_on(rechecks)
    .graceful_shutdown_on(fired(stop_rx))
    .run(policy::reconcile, error_policy, ctx)
    .for_each(|_| future::ready(()));
    let stopper = async move {
        stop.await;
        let _ = stop_tx.send(true);
    };
    let controllers = async move {
        if ready.wait_until_ready().await.is_err() {
            return;
        }
        tokio::join!(requests, policy_controller, registering, stopper);
    };
    tokio::select! {
        _ = controllers => {},
        _ = policy_watch => {},
    }
}

/// Fills the policy cache; every change wakes `changes` (the registration).
fn watch_policies(
    client: &Client,
    writer: reflector::store::Writer<ApprovalPolicy>,
    changes: Arc<Notify>,
) -> impl Future<Output = ()> + Send + use<> {
    reflector::reflector(
        writer,
        watcher(
            Api::<ApprovalPolicy>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .for_each(move |_| {
        changes.notify_one();
        future::ready(())
    })
}

/// The request controller: each request is reconciled when it changes, and
/// all of a policy's requests when the policy does.
fn run_requests<S>(
    requests: Controller<ApprovalRequest>,
    client: &Client,
    ctx: Arc<Context>,
    stop: S,
) -> impl Future<Output = ()> + Send + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let store = requests.store();
    requests
        .watches(
            Api::<ApprovalPolicy>::all(client.clone()),
            watcher::Config::default(),
            move |policy| {
                let name = policy.metadata.name.clone().unwrap_or_default();
                store
                    .state()
                    .into_iter()
                    .filter(|r| r.spec.policy == name)
                    .map(|r| ObjectRef::from(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stop)
        .run(request::reconcile, error_policy, ctx)
        .for_each(|_| future::ready(()))
}

/// Keeps the webhook registered, when the operator is to.
fn keep_registered<S>(
    config: &OperatorConfig,
    client: &Client,
    ctx: &Context,
    policy_changes: Arc<Notify>,
    stop: S,
) -> impl Future<Output = ()> + Send + use<S>
where
    S: Future<Output = ()> + Send + 'static,
{
    let registration = config.registration.clone();
    let client = client.clone();
    let policies = ctx.policies.clone();
    let refused = ctx.refused.clone();
    let events = ctx.events.clone();
    async move {
        if let Some(registration) = registration {
            registration::maintain(
                client,
                registration,
                policies,
                refused,
                policy_changes,
                events,
                stop,
            )
            .await;
        }
    }
}

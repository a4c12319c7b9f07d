//! The outbox: notifications are delivered by a worker of their own, never
//! by the reconcile. The reconcile only says "something may be due about this
//! request" ([`Outbox::enqueue`]) and goes on, so a Slack, webhook or SMTP
//! receiver that hangs delays nothing but its own notice.
//!
//! The worker runs one job per request at a time (a request enqueued again
//! while its job runs is run once more afterwards), up to [`CONCURRENCY`]
//! requests at once. A job reads the request once, delivers what is due
//! (the channels of one request in parallel), and records what it sent with
//! one write conditioned on the resourceVersion it read. A failed delivery is
//! tried again by the worker after [`RETRY_AFTER`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, Client, ResourceExt as _,
    api::PostParams,
    runtime::reflector::{ObjectRef, Store},
};
use tokio::{
    sync::{Semaphore, mpsc},
    task::{Id, JoinSet},
};
use tracing::Instrument as _;

use super::{Due, RETRY_AFTER, due, recorded};
use crate::{
    crd::{ApprovalPolicy, ApprovalRequest, Notified, NotifyChannel},
    error::{Error, Result, report},
    events::{EventQueue, Note, Reason, request_reference_of},
    metrics::Metrics,
    notify::{Destination, Mailer, Notifier, notice},
};

/// How many requests' notifications are delivered at once.
pub const CONCURRENCY: usize = 16;
/// How many times recording what was sent is tried after a conflict.
const RECORD_ATTEMPTS: usize = 5;

/// What the worker needs to deliver and record notifications.
pub struct Courier {
    pub client: Client,
    pub policies: Store<ApprovalPolicy>,
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    pub notifier: Notifier,
    /// Where the Secrets that notification channels name live.
    pub control_namespace: String,
    /// The web console's URL, for links in notifications.
    pub console_url: Option<String>,
}

type Key = ObjectRef<ApprovalRequest>;

/// The sending side; cheap to clone. The worker stops when every sender is
/// gone or `stop` resolves.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Key>,
}

impl Outbox {
    /// Starts the worker.
    pub fn start(courier: Courier, stop: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker {
            courier: Arc::new(courier),
            again: tx.downgrade(),
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = worker.run(rx) => {},
                _ = stop => {},
            }
        });
        Self { tx }
    }

    /// Asks the worker to deliver what is due about `req`; never waits.
    pub fn enqueue(&self, req: &ApprovalRequest) {
        // Only fails when the worker has stopped (leadership lost): the next
        // leader sends what is not recorded.
        let _ = self.tx.send(ObjectRef::from(req));
    }
}

struct Worker {
    courier: Arc<Courier>,
    /// For retries: does not keep the worker alive on its own.
    again: mpsc::WeakUnboundedSender<Key>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Key>) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        // The request each running job is about, by task: a job that
        // panicked still frees its request (and is tried again).
        let mut running: HashMap<Id, Key> = HashMap::new();
        // The same requests as `running` holds, to look one up without a scan
        // (a relist can queue thousands behind the permits).
        let mut busy: HashSet<Key> = HashSet::new();
        let mut rerun: HashSet<Key> = HashSet::new();
        let mut jobs: JoinSet<Option<Duration>> = JoinSet::new();
        loop {
            tokio::select! {
                key = rx.recv() => {
                    let Some(key) = key else { break };
                    if busy.contains(&key) {
                        rerun.insert(key);
                    } else {
                        busy.insert(key.clone());
                        let id = self.spawn(&mut jobs, &permits, key.clone());
                        running.insert(id, key);
                    }
                }
                Some(done) = jobs.join_next_with_id(), if !jobs.is_empty() => {
                    let (id, retry) = match done {
                        Ok((id, retry)) => (id, retry),
                        Err(e) => (e.id(), Some(RETRY_AFTER)),
                    };
                    let Some(key) = running.remove(&id) else { continue };
                    if rerun.remove(&key) {
                        let id = self.spawn(&mut jobs, &permits, key.clone());
                        running.insert(id, key);
                        continue;
                    }
                    busy.remove(&key);
                    if let Some(after) = retry {
                        self.retry_after(key, after);
                    }
                }
            }
        }
    }

    fn spawn(
        &self,
        jobs: &mut JoinSet<Option<Duration>>,
        permits: &Arc<Semaphore>,
        key: Key,
    ) -> Id {
        let courier = Arc::clone(&self.courier);
        let permits = Arc::clone(permits);
        let span = tracing::info_span!(
            "notify",
            namespace = key.namespace.as_deref().unwrap_or_default(),
            request = %key.name,
        );
        let job = async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return None;
            };
            match courier.deliver(&key).await {
                Ok(retry) => retry,
                Err(error) => {
                    tracing::warn!(error = %report(&error), "notifying failed; retrying later");
                    Some(RETRY_AFTER)
                }
            }
        };
        jobs.spawn(job.instrument(span)).id()
    }

    fn retry_after(&self, key: Key, after: Duration) {
        let again = self.again.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(tx) = again.upgrade() {
                let _ = tx.send(key);
            }
        });
    }
}

/// The Secrets one job reads, each fetched once.
#[derive(Default)]
struct Secrets(BTreeMap<String, std::result::Result<Secret, String>>);

impl Courier {
    /// Delivers what is due about the request `key` names and records it.
    /// Returns when to try again if a delivery failed.
    async fn deliver(&self, key: &Key) -> Result<Option<Duration>> {
        let namespace = key.namespace.clone().unwrap_or_default();
        let api = Api::<ApprovalRequest>::namespaced(self.client.clone(), &namespace);
        // The cache may be behind our own last record: decide from a fresh read.
        let Some(fresh) = api.get_opt(&key.name).await? else {
            return Ok(None);
        };
        let Some(policy) = self.policies.get(&ObjectRef::new(&fresh.spec.policy)) else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let items = due(&fresh, &policy.spec, now);
        if items.is_empty() {
            return Ok(None);
        }
        let mut secrets = Secrets::default();
        let mut sends = Vec::new();
        for item in items {
            let Some(text) = notice(&fresh, Some(&policy.spec), item.transition, now) else {
                continue;
            };
            let text = text
                .linked(self.console_url.as_deref())
                .following_up(item.follow_up);
            let Some(channel) = item.channel_of(&policy.spec) else {
                continue;
            };
            let to = self.destination(&mut secrets, channel).await;
            sends.push(async move {
                let outcome = match to {
                    Ok(to) => self.notifier.deliver(&to, &text).await.map(drop),
                    Err(e) => Err(e),
                };
                (item, channel.kind(), outcome)
            });
        }
        let mut sent = Vec::new();
        let mut failed = false;
        for (item, kind, outcome) in join_all(sends).await {
            self.metrics.count_notification(kind, outcome.is_ok());
            match outcome {
                Ok(()) => sent.push(Notified {
                    transition: item.transition,
                    channel: item.channel,
                    at: Time(Timestamp::now()),
                    follow_up: item.follow_up,
                }),
                Err(error) => {
                    failed = true;
                    self.warn(&fresh, &item, &error);
                }
            }
        }
        record(&api, fresh, sent).await?;
        Ok(failed.then_some(RETRY_AFTER))
    }

    fn warn(&self, req: &ApprovalRequest, item: &Due, error: &Error) {
        tracing::warn!(
            error = %report(error),
            namespace = %req.namespace().unwrap_or_default(),
            request = %req.name_any(),
            channel = %item.channel,
            transition = item.transition.as_str(),
            "notification failed; retrying later"
        );
        self.events.send(Note {
            regarding: request_reference_of(req),
            warning: true,
            reason: Reason::NotificationFailed,
            action: "Notify",
            note: format!(
                "telling about {} over channel {} failed: {}",
                item.transition.as_str(),
                item.channel,
                report(error)
            ),
        });
    }

    /// The channel with its secrets read from the control namespace.
    async fn destination(
        &self,
        secrets: &mut Secrets,
        channel: &NotifyChannel,
    ) -> Result<Destination> {
        if let Some(slack) = &channel.slack {
            let r = &slack.webhook_url_secret_ref;
            let url = self.secret_value(secrets, &r.name, &r.key).await?;
            return Ok(Destination::Slack {
                url: String::from_utf8_lossy(&url).trim().to_owned(),
            });
        }
        if let Some(hook) = &channel.webhook {
            let r = &hook.secret_ref;
            let key = self.secret_value(secrets, &r.name, &r.key).await?;
            return Ok(Destination::Webhook {
                url: hook.url.clone(),
                key,
            });
        }
        let Some(email) = &channel.email else {
            return Err(Error::notify(
                channel.kind(),
                "the channel names no slack, webhook or email",
                None,
            ));
        };
        let credentials = match &email.credentials_secret_ref {
            Some(r) => {
                let user = self.secret_value(secrets, &r.name, "username").await?;
                let password = self.secret_value(secrets, &r.name, "password").await?;
                Some((
                    String::from_utf8_lossy(&user).trim().to_owned(),
                    String::from_utf8_lossy(&password).into_owned(),
                ))
            }
            None => None,
        };
        let ca_pem = match &email.smtp.ca_secret_ref {
            Some(r) => Some(self.secret_value(secrets, &r.name, &r.key).await?),
            None => None,
        };
        Ok(Destination::Email(Mailer {
            host: email.smtp.host.clone(),
            port: email.smtp.port,
            tls: email.smtp.tls,
            from: email.from.clone(),
            to: email.to.clone(),
            credentials,
            ca_pem,
        }))
    }

    /// One key of a Secret in the control namespace; each Secret is read once
    /// per job, however many channels or keys name it.
    async fn secret_value(&self, secrets: &mut Secrets, name: &str, key: &str) -> Result<Vec<u8>> {
        let failed = |why: String| Error::notify("secret", format!("Secret {name}: {why}"), None);
        if !secrets.0.contains_key(name) {
            let api = Api::<Secret>::namespaced(self.client.clone(), &self.control_namespace);
            let read = api.get(name).await.map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => {
                    "not found in the control namespace".to_owned()
                }
                kube::Error::Api(s) if s.code == 403 => "forbidden: approval-gate may read only \
                    the Secrets its RBAC names (with the Helm chart, <fullname>-notify and \
                    operator.notificationSecrets)"
                    .to_owned(),
                other => other.to_string(),
            });
            secrets.0.insert(name.to_owned(), read);
        }
        match secrets.0.get(name) {
            Some(Ok(secret)) => secret
                .data
                .as_ref()
                .and_then(|data| data.get(key))
                .map(|v| v.0.clone())
                .ok_or_else(|| failed(format!("it has no key {key:?}"))),
            Some(Err(why)) => Err(failed(why.clone())),
            None => Err(failed("not read".to_owned())),
        }
    }
}

/// Appends `sent` to the status of `read` (as read), each at most once, with a
/// write conditioned on its resourceVersion; after a conflict, from a fresh
/// read, a few times.
async fn record(
    api: &Api<ApprovalRequest>,
    read: ApprovalRequest,
    sent: Vec<Notified>,
) -> Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let name = read.name_any();
    let mut current = Some(read);
    for _ in 0..RECORD_ATTEMPTS {
        let mut req = match current.take() {
            Some(req) => req,
            None => match api.get_opt(&name).await? {
                Some(req) => req,
                None => return Ok(()),
            },
        };
        let status = req.status.get_or_insert_with(Default::default);
        let before = status.notified.len();
        for n in &sent {
            if !recorded(&status.notified, n.transition, &n.channel, n.follow_up) {
                status.notified.push(n.clone());
            }
        }
        if status.notified.len() == before {
            return Ok(());
        }
        req.metadata.managed_fields = None;
        match api
            .replace_status(&name, &PostParams::default(), &req)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Err(Error::Conflict {
        what: format!("recording notifications of {name}"),
    })
}

//! Watches that keep the in-memory [`Index`] current, and readiness.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Resource, ResourceExt as _,
    runtime::{WatchStreamExt as _, watcher},
};
use serde::de::DeserializeOwned;

use crate::{
    crd::{ApprovalPolicy, ApprovalRequest},
    index::Index,
};

/// Readiness: true once every watch has delivered its first complete list
/// and a serving certificate is loaded.
#[derive(Debug, Default)]
pub struct Readiness {
    requests: AtomicBool,
    policies: AtomicBool,
    namespaces: AtomicBool,
    /// A serving certificate is loaded.
    certificate: AtomicBool,
}

impl crate::server::probes::Ready for Readiness {
    fn ready(&self) -> Result<(), &'static str> {
        if self.is_ready() {
            Ok(())
        } else {
            Err("caches not synced")
        }
    }
}

impl Readiness {
    /// Marks every watch as synced (for tests that fill the index by hand).
    pub fn mark_all_ready(&self) {
        for flag in self.flags() {
            flag.store(true, Ordering::Release);
        }
    }

    pub fn mark_certificate_ready(&self) {
        self.certificate.store(true, Ordering::Release);
    }

    fn flags(&self) -> [&AtomicBool; 4] {
        [
            &self.requests,
            &self.policies,
            &self.namespaces,
            &self.certificate,
        ]
    }

    pub fn is_ready(&self) -> bool {
        self.flags().iter().all(|flag| flag.load(Ordering::Acquire))
    }
}

/// Runs the three watches until the process ends.
pub async fn run(client: Client, index: Arc<RwLock<Index>>, ready: Arc<Readiness>) {
    let requests = follow(
        Api::<ApprovalRequest>::all(client.clone()),
        Arc::clone(&index),
        Arc::clone(&ready),
        |r| &r.requests,
        Applier::<ApprovalRequest> {
            apply: |i, r| i.requests.apply(r),
            delete: |i, r| i.requests.delete(r),
            reset: |i| i.requests = Default::default(),
        },
    );
    let policies = follow(
        Api::<ApprovalPolicy>::all(client.clone()),
        Arc::clone(&index),
        Arc::clone(&ready),
        |r| &r.policies,
        Applier::<ApprovalPolicy> {
            apply: |i, p| i.apply_policy(p),
            delete: |i, p| i.delete_policy(p),
            reset: |i| i.policies.clear(),
        },
    );
    let namespaces = follow(
        Api::<Namespace>::all(client),
        index,
        ready,
        |r| &r.namespaces,
        Applier::<Namespace> {
            apply: |i, ns| {
                let labels: BTreeMap<String, String> = ns.labels().clone();
                i.namespaces.insert(ns.name_any(), labels);
            },
            delete: |i, ns| {
                i.namespaces.remove(&ns.name_any());
            },
            reset: |i| i.namespaces.clear(),
        },
    );
    tokio::join!(requests, policies, namespaces);
}

struct Applier<K> {
    apply: fn(&mut Index, K),
    delete: fn(&mut Index, &K),
    reset: fn(&mut Index),
}

async fn follow<K>(
    api: Api<K>,
    index: Arc<RwLock<Index>>,
    ready: Arc<Readiness>,
    flag: fn(&Readiness) -> &AtomicBool,
    applier: Applier<K>,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream =
        std::pin::pin!(stream.map_err(|e| tracing::warn!(error = %e, "watch error, retrying")));
    // Objects listed during a re-list are buffered and swapped in at InitDone,
    // so a re-list never shows a half-empty index.
    let mut relist: Option<Vec<K>> = None;
    while let Some(event) = stream.next().await {
        let Ok(event) = event else { continue };
        let Ok(mut guard) = index.write() else {
            tracing::error!("index lock poisoned; stopping watch");
            return;
        };
        match event {
            watcher::Event::Init => relist = Some(Vec::new()),
            watcher::Event::InitApply(obj) => relist.get_or_insert_with(Vec::new).push(strip(obj)),
            watcher::Event::InitDone => {
                (applier.reset)(&mut guard);
                for obj in relist.take().unwrap_or_default() {
                    (applier.apply)(&mut guard, obj);
                }
                flag(&ready).store(true, Ordering::Release);
            }
            watcher::Event::Apply(obj) => (applier.apply)(&mut guard, strip(obj)),
            watcher::Event::Delete(obj) => (applier.delete)(&mut guard, &obj),
        }
    }
}

/// managedFields are large and never read; dropping them keeps memory low.
fn strip<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().managed_fields = None;
    obj
}

//! Which requests changed, as the console's own watch sees them.
//!
//! One watch of every ApprovalRequest, as the console's service account
//! (which may read requests and nothing more), feeds a broadcast of the
//! changed requests' keys. A page's event stream listens for its own key and
//! then renders the request again **as the person**, so they see no more
//! than RBAC lets them read.

use futures::{StreamExt as _, TryStreamExt as _};
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{WatchStreamExt as _, watcher},
};
use tokio::sync::broadcast;

use crate::crd::ApprovalRequest;

/// `(namespace, name)` of a request that changed.
pub type Key = (String, String);

/// The broadcast of changed requests.
#[derive(Clone)]
pub struct Changes {
    tx: broadcast::Sender<Key>,
}

impl Changes {
    /// Starts the watch in the background (with kube-runtime's backoff on errors).
    pub fn watch(client: Client) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let sender = tx.clone();
        tokio::spawn(async move {
            let api = Api::<ApprovalRequest>::all(client);
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            loop {
                match stream.try_next().await {
                    Ok(Some(req)) => {
                        let key = (req.namespace().unwrap_or_default(), req.name_any());
                        // No subscriber is no error: nobody has a page open.
                        let _ = sender.send(key);
                    }
                    Ok(None) => return,
                    Err(e) => tracing::warn!(error = %e, "watching ApprovalRequests"),
                }
            }
        });
        Self { tx }
    }

    /// A broadcast with no watch behind it (for tests of the pages).
    pub fn detached() -> Self {
        let (tx, _) = broadcast::channel(16);
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Key> {
        self.tx.subscribe()
    }
}

//! Kubernetes Events, published off the hot path.
//!
//! Admission hands events to a bounded queue and never waits: when the queue
//! is full the event is dropped and counted. The operator's audit trail
//! instead waits for room ([`EventQueue::record`]), so a burst (say, 10,000
//! requests found at start-up) slows reconciles rather than losing Events. A
//! worker publishes them through kube-runtime's `Recorder` (events.k8s.io/v1),
//! which folds repeats into a series.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use tokio::sync::mpsc;

use kube::ResourceExt as _;

use crate::{crd::ApprovalRequest, metrics::Metrics};

const QUEUE: usize = 1024;

/// One event to publish.
pub struct Note {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct EventQueue {
    tx: mpsc::Sender<Note>,
    metrics: Arc<Metrics>,
}

impl EventQueue {
    /// Starts the worker and returns the queue.
    pub fn start(client: Client, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Note>(QUEUE);
        let recorder = Recorder::new(client, reporter);
        let worker_metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            while let Some(note) = rx.recv().await {
                let event = Event {
                    type_: if note.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: note.reason.to_owned(),
                    note: Some(truncate(&note.note, 1000)),
                    action: note.action.to_owned(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &note.regarding).await {
                    tracing::warn!(%err, reason = note.reason, "publishing an event failed");
                    worker_metrics.events_dropped.inc();
                }
            }
        });
        Self { tx, metrics }
    }

    /// Queues an event without waiting (the admission hot path); drops and
    /// counts it when the queue is full.
    /// A dropped Event is never silent: it is counted, and logged with what
    /// it would have said (break-glass uses included), so the log keeps it.
    pub fn send(&self, note: Note) {
        if let Err(err) = self.tx.try_send(note) {
            self.metrics.events_dropped.inc();
            let note = match &err {
                mpsc::error::TrySendError::Full(n) | mpsc::error::TrySendError::Closed(n) => n,
            };
            tracing::warn!(
                reason = note.reason,
                regarding = ?note.regarding.name,
                namespace = ?note.regarding.namespace,
                note = %note.note,
                "the Event queue is full; the Event is dropped and kept in this log line"
            );
        }
    }

    /// Queues an event, waiting for room: for the operator's audit trail,
    /// which must not lose a transition's Event to a burst.
    pub async fn record(&self, note: Note) {
        if self.tx.send(note).await.is_err() {
            // Only when the worker is gone (the runtime is shutting down).
            self.metrics.events_dropped.inc();
        }
    }
}

/// A reference to an ApprovalRequest, for Events about it.
pub fn request_reference(namespace: &str, name: &str, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("approvalgate.dev/v1alpha1".to_owned()),
        kind: Some("ApprovalRequest".to_owned()),
        namespace: Some(namespace.to_owned()),
        name: Some(name.to_owned()),
        uid,
        ..ObjectReference::default()
    }
}

/// [`request_reference`] of a stored request.
pub fn request_reference_of(req: &ApprovalRequest) -> ObjectReference {
    request_reference(
        &req.namespace().unwrap_or_default(),
        &req.name_any(),
        req.uid(),
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

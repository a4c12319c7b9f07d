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

use crate::{
    crd::{ApprovalRequest, Transition},
    metrics::Metrics,
};

const QUEUE: usize = 1024;
/// The longest note an Event carries, in bytes; a longer one is cut.
pub const MAX_NOTE: usize = 1000;

/// Every reason an Event approval-gate writes can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A request's transition, named as [`Transition::as_str`] names it.
    Transition(Transition),
    /// An admission was denied for want of an approval.
    Blocked,
    /// A single-use approval was presented again.
    UsedAgain,
    /// An admission passed by break-glass, without approval.
    BreakGlass,
    /// A policy in Audit mode would have held an admission.
    Audited,
    /// A policy in Warn mode would have held an admission.
    Warned,
    /// The guard refused a write to approval-gate's own resources.
    Rejected,
    /// The object a use was for does not show the approved change.
    UseUnconfirmed,
    NotificationFailed,
    WebhookConfigurationRestored,
    RegistrationRefused,
    CertificateIssued,
    CARotationStarted,
    CARotationFinished,
    /// A reconcile failed on the Kubernetes API.
    ApiError,
    IoError,
    SerializationError,
    CertificateError,
    LeaderElectionFailed,
    /// A conditioned write lost every retry, or a name was taken.
    WriteConflict,
    /// A task failed inside approval-gate.
    InternalError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transition(t) => t.as_str(),
            Self::Blocked => "Blocked",
            Self::UsedAgain => "UsedAgain",
            Self::BreakGlass => "BreakGlass",
            Self::Audited => "Audited",
            Self::Warned => "Warned",
            Self::Rejected => "Rejected",
            Self::UseUnconfirmed => "UseUnconfirmed",
            Self::NotificationFailed => "NotificationFailed",
            Self::WebhookConfigurationRestored => "WebhookConfigurationRestored",
            Self::RegistrationRefused => "RegistrationRefused",
            Self::CertificateIssued => "CertificateIssued",
            Self::CARotationStarted => "CARotationStarted",
            Self::CARotationFinished => "CARotationFinished",
            Self::ApiError => "ApiError",
            Self::IoError => "IoError",
            Self::SerializationError => "SerializationError",
            Self::CertificateError => "CertificateError",
            Self::LeaderElectionFailed => "LeaderElectionFailed",
            Self::WriteConflict => "WriteConflict",
            Self::InternalError => "InternalError",
        }
    }
}

/// One event to publish.
pub struct Note {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: Reason,
    pub action: &'static str,
    pub note: String,
}

impl Note {
    /// The Warning Event of a failed reconcile of `regarding`: the error's
    /// reason, and its whole cause, cut to [`MAX_NOTE`].
    pub fn failure(regarding: ObjectReference, error: &crate::error::Error) -> Self {
        Self {
            regarding,
            warning: true,
            reason: error.reason(),
            action: "Reconcile",
            note: truncate(
                &format!("reconcile failed: {}", crate::error::report(error)),
                MAX_NOTE,
            ),
        }
    }
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
                    reason: note.reason.as_str().to_owned(),
                    note: Some(truncate(&note.note, MAX_NOTE)),
                    action: note.action.to_owned(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &note.regarding).await {
                    tracing::warn!(%err, reason = note.reason.as_str(), "publishing an event failed");
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
                reason = note.reason.as_str(),
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

/// `text` cut to at most `max` bytes (at a character boundary), with an
/// ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_failed_reconcile_becomes_a_bounded_warning_that_names_its_cause() {
        let cause = std::io::Error::other("connection reset by peer");
        let error = Error::io(
            format!("reading the Secret {}", "x".repeat(2 * MAX_NOTE)),
            cause,
        );
        let note = Note::failure(request_reference("prod", "r", None), &error);
        assert!(note.warning);
        assert_eq!(note.reason, Reason::IoError);
        assert!(
            note.note
                .starts_with("reconcile failed: reading the Secret x")
        );
        assert!(
            note.note.len() <= MAX_NOTE + '…'.len_utf8(),
            "{}",
            note.note.len()
        );

        let short = Error::Conflict {
            what: "recording notifications of r".into(),
        };
        let note = Note::failure(request_reference("prod", "r", None), &short);
        assert_eq!(
            note.note,
            "reconcile failed: recording notifications of r: it kept changing"
        );
        assert_eq!(note.reason.as_str(), "WriteConflict");
    }
}

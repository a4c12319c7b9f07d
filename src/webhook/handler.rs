//! The HTTP edge: AdmissionReview in, AdmissionReview out. Thin by design: the
//! decision is [`crate::admission::decide`]; this only converts and applies effects.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::{Body, to_bytes},
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_LENGTH},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use kube::core::{
    DynamicObject,
    admission::{AdmissionResponse, AdmissionReview},
};

use super::{Webhook, admit::admit};
use crate::{
    admission::{Attempt, Review, decision, review::Head},
    metrics::Metrics,
    server::probes,
};

/// The largest AdmissionReview accepted. An object may be 1.5 MiB and a
/// review carries two of them, plus JSON overhead.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// What a review is charged in the memory budget, as a multiple of its
/// size: its parsed JSON tree and the copies judging it makes take several
/// times the text (measured up to about 20 times for objects of many small keys).
pub const PARSE_FACTOR: usize = 4;

/// The TLS router the apiserver calls (with the probes, for a kubelet that
/// checks over HTTPS).
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Arc::clone(&webhook))
        .merge(probes::router(Arc::clone(&webhook.ready)))
}

/// The plain-HTTP router for Prometheus and probes; with `debug_index`, also
/// `/debug/index`, which shows what the index holds to anyone who can reach
/// the port, so it is off unless asked for (tests and local debugging).
pub fn metrics_router(webhook: Arc<Webhook>, debug_index: bool) -> Router {
    let router = probes::with_metrics(Arc::clone(&webhook.metrics), Arc::clone(&webhook.ready));
    if debug_index {
        router.merge(
            Router::new()
                .route("/debug/index", get(debug_index_handler))
                .with_state(webhook),
        )
    } else {
        router
    }
}

/// What the index holds: counts and policy names, for troubleshooting.
async fn debug_index_handler(State(webhook): State<Arc<Webhook>>) -> Response {
    let Ok(index) = webhook.index.read() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "index unavailable").into_response();
    };
    Json(serde_json::json!({
        "ready": webhook.ready.is_ready(),
        "requests": index.requests.len(),
        "policies": index.policies.keys().collect::<Vec<_>>(),
        "namespaces": index.namespaces.len(),
    }))
    .into_response()
}

/// How long reading one review's body may take.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

async fn validate(
    State(webhook): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Body,
) -> Json<AdmissionReview<DynamicObject>> {
    let started = Instant::now();
    // Room in the memory budget for this body (its declared length, or the
    // largest allowed when it declares none), held until it is judged.
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_BODY)
        .min(MAX_BODY);
    let kib = u32::try_from(declared.div_ceil(1024).max(1) * PARSE_FACTOR).unwrap_or(u32::MAX);
    // Uncontended, the budget is taken at once; only a wait needs a timer.
    let room = match Arc::clone(&webhook.body_budget).try_acquire_many_owned(kib) {
        Ok(permit) => Some(permit),
        Err(_) => tokio::time::timeout(
            webhook.config.body_wait,
            Arc::clone(&webhook.body_budget).acquire_many_owned(kib),
        )
        .await
        .ok()
        .and_then(Result::ok),
    };
    let response = match room {
        Some(_permit) => read_and_admit(&webhook, body).await,
        None => busy(&webhook, declared),
    };
    webhook
        .metrics
        .decision_seconds
        .observe(started.elapsed().as_secs_f64());
    Json(response.into_review())
}

async fn read_and_admit(webhook: &Webhook, body: Body) -> AdmissionResponse {
    match tokio::time::timeout(BODY_READ_TIMEOUT, to_bytes(body, MAX_BODY)).await {
        Err(_) => invalid(
            format!(
                "reading the AdmissionReview took longer than {}s",
                BODY_READ_TIMEOUT.as_secs()
            ),
            None,
        ),
        Ok(Err(_)) => invalid(
            format!("the AdmissionReview is larger than {MAX_BODY} bytes"),
            None,
        ),
        Ok(Ok(bytes)) => {
            let covered = |head: &Head<'_>| covered(webhook, head);
            match Review::parse_predicting(&bytes, &covered) {
                Ok(request) => admit(webhook, &request).await,
                Err(e) => invalid(e.to_string(), Review::uid_of(&bytes)),
            }
        }
    }
}

/// Whether a policy covers the action a review names before its object, so
/// that the object is read straight into its tree. Never for the webhook's
/// own resources, whose checks read the objects' text, and never before the
/// caches are synced, when every review is refused.
fn covered(webhook: &Webhook, head: &Head<'_>) -> bool {
    if head.resource.group == super::approval_writes::GROUP || !webhook.ready.is_ready() {
        return false;
    }
    webhook
        .index
        .read()
        .is_ok_and(|index| decision::covered(&index, &Attempt::of_head(head)))
}

/// The answer when the memory budget has no room: a refusal that says why.
fn busy(webhook: &Webhook, declared: usize) -> AdmissionResponse {
    Metrics::count(&webhook.metrics.busy_refusals, "body_budget");
    tracing::warn!(
        bytes = declared,
        "no room in the review memory budget; refusing"
    );
    let mut response = AdmissionResponse::invalid(format!(
        "approval-gate is reading too many large reviews at once (reviews being judged may \
         take {} MiB at most, each charged {PARSE_FACTOR} times its size); retry shortly",
        webhook.config.body_budget / (1024 * 1024)
    ));
    response.result.code = 429;
    response
}

fn invalid(message: String, uid: Option<String>) -> AdmissionResponse {
    tracing::warn!(%message, "rejecting an unreadable admission review");
    let mut response = AdmissionResponse::invalid(message);
    response.result.code = 400;
    if let Some(uid) = uid {
        response.uid = uid;
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use super::*;
    use crate::webhook::WebhookConfig;

    /// axum and tower move a handler's future by value through their layers,
    /// four times per request, each time copying its whole size. The effects
    /// that call the API (creating the pending request, recording a single
    /// use) are boxed, so only an admission that runs them pays for their
    /// size, once. Unboxed, this future took 8,440 bytes in the test profile
    /// (and about 15 KB in the release profile); boxed, 4,048.
    #[tokio::test]
    async fn the_handlers_future_stays_small_enough_to_move() {
        crate::server::tls::install_crypto_provider();
        let client = kube::Client::try_from(kube::Config::new(
            "http://127.0.0.1:9".parse().expect("a URL"),
        ))
        .expect("a client");
        let config = WebhookConfig::new("approval-gate", Duration::from_millis(500));
        let index = Arc::new(RwLock::new(crate::index::Index::default()));
        let webhook = Webhook::new(client, config, index, Arc::default(), "test".into());
        let future = validate(State(webhook), HeaderMap::new(), Body::empty());
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= 6 * 1024,
            "the handler's future takes {size} bytes: box what made it grow"
        );
    }
}

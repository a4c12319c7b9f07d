//! Probes and metrics on the plain-HTTP port: `/healthz` (the process
//! answers), `/readyz` (it is ready for its work) and `/metrics`.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::metrics::Metrics;

/// What `/readyz` asks.
pub trait Ready: Send + Sync + 'static {
    /// `Err` names what is not ready yet.
    fn ready(&self) -> Result<(), &'static str>;
}

/// A readiness that is set once, by the one thing it waits for.
#[derive(Debug)]
pub struct Once {
    set: AtomicBool,
    waiting_for: &'static str,
}

impl Once {
    /// Not ready until [`Once::set`]; `/readyz` says it is `waiting_for` that.
    pub fn new(waiting_for: &'static str) -> Self {
        Self {
            set: AtomicBool::new(false),
            waiting_for,
        }
    }

    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
    }
}

impl Ready for Once {
    fn ready(&self) -> Result<(), &'static str> {
        if self.set.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(self.waiting_for)
        }
    }
}

/// `/healthz` and `/readyz`.
pub fn router<R: Ready>(ready: Arc<R>) -> Router {
    Router::new().route("/healthz", get(healthz)).route(
        "/readyz",
        get(move || {
            let ready = Arc::clone(&ready);
            async move { readyz(&*ready) }
        }),
    )
}

/// `/metrics`, `/healthz` and `/readyz`: the plain-HTTP port.
pub fn with_metrics<R: Ready>(metrics: Arc<Metrics>, ready: Arc<R>) -> Router {
    router(ready).route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move { render(&metrics) }
        }),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

fn readyz(ready: &dyn Ready) -> Response {
    match ready.ready() {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(waiting_for) => (StatusCode::SERVICE_UNAVAILABLE, waiting_for).into_response(),
    }
}

fn render(metrics: &Metrics) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let Ok(response) = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await;
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_names_what_it_waits_for_until_it_is_set() {
        let ready = Arc::new(Once::new("not in leader election yet"));
        let router = with_metrics(Arc::new(Metrics::default()), Arc::clone(&ready));
        assert_eq!(
            get(router.clone(), "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not in leader election yet".to_owned()
            )
        );
        assert_eq!(
            get(router.clone(), "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        ready.set();
        assert_eq!(
            get(router.clone(), "/readyz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        let (status, metrics) = get(router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    }
}

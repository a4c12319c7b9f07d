//! The console's HTTP surface: thin handlers that read as the signed-in
//! person, build views and hand them to [`super::pages`].

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Form, Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use futures::stream::{self, Stream};
use jiff::Timestamp;
use maud::Markup;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{
    ConsoleConfig,
    auth::{Auth, Session},
    live::Changes,
    pages::{self, Detail, HistoryFilter, Row, Tab, Viewer},
};
use crate::{
    crd::{ApprovalPolicySpec, ApprovalRequest, Phase},
    plugin::{
        commands::{self, Decision},
        error::{PluginError, guard_rule},
        format,
        view::{RequestView, may_approve},
    },
};

const SESSION_COOKIE: &str = "__Host-ag-session";
const LOGIN_COOKIE: &str = "__Host-ag-login";
const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
/// No script, style or frame from anywhere else; forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub struct State {
    auth: Auth,
    changes: Changes,
    /// `scheme://host[:port]` of the public URL: forms must come from it.
    origin: String,
}

impl State {
    pub fn new(
        config: &ConsoleConfig,
        base: kube::Config,
        changes: Changes,
    ) -> crate::error::Result<Self> {
        let url = config.public_url.trim_end_matches('/');
        let origin = match url.find("://") {
            Some(i) => match url[i + 3..].find('/') {
                Some(j) => url[..i + 3 + j].to_owned(),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        };
        Ok(Self {
            auth: Auth::new(config.oidc.clone(), url, config.session_ttl, base)?,
            changes,
            origin,
        })
    }
}

type Shared = Arc<State>;

mod lists;
mod request;
mod session;

use lists::{history, mine, waiting};
use request::{decide, live, request};
use session::{callback, login, logout};

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(waiting))
        .route("/mine", get(mine))
        .route("/history", get(history))
        .route("/requests/{namespace}/{name}", get(request))
        .route("/requests/{namespace}/{name}/live", get(live))
        .route("/requests/{namespace}/{name}/{verb}", post(decide))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/assets/console.css", get(|| asset("text/css", CSS)))
        .route("/assets/console.js", get(|| asset("text/javascript", JS)))
        .route("/healthz", get(|| async { "ok" }))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Same-origin: form posts keep their `Origin` (checked), other sites learn nothing.
    set(header::REFERRER_POLICY, "same-origin");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    let cached = response.headers().contains_key(header::CACHE_CONTROL);
    if !cached {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A page: the layout around `body`, with `status`.
fn page(
    status: StatusCode,
    title: &str,
    viewer: Option<&Viewer>,
    tab: Tab,
    body: &Markup,
) -> Response {
    (status, pages::layout(title, viewer, tab, body)).into_response()
}

fn viewer(s: &Session) -> Viewer<'_> {
    Viewer {
        user: &s.me.user,
        groups: &s.me.groups,
        csrf: &s.csrf,
    }
}

/// The signed-in person, or a redirect to sign in (then back to `next`).
fn signed_in(state: &State, jar: &CookieJar, next: &str) -> Result<Arc<Session>, Redirect> {
    jar.get(SESSION_COOKIE)
        .and_then(|c| state.auth.session(c.value()))
        .ok_or_else(|| {
            let to = format!("/login?next={}", percent(next));
            Redirect::to(&to)
        })
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the cluster said when it would not let the person read or write.
fn cluster_error(s: &Session, e: &PluginError, back: Option<&str>) -> Response {
    let (status, title) = match e {
        PluginError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        PluginError::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found"),
        _ => (StatusCode::BAD_GATEWAY, "The cluster could not answer"),
    };
    let body = pages::refused(title, &e.to_string(), None, back);
    page(status, title, Some(&viewer(s)), Tab::None, &body)
}

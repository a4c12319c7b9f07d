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
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
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

/// Every request the person may list, with the policies they may read.
async fn everything(
    s: &Session,
    requester: Option<&str>,
) -> Result<(Vec<ApprovalRequest>, Policies), PluginError> {
    let conn = s.conn("");
    let items = conn.list(true, requester).await?;
    Ok((items, conn.policies().await))
}

fn row(
    r: &ApprovalRequest,
    policies: &BTreeMap<String, ApprovalPolicySpec>,
    now: Timestamp,
) -> Row {
    let policy = policies.get(&r.spec.policy);
    Row {
        view: RequestView::new(r, policy, now),
        approvers: approvers(policy),
    }
}

fn approvers(policy: Option<&ApprovalPolicySpec>) -> String {
    policy.map_or_else(
        || "unknown (the policy cannot be read)".to_owned(),
        |p| format::approvers(&p.approvers.users, &p.approvers.groups),
    )
}

type Policies = BTreeMap<String, ApprovalPolicySpec>;

/// A list page: signs in, reads every request the person may list (only
/// theirs with `mine`) and the policies, and renders `build`'s rows.
async fn list_page(
    state: &State,
    jar: &CookieJar,
    here: &str,
    mine: bool,
    (title, tab): (&str, Tab),
    build: impl FnOnce(&Session, &[ApprovalRequest], &Policies, Timestamp) -> Markup,
) -> Response {
    let s = match signed_in(state, jar, here) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let requester = mine.then_some(s.me.user.as_str());
    let (items, policies) = match everything(&s, requester).await {
        Ok(x) => x,
        Err(e) => return cluster_error(&s, &e, None),
    };
    let body = build(&s, &items, &policies, Timestamp::now());
    page(StatusCode::OK, title, Some(&viewer(&s)), tab, &body)
}

async fn waiting(AxumState(state): AxumState<Shared>, jar: CookieJar) -> Response {
    let build = |s: &Session, items: &[ApprovalRequest], policies: &Policies, now| {
        let mut rows: Vec<Row> = items
            .iter()
            .filter(|r| r.spec.requester != s.me.user)
            .filter(|r| may_approve(r, policies.get(&r.spec.policy), &s.me.user, &s.me.groups))
            .map(|r| row(r, policies, now))
            .filter(|row| row.view.phase == Phase::Pending)
            .collect();
        rows.sort_by_key(|row| row.view.created);
        pages::waiting(&rows, now)
    };
    list_page(
        &state,
        &jar,
        "/",
        false,
        ("Waiting for me", Tab::Waiting),
        build,
    )
    .await
}

async fn mine(AxumState(state): AxumState<Shared>, jar: CookieJar) -> Response {
    let build = |s: &Session, items: &[ApprovalRequest], policies: &Policies, now| {
        let mut rows: Vec<Row> = items
            .iter()
            .filter(|r| r.spec.requester == s.me.user)
            .map(|r| row(r, policies, now))
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.view.created));
        pages::mine(&rows, now)
    };
    list_page(
        &state,
        &jar,
        "/mine",
        true,
        ("My requests", Tab::Mine),
        build,
    )
    .await
}

/// At most this many rows in the history.
const HISTORY_ROWS: usize = 500;

async fn history(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    Query(filter): Query<HistoryFilter>,
) -> Response {
    let build = |_: &Session, items: &[ApprovalRequest], policies: &Policies, now| {
        let mut rows: Vec<Row> = items
            .iter()
            .map(|r| row(r, policies, now))
            .filter(|row| row.view.phase.is_final() && filter.keeps(&row.view))
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.view.created));
        rows.truncate(HISTORY_ROWS);
        pages::history(&rows, &filter, now)
    };
    list_page(
        &state,
        &jar,
        "/history",
        false,
        ("History", Tab::History),
        build,
    )
    .await
}

/// One request as the person sees it.
async fn detail(s: &Session, namespace: &str, name: &str) -> Result<Detail, PluginError> {
    let conn = s.conn(namespace);
    let req = conn.request(name).await?;
    let policy = conn.policy(&req.spec.policy).await;
    let mut view = RequestView::new(&req, policy.as_ref(), Timestamp::now());
    view.stale = crate::plugin::diff::stale(&conn, &req).await;
    let eligible = policy
        .as_ref()
        .is_some_and(|p| p.approvers.as_subjects().contains(&s.me.user, &s.me.groups));
    let not_own = req.spec.requester != s.me.user;
    Ok(Detail {
        may_decide: view.phase == Phase::Pending
            && not_own
            && may_approve(&req, policy.as_ref(), &s.me.user, &s.me.groups),
        may_revoke: view.phase == Phase::Approved && eligible && not_own,
        approvers: approvers(policy.as_ref()),
        events: conn.events(name).await,
        view,
    })
}

async fn request(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let here = format!("/requests/{namespace}/{name}");
    let s = match signed_in(&state, &jar, &here) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match detail(&s, &namespace, &name).await {
        Ok(d) => {
            let v = viewer(&s);
            let body = pages::request(&v, &d, Timestamp::now());
            page(
                StatusCode::OK,
                &format!("Request {name}"),
                Some(&v),
                Tab::None,
                &body,
            )
        }
        Err(e) => cluster_error(&s, &e, None),
    }
}

/// Server-sent events: the request's live fragment, each time it changes.
async fn live(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let Some(s) = jar
        .get(SESSION_COOKIE)
        .and_then(|c| state.auth.session(c.value()))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // The person must be able to read the request at all.
    if let Err(e) = s.conn(&namespace).request(&name).await {
        return cluster_error(&s, &e, None);
    }
    let rx = state.changes.subscribe();
    Sse::new(updates(s, rx, (namespace, name)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn updates(
    s: Arc<Session>,
    rx: tokio::sync::broadcast::Receiver<super::live::Key>,
    key: super::live::Key,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((s, rx, key), |(s, mut rx, key)| async move {
        loop {
            match rx.recv().await {
                Ok(changed) if changed == key => break,
                Ok(_) => continue,
                // Fell behind: render anyway, this request may be among the missed.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return None,
            }
        }
        if s.expires <= std::time::Instant::now() {
            let event = Event::default().event("signed-out").data("signed out");
            return Some((Ok(event), (s, rx, key)));
        }
        let event = match detail(&s, &key.0, &key.1).await {
            Ok(d) => {
                let html = pages::live(&viewer(&s), &d, Timestamp::now()).into_string();
                Event::default().event("update").data(html)
            }
            Err(e) => Event::default().event("gone").data(e.to_string()),
        };
        Some((Ok(event), (s, rx, key)))
    })
}

#[derive(Debug, Default, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

/// Whether a POST came from this console's own pages: its `Origin`, when
/// the browser sends one, is the console's.
fn same_origin(state: &State, headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .is_none_or(|o| o.as_bytes() == state.origin.as_bytes())
}

fn csrf_refused(s: &Session, back: Option<&str>) -> Response {
    let body = pages::refused(
        "Form not accepted",
        "This form did not carry this session's CSRF token, or came from another site, so nothing \
         was done. Open the page again and use its own form.",
        None,
        back,
    );
    page(
        StatusCode::FORBIDDEN,
        "Form not accepted",
        Some(&viewer(s)),
        Tab::None,
        &body,
    )
}

async fn decide(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    headers: HeaderMap,
    Path((namespace, name, verb)): Path<(String, String, String)>,
    form: Result<Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let back = format!("/requests/{namespace}/{name}");
    let Some(s) = jar
        .get(SESSION_COOKIE)
        .and_then(|c| state.auth.session(c.value()))
    else {
        let body = pages::signed_out(Some("You are not signed in, so nothing was done."));
        return page(StatusCode::UNAUTHORIZED, "Sign in", None, Tab::None, &body);
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if !same_origin(&state, &headers) || !s.csrf_matches(&form.csrf) {
        tracing::warn!(user = %s.me.user, %namespace, %name, "decision refused: no valid CSRF token");
        return csrf_refused(&s, Some(&back));
    }
    let decision = match verb.as_str() {
        "approve" => Decision::Approve {
            comment: form.comment,
        },
        "deny" => Decision::Deny {
            reason: form.comment,
        },
        "revoke" => Decision::Revoke {
            reason: form.comment,
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let conn = s.conn(&namespace);
    match commands::record(&conn, &s.me, &name, &decision).await {
        Ok(_) => {
            tracing::info!(user = %s.me.user, %namespace, %name, decision = decision.verb(), "decision recorded");
            Redirect::to(&back).into_response()
        }
        Err(PluginError::Rejected(message)) => {
            let rule = guard_rule(&message).map(str::to_owned);
            let explained = commands::explain(&conn, &name, &decision, message.clone()).await;
            tracing::info!(user = %s.me.user, %namespace, %name, rule = rule.as_deref().unwrap_or(""), "decision refused by the guard");
            let text = match &explained {
                PluginError::Rejected(_) => message,
                e => format!("{e}. approval-gate said: {message}"),
            };
            let body = pages::refused(
                &format!("You cannot {} this request", decision.verb()),
                &text,
                rule.as_deref(),
                Some(&back),
            );
            page(
                StatusCode::FORBIDDEN,
                "Refused",
                Some(&viewer(&s)),
                Tab::None,
                &body,
            )
        }
        Err(e) => cluster_error(&s, &e, Some(&back)),
    }
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

fn cookie(name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
}

async fn login(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    match state.auth.start(&q.next).await {
        Ok((id, url)) => {
            let jar = jar.add(cookie(LOGIN_COOKIE, id, Duration::from_secs(600)));
            (jar, Redirect::to(&url)).into_response()
        }
        Err(e) => sign_in_failed(&e.to_string()),
    }
}

fn sign_in_failed(message: &str) -> Response {
    tracing::warn!(error = %message, "sign-in failed");
    let body = pages::signed_out(Some(&format!("Sign-in failed: {message}")));
    page(StatusCode::UNAUTHORIZED, "Sign in", None, Tab::None, &body)
}

#[derive(Debug, Default, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

async fn callback(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(id) = jar.get(LOGIN_COOKIE).map(|c| c.value().to_owned()) else {
        return sign_in_failed("this sign-in was not started here; start again");
    };
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/"));
    if !q.error.is_empty() {
        let text = format!(
            "the identity provider said {}: {}",
            q.error, q.error_description
        );
        return (jar, sign_in_failed(&text)).into_response();
    }
    match state.auth.finish(&id, &q.state, &q.code).await {
        Ok((sid, next)) => {
            let jar = jar.add(cookie(SESSION_COOKIE, sid, Duration::from_secs(12 * 3600)));
            (jar, Redirect::to(&next)).into_response()
        }
        Err(e) => (jar, sign_in_failed(&e.to_string())).into_response(),
    }
}

async fn logout(
    AxumState(state): AxumState<Shared>,
    jar: CookieJar,
    headers: HeaderMap,
    form: Result<Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some((id, s)) = jar.get(SESSION_COOKIE).and_then(|c| {
        let id = c.value().to_owned();
        state.auth.session(&id).map(|s| (id, s))
    }) else {
        return Redirect::to("/").into_response();
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if !same_origin(&state, &headers) || !s.csrf_matches(&form.csrf) {
        return csrf_refused(&s, None);
    }
    state.auth.sign_out(&id);
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    let body = pages::signed_out(Some("You are signed out."));
    (
        jar,
        page(StatusCode::OK, "Signed out", None, Tab::None, &body),
    )
        .into_response()
}

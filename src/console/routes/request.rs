//! One request's page, its live updates, and the decisions posted from it.

use super::lists::approvers;
use super::*;

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

pub(super) async fn request(
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
pub(super) async fn live(
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
    rx: tokio::sync::broadcast::Receiver<crate::console::live::Key>,
    key: crate::console::live::Key,
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
pub(super) struct DecisionForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    comment: String,
}

/// Whether a POST came from this console's own pages: its `Origin`, when
/// the browser sends one, is the console's.
pub(super) fn same_origin(state: &State, headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .is_none_or(|o| o.as_bytes() == state.origin.as_bytes())
}

pub(super) fn csrf_refused(s: &Session, back: Option<&str>) -> Response {
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

pub(super) async fn decide(
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

//! Signing in through the identity provider, and out.

use super::request::{DecisionForm, csrf_refused, same_origin};
use super::*;

#[derive(Debug, Default, Deserialize)]
pub(super) struct LoginQuery {
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

pub(super) async fn login(
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
pub(super) struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

pub(super) async fn callback(
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

pub(super) async fn logout(
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

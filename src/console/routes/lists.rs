//! The list pages: waiting for me, my requests, the history.

use super::*;

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

pub(super) fn approvers(policy: Option<&ApprovalPolicySpec>) -> String {
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

pub(super) async fn waiting(AxumState(state): AxumState<Shared>, jar: CookieJar) -> Response {
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

pub(super) async fn mine(AxumState(state): AxumState<Shared>, jar: CookieJar) -> Response {
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

pub(super) async fn history(
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

//! The console's pages: plain views in, HTML out, no I/O.
//!
//! maud escapes every value it inserts, so nothing a requester wrote (a
//! reason, an object's fields, an exec command line) can become markup.
//! The one script (`/assets/console.js`) only swaps in a request's fragment
//! when the server sends a new one; every page works without it.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use crate::{
    change::render::Line,
    crd::Phase,
    plugin::{
        format::{self, EventLine},
        view::RequestView,
    },
};

/// The signed-in person, as the pages need them.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub csrf: &'a str,
}

/// Which list a page shows, for the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Waiting,
    Mine,
    History,
    None,
}

/// A request in a list, with who may approve it in words.
pub struct Row {
    pub view: RequestView,
    pub approvers: String,
}

/// One request's page.
pub struct Detail {
    pub view: RequestView,
    pub approvers: String,
    pub events: Vec<EventLine>,
    /// The viewer is an eligible approver who has not approved yet, and the request is pending.
    pub may_decide: bool,
    /// The viewer is an eligible approver and the request is approved.
    pub may_revoke: bool,
}

/// The filters of the history page (empty = any).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct HistoryFilter {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub requester: String,
}

impl HistoryFilter {
    pub fn keeps(&self, v: &RequestView) -> bool {
        let field = |want: &str, have: &str| want.is_empty() || want == have;
        field(&self.namespace, &v.namespace)
            && field(&self.policy, &v.policy)
            && field(&self.requester, &v.requester)
    }
}

/// The whole page around `body`.
pub fn layout(title: &str, viewer: Option<&Viewer>, tab: Tab, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · approval-gate" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "approval-gate" }
                    @if let Some(v) = viewer {
                        nav aria-label="Requests" {
                            (tab_link("/", "Waiting for me", tab == Tab::Waiting))
                            (tab_link("/mine", "My requests", tab == Tab::Mine))
                            (tab_link("/history", "History", tab == Tab::History))
                        }
                        div.who {
                            span #signed-in-as { "Signed in as " strong { (v.user) } }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

fn tab_link(href: &str, text: &str, current: bool) -> Markup {
    html! {
        @if current { a href=(href) aria-current="page" { (text) } }
        @else { a href=(href) { (text) } }
    }
}

fn action(v: &RequestView) -> String {
    if v.target_namespace.is_empty() {
        format!("{} {}", v.operation, v.target)
    } else {
        format!("{} {} in {}", v.operation, v.target, v.target_namespace)
    }
}

fn request_href(v: &RequestView) -> String {
    format!("/requests/{}/{}", v.namespace, v.name)
}

fn phase_badge(phase: Phase) -> Markup {
    html! { span class={ "phase phase-" (phase.as_str().to_lowercase()) } { (phase.as_str()) } }
}

/// "Waiting for me": pending requests the viewer may approve, oldest first.
pub fn waiting(rows: &[Row], now: Timestamp) -> Markup {
    html! {
        h1 { "Waiting for me" }
        @if rows.is_empty() {
            p #nothing-waiting { "Nothing is waiting for your approval." }
        } @else {
            (table(rows, now, false))
        }
    }
}

/// "My requests": the viewer's own requests, with who may approve them.
pub fn mine(rows: &[Row], now: Timestamp) -> Markup {
    html! {
        h1 { "My requests" }
        @if rows.is_empty() {
            p { "You have no requests." }
        } @else {
            (table(rows, now, true))
        }
    }
}

/// "History": finished requests, filtered.
pub fn history(rows: &[Row], filter: &HistoryFilter, now: Timestamp) -> Markup {
    html! {
        h1 { "History" }
        form.filters method="get" action="/history" {
            label { "Namespace " input name="namespace" value=(filter.namespace); }
            label { "Policy " input name="policy" value=(filter.policy); }
            label { "Requester " input name="requester" value=(filter.requester); }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p { "No finished requests match." }
        } @else {
            (table(rows, now, false))
        }
    }
}

fn table(rows: &[Row], now: Timestamp, with_approvers: bool) -> Markup {
    html! {
        div.scroll {
            table.requests {
                thead { tr {
                    th scope="col" { "Request" }
                    th scope="col" { "Action" }
                    th scope="col" { "Requester" }
                    th scope="col" { "Phase" }
                    th scope="col" { "Approvals" }
                    th scope="col" { "Time left" }
                    th scope="col" { "Age" }
                    @if with_approvers { th scope="col" { "Who may approve" } }
                } }
                tbody {
                    @for row in rows {
                        @let v = &row.view;
                        tr data-request=(format!("{}/{}", v.namespace, v.name)) {
                            td { a href=(request_href(v)) { (v.namespace) "/" (v.name) } }
                            td { (action(v)) }
                            td { (v.requester) }
                            td { (phase_badge(v.phase)) }
                            td { (v.approved) "/" (v.required) }
                            td { (format::time_left(v.phase, v.expires_at, now)) }
                            td { (format::age(v.created, now)) }
                            @if with_approvers { td.approvers { (row.approvers) } }
                        }
                    }
                }
            }
        }
    }
}

/// A request's page: the action, the change, the reason, and the live part.
pub fn request(viewer: &Viewer, d: &Detail, now: Timestamp) -> Markup {
    let v = &d.view;
    let stream = format!("{}/live", request_href(v));
    html! {
        p.crumbs { a href="/" { "← Waiting for me" } }
        h1 { "Request " (v.name) }
        div #live data-stream=(stream) aria-live="polite" { (live(viewer, d, now)) }
    }
}

/// The part of a request's page that follows the request as it changes.
pub fn live(viewer: &Viewer, d: &Detail, now: Timestamp) -> Markup {
    let v = &d.view;
    html! {
        dl.facts {
            dt { "Phase" } dd #phase { (phase_badge(v.phase)) }
            dt { "Action" } dd #action { (action(v)) }
            dt { "Requester" } dd #requester { (v.requester) }
            dt { "Reason" } dd #reason { (if v.reason.is_empty() { "<none>" } else { v.reason.as_str() }) }
            dt { "Policy" } dd { (v.policy) }
            dt { "Who may approve" } dd #approvers { (d.approvers) }
            dt { "Approvals" } dd #approvals-count { (v.approved) " of " (v.required) " required" }
            dt { "Time left" } dd #time-left { (format::time_left(v.phase, v.expires_at, now)) }
            @if let Some(digest) = &v.digest { dt { "Digest" } dd { code { (digest) } } }
            @if let Some(previous) = &v.previous { dt { "Previous request" } dd { (previous) } }
        }
        (change(v))
        @if !v.approvals.is_empty() {
            h2 { "Approvals" }
            ul #approvals {
                @for a in &v.approvals {
                    li {
                        strong { (a.user) } " approved " (format::age(Some(a.time), now)) " ago"
                        @if !a.counts { " (does not count: not an eligible approver)" }
                        @if !a.comment.is_empty() { ": " q { (a.comment) } }
                    }
                }
            }
        }
        @for (label, verdict) in [("Denied", &v.denial), ("Revoked", &v.revocation), ("Used", &v.used)] {
            @if let Some(x) = verdict {
                p.verdict { strong { (label) } " by " (x.user) " " (format::age(Some(x.time), now)) " ago"
                    @if !x.reason.is_empty() { ": " q { (x.reason) } } }
            }
        }
        (decide_forms(viewer, d))
        h2 { "Events" }
        @if d.events.is_empty() {
            p { "No Events you may read." }
        } @else {
            ul.events {
                @for e in &d.events {
                    li { span.kind { (e.kind) } " " strong { (e.reason) } " "
                        @if let Some(t) = e.time { (format::age(Some(t), now)) " ago " }
                        (e.message) }
                }
            }
        }
    }
}

fn change(v: &RequestView) -> Markup {
    let Some(c) = &v.change else {
        return html! { p.nochange { "This request records no change to show." } };
    };
    html! {
        h2 { "Change" }
        p #summary { (c.summary) }
        @if let Some(command) = &c.command {
            p { "Command: " code #command { (command) } }
        }
        @if let Some(stale) = &v.stale { p.warn role="alert" { (stale) } }
        pre #diff.diff aria-label="The change as a diff" {
            span.side { "--- " (c.sides.0) "\n" }
            span.side { "+++ " (c.sides.1) "\n" }
            @for line in &c.lines {
                @match line {
                    Line::Same(t) => { span.same { "  " (t) "\n" } }
                    Line::Removed(t) => { del { "- " (t) "\n" } }
                    Line::Added(t) => { ins { "+ " (t) "\n" } }
                    Line::Note(t) => { span.note { "# " (t) "\n" } }
                }
            }
        }
    }
}

fn decide_forms(viewer: &Viewer, d: &Detail) -> Markup {
    let base = request_href(&d.view);
    html! {
        @if d.may_decide {
            section.decide aria-label="Your decision" {
                h2 { "Your decision" }
                form method="post" action=(format!("{base}/approve")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="approve-comment" { "Comment" }
                    textarea #approve-comment name="comment" rows="2" {}
                    button #approve type="submit" { "Approve" }
                }
                form method="post" action=(format!("{base}/deny")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="deny-comment" { "Reason to deny" }
                    textarea #deny-comment name="comment" rows="2" {}
                    button #deny type="submit" { "Deny" }
                }
            }
        } @else if d.may_revoke {
            section.decide aria-label="Revoke" {
                form method="post" action=(format!("{base}/revoke")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label for="revoke-comment" { "Reason to revoke" }
                    textarea #revoke-comment name="comment" rows="2" {}
                    button #revoke type="submit" { "Revoke" }
                }
            }
        } @else if d.view.phase == Phase::Pending {
            p #no-decision { (why_not(viewer, &d.view)) }
        }
    }
}

fn why_not(viewer: &Viewer, v: &RequestView) -> String {
    if v.requester == viewer.user {
        "This is your own request: a second person must approve it.".to_owned()
    } else if v.approvals.iter().any(|a| a.user == viewer.user) {
        "You have approved this request.".to_owned()
    } else {
        "You are not an approver for this request's policy.".to_owned()
    }
}

/// A page that says what was refused and why, with the guard's rule when it gave one.
pub fn refused(title: &str, message: &str, rule: Option<&str>, back: Option<&str>) -> Markup {
    html! {
        h1 #refused { (title) }
        p #refusal role="alert" { (message) }
        @if let Some(rule) = rule {
            p { "approval-gate's rule: " code #rule { (rule) } }
        }
        @if let Some(back) = back { p { a href=(back) { "Back to the request" } } }
    }
}

/// The page shown when nobody is signed in.
pub fn signed_out(message: Option<&str>) -> Markup {
    html! {
        h1 { "approval-gate" }
        @if let Some(m) = message { p role="alert" #sign-in-error { (m) } }
        p { "Sign in with your company account to see the requests waiting for you." }
        p { a.button #sign-in href="/login" { "Sign in" } }
    }
}

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;

//! What a notification says, as a pure function of the request, the
//! transition and `now`. Every channel renders the same [`Notice`].

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use serde::Serialize;

use crate::crd::{
    ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus, Change, FollowUp, Target,
    Transition, approve_command,
};

/// Who a notification is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Audience {
    /// The people who may approve: a request is waiting for them.
    Approvers,
    /// The requester: their request was decided or ran out.
    Requester,
}

/// Everything a notification tells, ready for any channel.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// `Requested`, `Approved`, `Denied`, `Expired` or `Revoked`.
    pub transition: Transition,
    pub audience: Audience,
    /// One line saying what happened, also the Slack fallback and the mail subject.
    pub headline: String,
    /// The ApprovalRequest's name, namespace and uid.
    pub request: String,
    pub namespace: String,
    pub uid: String,
    pub requester: String,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: String,
    /// `deployments.apps`, `pods/exec`: resource, group and subresource.
    pub resource: String,
    /// The object's name.
    pub object: String,
    pub reason: String,
    pub digest: Option<String>,
    pub policy: String,
    /// Who approved, denied or revoked, when someone did.
    pub decided_by: Option<String>,
    /// Seconds since the request was created.
    pub age_seconds: i64,
    /// Seconds until the request (or its approval) stops being valid, if it still can be.
    pub expires_in_seconds: Option<i64>,
    /// The command an approver runs (for Pending) or the requester may share.
    pub approve_command: String,
    /// Approvers (users and groups) of the policy, for Pending.
    pub approvers: Vec<String>,
    /// The change in one line (`image app: nginx:1.27 → evil/backdoor:1`).
    pub summary: String,
    /// The first lines of the change as a unified diff, for Slack and email.
    pub diff: Vec<String>,
    /// The change as recorded in the request (Secret values only as hashes).
    pub change: Option<Change>,
    /// The request's page in the web console, when the operator knows the
    /// console's URL (`--console-url`): approvers decide there, signed in.
    pub link: Option<String>,
    /// `Reminder` or `Escalation` for a notice sent later about a request
    /// still Pending; absent for the transition's own notice.
    pub follow_up: Option<FollowUp>,
}

/// How many diff lines a notification carries, and how long each may be:
/// within Slack's 3,000 characters per text block.
const DIFF_LINES: usize = 20;
const DIFF_LINE_CHARS: usize = 120;

/// The first lines of the change, each cut to fit, and a line saying how many more there are.
pub fn diff_excerpt(spec: &crate::crd::ApprovalRequestSpec) -> Vec<String> {
    let Some(change) = &spec.change else {
        return Vec::new();
    };
    let lines = crate::change::render::lines(spec.operation, change);
    let mut out: Vec<String> = lines
        .iter()
        .take(DIFF_LINES)
        .map(|l| {
            let text = l.text();
            if text.chars().count() > DIFF_LINE_CHARS {
                let cut: String = text.chars().take(DIFF_LINE_CHARS - 1).collect();
                format!("{cut}…")
            } else {
                text
            }
        })
        .collect();
    if lines.len() > DIFF_LINES {
        out.push(format!(
            "… {} more lines: kubectl approve diff",
            lines.len() - DIFF_LINES
        ));
    }
    out
}

impl Notice {
    /// The notice with a link to the request's page in the console at `console`.
    #[must_use]
    pub fn linked(mut self, console: Option<&str>) -> Self {
        self.link = console.map(|base| {
            format!(
                "{}/requests/{}/{}",
                base.trim_end_matches('/'),
                self.namespace,
                self.request
            )
        });
        self
    }

    /// The notice as a reminder or an escalation of a request still Pending:
    /// the headline says so and how long it has waited.
    #[must_use]
    pub fn following_up(mut self, follow_up: Option<FollowUp>) -> Self {
        if let Some(kind) = follow_up {
            self.headline = format!(
                "{}: still waiting after {}: {}",
                kind.as_str(),
                self.age(),
                self.headline
            );
        }
        self.follow_up = follow_up;
        self
    }

    /// `<uid>/<transition>` (and `/<follow-up>`): receivers drop a second
    /// delivery with the same key.
    pub fn idempotency_key(&self) -> String {
        match self.follow_up {
            Some(f) => format!("{}/{}/{}", self.uid, self.transition.as_str(), f.as_str()),
            None => format!("{}/{}", self.uid, self.transition.as_str()),
        }
    }

    /// `deployments.apps/checkout`: what kubectl would call the object.
    pub fn object_ref(&self) -> String {
        format!("{}/{}", self.resource, self.object)
    }

    /// `3m20s`, or `-` when unknown.
    pub fn age(&self) -> String {
        human(self.age_seconds)
    }

    /// Time left, or `-` when the request can no longer become valid.
    pub fn time_left(&self) -> String {
        self.expires_in_seconds
            .map_or_else(|| "-".to_owned(), human)
    }

    /// The plain-text body of an email, one fact per line.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.headline);
        for (label, value) in self.facts() {
            let _ = writeln!(out, "{label}: {value}");
        }
        if !self.diff.is_empty() {
            let _ = write!(out, "\nThe change:\n\n");
            for line in &self.diff {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(link) = &self.link {
            let _ = write!(out, "\nOpen it in the console: {link}\n");
        }
        if self.audience == Audience::Approvers {
            let _ = write!(out, "\nTo approve, run:\n\n    {}\n", self.approve_command);
        }
        out
    }

    /// Labelled facts, in the order people read them.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("Requester", self.requester.clone()),
            (
                "Operation",
                format!("{} {}", self.operation, self.object_ref()),
            ),
            ("Namespace", or_dash(&self.namespace)),
            ("Reason", or_dash(&self.reason)),
            ("Change", or_dash(&self.summary)),
            ("Policy", self.policy.clone()),
            ("Digest", self.digest.clone().unwrap_or_else(|| "-".into())),
            ("Age", self.age()),
            ("Time left", self.time_left()),
        ];
        if let Some(by) = &self.decided_by {
            facts.push(("Decided by", by.clone()));
        }
        facts
    }
}

/// What to tell about `transition` of `req`, or None when no one is told
/// about it (a `Used` approval: the requester performed it themselves).
pub fn notice(
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    transition: Transition,
    now: Timestamp,
) -> Option<Notice> {
    let audience = match transition {
        Transition::Requested => Audience::Approvers,
        Transition::Approved | Transition::Denied | Transition::Expired | Transition::Revoked => {
            Audience::Requester
        }
        // Nobody decided anything: the newer request is announced instead.
        Transition::Used | Transition::Superseded => return None,
    };
    let spec = &req.spec;
    let status = req.status.clone().unwrap_or_default();
    let namespace = req.namespace().unwrap_or_default();
    let name = req.name_any();
    let resource = resource_of(&spec.target);
    let created = req.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let age_seconds = created.map_or(0, |c| now.duration_since(c).as_secs().max(0));
    let expires_in_seconds = status
        .expires_at
        .as_ref()
        .map(|t| t.0.duration_since(now))
        .filter(|left| {
            *left > SignedDuration::ZERO && audience_can_act(transition) && status.used_at.is_none()
        })
        .map(|left| left.as_secs());
    let what = format!(
        "{} {resource}/{}{}",
        spec.operation,
        spec.target.name,
        in_namespace(&spec.target.namespace)
    );
    let approvers = policy.map_or_else(Vec::new, |p| {
        let users = p.approvers.users.iter().cloned();
        let groups = p.approvers.groups.iter().map(|g| format!("group {g}"));
        users.chain(groups).collect()
    });
    Some(Notice {
        transition,
        audience,
        headline: headline(transition, &spec.requester, &what, status.used_at.is_some()),
        decided_by: decided_by(&status, transition),
        approve_command: approve_command(&name, &namespace),
        request: name,
        namespace,
        uid: req.uid().unwrap_or_default(),
        requester: spec.requester.clone(),
        operation: spec.operation.as_str().to_owned(),
        resource,
        object: spec.target.name.clone(),
        reason: spec.reason.clone(),
        digest: spec.digest.clone(),
        policy: spec.policy.clone(),
        age_seconds,
        expires_in_seconds,
        approvers,
        summary: spec
            .change
            .as_ref()
            .map(|c| c.summary.clone())
            .unwrap_or_default(),
        diff: diff_excerpt(spec),
        change: spec.change.as_deref().cloned(),
        link: None,
        follow_up: None,
    })
}

/// `deployments.apps`, `pods/exec`: resource, group and subresource.
fn resource_of(target: &Target) -> String {
    let mut resource = target.resource.clone();
    if !target.api_group.is_empty() {
        resource = format!("{resource}.{}", target.api_group);
    }
    if let Some(sub) = target.subresource.as_deref().filter(|s| !s.is_empty()) {
        resource = format!("{resource}/{sub}");
    }
    resource
}

/// One line: who asks, or what became of the request.
/// `used`: the approval was spent before this notice went out (the requester
/// retried at once), so it says so instead of inviting a retry.
fn headline(transition: Transition, requester: &str, what: &str, used: bool) -> String {
    match transition {
        Transition::Requested => format!("{requester} asks for approval: {what}"),
        Transition::Approved if used => format!("Approved and already used: {what}"),
        Transition::Approved => format!("Approved: {what}"),
        Transition::Denied => format!("Denied: {what}"),
        Transition::Expired => format!("Expired before it was used: {what}"),
        Transition::Revoked => format!("Approval revoked: {what}"),
        Transition::Used => format!("Used: {what}"),
        Transition::Superseded => format!("Superseded by a newer request: {what}"),
    }
}

/// Who approved, denied or revoked (with their reason).
fn decided_by(status: &ApprovalRequestStatus, transition: Transition) -> Option<String> {
    match transition {
        Transition::Approved => Some(
            status
                .approvals
                .iter()
                .map(|a| a.user.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Transition::Denied => status.denial.as_ref().map(|v| by(&v.user, &v.reason)),
        Transition::Revoked => status.revocation.as_ref().map(|v| by(&v.user, &v.reason)),
        _ => None,
    }
}

/// Only a pending or approved request still has time left.
fn audience_can_act(transition: Transition) -> bool {
    matches!(transition, Transition::Requested | Transition::Approved)
}

fn by(user: &str, reason: &str) -> String {
    if reason.is_empty() {
        user.to_owned()
    } else {
        format!("{user} ({reason})")
    }
}

fn in_namespace(ns: &str) -> String {
    if ns.is_empty() {
        String::new()
    } else {
        format!(" in {ns}")
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// `1h2m`, `3m20s`, `45s`: the two largest units.
fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
#[path = "content_tests.rs"]
pub(crate) mod tests;

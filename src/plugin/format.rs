//! Pure rendering: tables, relative durations and the describe layout. Every
//! function takes plain values and `now`, so the output is golden-tested.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

use super::change_view::ChangeView;
use super::{
    sanitize::inert,
    view::{RequestView, VerdictLine},
};
use crate::{change::render::Line, crd::Phase};

/// Whether to colour the output (a terminal, and `NO_COLOR` unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colours on a terminal unless `NO_COLOR` is set to anything non-empty.
    pub fn detect(is_terminal: bool, no_color: Option<&str>) -> Self {
        Self {
            color: is_terminal && no_color.is_none_or(str::is_empty),
        }
    }

    /// `text` (already padded) in the colour of `phase`.
    pub fn phase(&self, phase: Phase, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match phase {
            Phase::Pending => "33",
            Phase::Approved => "32",
            Phase::Used => "36",
            Phase::Denied | Phase::Expired | Phase::Revoked => "31",
            Phase::Superseded => "90",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// `text` in the SGR colour `code`, on a terminal only.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A warning, in yellow on a terminal.
    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A bold label, for the describe layout.
    fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// A compact duration the way kubectl prints ages: `14s`, `3m`, `2h5m`, `3d4h`.
pub fn duration(d: SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    match () {
        () if secs < 60 => format!("{secs}s"),
        () if mins < 60 => format!("{mins}m"),
        () if hours < 24 && mins % 60 == 0 => format!("{hours}h"),
        () if hours < 24 => format!("{hours}h{}m", mins % 60),
        () if hours % 24 == 0 => format!("{days}d"),
        () => format!("{days}d{}h", hours % 24),
    }
}

/// How long ago `at` was, or `<unknown>`.
pub fn age(at: Option<Timestamp>, now: Timestamp) -> String {
    at.map_or_else(
        || "<unknown>".to_owned(),
        |t| duration(now.duration_since(t)),
    )
}

/// The EXPIRES IN cell: time left while Pending or Approved, `expired` once
/// expired, `-` for the other final phases.
pub fn expires_in(phase: Phase, expires_at: Option<Timestamp>, now: Timestamp) -> String {
    match (phase, expires_at) {
        (Phase::Expired, _) => "expired".to_owned(),
        (p, Some(at)) if !p.is_final() => duration(at.duration_since(now)),
        _ => "-".to_owned(),
    }
}

/// Time left in words: `14m`, or `expired 3m ago`.
pub fn time_left(phase: Phase, expires_at: Option<Timestamp>, now: Timestamp) -> String {
    match (phase, expires_at) {
        (Phase::Expired, Some(at)) => format!("expired {} ago", duration(now.duration_since(at))),
        (Phase::Expired, None) => "expired".to_owned(),
        (p, Some(at)) if !p.is_final() => format!("{} left", duration(at.duration_since(now))),
        (p, _) if p.is_final() => format!("none: the request is {p}"),
        _ => "unknown".to_owned(),
    }
}

/// Which columns the table shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// A NAMESPACE column first (`-A`).
    pub namespace: bool,
    /// REASON and DIGEST too (`-o wide`).
    pub wide: bool,
}

/// The first 12 hex digits of a digest, or `<none>`.
pub fn short_digest(digest: Option<&str>) -> String {
    match digest {
        Some(d) => {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            hex.chars().take(12).collect()
        }
        None => "<none>".to_owned(),
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s.to_owned()
    }
}

/// A `kubectl get`-style table, columns separated by three spaces.
pub fn table(rows: &[RequestView], cols: Columns, now: Timestamp, style: Style) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut header = vec!["NAME", "PHASE", "REQUESTER", "OPERATION", "TARGET"];
    header.extend(["POLICY", "APPROVALS", "EXPIRES IN", "AGE"]);
    if cols.namespace {
        header.insert(0, "NAMESPACE");
    }
    if cols.wide {
        header.extend(["REASON", "CHANGE", "DIGEST"]);
    }
    let phase_col = usize::from(cols.namespace) + 1;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.name.clone(),
                r.phase.to_string(),
                r.requester.clone(),
                r.operation.clone(),
                r.target.clone(),
                r.policy.clone(),
                format!("{}/{}", r.approved, r.required),
                expires_in(r.phase, r.expires_at, now),
                age(r.created, now),
            ];
            if cols.namespace {
                row.insert(0, r.namespace.clone());
            }
            if cols.wide {
                row.push(or_none(&r.reason));
                row.push(change_cell(r));
                row.push(short_digest(r.digest.as_deref()));
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String], phase: Option<Phase>| {
        let mut out = String::new();
        let last = row.len() - 1;
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let padded = if i == last {
                cell.clone()
            } else {
                format!("{cell:<w$}   ")
            };
            match phase {
                Some(p) if i == phase_col => out.push_str(&style.phase(p, &padded)),
                _ => out.push_str(&padded),
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&header, None);
    for (row, r) in cells.iter().zip(rows) {
        out.push_str(&line(row, Some(r.phase)));
    }
    out
}

/// The CHANGE cell: the summary, cut to a table's width.
fn change_cell(r: &RequestView) -> String {
    const MAX: usize = 72;
    match &r.change {
        Some(c) if c.summary.chars().count() > MAX => {
            let cut: String = c.summary.chars().take(MAX - 1).collect();
            format!("{cut}…")
        }
        Some(c) if !c.summary.is_empty() => c.summary.clone(),
        _ => "<not recorded>".to_owned(),
    }
}

/// `approvalrequest.approvalgate.dev/NAME`, one a line (`-o name`).
pub fn names(rows: &[RequestView]) -> String {
    rows.iter()
        .map(|r| format!("approvalrequest.approvalgate.dev/{}\n", r.name))
        .collect()
}

/// One Event about a request, for describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    pub time: Option<Timestamp>,
    pub kind: String,
    pub reason: String,
    pub from: String,
    pub message: String,
}

/// Who may approve under a policy, in words: `group sre, user root` (made inert).
pub fn approvers(users: &[String], groups: &[String]) -> String {
    let mut parts: Vec<String> = groups
        .iter()
        .map(|g| format!("group {}", inert(g)))
        .collect();
    parts.extend(users.iter().map(|u| format!("user {}", inert(u))));
    if parts.is_empty() {
        "nobody".to_owned()
    } else {
        parts.join(", ")
    }
}

fn verdict(label: &str, v: &VerdictLine, now: Timestamp) -> String {
    let ago = duration(now.duration_since(v.time));
    let mut line = format!("{label:<14}by {} {ago} ago ({})", v.user, v.time);
    if !v.reason.is_empty() {
        let _ = write!(line, ": {}", v.reason);
    }
    line.push('\n');
    line
}

/// The describe layout: what will happen to which object, who asked and why,
/// the policy and its approvers, approvals so far, time left, and the Events.
pub fn describe(
    r: &RequestView,
    approvers: Option<&str>,
    events: &[EventLine],
    now: Timestamp,
    style: Style,
) -> String {
    let mut out = String::new();
    let field = |out: &mut String, label: &str, value: &str| {
        let label = format!("{label}:");
        let _ = writeln!(out, "{}{value}", style.bold(&format!("{label:<14}")));
    };
    field(&mut out, "Name", &r.name);
    field(&mut out, "Namespace", &r.namespace);
    field(&mut out, "Phase", &style.phase(r.phase, r.phase.as_str()));
    let object = if r.target_namespace.is_empty() {
        r.target.clone()
    } else {
        format!("{} in namespace {}", r.target, r.target_namespace)
    };
    field(&mut out, "Action", &format!("{} {object}", r.operation));
    field(
        &mut out,
        "Digest",
        r.digest
            .as_deref()
            .unwrap_or("<none> (not bound to content)"),
    );
    field(&mut out, "Requester", &r.requester);
    field(&mut out, "Reason", &or_none(&r.reason));
    match &r.change {
        Some(c) => {
            field(&mut out, "Change", &or_none(&c.summary));
            if let Some(command) = &c.command {
                field(&mut out, "Command", command);
            }
        }
        None if r.digest.is_some() => field(
            &mut out,
            "Change",
            "<not recorded: written by hand, nothing shows what the digest binds>",
        ),
        None => field(&mut out, "Change", "<not recorded>"),
    }
    if let Some(previous) = &r.previous {
        field(&mut out, "Previously", &style.warn(previous));
    }
    if let Some(warning) = &r.stale {
        field(&mut out, "Warning", &style.warn(warning));
    }
    let created = r.created.map_or_else(
        || "<unknown>".to_owned(),
        |t| format!("{} ago ({t})", age(Some(t), now)),
    );
    field(&mut out, "Created", &created);
    field(&mut out, "Policy", &r.policy);
    field(
        &mut out,
        "Approvers",
        approvers.unwrap_or("<unknown: the policy could not be read>"),
    );
    if let Some(gap) = &r.policy_gap {
        field(&mut out, "Policy gap", &style.warn(gap));
    }
    field(
        &mut out,
        "Approvals",
        &format!("{}/{} required", r.approved, r.required),
    );
    for a in &r.approvals {
        let ago = duration(now.duration_since(a.time));
        let mut line = format!("  - {} {ago} ago ({})", a.user, a.time);
        if !a.counts {
            line.push_str(" [does not count]");
        }
        if !a.comment.is_empty() {
            let _ = write!(line, ": {}", a.comment);
        }
        let _ = writeln!(out, "{line}");
    }
    let deadline = r
        .expires_at
        .map(|t| format!(" (at {t})"))
        .unwrap_or_default();
    field(
        &mut out,
        "Time left",
        &format!("{}{deadline}", time_left(r.phase, r.expires_at, now)),
    );
    let decided = [
        ("Denied", &r.denial),
        ("Revoked", &r.revocation),
        ("Used", &r.used),
        ("Last used", &r.last_use),
        ("Superseded", &r.superseded),
    ];
    for (label, v) in decided {
        if let Some(v) = v {
            out.push_str(&verdict(&format!("{label}:"), v, now));
        }
    }
    if let Some(c) = &r.change {
        let _ = writeln!(out, "{}", style.bold("Diff:"));
        for line in diff_lines(c, style) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out.push_str(&events_block(events, now));
    out
}

/// `kubectl approve diff`: the change alone, as `kubectl diff` prints it.
pub fn diff(r: &RequestView, style: Style) -> String {
    let Some(c) = &r.change else {
        return String::new();
    };
    diff_lines(c, style)
        .into_iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn diff_lines(c: &ChangeView, style: Style) -> Vec<String> {
    let mut out = vec![
        style.paint("1", &format!("--- {}", c.sides.0)),
        style.paint("1", &format!("+++ {}", c.sides.1)),
    ];
    out.extend(c.lines.iter().map(|l| {
        let text = l.text();
        match l {
            Line::Removed(_) => style.paint("31", &text),
            Line::Added(_) => style.paint("32", &text),
            Line::Note(_) => style.paint("36", &text),
            Line::Same(_) => text,
        }
    }));
    out
}

fn events_block(events: &[EventLine], now: Timestamp) -> String {
    if events.is_empty() {
        return "Events:       <none>\n".to_owned();
    }
    let mut out = "Events:\n".to_owned();
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            [
                age(e.time, now),
                e.kind.clone(),
                e.reason.clone(),
                e.from.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    let header = ["AGE", "TYPE", "REASON", "FROM", "MESSAGE"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = "  ".to_owned();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i == 4 {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}   ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;

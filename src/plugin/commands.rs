//! list, describe, approve, deny and revoke: read, decide, print.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    cli::{self, ApproveArgs, DecideArgs, DescribeArgs, ListArgs, Output},
    client::{Conn, Me},
    error::{PluginError, Result, exit, guard_rule},
    format::{self, Columns, Style},
    sanitize::inert,
    view::{RequestView, approval_groups, judge, may_approve},
};
use crate::crd::{Approval, ApprovalPolicySpec, ApprovalRequest, Phase, Verdict};

/// Prints objects the way `kubectl get -o json|yaml` does (a List for several).
pub fn print_objects(objects: &[ApprovalRequest], output: Output, list: bool) -> Result<()> {
    let items: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.metadata.managed_fields = None;
            serde_json::to_value(o)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| PluginError::Api(e.to_string()))?;
    let doc = match (list, items.as_slice()) {
        (false, [one]) => one.clone(),
        _ => {
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
        }
    };
    let text = match output {
        Output::Yaml => {
            serde_yaml_ng::to_string(&doc).map_err(|e| PluginError::Api(e.to_string()))?
        }
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).map_err(|e| PluginError::Api(e.to_string()))?
        ),
    };
    print!("{text}");
    Ok(())
}

pub async fn list(conn: &Conn, args: &ListArgs, style: Style) -> Result<u8> {
    let items = conn
        .list(args.all_namespaces, args.requester.as_deref())
        .await?;
    let policies = conn.policies().await;
    let me = match args.mine {
        true => Some(conn.whoami().await?),
        false => None,
    };
    let now = Timestamp::now();
    let (objects, views): (Vec<ApprovalRequest>, Vec<RequestView>) = items
        .into_iter()
        .filter_map(|r| {
            let policy = policies.get(&r.spec.policy);
            let view = RequestView::new(&r, policy, now);
            let phase_ok = args.all_phases || view.phase == Phase::Pending;
            let mine_ok = me
                .as_ref()
                .is_none_or(|me| may_approve(&r, policy, &me.user, &me.groups));
            (phase_ok && mine_ok).then_some((r, view))
        })
        .unzip();
    match args.output {
        Output::Json | Output::Yaml => print_objects(&objects, args.output, true)?,
        Output::Name => print!("{}", format::names(&views)),
        Output::Table | Output::Wide if views.is_empty() => {
            let scope = if args.all_namespaces {
                "any namespace".to_owned()
            } else {
                format!("namespace {}", conn.namespace)
            };
            let what = if args.all_phases { "" } else { "pending " };
            eprintln!("No {what}approval requests found in {scope}.");
        }
        Output::Table | Output::Wide => {
            let cols = Columns {
                namespace: args.all_namespaces,
                wide: args.output == Output::Wide,
            };
            print!("{}", format::table(&views, cols, now, style));
        }
    }
    Ok(exit::OK)
}

pub async fn describe(conn: &Conn, args: &DescribeArgs, style: Style) -> Result<u8> {
    let req = conn.request(&args.name).await?;
    if matches!(args.output, Output::Json | Output::Yaml) {
        print_objects(std::slice::from_ref(&req), args.output, false)?;
        return Ok(exit::OK);
    }
    let policy = conn.policy(&req.spec.policy).await;
    let events = conn.events(&args.name).await;
    let now = Timestamp::now();
    let mut view = RequestView::new(&req, policy.as_ref(), now);
    view.stale = super::diff::stale(conn, &req).await;
    if args.output == Output::Name {
        print!("{}", format::names(&[view]));
        return Ok(exit::OK);
    }
    view.policy_gap = policy
        .as_ref()
        .and_then(crate::admission::coverage::describe);
    let approvers = policy
        .as_ref()
        .map(|p| format::approvers(&p.approvers.users, &p.approvers.groups));
    print!(
        "{}",
        format::describe(&view, approvers.as_deref(), &events, now, style)
    );
    Ok(exit::OK)
}

/// One decision a person can record.
#[derive(Clone, Debug)]
pub enum Decision {
    Approve { comment: String },
    Deny { reason: String },
    Revoke { reason: String },
}

impl Decision {
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approve",
            Self::Deny { .. } => "deny",
            Self::Revoke { .. } => "revoke",
        }
    }

    fn past(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approved",
            Self::Deny { .. } => "denied",
            Self::Revoke { .. } => "revoked",
        }
    }
}

/// Records `decision` on request `name` as the caller, and explains a rejection.
pub async fn decide(conn: &Conn, me: &Me, name: &str, decision: &Decision) -> Result<RequestView> {
    match record(conn, me, name, decision).await {
        Ok((req, policy)) => Ok(RequestView::new(&req, policy.as_ref(), Timestamp::now())),
        Err(PluginError::Rejected(message)) => Err(explain(conn, name, decision, message).await),
        Err(e) => Err(e),
    }
}

/// Records `decision` on request `name` as the caller; returns the request
/// as written and its policy. A refusal by approval-gate's guard comes back
/// as [`PluginError::Rejected`] with the guard's own words and rule.
pub async fn record(
    conn: &Conn,
    me: &Me,
    name: &str,
    decision: &Decision,
) -> Result<(ApprovalRequest, Option<ApprovalPolicySpec>)> {
    let first = conn.request(name).await?;
    let policy = conn.policy(&first.spec.policy).await;
    let groups = approval_groups(policy.as_ref(), &me.groups);
    let written = conn
        .decide(name, |_, status| {
            let time = Time(Timestamp::now());
            let verdict = |reason: &str| Verdict {
                user: me.user.clone(),
                time: time.clone(),
                reason: reason.to_owned(),
            };
            match decision {
                Decision::Approve { comment } => status.approvals.push(Approval {
                    user: me.user.clone(),
                    groups: groups.clone(),
                    time: time.clone(),
                    comment: comment.clone(),
                }),
                Decision::Deny { reason } => status.denial = Some(verdict(reason)),
                Decision::Revoke { reason } => status.revocation = Some(verdict(reason)),
            }
            Ok(())
        })
        .await?;
    Ok((written, policy))
}

/// The guard's rejection in the plugin's words where one fits.
pub async fn explain(conn: &Conn, name: &str, decision: &Decision, message: String) -> PluginError {
    let Ok(req) = conn.request(name).await else {
        return PluginError::Rejected(message);
    };
    let policy = conn.policy(&req.spec.policy).await;
    match guard_rule(&message) {
        Some("eligible-approver") => PluginError::NotApprover {
            policy: inert(&req.spec.policy),
            approvers: policy.as_ref().map_or_else(
                || "unknown".to_owned(),
                |p| format::approvers(&p.approvers.users, &p.approvers.groups),
            ),
        },
        Some("no-self-approval") => PluginError::OwnRequest {
            verb: decision.verb(),
        },
        Some("approve-once") => PluginError::AlreadyApproved,
        Some("state-allows-decision") => {
            let now = Timestamp::now();
            match judge(&req, policy.as_ref(), now) {
                (Phase::Expired, Some(at)) => PluginError::Expired {
                    ago: now.duration_since(at),
                },
                _ => PluginError::Rejected(message),
            }
        }
        _ => PluginError::Rejected(message),
    }
}

fn report(name: &str, decision: &Decision, view: &RequestView, style: Style) {
    let now = Timestamp::now();
    let phase = style.phase(view.phase, view.phase.as_str());
    let mut line = format!(
        "approvalrequest.approvalgate.dev/{} {}: {} ({}/{} approvals",
        inert(name),
        decision.past(),
        phase,
        view.approved,
        view.required
    );
    if view.phase == Phase::Approved {
        line.push_str(&format!(
            ", valid for {}",
            format::expires_in(view.phase, view.expires_at, now)
        ));
    }
    println!("{line})");
}

pub async fn approve(conn: &Conn, args: &ApproveArgs, style: Style) -> Result<u8> {
    let me = conn.whoami().await?;
    let decision = Decision::Approve {
        comment: args.comment.clone(),
    };
    let names = if args.all {
        let chosen = approvable(conn, &me, args.requester.as_deref()).await?;
        if chosen.is_empty() {
            eprintln!(
                "No pending requests you may approve in namespace {}.",
                conn.namespace
            );
            return Ok(exit::OK);
        }
        if !args.yes && !confirm(&chosen, style)? {
            eprintln!("Nothing approved.");
            return Ok(exit::ERROR);
        }
        chosen.into_iter().map(|v| v.name).collect()
    } else {
        all_exist(conn, &args.names, args.implied).await?;
        args.names.clone()
    };
    if let [name] = names.as_slice() {
        let view = decide(conn, &me, name, &decision).await?;
        report(name, &decision, &view, style);
        return Ok(exit::OK);
    }
    let mut code = exit::OK;
    for name in &names {
        match decide(conn, &me, name, &decision).await {
            Ok(view) => report(name, &decision, &view, style),
            Err(e) => {
                eprintln!("error: {}: {e}", inert(name));
                code = exit::ERROR;
            }
        }
    }
    Ok(code)
}

/// Checks that every named request exists before any is approved, so that a
/// mistyped command or name approves nothing. When `approve` was implied and
/// the missing first word looks like a command (`descibe`), says so instead.
async fn all_exist(conn: &Conn, names: &[String], implied: bool) -> Result<()> {
    let mut missing = Vec::new();
    for name in names {
        match conn.request(name).await {
            Ok(_) => {}
            Err(PluginError::NotFound { .. }) => missing.push(name.clone()),
            Err(e) => return Err(e),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(word) = names.first().filter(|w| implied && missing.contains(w)) {
        let suggestions = cli::suggestions(word);
        if !suggestions.is_empty() {
            return Err(PluginError::UnknownCommand {
                word: word.clone(),
                suggestions,
            });
        }
    }
    let namespace = conn.namespace.clone();
    if let ([_], [name]) = (names, missing.as_slice()) {
        return Err(PluginError::NotFound {
            name: name.clone(),
            namespace,
        });
    }
    Err(PluginError::Missing {
        names: missing,
        namespace,
    })
}

/// Pending requests in the namespace the caller may approve, by `requester` if given.
async fn approvable(conn: &Conn, me: &Me, requester: Option<&str>) -> Result<Vec<RequestView>> {
    let items = conn.list(false, requester).await?;
    let policies = conn.policies().await;
    let now = Timestamp::now();
    Ok(items
        .iter()
        .filter(|r| may_approve(r, policies.get(&r.spec.policy), &me.user, &me.groups))
        .map(|r| RequestView::new(r, policies.get(&r.spec.policy), now))
        .filter(|v| v.phase == Phase::Pending)
        .collect())
}

/// Asks y/N on the terminal; without one, refuses (use --yes).
fn confirm(views: &[RequestView], style: Style) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(PluginError::Usage(format!(
            "refusing to approve {} requests without confirmation: there is no terminal to ask on; pass --yes",
            views.len()
        )));
    }
    eprint!(
        "{}",
        format::table(views, Columns::default(), Timestamp::now(), style)
    );
    eprint!("Approve these {} requests? [y/N] ", views.len());
    std::io::stderr()
        .flush()
        .map_err(|e| PluginError::io("writing the prompt", e))?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| PluginError::io("reading the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub async fn deny_or_revoke(
    conn: &Conn,
    args: &DecideArgs,
    revoke: bool,
    style: Style,
) -> Result<u8> {
    let me = conn.whoami().await?;
    let decision = if revoke {
        Decision::Revoke {
            reason: args.reason.clone(),
        }
    } else {
        Decision::Deny {
            reason: args.reason.clone(),
        }
    };
    let view = decide(conn, &me, &args.name, &decision).await?;
    report(&args.name, &decision, &view, style);
    Ok(exit::OK)
}

//! wait and run: follow a request until it is decided, judged from timestamps
//! as the webhook judges it, so an absent operator changes nothing.

use std::{
    io::{Read as _, Write as _},
    process::Stdio,
    time::Duration,
};

use futures::StreamExt as _;
use jiff::Timestamp;
use kube::runtime::watcher;

use super::{
    cli::{RunArgs, WaitArgs},
    client::Conn,
    error::{PluginError, Result, exit},
    format::{self, Style},
    sanitize::inert,
    view::{RequestView, judge},
};
use crate::crd::{ApprovalPolicySpec, ApprovalRequest, Phase};

/// The exit code for a phase: `None` while still undecided.
pub fn outcome(phase: Phase) -> Option<u8> {
    match phase {
        Phase::Pending => None,
        Phase::Approved | Phase::Used => Some(exit::OK),
        Phase::Denied => Some(exit::DENIED),
        Phase::Expired => Some(exit::EXPIRED),
        Phase::Revoked => Some(exit::REVOKED),
        Phase::Superseded => Some(exit::SUPERSEDED),
    }
}

pub async fn wait(conn: &Conn, args: &WaitArgs, style: Style) -> Result<u8> {
    let code = wait_for(conn, &args.name, args.timeout).await?;
    let req = conn.request(&args.name).await.ok();
    if let Some(req) = req {
        let policy = conn.policy(&req.spec.policy).await;
        let view = RequestView::new(&req, policy.as_ref(), Timestamp::now());
        let phase = style.phase(view.phase, view.phase.as_str());
        eprintln!("approvalrequest.approvalgate.dev/{} is {phase}", view.name);
    }
    if code == exit::TIMEOUT {
        eprintln!(
            "timed out after {} waiting for approvalrequest {} in namespace {}",
            format::duration(jiff::SignedDuration::try_from(args.timeout).unwrap_or_default()),
            inert(&args.name),
            inert(&conn.namespace)
        );
    }
    Ok(code)
}

/// Waits until the request is decided or `timeout` passes; returns the exit code.
pub async fn wait_for(conn: &Conn, name: &str, timeout: Duration) -> Result<u8> {
    let mut req = conn.request(name).await?;
    let policy = conn.policy(&req.spec.policy).await;
    let give_up = tokio::time::Instant::now() + timeout;
    let api = conn.requests(Some(&conn.namespace));
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).boxed();
    loop {
        let (phase, expires_at) = judge(&req, policy.as_ref(), Timestamp::now());
        if let Some(code) = outcome(phase) {
            return Ok(code);
        }
        let recheck = next_check(expires_at, give_up);
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r))) => req = r,
                Some(Ok(watcher::Event::Delete(_))) => {
                    return Err(PluginError::NotFound { name: name.to_owned(), namespace: conn.namespace.clone() });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "watch interrupted; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => return Err(PluginError::Api("the watch ended".to_owned())),
            },
            () = tokio::time::sleep_until(recheck) => {
                if tokio::time::Instant::now() >= give_up {
                    return Ok(exit::TIMEOUT);
                }
            }
        }
    }
}

/// When to look again without news: at the deadline (plus a little), and never after giving up.
fn next_check(
    expires_at: Option<Timestamp>,
    give_up: tokio::time::Instant,
) -> tokio::time::Instant {
    let Some(at) = expires_at else {
        return give_up;
    };
    let left = at.duration_since(Timestamp::now());
    let left = Duration::try_from(left).unwrap_or_default() + Duration::from_millis(50);
    give_up.min(tokio::time::Instant::now() + left)
}

/// `ApprovalRequest <ns>/<name>` in an approval-gate denial, if there is one
/// (made inert: no real name has a control character, and it gets printed).
pub fn held_request(stderr: &str) -> Option<(String, String)> {
    if !stderr.contains("approval-gate:") {
        return None;
    }
    let marker = "ApprovalRequest ";
    let start = stderr.find(marker)? + marker.len();
    let word = stderr[start..].split_whitespace().next()?;
    let (ns, name) = word.split_once('/')?;
    let name = name.trim_end_matches(['.', ',', ';', ':', '"', '\'']);
    (!ns.is_empty() && !name.is_empty()).then(|| (inert(ns), inert(name)))
}

/// Runs the command, passing its output through; returns its exit code and stderr.
async fn run_once(command: &[std::ffi::OsString]) -> Result<(u8, String)> {
    let program_name = command
        .first()
        .ok_or_else(|| PluginError::Usage("no command to run; give it after --".to_owned()))?
        .to_string_lossy()
        .into_owned();
    let command = command.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| PluginError::io(format!("running {program_name}"), e))?;
        let mut captured = Vec::new();
        if let Some(mut err) = child.stderr.take() {
            let mut buf = [0u8; 4096];
            loop {
                let n = err
                    .read(&mut buf)
                    .map_err(|e| PluginError::io("reading its stderr", e))?;
                if n == 0 {
                    break;
                }
                let _ = std::io::stderr().write_all(&buf[..n]);
                captured.extend_from_slice(&buf[..n]);
            }
        }
        let status = child
            .wait()
            .map_err(|e| PluginError::io("waiting for it", e))?;
        let code = status
            .code()
            .map_or(exit::ERROR, |c| u8::try_from(c).unwrap_or(exit::ERROR));
        Ok((code, String::from_utf8_lossy(&captured).into_owned()))
    })
    .await
    .map_err(|e| PluginError::Api(format!("the command's runner failed: {e}")))?
}

pub async fn run(conn: &Conn, args: &RunArgs, style: Style) -> Result<u8> {
    let (code, stderr) = run_once(&args.command).await?;
    let Some((namespace, name)) = held_request(&stderr) else {
        return Ok(code);
    };
    let conn = Conn {
        namespace,
        ..conn.clone()
    };
    let req = conn.request(&name).await?;
    let policy = conn.policy(&req.spec.policy).await;
    eprintln!("{}", held_summary(&req, policy.as_ref(), style));
    let decided = wait_for(&conn, &name, args.timeout).await?;
    if decided != exit::OK {
        let what = match decided {
            exit::DENIED => "was denied",
            exit::EXPIRED => "expired",
            exit::REVOKED => "was revoked",
            exit::TIMEOUT => "was not decided in time",
            _ => "was not approved",
        };
        eprintln!(
            "approvalrequest {name} in namespace {} {what}; not running the command again",
            conn.namespace
        );
        return Ok(decided);
    }
    eprintln!("approvalrequest {name} approved; running the command again");
    rerun(&args.command, &namespace_name(&conn.namespace, &name)).await
}

fn namespace_name(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

/// Runs the command again. The webhook learns of the approval through a watch,
/// a moment after we do, so a retry held by the same request is tried again a
/// few times before its answer stands.
async fn rerun(command: &[std::ffi::OsString], held: &(String, String)) -> Result<u8> {
    let mut pause = Duration::from_millis(300);
    for _ in 0..4 {
        let (code, stderr) = run_once(command).await?;
        if held_request(&stderr).as_ref() != Some(held) {
            return Ok(code);
        }
        eprintln!(
            "approval-gate has not seen the approval yet; trying again in {}ms",
            pause.as_millis()
        );
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    Ok(run_once(command).await?.0)
}

fn held_summary(
    req: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
    style: Style,
) -> String {
    let view = RequestView::new(req, policy, Timestamp::now());
    let approvers = policy.map_or_else(
        || "the approvers of its policy".to_owned(),
        |p| format::approvers(&p.approvers.users, &p.approvers.groups),
    );
    format!(
        "Held for approval: {} {} (ApprovalRequest {}/{}, {}, {}/{} approvals).\n\
         Who can approve: {approvers}, with: kubectl approve {} -n {}\nWaiting for the decision...",
        view.operation,
        view.target,
        view.namespace,
        view.name,
        style.phase(view.phase, view.phase.as_str()),
        view.approved,
        view.required,
        view.name,
        view.namespace,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_request_a_denial_names() {
        let msg = "Error from server (Forbidden): error when applying patch: admission webhook \
                   \"validate.approvalgate.dev\" denied the request: approval-gate: UPDATE \
                   deployments.apps/checkout in namespace prod needs approval under ApprovalPolicy \"p\". \
                   ApprovalRequest prod/checkout-update-x7k2p was created for alice. An approver";
        assert_eq!(
            held_request(msg),
            Some(("prod".to_owned(), "checkout-update-x7k2p".to_owned()))
        );
        assert_eq!(held_request("error: ApprovalRequest a/b"), None);
        assert_eq!(held_request("approval-gate: something else"), None);
    }

    #[test]
    fn phases_map_to_documented_exit_codes() {
        assert_eq!(outcome(Phase::Pending), None);
        assert_eq!(outcome(Phase::Approved), Some(0));
        assert_eq!(outcome(Phase::Used), Some(0));
        assert_eq!(outcome(Phase::Denied), Some(3));
        assert_eq!(outcome(Phase::Expired), Some(4));
        assert_eq!(outcome(Phase::Revoked), Some(5));
    }
}

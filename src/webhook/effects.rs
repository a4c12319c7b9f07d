//! The admission path's only API writes: creating the pending request on a
//! denial, and recording the use of a single-use approval.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Client, ResourceExt as _,
    api::{Patch, PatchParams, PostParams},
};

use crate::{
    admission::{Attempt, decision::Grant},
    crd::{
        ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestSpec, Phase,
        Transition, UsedBy,
    },
    error::Error,
    lifecycle::{Projection, Terms, evaluate, transitions},
};

/// How creating the pending request turned out.
#[derive(Debug)]
pub enum Created {
    New,
    AlreadyExists,
    /// Why, with its cause.
    Failed(Error),
    TimedOut,
}

impl Created {
    pub fn label(&self) -> &'static str {
        match self {
            Self::New => "created",
            Self::AlreadyExists => "exists",
            Self::Failed(_) => "failed",
            Self::TimedOut => "timeout",
        }
    }
}

/// Creates the request, waiting at most `bound`; a slower create goes on in
/// the background, and the denial does not wait for it.
pub async fn create_request(
    client: &Client,
    request: ApprovalRequest,
    policy: Option<Arc<ApprovalPolicy>>,
    bound: Duration,
) -> Created {
    let ns = request.namespace().unwrap_or_default();
    let api = Api::<ApprovalRequest>::namespaced(client.clone(), &ns);
    let task = tokio::spawn(async move {
        match api.create(&PostParams::default(), &request).await {
            Ok(created) => {
                initial_status(&api, &created, policy.as_deref().map(|p| &p.spec)).await;
                Created::New
            }
            // Another replica made it, or someone took the name first: trust
            // it only if it asks for the very same action.
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get(&request.name_any()).await {
                Ok(existing) if same_action(&existing.spec, &request.spec) => {
                    Created::AlreadyExists
                }
                Ok(_) => Created::Failed(Error::Taken {
                    what: format!("ApprovalRequest {}/{}", ns, request.name_any()),
                }),
                Err(e) => Created::Failed(Error::Kube(e)),
            },
            Err(e) => Created::Failed(Error::Kube(e)),
        }
    });
    match tokio::time::timeout(bound, task).await {
        Ok(Ok(created)) => created,
        Ok(Err(join)) => Created::Failed(Error::Task(join)),
        Err(_) => Created::TimedOut,
    }
}

/// Whether two requests ask for the same action: what an approval binds
/// (requester, operation, target, digest and policy) is equal.
pub fn same_action(a: &ApprovalRequestSpec, b: &ApprovalRequestSpec) -> bool {
    a.requester == b.requester
        && a.operation == b.operation
        && a.target == b.target
        && a.digest == b.digest
        && a.policy == b.policy
}

/// Fills in what `kubectl get apr` shows (phase, target, expiry), so a new
/// request reads right at once. The operator keeps it current afterwards.
async fn initial_status(
    api: &Api<ApprovalRequest>,
    created: &ApprovalRequest,
    policy: Option<&ApprovalPolicySpec>,
) {
    let eval = evaluate(created, &Terms { policy }, Timestamp::now());
    // Only the projected fields: a merge patch that leaves what the operator
    // may have written already (say, the recorded transitions) alone.
    let status = serde_json::json!({ "status": Projection::of(created, policy, &eval) });
    if let Err(e) = api
        .patch_status(
            &created.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
    {
        tracing::warn!(error = %e, request = %created.name_any(), "setting the initial status failed");
    }
}

/// How recording a use turned out.
#[derive(Debug)]
pub enum Use {
    /// Recorded: the request as written, and the transitions to record for it.
    Recorded {
        written: Box<ApprovalRequest>,
        due: Vec<Transition>,
    },
    /// Another admission used it first, or it stopped being valid.
    Lost(String),
    /// Writing the use failed, with its cause.
    Failed(Error),
}

const ATTEMPTS: usize = 3;

/// Records the use with optimistic concurrency: the status write carries the
/// resourceVersion it was judged at, so of many racing admissions exactly one
/// succeeds. On a conflict the request is re-read and judged again.
pub async fn record_use(
    client: &Client,
    grant: &Grant,
    policy: &ApprovalPolicy,
    attempt: &Attempt,
) -> Use {
    let ns = grant.request.namespace().unwrap_or_default();
    let api = Api::<ApprovalRequest>::namespaced(client.clone(), &ns);
    let mut current = (*grant.request).clone();
    for _ in 0..ATTEMPTS {
        let now = Timestamp::now();
        let phase = evaluate(
            &current,
            &Terms {
                policy: Some(&policy.spec),
            },
            now,
        )
        .phase;
        if phase != Phase::Approved {
            return Use::Lost(format!(
                "request {} is {}",
                current.name_any(),
                phase.as_str().to_lowercase()
            ));
        }
        let mut next = current.clone();
        let status = next.status.get_or_insert_with(Default::default);
        status.used_at = Some(Time(now));
        status.used_by = Some(UsedBy {
            uid: attempt.uid.clone(),
            user: attempt.user.clone(),
        });
        status.phase = Some(Phase::Used);
        // The writer that wins records: every transition up to this use that
        // is not recorded yet, so the trail is complete even if the request
        // is deleted at once and the operator never sees it.
        let due: Vec<Transition> = transitions(&next, Phase::Used, true)
            .into_iter()
            .filter(|t| !next.status.as_ref().is_some_and(|s| s.recorded.contains(t)))
            .collect();
        next.status
            .get_or_insert_with(Default::default)
            .recorded
            .extend(due.iter().copied());
        match api
            .replace_status(&next.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(written) => {
                return Use::Recorded {
                    written: Box::new(written),
                    due,
                };
            }
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get(&current.name_any()).await {
                Ok(fresh) => current = fresh,
                Err(e) => return Use::Failed(Error::Kube(e)),
            },
            Err(e) => return Use::Failed(Error::Kube(e)),
        }
    }
    Use::Lost("too many concurrent uses".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::request;

    #[test]
    fn an_existing_request_counts_only_if_it_asks_for_the_same_action() {
        let ours = request("alice", 0).spec;
        let mut theirs = ours.clone();
        theirs.reason = "another reason".into();
        assert!(same_action(&ours, &theirs), "the reason binds nothing");
        for change in [
            |s: &mut ApprovalRequestSpec| s.requester = "mallory".into(),
            |s: &mut ApprovalRequestSpec| s.digest = Some(format!("sha256:{}", "f".repeat(64))),
            |s: &mut ApprovalRequestSpec| s.target.name = "payments".into(),
            |s: &mut ApprovalRequestSpec| s.policy = "other".into(),
        ] {
            let mut other = ours.clone();
            change(&mut other);
            assert!(!same_action(&ours, &other), "{other:?}");
        }
    }
}

//! Unit tests for the guard's rules: plain objects in, a verdict out, no
//! clock and no server. Every rejection is checked by its stable rule name.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::{
    crd::{PolicyRule, Verdict},
    testing::{approve, policy, request, ts},
};

/// One row of a table of writes: a change to a request's status, its spec, or a policy.
type StatusChange = Box<dyn FnOnce(&mut ApprovalRequestStatus)>;
type SpecChange = fn(&mut ApprovalRequest);
type PolicyChange = Box<dyn Fn(&mut ApprovalPolicySpec)>;

/// Every status write is judged at this instant; alice's request was made at `ts(0)`.
const NOW: i64 = 100;

/// approval-gate's own service account, as `GuardConfig::default()` names it.
const CONTROLLER: &str = "system:serviceaccount:approval-gate:approval-gate";

/// Someone the apiserver authenticated.
struct Caller {
    user: &'static str,
    groups: Vec<String>,
}

impl Caller {
    fn actor(&self) -> Actor<'_> {
        Actor {
            user: self.user,
            groups: &self.groups,
        }
    }

    /// An approval in this caller's own name and groups, given at `NOW`.
    fn approval(&self) -> Approval {
        Approval {
            user: self.user.into(),
            groups: self.groups.clone(),
            time: Time(ts(NOW)),
            comment: String::new(),
        }
    }

    /// A denial or revocation in this caller's own name, at `NOW`.
    fn verdict(&self) -> Verdict {
        Verdict {
            user: self.user.into(),
            time: Time(ts(NOW)),
            reason: "not now".into(),
        }
    }
}

fn caller(user: &'static str, groups: &[&str]) -> Caller {
    Caller {
        user,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// The requester, a developer.
fn alice() -> Caller {
    caller("alice", &["dev"])
}

/// An approver through the `sre` group the test policy names.
fn bob() -> Caller {
    caller("bob", &["sre"])
}

/// A second approver.
fn dave() -> Caller {
    caller("dave", &["sre"])
}

/// Nobody the policy names.
fn carol() -> Caller {
    caller("carol", &["dev"])
}

fn admin() -> Caller {
    caller("admin", &["system:masters"])
}

fn controller() -> Caller {
    caller(CONTROLLER, &["system:serviceaccounts"])
}

/// alice's request, still Pending.
fn pending() -> ApprovalRequest {
    request("alice", 0)
}

/// alice's request, approved by bob at `ts(50)`.
fn approved() -> ApprovalRequest {
    let mut req = pending();
    approve(&mut req, "bob", &["sre"], 50);
    req
}

/// What a status write stores: `old` with `change` applied to its status.
fn written(
    old: &ApprovalRequest,
    change: impl FnOnce(&mut ApprovalRequestStatus),
) -> ApprovalRequest {
    let mut new = old.clone();
    change(new.status.get_or_insert_with(Default::default));
    new
}

/// How a status write by `who` under `p` is judged at `NOW`.
fn judge(
    who: &Caller,
    old: &ApprovalRequest,
    p: &ApprovalPolicySpec,
    change: impl FnOnce(&mut ApprovalRequestStatus),
) -> Review {
    let new = written(old, change);
    let config = GuardConfig::default();
    review_status(old, &new, &who.actor(), Some(p), &config, ts(NOW))
}

/// The rule a status write by `who` breaks under `p`, judged at `NOW`.
fn status_write(
    who: &Caller,
    old: &ApprovalRequest,
    p: &ApprovalPolicySpec,
    change: impl FnOnce(&mut ApprovalRequestStatus),
) -> Result<(), &'static str> {
    judge(who, old, p, change).map_err(|v| v.rule)
}

/// `who` appends their own approval.
fn approves(
    who: &Caller,
    old: &ApprovalRequest,
    p: &ApprovalPolicySpec,
) -> Result<(), &'static str> {
    let approval = who.approval();
    status_write(who, old, p, |s| s.approvals.push(approval))
}

fn create(
    req: &ApprovalRequest,
    who: &Caller,
    p: Option<&ApprovalPolicySpec>,
) -> Result<(), Violation> {
    review_create(req, &who.actor(), p, &GuardConfig::default())
}

fn delete(req: &ApprovalRequest, who: &Caller) -> Result<(), &'static str> {
    review_delete(req, &who.actor(), &GuardConfig::default()).map_err(|v| v.rule)
}

const SHA: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A request made by hand for `requester`, bound to some content.
fn by_hand(requester: &str) -> ApprovalRequest {
    let mut req = request(requester, 0);
    req.spec.digest = Some(SHA.into());
    req
}

// --- status writes: the happy paths ---

#[test]
fn eligible_approver_approves_a_pending_request() {
    assert_eq!(approves(&bob(), &pending(), &policy("")), Ok(()));
}

#[test]
fn approver_named_by_user_approves_without_any_group() {
    assert_eq!(
        approves(&caller("root", &[]), &pending(), &policy("")),
        Ok(())
    );
}

#[test]
fn second_approver_appends_after_the_first() {
    let p = policy("requiredApprovals: 2");
    let mut req = pending();
    approve(&mut req, "bob", &["sre"], 50);
    assert_eq!(approves(&dave(), &req, &p), Ok(()));
}

#[test]
fn eligible_approver_denies_a_pending_request() {
    let denial = bob().verdict();
    let verdict = status_write(&bob(), &pending(), &policy(""), |s| s.denial = Some(denial));
    assert_eq!(verdict, Ok(()));
}

#[test]
fn eligible_approver_revokes_an_approved_request() {
    let revocation = dave().verdict();
    let verdict = status_write(&dave(), &approved(), &policy(""), |s| {
        s.revocation = Some(revocation)
    });
    assert_eq!(verdict, Ok(()));
}

#[test]
fn requester_approves_own_request_only_when_the_policy_allows_it() {
    let alice_in_sre = caller("alice", &["dev", "sre"]);
    let selfish = policy("allowSelfApproval: true");
    assert_eq!(approves(&alice_in_sre, &pending(), &selfish), Ok(()));
}

// --- status writes: who decides ---

#[test]
fn requester_cannot_approve_own_request_even_as_an_approver() {
    let alice_in_sre = caller("alice", &["dev", "sre"]);
    let alice_by_name = caller("alice", &["dev"]);
    let p = policy("");
    assert_eq!(
        approves(&alice_in_sre, &pending(), &p),
        Err("no-self-approval")
    );
    let mut names_alice = policy("");
    names_alice.approvers.users.push("alice".into());
    assert_eq!(
        approves(&alice_by_name, &pending(), &names_alice),
        Err("no-self-approval")
    );
}

#[test]
fn non_approver_cannot_approve_deny_or_revoke() {
    let p = policy("");
    assert_eq!(approves(&carol(), &pending(), &p), Err("eligible-approver"));
    let denial = carol().verdict();
    let deny = status_write(&carol(), &pending(), &p, |s| s.denial = Some(denial));
    assert_eq!(deny, Err("eligible-approver"));
    let revocation = carol().verdict();
    let revoke = status_write(&carol(), &approved(), &p, |s| {
        s.revocation = Some(revocation)
    });
    assert_eq!(revoke, Err("eligible-approver"));
}

#[test]
fn decision_must_be_recorded_under_the_callers_own_name() {
    let p = policy("");
    let in_bobs_name = bob().approval();
    let approval = status_write(&alice(), &pending(), &p, |s| s.approvals.push(in_bobs_name));
    assert_eq!(approval, Err("decider-is-caller"));
    let bobs_denial = bob().verdict();
    let denial = status_write(&dave(), &pending(), &p, |s| s.denial = Some(bobs_denial));
    assert_eq!(denial, Err("decider-is-caller"));
}

#[test]
fn decision_time_must_be_within_the_allowed_skew_of_now() {
    // Late writes are tolerated; future ones only by clock skew, because
    // expiry counts from the approval's time.
    let skew = MAX_SKEW.as_secs();
    let future = MAX_FUTURE_SKEW.as_secs();
    let cases = [
        (-3600, Err("decision-time-is-now")),
        (-skew - 1, Err("decision-time-is-now")),
        (-skew, Ok(())),
        (0, Ok(())),
        (future, Ok(())),
        (future + 1, Err("decision-time-is-now")),
        (skew, Err("decision-time-is-now")),
        (3600, Err("decision-time-is-now")),
    ];
    for (offset, expected) in cases {
        let mut approval = bob().approval();
        approval.time = Time(ts(NOW + offset));
        let verdict = status_write(&bob(), &pending(), &policy(""), |s| {
            s.approvals.push(approval)
        });
        assert_eq!(verdict, expected, "approval {offset}s from now");
    }
}

#[test]
fn approval_may_only_list_the_callers_own_groups() {
    let mut approval = bob().approval();
    approval.groups.push("security".into());
    let verdict = status_write(&bob(), &pending(), &policy(""), |s| {
        s.approvals.push(approval)
    });
    assert_eq!(verdict, Err("groups-are-yours"));
}

#[test]
fn controller_never_adds_changes_or_removes_a_decision() {
    let p = policy("");
    let as_bob = bob().approval();
    let denial = bob().verdict();
    let writes: [(&str, ApprovalRequest, StatusChange); 4] = [
        (
            "adds an approval",
            pending(),
            Box::new(|s| s.approvals.push(as_bob)),
        ),
        (
            "adds a denial",
            pending(),
            Box::new(|s| s.denial = Some(denial)),
        ),
        (
            "removes an approval",
            approved(),
            Box::new(|s| s.approvals.clear()),
        ),
        (
            "changes an approval",
            approved(),
            Box::new(|s| s.approvals[0].user = "dave".into()),
        ),
    ];
    for (what, old, change) in writes {
        let verdict = status_write(&controller(), &old, &p, change);
        assert_eq!(verdict, Err("controller-never-decides"), "{what}");
    }
}

#[test]
fn controller_records_phase_and_use() {
    let verdict = status_write(&controller(), &approved(), &policy(""), |s| {
        s.phase = Some(Phase::Used);
        s.used_at = Some(Time(ts(NOW)));
        s.attempts = Some(2);
    });
    assert_eq!(verdict, Ok(()));
}

// --- status writes: one decision, nothing else ---

#[test]
fn a_write_records_exactly_one_decision() {
    let p = policy("requiredApprovals: 2");
    let (first, second) = (bob().approval(), bob().approval());
    let denial = bob().verdict();
    let also_denied = bob().approval();
    let writes: [(&str, ApprovalRequest, StatusChange); 5] = [
        (
            "two approvals at once",
            pending(),
            Box::new(|s| s.approvals.extend([first, second])),
        ),
        (
            "an approval and a denial",
            pending(),
            Box::new(|s| {
                s.approvals.push(also_denied);
                s.denial = Some(denial);
            }),
        ),
        ("nothing", pending(), Box::new(|_| {})),
        (
            "removes an approval",
            approved(),
            Box::new(|s| s.approvals.clear()),
        ),
        (
            "rewrites an earlier approval",
            approved(),
            Box::new(|s| s.approvals[0].time = Time(ts(NOW))),
        ),
    ];
    for (what, old, change) in writes {
        assert_eq!(
            status_write(&bob(), &old, &p, change),
            Err("one-decision"),
            "{what}"
        );
    }
}

#[test]
fn an_approver_approves_once() {
    let p = policy("requiredApprovals: 2");
    let mut req = pending();
    approve(&mut req, "bob", &["sre"], 50);
    assert_eq!(approves(&bob(), &req, &p), Err("approve-once"));
}

#[test]
fn people_write_decisions_only_not_lifecycle_fields() {
    let approval = bob().approval();
    let verdict = status_write(&bob(), &pending(), &policy(""), |s| {
        s.approvals.push(approval);
        s.phase = Some(Phase::Approved);
    });
    assert_eq!(verdict, Err("people-write-decisions-only"));
    let verdict = status_write(&bob(), &approved(), &policy(""), |s| {
        s.used_at = Some(Time(ts(NOW)))
    });
    assert_eq!(verdict, Err("people-write-decisions-only"));
}

// --- status writes: the request's state ---

#[test]
fn only_a_pending_request_can_be_approved() {
    let p = policy("requestTTL: 1m");
    let mut denied = pending();
    denied.status.get_or_insert_with(Default::default).denial = Some(dave().verdict());
    let mut used = approved();
    used.status.get_or_insert_with(Default::default).used_at = Some(Time(ts(60)));
    let mut revoked = approved();
    revoked
        .status
        .get_or_insert_with(Default::default)
        .revocation = Some(dave().verdict());
    // Created at ts(0) with a one-minute request TTL: expired at NOW.
    let expired = pending();
    for (what, old) in [
        ("approved already", approved()),
        ("denied", denied),
        ("used", used),
        ("revoked", revoked),
        ("expired", expired),
    ] {
        assert_eq!(
            approves(&dave(), &old, &p),
            Err("state-allows-decision"),
            "{what}"
        );
    }
}

#[test]
fn only_an_approved_request_can_be_revoked_and_only_a_pending_one_denied() {
    let p = policy("");
    let revocation = bob().verdict();
    let revoke_pending = status_write(&bob(), &pending(), &p, |s| s.revocation = Some(revocation));
    assert_eq!(revoke_pending, Err("state-allows-decision"));
    let denial = dave().verdict();
    let deny_approved = status_write(&dave(), &approved(), &p, |s| s.denial = Some(denial));
    assert_eq!(deny_approved, Err("state-allows-decision"));
}

#[test]
fn rejection_says_why_the_state_forbids_it() {
    let mut used = approved();
    used.status.get_or_insert_with(Default::default).used_at = Some(Time(ts(60)));
    let approval = dave().approval();
    let v = judge(&dave(), &used, &policy(""), |s| s.approvals.push(approval)).unwrap_err();
    assert_eq!(
        v.message,
        "this request cannot be approved: it is Used (final)"
    );
    // An approved request is not final: it can still be revoked.
    let denial = dave().verdict();
    let v = judge(&dave(), &approved(), &policy(""), |s| {
        s.denial = Some(denial)
    })
    .unwrap_err();
    assert_eq!(v.message, "this request cannot be denied: it is Approved");
}

#[test]
fn a_write_that_records_no_decision_says_so() {
    let v = judge(&bob(), &pending(), &policy(""), |_| {}).unwrap_err();
    assert_eq!(
        (v.rule, v.message.as_str()),
        ("one-decision", "the write records no decision")
    );
}

#[test]
fn nobody_decides_once_the_policy_is_gone() {
    let new = written(&pending(), |s| s.approvals.push(bob().approval()));
    let v = review_status(
        &pending(),
        &new,
        &bob().actor(),
        None,
        &GuardConfig::default(),
        ts(NOW),
    )
    .unwrap_err();
    assert_eq!(v.rule, "policy-exists");
}

// --- creating, updating, deleting a request ---

#[test]
fn requester_creates_a_request_bound_to_content() {
    assert_eq!(
        create(&by_hand("alice"), &alice(), Some(&policy(""))),
        Ok(())
    );
}

#[test]
fn nobody_asks_on_someone_elses_behalf() {
    let v = create(&by_hand("bob"), &alice(), Some(&policy(""))).unwrap_err();
    assert_eq!(v.rule, "requester-is-creator");
    assert!(v.message.contains("must be you (alice)"), "{}", v.message);
}

#[test]
fn controller_creates_requests_for_others_without_a_digest() {
    assert_eq!(create(&pending(), &controller(), Some(&policy(""))), Ok(()));
}

/// `spec.previous` shows approvers an earlier "no": only approval-gate,
/// which knows the requests, may write it, or a requester could invent one.
#[test]
fn only_approval_gate_records_a_previous_decision() {
    let previous = crate::crd::Previous {
        name: "checkout-first".into(),
        phase: crate::crd::Phase::Expired,
        by: String::new(),
        reason: String::new(),
    };
    let mut by_alice = by_hand("alice");
    by_alice.spec.previous = Some(Box::new(previous.clone()));
    let v = create(&by_alice, &alice(), Some(&policy(""))).unwrap_err();
    assert_eq!(v.rule, "previous-by-approval-gate");
    let mut by_gate = pending();
    by_gate.spec.previous = Some(Box::new(previous));
    assert_eq!(create(&by_gate, &controller(), Some(&policy(""))), Ok(()));
}

#[test]
fn a_new_request_carries_no_decisions() {
    let v = create(&approved(), &alice(), Some(&policy(""))).unwrap_err();
    assert_eq!(v.rule, "status-starts-empty");
}

#[test]
fn a_request_names_an_existing_policy() {
    let v = create(&by_hand("alice"), &alice(), None).unwrap_err();
    assert_eq!(v.rule, "policy-exists");
}

#[test]
fn a_request_without_reason_is_rejected_when_the_policy_requires_one() {
    let p = policy("requireReason: true");
    let mut blank = by_hand("alice");
    blank.spec.reason = "  ".into();
    assert_eq!(
        create(&blank, &alice(), Some(&p)).map_err(|v| v.rule),
        Err("reason-required")
    );
    blank.spec.reason = "INC-42".into();
    assert_eq!(create(&blank, &alice(), Some(&p)), Ok(()));
}

#[test]
fn a_hand_made_request_without_digest_explains_the_try_approve_retry_flow() {
    let v = create(&request("alice", 0), &alice(), Some(&policy(""))).unwrap_err();
    assert_eq!(v.rule, "digest-required");
    for step in [
        "Try the change itself",
        "denied with the name of a request",
        "retry the same change",
    ] {
        assert!(v.message.contains(step), "{}", v.message);
    }
    let unbound = policy("bindToContent: false");
    assert_eq!(
        create(&request("alice", 0), &alice(), Some(&unbound)),
        Ok(())
    );
}

#[test]
fn controller_creates_the_pending_request_with_the_reason_the_object_carries() {
    // The webhook copies the object's approvalgate.dev/reason annotation into
    // the request it creates; a request without one is refused for everyone.
    let p = policy("requireReason: true");
    let mut req = pending();
    req.spec.reason = "INC-123".into();
    assert_eq!(create(&req, &controller(), Some(&p)), Ok(()));
    assert_eq!(
        create(&pending(), &controller(), Some(&p))
            .unwrap_err()
            .rule,
        "reason-required"
    );
}

#[test]
fn the_action_of_a_request_never_changes() {
    let old = approved();
    let changes: [(&str, SpecChange); 4] = [
        ("target", |r| r.spec.target.name = "payments".into()),
        ("operation", |r| {
            r.spec.operation = crate::crd::Operation::Delete
        }),
        ("digest", |r| r.spec.digest = Some(SHA.replace('0', "f"))),
        ("requester", |r| r.spec.requester = "mallory".into()),
    ];
    for (field, change) in changes {
        let mut new = old.clone();
        change(&mut new);
        let v = review_update(&old, &new).unwrap_err();
        assert_eq!(v.rule, "spec-immutable", "{field}");
    }
}

#[test]
fn metadata_of_a_request_may_change() {
    let old = approved();
    let mut new = old.clone();
    new.metadata.labels = Some([("team".to_owned(), "payments".to_owned())].into());
    assert_eq!(review_update(&old, &new), Ok(()));
}

#[test]
fn requester_admin_and_controller_may_delete_an_undecided_request() {
    for who in [alice(), admin(), controller()] {
        assert_eq!(delete(&pending(), &who), Ok(()), "{}", who.user);
    }
}

#[test]
fn requester_cannot_erase_a_decided_request_but_admin_and_retention_can() {
    let denied = written(&pending(), |s| {
        s.denial = Some(Verdict {
            user: "bob".into(),
            time: Time(ts(60)),
            reason: "no".into(),
        });
    });
    let used = written(&approved(), |s| {
        s.used_at = Some(Time(ts(70)));
        s.used_by = Some(crate::crd::UsedBy {
            uid: "u".into(),
            user: "alice".into(),
        });
    });
    for req in [approved(), denied, used] {
        assert_eq!(delete(&req, &alice()), Err("decided-requests-stay"));
        assert_eq!(delete(&req, &admin()), Ok(()));
        assert_eq!(delete(&req, &controller()), Ok(()));
    }
}

/// Either mark of a use makes the refusal say "used", not "approved".
#[test]
fn a_request_with_either_mark_of_a_use_is_refused_as_used() {
    let at_only = written(&approved(), |s| s.used_at = Some(Time(ts(70))));
    let by_only = written(&approved(), |s| {
        s.used_by = Some(crate::crd::UsedBy {
            uid: "u".into(),
            user: "alice".into(),
        });
    });
    for req in [at_only, by_only] {
        let v = review_delete(&req, &alice().actor(), &GuardConfig::default()).unwrap_err();
        assert!(v.message.contains("this request was used"), "{}", v.message);
    }
}

#[test]
fn an_approver_may_not_withdraw_someone_elses_request() {
    assert_eq!(delete(&approved(), &bob()), Err("withdraw-own-only"));
    assert_eq!(delete(&approved(), &carol()), Err("withdraw-own-only"));
}

// --- policies ---

/// A subresource listed beside a wildcard that already matches it is refused
/// (the apiserver would refuse the registered rule); others stand.
#[test]
fn a_resource_shadowed_by_a_wildcard_beside_it_is_a_problem() {
    let shadowed = |resources: &[&str]| {
        let mut p = policy("");
        p.rules = vec![rule(&["", "apps"], resources, &[RuleOperation::Update])];
        review_policy(&p)
            .iter()
            .any(|m| m.contains("is already matched by a wildcard beside it"))
    };
    for (resources, expected) in [
        (&["pods/*", "pods/exec"][..], true),
        (&["*/scale", "deployments/scale"][..], true),
        (&["pods/*"][..], false),
        (&["*/scale"][..], false),
        (&["pods/*", "deployments/scale"][..], false),
        (&["*/scale", "deployments/status"][..], false),
        (&["pods/exec", "pods/attach"][..], false),
        (&["deployments/scale", "statefulsets/scale"][..], false),
        (&["*/*", "pods/exec"][..], false),
    ] {
        assert_eq!(shadowed(resources), expected, "{resources:?}");
    }
}

#[test]
fn a_valid_policy_has_no_problems() {
    assert_eq!(review_policy(&policy("")), Vec::<String>::new());
    // Several groups without a wildcard, and "*/*" alone, are fine.
    let mut groups = policy("");
    groups.rules = vec![rule(
        &["apps", "batch"],
        &["deployments", "jobs"],
        &[RuleOperation::Update],
    )];
    assert_eq!(review_policy(&groups), Vec::<String>::new());
    let mut everything = policy("");
    everything.rules = vec![rule(&["*"], &["*/*"], &[RuleOperation::Update])];
    assert_eq!(review_policy(&everything), Vec::<String>::new());
    let mut exec = policy("");
    exec.rules = vec![rule(&[""], &["pods/exec"], &[RuleOperation::Connect])];
    assert_eq!(review_policy(&exec), Vec::<String>::new());
}

fn rule(groups: &[&str], resources: &[&str], operations: &[RuleOperation]) -> PolicyRule {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        operations: operations.to_vec(),
        namespaces: Vec::new(),
        namespace_selector: None,
        names: Vec::new(),
    }
}

#[test]
fn every_policy_problem_names_its_field() {
    let update = [RuleOperation::Update];
    let cases: [(&str, PolicyChange); 11] = [
        ("spec.rules:", Box::new(|p| p.rules.clear())),
        (
            "spec.rules[0].apiGroups",
            Box::new(move |p| p.rules = vec![rule(&[], &["deployments"], &update)]),
        ),
        (
            "spec.rules[0].resources",
            Box::new(move |p| p.rules = vec![rule(&["apps"], &[], &update)]),
        ),
        (
            "spec.rules[0].resources",
            Box::new(move |p| p.rules = vec![rule(&["apps"], &[" "], &update)]),
        ),
        (
            "spec.rules[0].operations",
            Box::new(|p| p.rules = vec![rule(&["apps"], &["deployments"], &[])]),
        ),
        (
            "spec.rules[0]: CONNECT applies to subresources",
            Box::new(|p| p.rules = vec![rule(&[""], &["pods"], &[RuleOperation::Connect])]),
        ),
        (
            "spec.requiredApprovals",
            Box::new(|p| p.required_approvals = 0),
        ),
        (
            "spec.approvers",
            Box::new(|p| p.approvers = Default::default()),
        ),
        (
            "spec.requestTTL",
            Box::new(|p| p.request_ttl = crate::crd::Duration::from_secs(5)),
        ),
        (
            "spec.requestTTL",
            Box::new(|p| p.request_ttl = crate::crd::Duration::from_secs(8 * 24 * 3600)),
        ),
        (
            "spec.approvalTTL",
            Box::new(|p| p.approval_ttl = crate::crd::Duration::from_secs(48 * 3600)),
        ),
    ];
    for (field, break_it) in cases {
        let mut spec = policy("");
        break_it(&mut spec);
        let problems = review_policy(&spec);
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "{field}: {problems:?}"
        );
    }
}

/// The TTL bounds are inclusive, to the second: the last sane value on each
/// side passes, one second past it does not.
#[test]
fn ttl_bounds_hold_exactly_at_their_edges() {
    let secs = crate::crd::Duration::from_secs;
    let week = 7 * 24 * 3600;
    let day = 24 * 3600;
    let request = |s: u64, ok: bool| {
        let mut spec = policy("");
        spec.request_ttl = secs(s);
        (
            format!("requestTTL {s}s"),
            review_policy(&spec).is_empty(),
            ok,
        )
    };
    let approval = |s: u64, ok: bool| {
        let mut spec = policy("");
        spec.approval_ttl = secs(s);
        (
            format!("approvalTTL {s}s"),
            review_policy(&spec).is_empty(),
            ok,
        )
    };
    for (what, passed, ok) in [
        request(9, false),
        request(10, true),
        request(week, true),
        request(week + 1, false),
        approval(0, false),
        approval(1, true),
        approval(day, true),
        approval(day + 1, false),
    ] {
        assert_eq!(passed, ok, "{what}");
    }
}

#[test]
fn an_approval_ttl_under_a_second_is_a_problem() {
    let p = policy("approvalTTL: 500ms");
    assert_eq!(
        review_policy(&p),
        ["spec.approvalTTL: 500ms is outside the sane range 1s to 86400s"]
    );
}

#[test]
fn a_hand_made_change_that_disagrees_with_its_digest_is_rejected() {
    let mut req = by_hand("alice");
    let shown = serde_json::json!({"kind": "Deployment", "metadata": {"name": "checkout"}});
    let action = crate::change::Action::create(&shown);
    let change = crate::change::record(&action, &crate::change::Redactor::new(b"k", Vec::new()));
    req.spec.operation = crate::crd::Operation::Create;
    req.spec.change = Some(Box::new(change));
    let v = create(&req, &alice(), Some(&policy(""))).unwrap_err();
    assert_eq!(v.rule, "change-matches-digest");
    assert!(
        v.message.contains("does not agree with spec.digest"),
        "{}",
        v.message
    );
    req.spec.digest = crate::admission::digest::digest(req.spec.operation, Some(&shown), None);
    assert_eq!(create(&req, &alice(), Some(&policy(""))), Ok(()));
    // approval-gate itself records changes it cannot be asked to prove (cut, redacted, UPDATE).
    req.spec.digest = Some(SHA.into());
    assert_eq!(create(&req, &controller(), Some(&policy(""))), Ok(()));
}

#[test]
fn policies_the_apiserver_would_refuse_in_a_webhook_rule_are_rejected_naming_the_field() {
    let rule = |yaml: &str| -> ApprovalPolicySpec {
        serde_yaml_ng::from_str(&format!("rules: [{yaml}]\napprovers: {{groups: [sre]}}\n"))
            .unwrap()
    };
    for (yaml, field) in [
        (
            "{apiGroups: ['*', apps], resources: [deployments], operations: [UPDATE]}",
            "apiGroups",
        ),
        (
            "{apiGroups: [apps], resources: [deployments], operations: ['*', UPDATE]}",
            "operations",
        ),
        (
            "{apiGroups: [apps], resources: ['*', deployments], operations: [UPDATE]}",
            "resources",
        ),
        (
            "{apiGroups: [apps], resources: ['*/*', deployments], operations: [UPDATE]}",
            "resources",
        ),
        (
            "{apiGroups: [apps], resources: ['deployments/*', deployments/scale], operations: [UPDATE]}",
            "resources",
        ),
    ] {
        let problems = review_policy(&rule(yaml));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("spec.rules[0].{field}"))),
            "{yaml}: {problems:?}"
        );
    }
    let fine = rule("{apiGroups: ['*'], resources: ['*', '*/scale'], operations: ['*']}");
    assert_eq!(review_policy(&fine), Vec::<String>::new());
}

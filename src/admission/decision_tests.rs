//! Unit tests for [`decide`]: plain values in, a decision out, no clock and no server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt as _;

use super::*;
use crate::{
    admission::{attempt::Attempt, message},
    crd::{ApprovalPolicySpec, Operation, Target},
    testing::{approve, request, ts},
};

const CONTROL_NAMESPACE: &str = "approval-gate";

/// Every test decides at this instant; request and approval times are relative to it.
const NOW: i64 = 10_000;

/// Deployments in any namespace, approved by the `sre` group; tests append fields.
const DEPLOYMENTS: &str = "
rules:
- apiGroups: [apps]
  resources: [deployments]
  operations: ['*']
approvers:
  groups: [sre]
";

fn config() -> DecisionConfig {
    DecisionConfig {
        control_namespace: CONTROL_NAMESPACE.into(),
    }
}

fn sha(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn mk_policy(name: &str, yaml: &str) -> ApprovalPolicy {
    let spec: ApprovalPolicySpec = serde_yaml_ng::from_str(yaml).unwrap();
    ApprovalPolicy::new(name, spec)
}

/// The deployments policy with extra top-level fields, e.g. `"mode: Warn"`.
fn deployments_policy(name: &str, extra: &str) -> ApprovalPolicy {
    mk_policy(name, &format!("{DEPLOYMENTS}{extra}\n"))
}

/// A policy with one rule, written as a YAML flow mapping, approved by `sre`.
fn rule_policy(name: &str, rule: &str) -> ApprovalPolicy {
    mk_policy(
        name,
        &format!("rules: [{rule}]\napprovers: {{groups: [sre]}}"),
    )
}

fn mk_target(api_group: &str, resource: &str, namespace: &str, name: &str) -> Target {
    Target {
        api_group: api_group.into(),
        resource: resource.into(),
        subresource: None,
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn mk_attempt(user: &str, groups: &[&str], operation: Operation, target: Target) -> Attempt {
    Attempt {
        uid: "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4".into(),
        user: user.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        operation,
        request_namespace: target.namespace.clone(),
        target,
        digest: Some(sha('a')),
        reason: String::new(),
        dry_run: false,
        relabel: None,
    }
}

/// `user` in `groups` updates deployments.apps/`name` in `namespace`.
fn update_deployment(user: &str, groups: &[&str], namespace: &str, name: &str) -> Attempt {
    let target = mk_target("apps", "deployments", namespace, name);
    mk_attempt(user, groups, Operation::Update, target)
}

/// alice (group `dev`) updates deployments.apps/checkout in prod.
fn alice_updates_checkout() -> Attempt {
    update_deployment("alice", &["dev"], "prod", "checkout")
}

/// A request for exactly this attempt under `policy`, created `age` seconds
/// ago, living where the webhook would put it.
fn mk_request(name: &str, policy: &str, attempt: &Attempt, age: i64) -> ApprovalRequest {
    let mut req = request(&attempt.user, NOW - age);
    req.metadata.name = Some(name.into());
    req.metadata.namespace = Some(request_namespace(attempt, &config()));
    req.spec.operation = attempt.operation;
    req.spec.target = attempt.target.clone();
    req.spec.digest = attempt.digest.clone();
    req.spec.policy = policy.into();
    req
}

/// The same request, approved by bob of `sre` a minute ago.
fn mk_approved(name: &str, policy: &str, attempt: &Attempt) -> ApprovalRequest {
    let mut req = mk_request(name, policy, attempt, 120);
    approve(&mut req, "bob", &["sre"], NOW - 60);
    req
}

/// alice's approved request `checkout-rollout` to update checkout under prod-deploys.
fn checkout_rollout() -> ApprovalRequest {
    mk_approved(
        "checkout-rollout",
        "prod-deploys",
        &alice_updates_checkout(),
    )
}

fn mk_index<P, R>(policies: P, requests: R) -> Index
where
    P: IntoIterator<Item = ApprovalPolicy>,
    R: IntoIterator<Item = ApprovalRequest>,
{
    let mut index = Index::default();
    policies.into_iter().for_each(|p| index.apply_policy(p));
    requests.into_iter().for_each(|r| index.requests.apply(r));
    index
}

fn decide_now(attempt: &Attempt, index: &Index) -> Decision {
    decide(attempt, index, &config(), ts(NOW))
}

/// Decides alice's update of checkout under one deployments policy.
fn decide_checkout(extra: &str, requests: impl IntoIterator<Item = ApprovalRequest>) -> Decision {
    let index = mk_index([deployments_policy("prod-deploys", extra)], requests);
    decide_now(&alice_updates_checkout(), &index)
}

fn held(decision: &Decision) -> (&str, &Hold) {
    decision.hold().expect("the attempt should be held")
}

fn is_dns1123_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let edges = name.chars().next().is_some_and(alnum) && name.chars().last().is_some_and(alnum);
    name.len() <= 253 && edges && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
}

#[test]
fn attempt_without_matching_policy_is_not_gated() {
    let pods = rule_policy(
        "pods",
        "{apiGroups: [''], resources: [pods], operations: [DELETE]}",
    );
    let decision = decide_now(&alice_updates_checkout(), &mk_index([pods], []));
    assert!(decision.allowed());
    assert!(decision.verdicts.is_empty());
    assert_eq!(decision.verdict_label(), "not_gated");
}

#[test]
fn holds_matching_update_and_asks_for_a_new_request_beside_the_target() {
    let attempt = alice_updates_checkout();
    let decision = decide_checkout("", []);
    assert!(!decision.allowed());
    assert_eq!(decision.verdict_label(), "held");
    let (policy, hold) = held(&decision);
    assert_eq!((policy, hold.namespace.as_str()), ("prod-deploys", "prod"));
    assert_eq!(hold.approvers, "groups sre");
    assert_eq!(hold.note, None);
    let new = hold.create.as_ref().expect("a request to create");
    assert_eq!(new.name_any(), hold.name);
    assert_eq!(new.namespace().as_deref(), Some("prod"));
    assert_eq!(new.spec.requester, "alice");
    assert_eq!(new.spec.operation, Operation::Update);
    assert_eq!(new.spec.target, attempt.target);
    assert_eq!(new.spec.digest, attempt.digest);
    assert_eq!(new.spec.policy, "prod-deploys");
    let label = new.labels().get("approvalgate.dev/policy");
    assert_eq!(label.map(String::as_str), Some("prod-deploys"));
}

#[test]
fn request_for_a_namespace_delete_lives_in_the_control_namespace() {
    let policy = rule_policy(
        "ns",
        "{apiGroups: [''], resources: [namespaces], operations: [DELETE]}",
    );
    let target = mk_target("", "namespaces", "", "prod");
    let mut attempt = mk_attempt("alice", &["dev"], Operation::Delete, target);
    attempt.request_namespace = "prod".into();
    let decision = decide_now(&attempt, &mk_index([policy], []));
    let (_, hold) = held(&decision);
    assert_eq!(hold.namespace, CONTROL_NAMESPACE);
    let new = hold.create.as_ref().expect("a request to create");
    assert_eq!(new.namespace().as_deref(), Some(CONTROL_NAMESPACE));
    assert_eq!(
        (
            new.spec.target.namespace.as_str(),
            new.spec.target.name.as_str()
        ),
        ("", "prod")
    );
}

#[test]
fn pending_request_for_the_same_change_is_named_and_not_recreated() {
    let pending = mk_request(
        "checkout-rollout",
        "prod-deploys",
        &alice_updates_checkout(),
        30,
    );
    let decision = decide_checkout("", [pending]);
    let (_, hold) = held(&decision);
    assert_eq!(
        (hold.namespace.as_str(), hold.name.as_str()),
        ("prod", "checkout-rollout")
    );
    assert!(hold.create.is_none());
}

#[test]
fn approved_unexpired_request_with_matching_digest_grants_once() {
    let approved = checkout_rollout();
    let decision = decide_checkout("", [approved]);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "granted");
    let grants: Vec<&Grant> = decision.single_use_grants().collect();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].request.name_any(), "checkout-rollout");
    let request = message::audit_annotations(&decision).remove("request");
    assert_eq!(request.as_deref(), Some("prod/checkout-rollout"));
}

#[test]
fn reusable_approval_is_not_reported_as_single_use() {
    let approved = checkout_rollout();
    let decision = decide_checkout("singleUse: false", [approved]);
    assert_eq!(decision.verdict_label(), "granted");
    assert_eq!(decision.single_use_grants().count(), 0);
    // It is tallied as a use of the reusable approval instead.
    let reused: Vec<&Grant> = decision.reusable_grants().collect();
    assert_eq!(reused.len(), 1);
    assert_eq!(reused[0].request.name_any(), "checkout-rollout");
}

#[test]
fn a_single_use_approval_is_consumed_not_tallied_as_reused() {
    let approved = checkout_rollout();
    let decision = decide_checkout("", [approved]);
    assert_eq!(decision.single_use_grants().count(), 1);
    assert_eq!(decision.reusable_grants().count(), 0);
}

#[test]
fn approval_for_different_content_does_not_allow_this_change() {
    let mut other = checkout_rollout();
    other.spec.digest = Some(sha('b'));
    let decision = decide_checkout("", [other]);
    let (_, hold) = held(&decision);
    let new = hold
        .create
        .as_ref()
        .expect("a new request for the new content");
    assert_ne!(hold.name, "checkout-rollout");
    assert_eq!(new.spec.digest, Some(sha('a')));
}

#[test]
fn approval_not_bound_to_content_allows_any_content() {
    let mut other = checkout_rollout();
    other.spec.digest = Some(sha('b'));
    let decision = decide_checkout("bindToContent: false", [other]);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "granted");
}

#[test]
fn approval_older_than_approval_ttl_is_expired_and_the_note_says_so() {
    let mut stale = mk_request(
        "checkout-rollout",
        "prod-deploys",
        &alice_updates_checkout(),
        1_000,
    );
    approve(&mut stale, "bob", &["sre"], NOW - 301);
    let decision = decide_checkout("approvalTTL: 5m", [stale]);
    let (_, hold) = held(&decision);
    assert!(hold.create.is_some());
    let note = hold
        .note
        .as_deref()
        .expect("a note on the expired approval");
    assert!(
        note.contains("checkout-rollout") && note.contains("expired"),
        "{note}"
    );
}

#[test]
fn used_approval_is_not_reused_and_the_new_request_gets_a_new_name() {
    let first = decide_checkout("", []);
    let first_name = held(&first).1.name.clone();
    let mut used = mk_approved(&first_name, "prod-deploys", &alice_updates_checkout());
    used.status.as_mut().unwrap().used_at = Some(Time(ts(NOW - 30)));
    let decision = decide_checkout("", [used]);
    let (_, hold) = held(&decision);
    assert!(hold.create.is_some());
    assert_ne!(hold.name, first_name);
    assert_eq!(hold.name, format!("{first_name}-2"));
    assert!(
        hold.note.as_deref().is_some_and(|n| n.contains("used")),
        "{:?}",
        hold.note
    );
}

#[test]
fn a_new_request_after_a_denial_points_to_it_even_for_other_content() {
    let mut denied = mk_request(
        "checkout-first",
        "prod-deploys",
        &alice_updates_checkout(),
        300,
    );
    denied.spec.digest = Some(sha('e'));
    denied.status.get_or_insert_with(Default::default).denial = Some(crate::crd::Verdict {
        user: "bob".into(),
        time: Time(ts(NOW - 200)),
        reason: "not during the freeze".into(),
    });
    let mut used = mk_approved("checkout-later", "prod-deploys", &alice_updates_checkout());
    used.status.as_mut().unwrap().used_at = Some(Time(ts(NOW - 30)));
    let decision = decide_checkout("", [denied, used]);
    let new = held(&decision).1.create.clone().expect("a new request");
    let previous = new.spec.previous.expect("points to the earlier decision");
    assert_eq!(
        previous.name, "checkout-first",
        "a denial comes before a use"
    );
    assert_eq!(previous.phase, Phase::Denied);
    assert_eq!(
        (previous.by.as_str(), previous.reason.as_str()),
        ("bob", "not during the freeze")
    );
    let first = decide_checkout("", []);
    assert_eq!(held(&first).1.create.as_ref().unwrap().spec.previous, None);
}

/// Only a request under the same policy, in the namespace the new one lives
/// in, is pointed to: another policy's "no", or one written elsewhere by hand,
/// is not this policy's earlier decision.
#[test]
fn a_denial_under_another_policy_or_elsewhere_is_not_the_previous_decision() {
    let denied = |name: &str, policy: &str, namespace: &str| {
        let mut req = mk_request(name, policy, &alice_updates_checkout(), 300);
        req.metadata.namespace = Some(namespace.into());
        req.status.get_or_insert_with(Default::default).denial = Some(crate::crd::Verdict {
            user: "bob".into(),
            time: Time(ts(NOW - 200)),
            reason: "no".into(),
        });
        req
    };
    for other in [
        denied("checkout-other-policy", "old-deploys", "prod"),
        denied("checkout-elsewhere", "prod-deploys", "staging"),
    ] {
        let name = other.name_any();
        let decision = decide_checkout("", [other]);
        let new = held(&decision).1.create.clone().expect("a new request");
        assert_eq!(new.spec.previous, None, "{name}");
    }
}

#[test]
fn requester_cannot_approve_own_request() {
    let attempt = update_deployment("alice", &["sre"], "prod", "checkout");
    let mut own = mk_request("checkout-rollout", "prod-deploys", &attempt, 120);
    approve(&mut own, "alice", &["sre"], NOW - 60);
    let index = mk_index([deployments_policy("prod-deploys", "")], [own]);
    let decision = decide_now(&attempt, &index);
    assert!(!decision.allowed());
    assert_eq!(held(&decision).1.name, "checkout-rollout");
}

#[test]
fn self_approval_counts_when_the_policy_allows_it() {
    let attempt = update_deployment("alice", &["sre"], "prod", "checkout");
    let mut own = mk_request("checkout-rollout", "prod-deploys", &attempt, 120);
    approve(&mut own, "alice", &["sre"], NOW - 60);
    let index = mk_index(
        [deployments_policy(
            "prod-deploys",
            "allowSelfApproval: true",
        )],
        [own],
    );
    assert_eq!(decide_now(&attempt, &index).verdict_label(), "granted");
}

#[test]
fn approval_by_a_non_approver_does_not_count() {
    let mut req = mk_request(
        "checkout-rollout",
        "prod-deploys",
        &alice_updates_checkout(),
        120,
    );
    approve(&mut req, "carol", &["dev"], NOW - 60);
    let decision = decide_checkout("", [req]);
    let (_, hold) = held(&decision);
    assert_eq!(hold.name, "checkout-rollout");
    assert!(hold.create.is_none());
}

#[test]
fn approved_request_in_another_namespace_does_not_count() {
    let mut elsewhere = checkout_rollout();
    elsewhere.metadata.namespace = Some("staging".into());
    let decision = decide_checkout("", [elsewhere]);
    let (_, hold) = held(&decision);
    assert_eq!(hold.namespace, "prod");
    assert!(hold.create.is_some());
}

#[test]
fn approval_under_another_policy_does_not_count() {
    let approved = mk_approved(
        "checkout-rollout",
        "other-policy",
        &alice_updates_checkout(),
    );
    assert!(!decide_checkout("", [approved]).allowed());
}

#[test]
fn approved_request_wins_over_a_pending_one_for_the_same_change() {
    let attempt = alice_updates_checkout();
    let pending = mk_request("a-pending", "prod-deploys", &attempt, 30);
    let approved = mk_approved("z-approved", "prod-deploys", &attempt);
    let decision = decide_checkout("", [pending, approved]);
    assert!(
        decision.allowed(),
        "held by {:?}",
        decision.hold().map(|(_, h)| &h.name)
    );
    let granted = decision
        .single_use_grants()
        .next()
        .map(|g| g.request.name_any());
    assert_eq!(granted.as_deref(), Some("z-approved"));
}

#[test]
fn excluded_user_is_allowed() {
    let decision = decide_checkout("exclude: {users: [alice]}", []);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "excluded");
}

#[test]
fn excluded_group_is_allowed() {
    let decision = decide_checkout("exclude: {groups: [dev]}", []);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "excluded");
}

#[test]
fn break_glass_member_is_allowed_visibly() {
    let attempt = update_deployment("alice", &["oncall"], "prod", "checkout");
    let policy = deployments_policy("prod-deploys", "breakGlass: {groups: [oncall]}");
    let decision = decide_now(&attempt, &mk_index([policy], []));
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "break_glass");
    let warnings = message::warnings(&attempt, &decision);
    assert!(
        warnings.first().is_some_and(|w| w.contains("break-glass")),
        "{warnings:?}"
    );
    let annotations = message::audit_annotations(&decision);
    assert_eq!(
        annotations.get("break-glass").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("verdict").map(String::as_str),
        Some("break_glass")
    );
}

#[test]
fn break_glass_annotation_does_not_depend_on_policy_order() {
    let attempt = update_deployment("alice", &["oncall"], "prod", "checkout");
    let glass = |name: &str| deployments_policy(name, "breakGlass: {groups: [oncall]}");
    let enforce = |name: &str| deployments_policy(name, "");
    let glass_first = decide_now(
        &attempt,
        &mk_index([glass("a-glass"), enforce("b-enforce")], []),
    );
    let glass_last = decide_now(
        &attempt,
        &mk_index([enforce("a-enforce"), glass("b-glass")], []),
    );
    assert_eq!(glass_first.verdict_label(), glass_last.verdict_label());
    let flag = |d: &Decision| message::audit_annotations(d).remove("break-glass");
    assert_eq!(flag(&glass_first), flag(&glass_last));
}

#[test]
fn warn_mode_allows_with_a_warning() {
    let attempt = alice_updates_checkout();
    let decision = decide_checkout("mode: Warn", []);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "warned");
    let warnings = message::warnings(&attempt, &decision);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("prod-deploys") && warnings[0].contains("Warn"),
        "{warnings:?}"
    );
}

#[test]
fn audit_mode_allows_silently() {
    let decision = decide_checkout("mode: Audit", []);
    assert!(decision.allowed());
    assert_eq!(decision.verdict_label(), "audited");
    assert!(message::warnings(&alice_updates_checkout(), &decision).is_empty());
}

#[test]
fn rule_namespaces_limit_the_policy_to_named_namespaces() {
    let rule =
        "{apiGroups: [apps], resources: [deployments], operations: [UPDATE], namespaces: [prod]}";
    let index = mk_index([rule_policy("prod-only", rule)], []);
    assert!(!decide_now(&alice_updates_checkout(), &index).allowed());
    let staging = update_deployment("alice", &["dev"], "staging", "checkout");
    assert_eq!(decide_now(&staging, &index).verdict_label(), "not_gated");
}

#[test]
fn rule_names_limit_the_policy_to_named_objects() {
    let rule =
        "{apiGroups: [apps], resources: [deployments], operations: ['*'], names: [checkout]}";
    let index = mk_index([rule_policy("checkout-only", rule)], []);
    assert!(!decide_now(&alice_updates_checkout(), &index).allowed());
    let payments = update_deployment("alice", &["dev"], "prod", "payments");
    assert_eq!(decide_now(&payments, &index).verdict_label(), "not_gated");
}

#[test]
fn namespace_selector_matches_labels_from_the_index() {
    let rule = "{apiGroups: [apps], resources: [deployments], operations: ['*'], \
                namespaceSelector: {matchLabels: {env: prod}}}";
    let mut index = mk_index([rule_policy("prod-labelled", rule)], []);
    let labels = |env: &str| BTreeMap::from([("env".to_owned(), env.to_owned())]);
    index.namespaces.insert("prod".into(), labels("prod"));
    index.namespaces.insert("staging".into(), labels("dev"));
    let in_ns = |ns: &str| update_deployment("alice", &["dev"], ns, "checkout");
    assert!(!decide_now(&in_ns("prod"), &index).allowed());
    assert_eq!(
        decide_now(&in_ns("staging"), &index).verdict_label(),
        "not_gated"
    );
    // A namespace the index has not seen has no labels, so no selector matches it.
    assert_eq!(
        decide_now(&in_ns("unknown"), &index).verdict_label(),
        "not_gated"
    );
}

#[test]
fn every_enforcing_policy_must_be_satisfied() {
    let attempt = alice_updates_checkout();
    let policies = [
        deployments_policy("a-deploys", ""),
        deployments_policy("b-deploys", ""),
    ];
    let index = mk_index(policies, [mk_approved("checkout-a", "a-deploys", &attempt)]);
    let decision = decide_now(&attempt, &index);
    assert!(!decision.allowed());
    assert_eq!(decision.verdicts.len(), 2);
    assert!(matches!(decision.verdicts[0].kind, VerdictKind::Granted(_)));
    let (policy, hold) = held(&decision);
    assert_eq!(policy, "b-deploys");
    assert_eq!(
        hold.create.as_ref().map(|r| r.spec.policy.as_str()),
        Some("b-deploys")
    );
}

#[test]
fn request_name_is_deterministic_and_a_valid_dns_subdomain() {
    let attempt = alice_updates_checkout();
    let index = mk_index([deployments_policy("prod-deploys", "")], []);
    let a = decide_now(&attempt, &index);
    let b = decide(&attempt, &index, &config(), ts(NOW + 3_600));
    let name = held(&a).1.name.clone();
    assert_eq!(name, held(&b).1.name);
    assert!(is_dns1123_subdomain(&name), "{name}");
    assert!(name.starts_with("deployment-checkout-"), "{name}");
}

#[test]
fn request_name_stays_valid_for_long_and_dotted_object_names() {
    let any = rule_policy(
        "any",
        "{apiGroups: ['*'], resources: ['*'], operations: ['*']}",
    );
    let index = mk_index([any], []);
    for target in [
        mk_target(
            "example.com",
            "widgets",
            "prod",
            &"very-long-name.".repeat(16)[..239],
        ),
        mk_target("", "configmaps", "prod", "kube-root-ca.crt"),
        mk_target(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "system:aggregate-to-edit",
        ),
    ] {
        let attempt = mk_attempt("alice", &["dev"], Operation::Delete, target);
        let decision = decide_now(&attempt, &index);
        let name = &held(&decision).1.name;
        assert!(is_dns1123_subdomain(name), "{name}");
    }
}

#[test]
fn different_changes_get_different_request_names() {
    let index = mk_index([deployments_policy("prod-deploys", "")], []);
    let name = |a: &Attempt| held(&decide_now(a, &index)).1.name.clone();
    let attempt = alice_updates_checkout();
    let other_content = Attempt {
        digest: Some(sha('b')),
        ..attempt.clone()
    };
    let other_user = Attempt {
        user: "bob".into(),
        ..attempt.clone()
    };
    assert_ne!(name(&attempt), name(&other_content));
    assert_ne!(name(&attempt), name(&other_user));
}

#[test]
fn denial_names_policy_request_and_the_commands_to_run() {
    let attempt = alice_updates_checkout();
    let decision = decide_checkout("", []);
    let (policy, hold) = held(&decision);
    let text = message::denial(&attempt, policy, hold, message::RequestState::Created);
    let name = &hold.name;
    assert!(text.contains("prod-deploys"), "{text}");
    assert!(text.contains(name.as_str()), "{text}");
    assert!(
        text.contains(&format!("kubectl approve {name} -n prod")),
        "{text}"
    );
    assert!(
        text.contains(&format!("kubectl approve wait {name} -n prod")),
        "{text}"
    );
    assert!(
        text.contains("UPDATE deployments.apps/checkout in namespace prod"),
        "{text}"
    );
    assert!(text.contains("was created"), "{text}");
}

#[test]
fn denial_in_dry_run_says_the_request_would_be_created() {
    let attempt = Attempt {
        dry_run: true,
        ..alice_updates_checkout()
    };
    let decision = decide_checkout("", []);
    let (policy, hold) = held(&decision);
    let text = message::denial(
        &attempt,
        policy,
        hold,
        message::RequestState::WouldBeCreated,
    );
    assert!(text.contains("would be created"), "{text}");
}

#[test]
fn denial_says_plainly_when_the_request_could_not_be_created() {
    let attempt = alice_updates_checkout();
    let decision = decide_checkout("", []);
    let (policy, hold) = held(&decision);
    let text = message::denial(
        &attempt,
        policy,
        hold,
        message::RequestState::Failed("forbidden"),
    );
    assert!(text.contains("could not be created (forbidden)"), "{text}");
    assert!(!text.contains("was created"), "{text}");
}

#[test]
fn generate_name_objects_are_held_with_advice_and_no_request() {
    let attempt = Attempt {
        operation: Operation::Create,
        target: Target {
            name: String::new(),
            ..alice_updates_checkout().target
        },
        ..alice_updates_checkout()
    };
    let mut index = Index::default();
    index.apply_policy(ApprovalPolicy::new(
        "creates",
        serde_yaml_ng::from_str(
            "rules: [{apiGroups: [apps], resources: [deployments], operations: [CREATE]}]\napprovers: {groups: [sre]}",
        )
        .unwrap(),
    ));
    let decision = decide(&attempt, &index, &config(), ts(0));
    let (policy, hold) = held(&decision);
    assert!(hold.create.is_none());
    let text = message::denial(&attempt, policy, hold, message::RequestState::Pending);
    assert!(text.contains("generateName"), "{text}");
}

#[test]
fn a_required_reason_comes_from_the_object_annotation_into_the_request() {
    let mut index = Index::default();
    index.apply_policy(ApprovalPolicy::new(
        "reasons",
        serde_yaml_ng::from_str(
            "rules: [{apiGroups: [apps], resources: [deployments], operations: [UPDATE]}]\n\
             approvers: {groups: [sre]}\nrequireReason: true",
        )
        .unwrap(),
    ));
    let without = alice_updates_checkout();
    let decision = decide(&without, &index, &config(), ts(0));
    let (policy, hold) = held(&decision);
    assert!(hold.create.is_none(), "no request without a reason");
    let text = message::denial(&without, policy, hold, message::RequestState::Pending);
    assert!(text.contains("approvalgate.dev/reason"), "{text}");

    let with = Attempt {
        reason: "INC-123 roll back".into(),
        ..alice_updates_checkout()
    };
    let decision = decide(&with, &index, &config(), ts(0));
    let (_, hold) = held(&decision);
    assert_eq!(
        hold.create.as_ref().unwrap().spec.reason,
        "INC-123 roll back"
    );
}

#[test]
fn a_new_change_to_a_waiting_target_asks_again_without_counting_against_the_cap() {
    // alice already waits on checkout, for other content: the new request
    // replaces that one (the operator supersedes it), even at a cap of 1.
    let mut waiting = mk_request(
        "checkout-old",
        "prod-deploys",
        &alice_updates_checkout(),
        60,
    );
    waiting.spec.digest = Some(sha('e'));
    let decision = decide_checkout("maxOpenRequests: 1", [waiting]);
    let (_, hold) = held(&decision);
    assert!(hold.create.is_some(), "{hold:?}");
    assert_eq!(hold.missing, None);
}

#[test]
fn past_the_cap_of_open_requests_the_denial_says_why_and_nothing_is_made() {
    let policy = deployments_policy("prod-deploys", "maxOpenRequests: 2");
    let waits = |name: &str, age: i64| {
        mk_request(
            &format!("{name}-r"),
            "prod-deploys",
            &update_deployment("alice", &["dev"], "prod", name),
            age,
        )
    };
    let mut denied = waits("orders", 90);
    denied.status.get_or_insert_with(Default::default).denial = Some(crate::crd::Verdict {
        user: "bob".into(),
        time: Time(ts(NOW - 80)),
        reason: "no".into(),
    });
    let mut other_policy = waits("billing", 90);
    other_policy.spec.policy = "elsewhere".into();
    let mut bobs = mk_request(
        "bobs",
        "prod-deploys",
        &update_deployment("bob", &["dev"], "prod", "search"),
        90,
    );
    bobs.spec.requester = "bob".into();
    // Finished requests, others' requests and other policies take no room.
    let index = mk_index(
        [policy.clone()],
        [waits("cart", 60), denied, other_policy, bobs],
    );
    let roomy = decide_now(&alice_updates_checkout(), &index);
    assert!(
        held(&roomy).1.create.is_some(),
        "one open of two: room left"
    );

    let index = mk_index([policy], [waits("cart", 60), waits("search", 30)]);
    let attempt = alice_updates_checkout();
    let decision = decide_now(&attempt, &index);
    let (name, hold) = held(&decision);
    assert!(hold.create.is_none() && hold.name.is_empty(), "{hold:?}");
    assert_eq!(hold.missing, Some(Missing::Room { open: 2 }));
    let text = message::denial(&attempt, name, hold, message::RequestState::Pending);
    assert!(
        text.contains("already has 2 open requests")
            && text.contains("spec.maxOpenRequests")
            && text.contains("kubectl approve list -A --requester alice"),
        "{text}"
    );
}

/// alice relabels namespace `prod` from `before` to `after`.
fn relabel(before: &[(&str, &str)], after: &[(&str, &str)]) -> Attempt {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut attempt = mk_attempt(
        "alice",
        &["dev"],
        Operation::Update,
        mk_target("", "namespaces", "", "prod"),
    );
    attempt.request_namespace = "prod".into();
    attempt.relabel = Some(Box::new(crate::admission::attempt::Relabel {
        before: labels(before),
        after: labels(after),
    }));
    attempt
}

#[test]
fn relabelling_a_namespace_out_of_a_policys_scope_is_held_under_that_policy() {
    let policy = rule_policy(
        "prod-by-label",
        "{apiGroups: [apps], resources: [deployments], operations: [UPDATE], \
         namespaceSelector: {matchLabels: {env: prod}}}",
    );
    let index = mk_index([policy], []);
    let out = relabel(&[("env", "prod")], &[("env", "dev")]);
    let decision = decide_now(&out, &index);
    let (name, hold) = held(&decision);
    assert_eq!(name, "prod-by-label");
    assert_eq!(hold.namespace, CONTROL_NAMESPACE);
    let new = hold.create.as_ref().expect("a request to relabel");
    assert_eq!(new.spec.target.to_string(), "namespaces/prod");

    for (before, after) in [
        (
            &[("env", "prod")][..],
            &[("env", "prod"), ("team", "a")][..],
        ),
        (&[("env", "dev")][..], &[("env", "prod")][..]),
        (&[][..], &[("team", "a")][..]),
    ] {
        let decision = decide_now(&relabel(before, after), &index);
        assert!(
            decision.verdicts.is_empty(),
            "{before:?} → {after:?} stays in scope or was never in it"
        );
    }
}

#[test]
fn namespace_updates_reach_the_webhook_only_when_a_policy_selects_by_label() {
    use crate::registration::rules_for;
    let by_name = rule_policy(
        "a",
        "{apiGroups: [apps], resources: [deployments], operations: [UPDATE], namespaces: [prod]}",
    );
    let by_label = rule_policy(
        "b",
        "{apiGroups: [apps], resources: [deployments], operations: [UPDATE], \
         namespaceSelector: {matchLabels: {env: prod}}}",
    );
    let namespaces = |groups: Vec<crate::registration::ScopedRules>| {
        groups
            .iter()
            .flat_map(|g| &g.rules)
            .any(|r| r.resources.as_deref() == Some(&["namespaces".to_owned()][..]))
    };
    assert!(!namespaces(rules_for([&by_name.spec])));
    assert!(namespaces(rules_for([&by_name.spec, &by_label.spec])));
}

//! Attacks on approval-gate's own records, through the real apiserver and the
//! real webhook binary. Each test is a named identity trying to get around
//! separation of duties; the guard refuses and names the broken rule.
//!
//! RBAC stands in front of the guard, so most attackers are the admin
//! impersonating someone with just enough RBAC groups to reach the webhook:
//! what is asserted is the guard's refusal, not RBAC's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{fmt::Debug, time::Duration};

use approval_gate::crd::{
    Approval, ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec, ApprovalRequestStatus,
    Operation, Target, Verdict,
};
use approval_gate_testenv::Identity;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use support::{webhook::await_policy, *};

/// How the apiserver words a refusal by approval-gate's guard.
const GUARD_REFUSAL: &str =
    "admission webhook \"guard.approvalgate.dev\" denied the request: approval-gate: ";

const REQUESTER: &str = "approval-gate:requesters";
const APPROVER: &str = "approval-gate:approvers";

// --- the scene: alice's change to a ConfigMap is held for approval ---

/// One test's world: its namespace, its policy, and the request alice's change is held on.
struct Scene {
    ns: String,
    policy: String,
    request: String,
}

/// A scene whose policy holds ConfigMap updates in a fresh namespace, approved
/// by `sre`; `extra` (YAML) adds or overrides top-level fields of the spec.
async fn held(prefix: &str, extra: &str) -> Scene {
    let ns = namespace(prefix).await;
    let policy = create_policy(&format!("{ns}-policy"), policy_spec(&ns, extra))
        .await
        .unwrap();
    await_policy(&policy).await;
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(config_map(&ns, "info"))
        .run()
        .ok();
    let denial = alice_changes(&ns, &[]).fails();
    let request = request_name(&denial, &ns);
    Scene {
        ns,
        policy,
        request,
    }
}

fn policy_spec(ns: &str, extra: &str) -> Value {
    let mut spec = json!({
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "namespaces": [ns], "operations": ["UPDATE"]}],
        "approvers": {"groups": ["sre"]},
    });
    if let Ok(Value::Object(extra)) = serde_yaml_ng::from_str::<Value>(extra) {
        spec.as_object_mut().unwrap().extend(extra);
    }
    spec
}

/// Creates a policy as the admin, once the guard is registered to judge it.
async fn create_policy(name: &str, spec: Value) -> Result<String, kube::Error> {
    support::webhook::webhook();
    let policy = ApprovalPolicy::new(name, serde_json::from_value(spec).unwrap());
    Api::<ApprovalPolicy>::all(client(&ADMIN).await)
        .create(&PostParams::default(), &policy)
        .await?;
    Ok(name.to_owned())
}

fn config_map(ns: &str, level: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {ns}}}\n\
         data: {{level: {level}}}\n"
    )
}

/// alice's change (always the same, so one approval covers it), with extra kubectl flags.
fn alice_changes(ns: &str, flags: &[&str]) -> KubectlOutput {
    kubectl(&ALICE)
        .args(["apply", "-f", "-"])
        .args(flags)
        .stdin(config_map(ns, "debug"))
        .run()
}

/// A scene whose request bob approved and alice's change then used.
async fn used(prefix: &str) -> Scene {
    let scene = held(prefix, "").await;
    acting_as(&BOB)
        .await
        .approve(&scene.ns, &scene.request)
        .await
        .unwrap();
    await_verdict(&scene.ns, true).await;
    alice_changes(&scene.ns, &[]).ok();
    scene
}

/// Waits until the webhook's cache agrees that alice's change is `allowed`, by
/// server dry runs (they neither use an approval nor create a request).
async fn await_verdict(ns: &str, allowed: bool) {
    for _ in 0..100 {
        if alice_changes(ns, &["--dry-run=server"]).success() == allowed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alice's change in {ns} never became allowed={allowed}");
}

async fn level(ns: &str) -> String {
    let cm = Api::<ConfigMap>::namespaced(client(&ADMIN).await, ns)
        .get("settings")
        .await
        .unwrap();
    cm.data.unwrap()["level"].clone()
}
async fn get_request(ns: &str, name: &str) -> ApprovalRequest {
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns)
        .get(name)
        .await
        .unwrap()
}

/// A request alice writes by hand for the scene's ConfigMap.
fn hand_made(
    scene: &Scene,
    requester: &str,
    digest: Option<&str>,
    reason: &str,
) -> ApprovalRequest {
    let mut req = ApprovalRequest::new(
        &format!("by-hand-{requester}"),
        ApprovalRequestSpec {
            requester: requester.into(),
            operation: Operation::Update,
            target: Target {
                api_group: String::new(),
                resource: "configmaps".into(),
                subresource: None,
                namespace: scene.ns.clone(),
                name: "settings".into(),
            },
            digest: digest.map(Into::into),
            reason: reason.into(),
            policy: scene.policy.clone(),
            change: None,
            previous: None,
        },
    );
    req.metadata.namespace = Some(scene.ns.clone());
    req
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// --- who acts ---

/// Someone writing to the API, with the name and groups the apiserver reports for them.
struct Caller {
    user: String,
    groups: Vec<String>,
    client: kube::Client,
}

async fn acting_as(id: &Identity) -> Caller {
    Caller {
        user: id.username.into(),
        groups: id.groups.iter().map(|g| (*g).to_owned()).collect(),
        client: client(id).await,
    }
}

/// The admin acting as `user` in `groups`: the apiserver reports only `user`.
async fn impersonated(user: &str, groups: &[&str]) -> Caller {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    Caller {
        user: user.into(),
        client: plane().client_impersonating(user, &groups).await.unwrap(),
        groups,
    }
}

impl Caller {
    fn requests(&self, ns: &str) -> Api<ApprovalRequest> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// An approval in this caller's own name and groups, given now.
    fn approval(&self) -> Approval {
        Approval {
            user: self.user.clone(),
            groups: self.groups.clone(),
            time: Time(Timestamp::now()),
            comment: "looks good".into(),
        }
    }

    /// A denial or revocation in this caller's own name, now.
    fn verdict(&self) -> Verdict {
        Verdict {
            user: self.user.clone(),
            time: Time(Timestamp::now()),
            reason: "not like this".into(),
        }
    }

    /// Reads the request, changes its status and writes it back, as approvers' tooling does.
    async fn write_status(
        &self,
        ns: &str,
        name: &str,
        change: impl FnOnce(&mut ApprovalRequestStatus),
    ) -> Result<ApprovalRequest, kube::Error> {
        let api = self.requests(ns);
        let mut req = api.get(name).await?;
        change(req.status.get_or_insert_with(Default::default));
        api.replace_status(name, &PostParams::default(), &req).await
    }

    async fn approve(&self, ns: &str, name: &str) -> Result<ApprovalRequest, kube::Error> {
        let approval = self.approval();
        self.write_status(ns, name, |s| s.approvals.push(approval))
            .await
    }

    async fn patch_status(
        &self,
        ns: &str,
        name: &str,
        params: &PatchParams,
        patch: &Patch<Value>,
    ) -> Result<ApprovalRequest, kube::Error> {
        self.requests(ns).patch_status(name, params, patch).await
    }

    async fn delete(&self, ns: &str, name: &str) -> Result<(), kube::Error> {
        self.requests(ns)
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
    }
}

/// Asserts that approval-gate's guard (not RBAC, not the schema) refused the
/// write for `rule`, and returns its words.
fn refused<T: Debug>(result: Result<T, kube::Error>, rule: &str) -> String {
    let status = match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("the guard should have refused ({rule}), got {other:?}"),
    };
    assert_eq!(status.code, 403, "{}", status.message);
    assert!(
        status.message.starts_with(GUARD_REFUSAL),
        "{}",
        status.message
    );
    assert!(
        status.message.ends_with(&format!("[rule: {rule}]")),
        "{}",
        status.message
    );
    status.message
}

/// Asserts that RBAC refused the write before it reached the guard.
fn forbidden_by_rbac<T: Debug>(result: Result<T, kube::Error>, user: &str) {
    let status = match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("RBAC should have refused {user}, got {other:?}"),
    };
    assert_eq!(status.code, 403, "{}", status.message);
    assert!(
        status.message.contains(&format!("User \"{user}\" cannot")),
        "{}",
        status.message
    );
}

/// Lets the members of a new group `verbs` approvalgate.dev `resource`; returns the group.
async fn grant_group(name: &str, resource: &str, verbs: &[&str]) -> String {
    let group = format!("guard-attacks:{name}");
    let rbac = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": group},
         "rules": [{"apiGroups": ["approvalgate.dev"], "resources": [resource], "verbs": verbs}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": group},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": group},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]},
    ]});
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(rbac.to_string())
        .run()
        .ok();
    // RBAC reads bindings from a cache: wait until it knows this one.
    let can = |verb: &str| {
        kubectl(&ADMIN)
            .args([
                "auth",
                "can-i",
                verb,
                &format!("{resource}.approvalgate.dev"),
            ])
            .args(["--as=someone", &format!("--as-group={group}")])
            .run()
            .success()
    };
    for _ in 0..100 {
        if verbs.iter().all(|v| can(v)) {
            return group;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("RBAC never granted {verbs:?} on {resource} to {group}");
}

// --- separation of duties ---

#[tokio::test]
async fn requester_cannot_approve_own_request_by_name_or_through_a_shared_group() {
    let scene = held("self", "approvers: {users: [alice], groups: [sre]}").await;
    let alice_by_name = impersonated("alice", &["dev", REQUESTER, APPROVER]).await;
    let msg = refused(
        alice_by_name.approve(&scene.ns, &scene.request).await,
        "no-self-approval",
    );
    assert!(msg.contains("cannot decide your own request"), "{msg}");

    let alice_in_sre = impersonated("alice", &["dev", REQUESTER, APPROVER, "sre"]).await;
    refused(
        alice_in_sre.approve(&scene.ns, &scene.request).await,
        "no-self-approval",
    );
    let retry = alice_changes(&scene.ns, &[]).fails();
    assert!(retry.contains("needs approval"), "{retry}");
}

#[tokio::test]
async fn outsider_cannot_approve_even_with_approver_rbac() {
    let scene = held("outsider", "").await;
    let carol = impersonated("carol", &[APPROVER]).await;
    let msg = refused(
        carol.approve(&scene.ns, &scene.request).await,
        "eligible-approver",
    );
    assert!(msg.contains("you (carol) are not an approver"), "{msg}");

    let plain_carol = acting_as(&CAROL).await;
    let approval = json!({"status": {"approvals": [plain_carol.approval()]}});
    forbidden_by_rbac(
        plain_carol
            .patch_status(
                &scene.ns,
                &scene.request,
                &PatchParams::default(),
                &Patch::Merge(approval),
            )
            .await,
        "carol",
    );
}

#[tokio::test]
async fn nobody_writes_a_decision_in_someone_elses_name_by_any_kind_of_patch() {
    let scene = held("forge", "").await;
    let alice = impersonated("alice", &["dev", REQUESTER, APPROVER]).await;
    let bob = acting_as(&BOB).await;
    let in_bobs_name = serde_json::to_value(bob.approval()).unwrap();
    let json_patch = serde_json::from_value(
        json!([{"op": "add", "path": "/status/approvals", "value": [in_bobs_name]}]),
    )
    .unwrap();
    let apply = json!({
        "apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": scene.request, "namespace": scene.ns},
        "status": {"approvals": [in_bobs_name]},
    });
    let patches = [
        ("json", PatchParams::default(), Patch::Json(json_patch)),
        (
            "merge",
            PatchParams::default(),
            Patch::Merge(json!({"status": {"approvals": [in_bobs_name]}})),
        ),
        (
            "apply",
            PatchParams::apply("x").force(),
            Patch::Apply(apply),
        ),
    ];
    for (kind, params, patch) in patches {
        let msg = refused(
            alice
                .patch_status(&scene.ns, &scene.request, &params, &patch)
                .await,
            "decider-is-caller",
        );
        assert!(
            msg.contains("under your own name (alice), not \"bob\""),
            "{kind}: {msg}"
        );
    }

    let stderr = kubectl(&ADMIN)
        .args([
            "--as=alice",
            "--as-group=dev",
            &format!("--as-group={APPROVER}"),
        ])
        .args([
            "patch",
            "apr",
            &scene.request,
            "-n",
            &scene.ns,
            "--subresource=status",
        ])
        .args(["--type=merge", "-p"])
        .args([json!({"status": {"approvals": [in_bobs_name]}}).to_string()])
        .run()
        .fails();
    assert!(stderr.contains(GUARD_REFUSAL), "{stderr}");
    assert!(stderr.contains("[rule: decider-is-caller]"), "{stderr}");
    assert!(
        get_request(&scene.ns, &scene.request)
            .await
            .status
            .unwrap()
            .approvals
            .is_empty()
    );
}

#[tokio::test]
async fn one_write_records_one_decision_and_an_approver_approves_once() {
    let scene = held("once", "requiredApprovals: 2").await;
    let bob = acting_as(&BOB).await;
    let (first, second) = (bob.approval(), bob.approval());
    let msg = refused(
        bob.write_status(&scene.ns, &scene.request, |s| {
            s.approvals.extend([first, second])
        })
        .await,
        "one-decision",
    );
    assert!(msg.contains("may only append one approval"), "{msg}");

    bob.approve(&scene.ns, &scene.request).await.unwrap();
    let msg = refused(bob.approve(&scene.ns, &scene.request).await, "approve-once");
    assert!(msg.contains("already approved"), "{msg}");
}

#[tokio::test]
async fn an_approval_is_given_now_not_backdated_or_postdated() {
    let scene = held("skew", "").await;
    let bob = acting_as(&BOB).await;
    for offset in [
        SignedDuration::from_hours(-1),
        SignedDuration::from_hours(1),
    ] {
        let mut approval = bob.approval();
        approval.time = Time(Timestamp::now() + offset);
        let msg = refused(
            bob.write_status(&scene.ns, &scene.request, |s| s.approvals.push(approval))
                .await,
            "decision-time-is-now",
        );
        assert!(
            msg.contains("must be now") && msg.contains("at most 120s earlier or 5s later"),
            "{offset}: {msg}"
        );
    }
}

#[tokio::test]
async fn an_approval_lists_only_the_approvers_own_groups() {
    let scene = held("groups", "").await;
    let bob = acting_as(&BOB).await;
    let mut approval = bob.approval();
    approval.groups.push("security".into());
    let msg = refused(
        bob.write_status(&scene.ns, &scene.request, |s| s.approvals.push(approval))
            .await,
        "groups-are-yours",
    );
    assert!(
        msg.contains("group \"security\", which you are not a member of"),
        "{msg}"
    );
}

#[tokio::test]
async fn approval_gate_itself_never_decides() {
    let scene = held("controller", "").await;
    let controller = acting_as(&CONTROLLER).await;
    let bob = acting_as(&BOB).await;
    for approval in [controller.approval(), bob.approval()] {
        let msg = refused(
            controller
                .write_status(&scene.ns, &scene.request, |s| s.approvals.push(approval))
                .await,
            "controller-never-decides",
        );
        assert!(
            msg.contains("can never add, change or remove an approval"),
            "{msg}"
        );
    }
}

// --- the approved action is fixed ---

#[tokio::test]
async fn the_approved_action_can_never_be_changed_even_by_the_admin() {
    let scene = held("retarget", "").await;
    acting_as(&BOB)
        .await
        .approve(&scene.ns, &scene.request)
        .await
        .unwrap();
    let admin = acting_as(&ADMIN).await.requests(&scene.ns);
    for change in [
        json!({"spec": {"target": {"name": "payments"}}}),
        json!({"spec": {"operation": "DELETE"}}),
        json!({"spec": {"digest": DIGEST}}),
    ] {
        // The CRD's CEL rule answers before any webhook is called.
        let err = admin
            .patch(
                &scene.request,
                &PatchParams::default(),
                &Patch::Merge(&change),
            )
            .await
            .unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("expected an API error, got {err}")
        };
        assert_eq!(status.code, 422, "{change}");
        assert!(
            status.message.contains("spec is immutable"),
            "{}",
            status.message
        );
    }
    // Metadata is not the action: the guard lets the admin label it.
    let label = json!({"metadata": {"labels": {"ticket": "inc-42"}}});
    admin
        .patch(
            &scene.request,
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await
        .unwrap();
}

// --- the request's state ---

#[tokio::test]
async fn a_denied_request_cannot_be_approved() {
    let scene = held("denied", "").await;
    let bob = acting_as(&BOB).await;
    let denial = bob.verdict();
    bob.write_status(&scene.ns, &scene.request, |s| s.denial = Some(denial))
        .await
        .unwrap();
    let msg = refused(
        acting_as(&DAVE)
            .await
            .approve(&scene.ns, &scene.request)
            .await,
        "state-allows-decision",
    );
    assert!(
        msg.contains("cannot be approved: it is Denied (final)"),
        "{msg}"
    );
}

#[tokio::test]
async fn the_next_approver_sees_the_earlier_denial() {
    let scene = held("denied-again", "").await;
    let bob = acting_as(&BOB).await;
    let denial = bob.verdict();
    bob.write_status(&scene.ns, &scene.request, |s| s.denial = Some(denial))
        .await
        .unwrap();
    // The webhook's cache must see the denial before the retry is judged.
    let mut again = String::new();
    for _ in 0..100 {
        again = request_name(&alice_changes(&scene.ns, &[]).fails(), &scene.ns);
        if again != scene.request {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = get_request(&scene.ns, &again).await;
    let previous = fresh
        .spec
        .previous
        .clone()
        .expect("the new request names the denied one");
    assert_eq!(
        (
            previous.name.as_str(),
            previous.by.as_str(),
            previous.reason.as_str()
        ),
        (scene.request.as_str(), "bob", "not like this")
    );
    let described = plugin_ok(&DAVE, &["describe", &again, "-n", &scene.ns]);
    assert!(
        described.contains(&format!(
            "Previously:   {} Denied by bob: not like this",
            scene.request
        )),
        "{described}"
    );
    // Nobody else may write such a pointer.
    let mut forged = fresh.clone();
    forged.metadata = kube::api::ObjectMeta {
        name: Some("forged-previous".into()),
        namespace: Some(scene.ns.clone()),
        ..Default::default()
    };
    forged.status = None;
    forged.spec.change = None;
    let result = acting_as(&ALICE)
        .await
        .requests(&scene.ns)
        .create(&PostParams::default(), &forged)
        .await;
    refused(result, "previous-by-approval-gate");
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() {
    let scene = held("expired", "approvalTTL: 2s").await;
    acting_as(&BOB)
        .await
        .approve(&scene.ns, &scene.request)
        .await
        .unwrap();
    // The approval TTL must pass; approval times are stored to the second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let msg = refused(
        acting_as(&DAVE)
            .await
            .approve(&scene.ns, &scene.request)
            .await,
        "state-allows-decision",
    );
    assert!(msg.contains("cannot be approved: it has expired"), "{msg}");
}

#[tokio::test]
async fn a_used_request_cannot_be_approved_again() {
    let scene = used("used").await;
    let msg = refused(
        acting_as(&DAVE)
            .await
            .approve(&scene.ns, &scene.request)
            .await,
        "state-allows-decision",
    );
    assert!(msg.contains("it is Used (final)"), "{msg}");
}

#[tokio::test]
async fn revoking_an_approval_holds_the_retry_again() {
    let scene = held("revoke", "").await;
    let bob = acting_as(&BOB).await;
    bob.approve(&scene.ns, &scene.request).await.unwrap();
    await_verdict(&scene.ns, true).await;

    let revocation = bob.verdict();
    bob.write_status(&scene.ns, &scene.request, |s| {
        s.revocation = Some(revocation)
    })
    .await
    .unwrap();
    await_verdict(&scene.ns, false).await;
    let retry = alice_changes(&scene.ns, &[]).fails();
    assert!(retry.contains("needs approval"), "{retry}");
    assert!(
        retry.contains(&format!("request {} is revoked", scene.request)),
        "{retry}"
    );
    assert_eq!(level(&scene.ns).await, "info");
}

// --- creating requests ---

#[tokio::test]
async fn nobody_asks_for_approval_on_someone_elses_behalf() {
    let scene = held("behalf", "").await;
    let alice = acting_as(&ALICE).await.requests(&scene.ns);
    let for_bob = hand_made(&scene, "bob", Some(DIGEST), "");
    let msg = refused(
        alice.create(&PostParams::default(), &for_bob).await,
        "requester-is-creator",
    );
    assert!(msg.contains("spec.requester must be you (alice)"), "{msg}");
    // For herself, with the content bound, alice may.
    let for_alice = hand_made(&scene, "alice", Some(DIGEST), "");
    alice
        .create(&PostParams::default(), &for_alice)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_hand_made_request_without_digest_is_refused_with_the_way_to_get_one() {
    let scene = held("digest", "").await;
    let alice = acting_as(&ALICE).await.requests(&scene.ns);
    let msg = refused(
        alice
            .create(
                &PostParams::default(),
                &hand_made(&scene, "alice", None, "INC-42"),
            )
            .await,
        "digest-required",
    );
    for step in [
        "spec.digest",
        "Try the change itself",
        "denied with the name of a request approval-gate creates for you",
        "once approved, retry the same change",
    ] {
        assert!(msg.contains(step), "{step}: {msg}");
    }
}

#[tokio::test]
async fn a_request_without_reason_is_refused_when_the_policy_requires_one() {
    // No attempt first: under requireReason, an attempt without a reason
    // annotation creates no request (see the next test).
    let ns = namespace("reason").await;
    let policy = create_policy(
        &format!("{ns}-policy"),
        policy_spec(&ns, "{requireReason: true, bindToContent: false}"),
    )
    .await
    .unwrap();
    await_policy(&policy).await;
    let scene = Scene {
        ns,
        policy,
        request: String::new(),
    };
    let alice = acting_as(&ALICE).await.requests(&scene.ns);
    let msg = refused(
        alice
            .create(
                &PostParams::default(),
                &hand_made(&scene, "alice", None, ""),
            )
            .await,
        "reason-required",
    );
    assert!(msg.contains("spec.reason"), "{msg}");
    alice
        .create(
            &PostParams::default(),
            &hand_made(&scene, "alice", None, "INC-42"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_policy_requiring_a_reason_takes_it_from_the_object_annotation() {
    let ns = namespace("reasonauto").await;
    let policy = create_policy(
        &format!("{ns}-policy"),
        policy_spec(&ns, "requireReason: true"),
    )
    .await
    .unwrap();
    await_policy(&policy).await;
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(config_map(&ns, "info"))
        .run()
        .ok();
    // Without a reason, the denial says how to give one, and nothing is created.
    let denial = alice_changes(&ns, &[]).fails();
    assert!(denial.contains("approvalgate.dev/reason"), "{denial}");
    let made = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(made.items.is_empty(), "{:?}", made.items);
    // With the annotation, the pending request carries it.
    let annotated = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\n  \
         annotations: {{approvalgate.dev/reason: INC-123}}\ndata: {{level: debug}}\n"
    );
    let denial = kubectl(&ALICE)
        .args(["apply", "-f", "-"])
        .stdin(annotated)
        .run()
        .fails();
    assert!(denial.contains("was created"), "{denial}");
    let request = get_request(&ns, &request_name(&denial, &ns)).await;
    assert_eq!(request.spec.reason, "INC-123");
}

// --- withdrawing requests ---

#[tokio::test]
async fn requester_withdraws_own_request_but_an_approver_may_not() {
    let scene = held("withdraw", "").await;
    forbidden_by_rbac(
        acting_as(&BOB)
            .await
            .delete(&scene.ns, &scene.request)
            .await,
        "bob",
    );
    let bob_with_rbac = impersonated("bob", &["sre", APPROVER, REQUESTER]).await;
    let msg = refused(
        bob_with_rbac.delete(&scene.ns, &scene.request).await,
        "withdraw-own-only",
    );
    assert!(
        msg.contains("only the requester (alice) or an admin"),
        "{msg}"
    );
    // Deleting all of a namespace's requests at once is judged request by request.
    let bulk = grant_group(
        "bulk-deleters",
        "approvalrequests",
        &["list", "deletecollection"],
    )
    .await;
    let bob_in_bulk = impersonated("bob", &["sre", APPROVER, bulk.as_str()]).await;
    let everything = bob_in_bulk
        .requests(&scene.ns)
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    refused(everything.map(|_| ()), "withdraw-own-only");
    acting_as(&ALICE)
        .await
        .delete(&scene.ns, &scene.request)
        .await
        .unwrap();
}

#[tokio::test]
async fn requester_cannot_erase_a_used_or_denied_request() {
    let used = used("erase-used").await;
    let denied = held("erase-denied", "").await;
    let bob = acting_as(&BOB).await;
    let denial = bob.verdict();
    bob.write_status(&denied.ns, &denied.request, |s| s.denial = Some(denial))
        .await
        .unwrap();
    let alice = acting_as(&ALICE).await;
    for (scene, what) in [(&used, "used"), (&denied, "denied")] {
        let msg = refused(
            alice.delete(&scene.ns, &scene.request).await,
            "decided-requests-stay",
        );
        assert!(msg.contains(&format!("this request was {what}")), "{msg}");
        assert!(
            get_request(&scene.ns, &scene.request)
                .await
                .status
                .is_some()
        );
    }
    // A cluster admin still may.
    acting_as(&ADMIN)
        .await
        .delete(&used.ns, &used.request)
        .await
        .unwrap();
}

/// The reasons of the Events about request `name` in `ns`.
async fn event_reasons(ns: &str, name: &str) -> Vec<String> {
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client(&ADMIN).await, ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap();
    events.items.into_iter().filter_map(|e| e.reason).collect()
}

#[tokio::test]
async fn a_use_is_recorded_even_when_an_admin_deletes_the_request_at_once() {
    let scene = used("erase-at-once").await;
    acting_as(&ADMIN)
        .await
        .delete(&scene.ns, &scene.request)
        .await
        .unwrap();
    // No operator runs here: the webhook that recorded the use wrote the trail.
    let mut reasons = Vec::new();
    for _ in 0..100 {
        reasons = event_reasons(&scene.ns, &scene.request).await;
        if reasons.iter().any(|r| r == "Used") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for reason in ["Requested", "Approved", "Used"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} Event: {reasons:?}"
        );
    }
    let log = support::webhook::webhook().log();
    assert!(
        log.lines().any(|l| l.contains("approval_gate::audit")
            && l.contains(&scene.request)
            && l.contains("\"Used\"")),
        "no audit line for the use"
    );
}

#[tokio::test]
async fn deleting_an_approved_request_grants_nothing() {
    let scene = held("deleted", "").await;
    acting_as(&BOB)
        .await
        .approve(&scene.ns, &scene.request)
        .await
        .unwrap();
    await_verdict(&scene.ns, true).await;
    acting_as(&ADMIN)
        .await
        .delete(&scene.ns, &scene.request)
        .await
        .unwrap();
    await_verdict(&scene.ns, false).await;

    let retry = alice_changes(&scene.ns, &[]).fails();
    assert!(retry.contains("needs approval"), "{retry}");
    let fresh = get_request(&scene.ns, &request_name(&retry, &scene.ns)).await;
    assert!(fresh.status.unwrap_or_default().approvals.is_empty());
    assert_eq!(level(&scene.ns).await, "info");
}

// --- impersonation ---

#[tokio::test]
async fn an_impersonated_approval_is_bobs_and_only_the_audit_log_names_the_admin() {
    let scene = held("impersonate", "").await;
    let bob = impersonated("bob", &["sre", APPROVER]).await;
    // The guard judges the impersonated identity, not the admin behind it: an
    // approval in the admin's name, or claiming the admin's group, is refused.
    let as_admin = Approval {
        user: "admin".into(),
        ..bob.approval()
    };
    let msg = refused(
        bob.write_status(&scene.ns, &scene.request, |s| s.approvals.push(as_admin))
            .await,
        "decider-is-caller",
    );
    assert!(msg.contains("bob"), "{msg}");
    let masters = Approval {
        groups: vec!["sre".into(), "system:masters".into()],
        ..bob.approval()
    };
    refused(
        bob.write_status(&scene.ns, &scene.request, |s| s.approvals.push(masters))
            .await,
        "groups-are-yours",
    );
    bob.approve(&scene.ns, &scene.request).await.unwrap();
    let stored = get_request(&scene.ns, &scene.request).await;
    let approvals = stored.status.unwrap().approvals;
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(
        (approvals[0].user.as_str(), approvals[0].groups.as_slice()),
        ("bob", ["sre".to_owned(), APPROVER.to_owned()].as_slice())
    );

    let entry = audit_entry(|e| {
        e["objectRef"]["name"] == scene.request.as_str()
            && e["objectRef"]["subresource"] == "status"
            && e["verb"] == "update"
            && e["stage"] == "ResponseComplete"
            && e["responseStatus"]["code"] == 200
    })
    .await;
    assert_eq!(entry["user"]["username"], "admin", "{entry}");
    assert_eq!(entry["impersonatedUser"]["username"], "bob", "{entry}");
    assert_eq!(entry["responseStatus"]["code"], 200, "{entry}");
    assert_eq!(
        entry["annotations"]["guard.approvalgate.dev/guard"], "allowed",
        "{entry}"
    );
}

/// The first audit event that `matches`, once the apiserver has written it.
async fn audit_entry(matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let log = std::fs::read_to_string(plane().audit_log()).unwrap();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| matches(e));
        if let Some(entry) = found {
            return entry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no matching audit event in {}",
        plane().audit_log().display()
    );
}

// --- policies ---

#[tokio::test]
async fn an_invalid_policy_is_refused_naming_the_field() {
    let ns = namespace("badpolicy").await;
    let cases = [
        (
            "approval-ttl-48h",
            policy_spec(&ns, "approvalTTL: 48h"),
            "spec.approvalTTL: 48h is outside the sane range",
        ),
        (
            "connect-pods",
            json!({
                "rules": [{"apiGroups": [""], "resources": ["pods"], "operations": ["CONNECT"]}],
                "approvers": {"groups": ["sre"]},
            }),
            "spec.rules[0]: CONNECT applies to subresources such as pods/exec",
        ),
        // What the apiserver would refuse in the webhook rules derived from it.
        (
            "wildcard-mixed",
            json!({
                "rules": [{"apiGroups": ["*", "apps"], "resources": ["deployments"], "operations": ["UPDATE"]}],
                "approvers": {"groups": ["sre"]},
            }),
            "spec.rules[0].apiGroups: \"*\" matches every group",
        ),
    ];
    for (name, spec, names_the_field) in cases {
        let msg = refused(create_policy(name, spec).await, "valid-policy");
        assert!(msg.contains(names_the_field), "{name}: {msg}");
    }
}

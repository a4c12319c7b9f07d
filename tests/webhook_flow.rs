//! The approval flow as users meet it: the real apiserver calls the real
//! webhook binary; people act through the real kubectl, as themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use approval_gate::crd::{Approval, ApprovalRequest, Operation, Phase};
use approval_gate_testenv::{CONTROL_NAMESPACE, Identity};
use jiff::Timestamp;
use k8s_openapi::{api::apps::v1::Deployment, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use support::{install_policy as policy, *};

async fn get_request(ns: &str, name: &str) -> ApprovalRequest {
    Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns)
        .get(name)
        .await
        .unwrap()
}

/// `who` approves through the status subresource, as an approver's tooling does.
async fn approve(who: &Identity, ns: &str, name: &str) {
    let api = Api::<ApprovalRequest>::namespaced(client(who).await, ns);
    let mut req = api.get(name).await.unwrap();
    req.status
        .get_or_insert_with(Default::default)
        .approvals
        .push(Approval {
            user: who.username.to_owned(),
            groups: who.groups.iter().map(|g| (*g).to_owned()).collect(),
            time: Time(Timestamp::now()),
            comment: "looks good".into(),
        });
    api.replace_status(name, &PostParams::default(), &req)
        .await
        .unwrap();
}

async fn image_of(ns: &str, name: &str) -> String {
    let d = Api::<Deployment>::namespaced(client(&ADMIN).await, ns)
        .get(name)
        .await
        .unwrap();
    d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

const UPDATE_POLICY: &str = "rules: [{apiGroups: [apps], resources: [deployments, deployments/scale], \
    operations: [UPDATE, DELETE]}]\napprovers: {groups: [sre]}\n";

fn scoped(ns: &str, spec: &str) -> String {
    spec.replace("operations:", &format!("namespaces: [{ns}], operations:"))
}

#[tokio::test]
async fn try_denied_approve_retry_passes_once() {
    let ns = namespace("flow").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();

    // 1. alice tries: held, with a message that says what to do.
    let msg = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    assert!(msg.contains("needs approval under ApprovalPolicy"), "{msg}");
    let name = request_name(&msg, &ns);
    assert!(
        msg.contains(&format!("kubectl approve {name} -n {ns}")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("kubectl approve wait {name} -n {ns}")),
        "{msg}"
    );

    // 2. The webhook created the pending request from the admission request.
    let req = get_request(&ns, &name).await;
    assert_eq!(req.spec.requester, "alice");
    assert_eq!(req.spec.target.to_string(), "deployments.apps/checkout");
    assert!(req.spec.digest.as_deref().unwrap().starts_with("sha256:"));
    let status = req.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(status.target.as_deref(), Some("deployments.apps/checkout"));
    assert!(status.expires_at.is_some());
    let listed = kubectl(&ALICE)
        .args(["get", "apr", &name, "-n", &ns, "--no-headers"])
        .run()
        .ok();
    assert!(
        listed.contains("Pending") && listed.contains("deployments.apps/checkout"),
        "{listed}"
    );

    // 3. bob approves; alice's retry passes and uses the approval up.
    approve(&BOB, &ns, &name).await;
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;
    apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).ok();
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
    let used = get_request(&ns, &name).await;
    // Recording the use writes the status only: the labels and annotations
    // the webhook's cache leaves out are still there.
    let labels = used.metadata.labels.clone().unwrap_or_default();
    assert!(labels.contains_key("approvalgate.dev/policy"), "{labels:?}");
    let annotations = used.metadata.annotations.clone().unwrap_or_default();
    assert!(
        annotations.contains_key(approval_gate::crd::REQUESTED_AT_ANNOTATION),
        "{annotations:?}"
    );
    let used = used.status.unwrap();
    assert!(used.used_at.is_some());
    assert_eq!(used.used_by.unwrap().user, "alice");
    assert_eq!(used.phase, Some(Phase::Used));

    // 4. The same change again is a second use: denied, naming the used request.
    let again = kubectl(&ALICE)
        .args(["replace", "-f", "-"])
        .stdin(deployment(&ns, "checkout", "app:v2"))
        .run()
        .fails();
    assert!(
        again.contains(&format!("request {name} is used")),
        "{again}"
    );

    // 5. A different change needs a new approval.
    let changed = apply(&ALICE, &deployment(&ns, "checkout", "app:v3")).fails();
    assert_ne!(request_name(&changed, &ns), name);
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[tokio::test]
async fn expired_approval_is_denied() {
    let ns = namespace("expiry").await;
    let spec = format!("{}approvalTTL: 2s\n", scoped(&ns, UPDATE_POLICY));
    policy(&ns, &spec).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let name = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails(),
        &ns,
    );
    approve(&BOB, &ns, &name).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let msg = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    assert!(msg.contains(&format!("request {name} is expired")), "{msg}");
    assert_eq!(image_of(&ns, "checkout").await, "app:v1");
}

#[tokio::test]
async fn deletes_scale_and_server_side_create_are_gated() {
    let ns = namespace("gated").await;
    let spec = format!(
        "rules:\n- {{apiGroups: [apps], resources: [deployments, deployments/scale], namespaces: [{ns}], \
         operations: [CREATE, UPDATE, DELETE]}}\n- {{apiGroups: [''], resources: [namespaces], \
         namespaces: [{ns}], operations: [DELETE]}}\napprovers: {{groups: [sre]}}\n"
    );
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    policy(&ns, &spec).await;

    let scale = kubectl(&ALICE)
        .args(["scale", "deployment/checkout", "--replicas=3", "-n", &ns])
        .run()
        .fails();
    assert!(
        scale.contains("UPDATE deployments.apps/scale/checkout"),
        "{scale}"
    );

    let live: Deployment = Api::namespaced(client(&ADMIN).await, &ns)
        .get("checkout")
        .await
        .unwrap();
    let delete = kubectl(&ALICE)
        .args(["delete", "deployment", "checkout", "-n", &ns])
        .run()
        .fails();
    assert!(
        delete.contains("DELETE deployments.apps/checkout"),
        "{delete}"
    );
    let req = get_request(&ns, &request_name(&delete, &ns)).await;
    let uid = serde_json::json!({"metadata": {"uid": live.metadata.uid}});
    assert_eq!(
        req.spec.digest,
        approval_gate::admission::digest::digest(Operation::Delete, None, Some(&uid)),
        "a DELETE is bound to the object's uid"
    );

    let ssa = kubectl(&ALICE)
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(deployment(&ns, "payments", "app:v1"))
        .run()
        .fails();
    assert!(ssa.contains("CREATE deployments.apps/payments"), "{ssa}");

    let ns_delete = kubectl(&ALICE)
        .args(["delete", "namespace", &ns, "--wait=false"])
        .run()
        .fails();
    assert!(ns_delete.contains("DELETE namespaces/"), "{ns_delete}");
    let name = request_name(&ns_delete, CONTROL_NAMESPACE);
    assert_eq!(
        get_request(CONTROL_NAMESPACE, &name).await.spec.target.name,
        ns
    );
}

#[tokio::test]
async fn kubectl_exec_is_gated() {
    let ns = namespace("exec").await;
    let spec = format!(
        "rules: [{{apiGroups: [''], resources: [pods/exec], namespaces: [{ns}], operations: [CONNECT]}}]\n\
         approvers: {{groups: [sre]}}\n"
    );
    policy(&ns, &spec).await;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-0, namespace: {ns}}}\n\
         spec: {{containers: [{{name: app, image: app:v1}}]}}\n"
    );
    apply(&ADMIN, &pod).ok();
    let msg = kubectl(&ALICE)
        .args(["exec", "web-0", "-n", &ns, "--", "cat", "/etc/secret"])
        .run()
        .fails();
    assert!(msg.contains("CONNECT pods/exec/web-0"), "{msg}");
    assert!(msg.contains("kubectl approve "), "{msg}");
    let req = get_request(&ns, &request_name(&msg, &ns)).await;
    assert_eq!(req.spec.target.subresource.as_deref(), Some("exec"));
}

#[tokio::test]
async fn server_dry_run_gets_the_same_verdict_without_side_effects() {
    let ns = namespace("dryrun").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let requests = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns);

    let dry = kubectl(&ALICE)
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(deployment(&ns, "checkout", "app:v2"))
        .run()
        .fails();
    assert!(
        dry.contains("needs approval") && dry.contains("would be created"),
        "{dry}"
    );
    assert!(
        requests
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // With an approval in place, a dry run passes and leaves it unused.
    let name = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails(),
        &ns,
    );
    approve(&BOB, &ns, &name).await;
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;
    assert!(
        get_request(&ns, &name)
            .await
            .status
            .unwrap()
            .used_at
            .is_none()
    );
    apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).ok();
}

/// A scale of `checkout` to `replicas` as the Horizontal Pod Autoscaler's
/// service account in `group`, impersonated by the admin: it reads and
/// replaces `deployments/scale`, the only rights its bootstrap role gives it.
async fn autoscaler_scales(ns: &str, group: &str, replicas: i32) -> Result<(), kube::Error> {
    let groups = ["system:serviceaccounts".to_owned(), group.to_owned()];
    let client = plane()
        .client_impersonating(
            "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            &groups,
        )
        .await
        .unwrap();
    let api = Api::<Deployment>::namespaced(client, ns);
    let mut scale = api.get_scale("checkout").await?;
    scale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec {
        replicas: Some(replicas),
    });
    api.replace_scale("checkout", &PostParams::default(), &scale)
        .await
        .map(|_| ())
}

/// No identity is exempt by default: a system service account passes only
/// through the policy's `exclude`, and is held like anyone else without it.
#[tokio::test]
async fn unmatched_namespaces_and_excluded_users_and_groups_pass() {
    let ns = namespace("notgated").await;
    let other = namespace("other").await;
    let spec = format!(
        "{}exclude: {{users: ['{}'], groups: ['system:serviceaccounts:kube-system']}}\n",
        scoped(&ns, UPDATE_POLICY),
        GITOPS.username
    );
    policy(&ns, &spec).await;
    for n in [&ns, &other] {
        apply(&ADMIN, &deployment(n, "checkout", "app:v1")).ok();
    }
    // A namespace the policy does not match.
    apply(&ALICE, &deployment(&other, "checkout", "app:v2")).ok();
    // An excluded GitOps identity.
    apply(&GITOPS, &deployment(&ns, "checkout", "app:v2")).ok();
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
    // A system service account in the excluded group.
    autoscaler_scales(&ns, "system:serviceaccounts:kube-system", 2)
        .await
        .unwrap();
    // The same account, reported without that group, is held: nothing but
    // the exclude let it through.
    let held = match autoscaler_scales(&ns, "autoscalers", 3).await {
        Err(kube::Error::Api(status)) if status.code == 403 => status.message,
        other => panic!("not held: {other:?}"),
    };
    assert!(held.contains("needs approval"), "{held}");
    assert!(
        held.contains("UPDATE deployments.apps/scale/checkout"),
        "{held}"
    );
    let replicas = Api::<Deployment>::namespaced(client(&ADMIN).await, &ns)
        .get("checkout")
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(2));
}

#[tokio::test]
async fn warn_mode_prints_a_warning_and_allows() {
    let ns = namespace("warn").await;
    policy(&ns, &format!("{}mode: Warn\n", scoped(&ns, UPDATE_POLICY))).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let out = apply(&ALICE, &deployment(&ns, "checkout", "app:v2"));
    assert!(out.success(), "{}", out.stderr());
    assert!(
        out.stderr().contains("Warning: approval-gate:"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("mode Warn"), "{}", out.stderr());
}

async fn events_for(ns: &str, name: &str, reason: &str) -> Vec<String> {
    for _ in 0..100 {
        let out = kubectl(&ADMIN)
            .args(["get", "events", "-n", ns, "--field-selector"])
            .args([format!("involvedObject.name={name},reason={reason}")])
            .args(["-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}"])
            .run()
            .ok();
        let lines: Vec<String> = out.lines().map(str::to_owned).collect();
        if !lines.is_empty() {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {reason} event for {name} in {ns}");
}

#[tokio::test]
async fn audit_mode_allows_and_records_an_event() {
    let ns = namespace("audit").await;
    policy(&ns, &format!("{}mode: Audit\n", scoped(&ns, UPDATE_POLICY))).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let out = apply(&ALICE, &deployment(&ns, "checkout", "app:v2"));
    assert!(
        out.success() && !out.stderr().contains("Warning"),
        "{}",
        out.stderr()
    );
    let events = events_for(&ns, "checkout", "Audited").await;
    assert!(events[0].contains("mode Audit"), "{events:?}");
    assert!(
        support::webhook::metrics()
            .await
            .contains("verdict=\"audited\"")
    );
}

#[tokio::test]
async fn break_glass_passes_with_a_warning_and_an_event() {
    let ns = namespace("glass").await;
    policy(
        &ns,
        &format!(
            "{}breakGlass: {{groups: [dev]}}\n",
            scoped(&ns, UPDATE_POLICY)
        ),
    )
    .await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let out = apply(&ALICE, &deployment(&ns, "checkout", "app:v2"));
    assert!(out.success(), "{}", out.stderr());
    assert!(out.stderr().contains("break-glass"), "{}", out.stderr());
    let events = events_for(&ns, "checkout", "BreakGlass").await;
    assert!(events[0].contains("alice"), "{events:?}");
}

#[tokio::test]
async fn blocked_attempt_shows_in_kubectl_describe_of_the_target() {
    let ns = namespace("describe").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let name = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails(),
        &ns,
    );
    events_for(&ns, "checkout", "Blocked").await;
    let described = kubectl(&ADMIN)
        .args(["describe", "deployment", "checkout", "-n", &ns])
        .run()
        .ok();
    assert!(
        described.contains("Blocked") && described.contains(&name),
        "{described}"
    );

    // The decision's audit annotations land in the apiserver's audit log.
    let audit = std::fs::read_to_string(plane().audit_log()).unwrap();
    let entry = audit
        .lines()
        .find(|l| {
            l.contains(&format!("{ns}/{name}")) && l.contains("validate.approvalgate.dev/verdict")
        })
        .unwrap_or_else(|| panic!("no audit entry names {ns}/{name}"));
    assert!(
        entry.contains(r#""validate.approvalgate.dev/verdict":"held""#),
        "{entry}"
    );
    assert!(
        entry.contains(r#""validate.approvalgate.dev/policy":""#),
        "{entry}"
    );
}

#[tokio::test]
async fn a_hundred_concurrent_uses_of_one_approval_allow_exactly_one() {
    let ns = namespace("race").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let name = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails(),
        &ns,
    );
    approve(&BOB, &ns, &name).await;
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;

    // The exact object alice's approved apply would write.
    let deployments = Api::<Deployment>::namespaced(client(&ALICE).await, &ns);
    let desired = with_image(&deployments.get("checkout").await.unwrap(), "app:v2");
    let probe = kubectl(&ALICE)
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(deployment(&ns, "checkout", "app:v2"))
        .run();
    assert!(
        probe.success(),
        "the dry run should be allowed: {}",
        probe.stderr()
    );

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let api = deployments.clone();
        let mut obj = desired.clone();
        obj.metadata.resource_version = None;
        obj.metadata.managed_fields = None;
        tasks.spawn(async move { api.replace("checkout", &PostParams::default(), &obj).await });
    }
    let results = tasks.join_all().await;
    let allowed = results.iter().filter(|r| r.is_ok()).count();
    let denied: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        allowed,
        1,
        "exactly one use may pass; denials: {:?}",
        &denied[..denied.len().min(3)]
    );
    assert!(
        denied.iter().all(|e| e.contains("approval-gate")),
        "{:?}",
        &denied[..3]
    );
    let status = get_request(&ns, &name).await.status.unwrap();
    assert_eq!(status.used_by.unwrap().user, "alice");
}

#[tokio::test]
async fn readiness_stays_false_until_the_caches_have_synced() {
    // A webhook whose identity may not list anything yet: its watches fail.
    let user = format!("late-syncer-{}", std::process::id());
    let dir = plane().dir().join(&user);
    std::fs::create_dir_all(&dir).unwrap();
    let admin = std::fs::read_to_string(plane().kubeconfig(&ADMIN)).unwrap();
    let mut config: serde_json::Value = serde_yaml_ng::from_str(&admin).unwrap();
    config["users"][0]["user"]["as"] = serde_json::json!(user);
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    let running = support::webhook::spawn(&dir, &kubeconfig);

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", running.metrics_url)).send();
    let mut served = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(healthz) = get("/healthz").await else {
            continue;
        };
        served = true;
        assert!(healthz.status().is_success());
        let readyz = get("/readyz").await.unwrap();
        assert_eq!(readyz.status(), 503, "ready before any watch could list");
    }
    assert!(served, "the webhook never served /healthz");

    // Once its identity may read, the watches sync and it becomes ready.
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "approval-gate"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    });
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(binding.to_string())
        .run()
        .ok();
    running.wait_ready(Duration::from_secs(60)).await.unwrap();
}

#[tokio::test]
async fn an_approval_given_after_client_side_apply_is_honoured_by_server_side_apply() {
    // The digest leaves out what tooling adds, so the same desired state
    // matches whichever way it is applied.
    let ns = namespace("ssa").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let name = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails(),
        &ns,
    );
    approve(&BOB, &ns, &name).await;
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;
    kubectl(&ALICE)
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .stdin(deployment(&ns, "checkout", "app:v2"))
        .run()
        .ok();
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[tokio::test]
async fn gitops_dry_run_then_sync_follows_the_same_flow() {
    // Argo CD and Flux diff with a server dry run, then apply server-side.
    let ns = namespace("gitops").await;
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let sync = |dry: bool| {
        let mut args = vec![
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=argocd-controller",
        ];
        if dry {
            args.push("--dry-run=server");
        }
        kubectl(&GITOPS)
            .args(args)
            .args(["-f", "-"])
            .stdin(deployment(&ns, "checkout", "app:v2"))
            .run()
    };
    let dry = sync(true).fails();
    assert!(dry.contains("would be created"), "{dry}");
    let requests = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns);
    assert!(
        requests
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let held = sync(false).fails();
    let name = request_name(&held, &ns);
    assert_eq!(
        get_request(&ns, &name).await.spec.requester,
        GITOPS.username
    );
    // A retry before approval names the same request; nothing new is created.
    assert_eq!(request_name(&sync(false).fails(), &ns), name);
    assert_eq!(
        requests
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    approve(&BOB, &ns, &name).await;
    await_allowed(&GITOPS, &deployment(&ns, "checkout", "app:v2")).await;
    sync(false).ok();
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[tokio::test]
async fn helm_upgrade_is_held_and_passes_after_approval() {
    let helm = plane().bin_dir().join("helm");
    assert!(helm.exists(), "helm is built by hack/build-tools.sh");
    let ns = namespace("helm").await;
    let chart = plane().dir().join(format!("chart-{ns}"));
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        deployment(&ns, "checkout", "app:{{ .Values.tag }}"),
    )
    .unwrap();
    let run = |id: &Identity, verb: &str, tag: &str| {
        std::process::Command::new(&helm)
            .args([
                verb,
                "shop",
                chart.to_str().unwrap(),
                "-n",
                &ns,
                "--set",
                &format!("tag={tag}"),
            ])
            .env("KUBECONFIG", plane().kubeconfig(id))
            .env("HELM_CACHE_HOME", plane().dir().join("helm-cache"))
            .env("HELM_CONFIG_HOME", plane().dir().join("helm-config"))
            .env("HELM_DATA_HOME", plane().dir().join("helm-data"))
            .output()
            .unwrap()
    };
    let installed = run(&ADMIN, "install", "v1");
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    policy(&ns, &scoped(&ns, UPDATE_POLICY)).await;

    let held = run(&ALICE, "upgrade", "v2");
    let stderr = String::from_utf8_lossy(&held.stderr).into_owned();
    assert!(
        !held.status.success() && stderr.contains("needs approval"),
        "{stderr}"
    );
    approve(&BOB, &ns, &request_name(&stderr, &ns)).await;
    // helm has no dry run the webhook judges alike: retry until the
    // webhook's cache has seen the approval (a held upgrade changes nothing).
    let mut retried = run(&ALICE, "upgrade", "v2");
    for _ in 0..50 {
        if retried.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        retried = run(&ALICE, "upgrade", "v2");
    }
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[tokio::test]
async fn the_workloads_preset_holds_scaling_to_zero() {
    let ns = namespace("preset").await;
    kubectl(&ADMIN)
        .args(["label", "namespace", &ns, &format!("preset-test={ns}")])
        .run()
        .ok();
    // The chart's preset, rendered by the real helm, scoped to this namespace.
    let rendered = support::helm::helm_ok([
        "template",
        "preset",
        support::helm::chart().to_str().unwrap(),
        "--kube-version",
        "v1.35.4",
        "--show-only",
        "templates/preset-policies.yaml",
        "--set",
        "presets.workloads.enabled=true",
        "--set",
        "presets.mode=Enforce",
        "--set",
        &format!("fullnameOverride={ns}"),
        "--set-json",
        &format!("presets.namespaceLabels={{\"environment\":null,\"preset-test\":\"{ns}\"}}"),
    ]);
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(rendered)
        .run()
        .ok();
    support::webhook::await_policy(&format!("{ns}-workloads")).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();

    let held = kubectl(&ALICE)
        .args(["scale", "deployment/checkout", "--replicas=0", "-n", &ns])
        .run()
        .fails();
    assert!(held.contains("needs approval"), "{held}");
    let req = get_request(&ns, &request_name(&held, &ns)).await;
    assert_eq!(req.spec.target.subresource.as_deref(), Some("scale"));
}

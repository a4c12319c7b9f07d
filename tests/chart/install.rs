//! `helm install` into the real apiserver, what it creates, what its service
//! account may do, and `helm uninstall`.

use approval_gate::crd::{ApprovalPolicy, Mode};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Service, ServiceAccount},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::Api;

use super::{
    expected_args,
    support::{helm::*, *},
};

#[tokio::test]
async fn helm_install_creates_the_release_and_uninstall_removes_it() {
    let ns = namespace("chart-install").await;
    let release = format!("ag-{}", ns.rsplit('-').next().unwrap());
    let fullname = format!("{release}-approval-gate");
    let chart = chart();
    let kubeconfig = plane().kubeconfig(&ADMIN);
    let kubeconfig = kubeconfig.to_str().unwrap();
    let notes = helm_ok([
        "install",
        &release,
        chart.to_str().unwrap(),
        "--namespace",
        &ns,
        "--kubeconfig",
        kubeconfig,
        "--skip-crds",
    ]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(
        notes.contains(&format!("--clusterrole={fullname}-requester"))
            && notes.contains(&format!("--clusterrole={fullname}-approver")),
        "NOTES tell how to bind the user roles:\n{notes}"
    );
    assert!(
        notes.contains(&format!("validatingwebhookconfiguration {fullname}")),
        "{notes}"
    );
    assert!(
        notes.contains("examplePolicy.mode=Enforce") && notes.contains("\"Recovery\""),
        "{notes}"
    );

    let client = client(&ADMIN).await;
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(fullname.as_str()));
    assert_eq!(pod.automount_service_account_token, Some(true));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    assert_eq!(pod_security.run_as_group, Some(65532));
    let c = &pod.containers[0];
    let security = c.security_context.clone().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.run_as_user, Some(65532));
    assert_eq!(security.run_as_group, Some(65532));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let resources = c.resources.clone().unwrap();
    assert!(resources.requests.is_some() && resources.limits.is_some());
    for (probe, path) in [
        (c.liveness_probe.clone(), "/healthz"),
        (c.readiness_probe.clone(), "/readyz"),
    ] {
        let get = probe.unwrap().http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("metrics".into())
        );
    }
    let ports: Vec<(Option<&str>, i32)> = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    assert_eq!(ports, [(Some("https"), 8443), (Some("metrics"), 8080)]);
    let args = c.args.clone().unwrap();
    for flag in expected_args(&ns, &fullname, "Fail", 5) {
        assert!(args.contains(&flag), "missing {flag} in {args:?}");
    }
    let env: Vec<&str> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["POD_NAME", "RUST_LOG"]);

    let service = Api::<Service>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    let https = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(https.port, 443);
    assert_eq!(
        https.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("https".into()))
    );
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    assert_eq!(
        pdb.spec.unwrap().min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let cluster_roles = Api::<ClusterRole>::all(client.clone());
    for role in [
        fullname.clone(),
        format!("{fullname}-requester"),
        format!("{fullname}-approver"),
    ] {
        cluster_roles.get(&role).await.unwrap();
    }
    Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await
        .unwrap();
    Api::<Role>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .get(&fullname)
        .await
        .unwrap();
    let example = format!("{fullname}-example");
    let policies = Api::<ApprovalPolicy>::all(client.clone());
    assert_eq!(policies.get(&example).await.unwrap().spec.mode, Mode::Audit);

    // The service account may do what the binary needs, and no more.
    let sa = format!("system:serviceaccount:{ns}:{fullname}");
    let can = |args: &[&str]| {
        kubectl(&ADMIN)
            .args(["auth", "can-i", "--as", &sa])
            .args(args)
            .run()
            .stdout()
            .trim()
            .to_owned()
    };
    for (args, answer) in [
        (
            vec!["create", "approvalrequests.approvalgate.dev", "-A"],
            "yes",
        ),
        (
            vec![
                "patch",
                "approvalrequests.approvalgate.dev",
                "--subresource=status",
                "-A",
            ],
            "yes",
        ),
        (
            vec!["update", "approvalpolicies.approvalgate.dev", "-A"],
            "no",
        ),
        (vec!["create", "events.events.k8s.io", "-A"], "yes"),
        (
            vec![
                "update",
                &format!("validatingwebhookconfigurations/{fullname}"),
            ],
            "yes",
        ),
        (
            vec!["update", "validatingwebhookconfigurations/someone-else"],
            "no",
        ),
        (vec!["get", &format!("clusterroles/{fullname}")], "yes"),
        (vec!["get", "clusterroles/cluster-admin"], "no"),
        (
            vec!["update", &format!("secrets/{fullname}-tls"), "-n", &ns],
            "yes",
        ),
        // Reads the Secret notification channels name, and no other.
        (
            vec!["get", &format!("secrets/{fullname}-notify"), "-n", &ns],
            "yes",
        ),
        (
            vec!["update", &format!("secrets/{fullname}-notify"), "-n", &ns],
            "no",
        ),
        (vec!["list", "secrets", "-n", &ns], "no"),
        (vec!["get", "secrets/other", "-n", &ns], "no"),
        (vec!["get", "secrets/other", "-n", "default"], "no"),
        (
            vec!["update", "leases/approval-gate-operator", "-n", &ns],
            "yes",
        ),
        (vec!["update", "leases/other", "-n", &ns], "no"),
    ] {
        assert_eq!(can(&args), answer, "can-i {args:?}");
    }

    let out = helm_ok([
        "uninstall",
        &release,
        "--namespace",
        &ns,
        "--kubeconfig",
        kubeconfig,
    ]);
    assert!(out.contains("uninstalled"), "{out}");
    assert!(
        gone::<Deployment>(&client, &ns, &fullname).await,
        "Deployment"
    );
    assert!(gone::<Service>(&client, &ns, &fullname).await, "Service");
    assert!(
        gone::<ServiceAccount>(&client, &ns, &fullname).await,
        "ServiceAccount"
    );
    assert!(
        gone::<PodDisruptionBudget>(&client, &ns, &fullname).await,
        "PodDisruptionBudget"
    );
    for role in [
        fullname.clone(),
        format!("{fullname}-requester"),
        format!("{fullname}-approver"),
    ] {
        assert!(
            cluster_roles.get_opt(&role).await.unwrap().is_none(),
            "{role}"
        );
    }
    assert!(policies.get_opt(&example).await.unwrap().is_none());
}

/// Whether the namespaced object `name` no longer exists.
async fn gone<K>(client: &kube::Client, ns: &str, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
        .is_none()
}

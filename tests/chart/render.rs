//! `helm lint`, `helm template` with default and edge values (accepted by the
//! apiserver's server-side dry run) and the values schema's rejections.

use serde_yaml_ng::Value;

use super::{
    KUBE_VERSION, LONG_RELEASE, all_of, container, controller_cluster_rules,
    controller_namespace_rules, edge_values, expected_args, kind, kinds, name, one, render, rule,
    rules_of, servable, server_dry_run, strings,
    support::{helm::*, *},
};

#[test]
fn chart_passes_helm_lint_strict_with_default_and_edge_values() {
    let chart = chart();
    let out = helm_ok(["lint", "--strict", chart.to_str().unwrap()]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let edge = edge_values();
    let out = helm_ok([
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "-f",
        edge.to_str().unwrap(),
    ]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[tokio::test]
async fn default_values_render_a_ha_install_the_apiserver_accepts() {
    let ns = namespace("chart-default").await;
    let docs = render("approval-gate", &ns, &[]);
    assert_eq!(
        kinds(&docs),
        [
            "ApprovalPolicy",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
        .map(String::from)
        .into(),
        "no NetworkPolicy, ServiceMonitor or cert-manager objects by default"
    );

    let deployment = one(&docs, "Deployment", "approval-gate");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let anti = &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"].as_str(), Some("kubernetes.io/hostname"));
    let c = container(deployment);
    assert_eq!(
        c["image"].as_str(),
        Some("ghcr.io/approval-gate/approval-gate:0.1.0"),
        "the tag defaults to the chart's appVersion"
    );
    assert_eq!(c["imagePullPolicy"].as_str(), Some("IfNotPresent"));
    let args = strings(&c["args"]);
    for flag in expected_args(&ns, "approval-gate", "Fail", 5) {
        assert!(args.contains(&flag), "missing {flag} in {args:?}");
    }
    assert!(args.contains(&"--retention=168h".to_owned()), "{args:?}");
    assert!(args.contains(&"--lease-seconds=15".to_owned()), "{args:?}");
    assert!(
        args.contains(&"--use-confirm-window=30s".to_owned()),
        "{args:?}"
    );
    assert!(!args.contains(&"--external-certs".to_owned()), "{args:?}");

    let pdb = one(&docs, "PodDisruptionBudget", "approval-gate");
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));

    assert_eq!(
        rules_of(one(&docs, "ClusterRole", "approval-gate")),
        controller_cluster_rules("approval-gate")
    );
    assert_eq!(
        rules_of(one(&docs, "Role", "approval-gate")),
        controller_namespace_rules("approval-gate")
    );
    // The ready-to-bind roles for people.
    let ag = ["approvalgate.dev"];
    let read = ["get", "list", "watch"];
    assert_eq!(
        rules_of(one(&docs, "ClusterRole", "approval-gate-requester")),
        [
            rule(
                &ag,
                &["approvalrequests"],
                &[],
                &["get", "list", "watch", "create", "delete"],
            ),
            rule(&ag, &["approvalpolicies"], &[], &read),
        ]
    );
    assert_eq!(
        rules_of(one(&docs, "ClusterRole", "approval-gate-approver")),
        [
            rule(&ag, &["approvalrequests"], &[], &read),
            rule(
                &ag,
                &["approvalrequests/status"],
                &[],
                &["get", "update", "patch"],
            ),
            rule(&ag, &["approvalpolicies"], &[], &read),
        ]
    );

    let policy = one(&docs, "ApprovalPolicy", "approval-gate-example");
    let spec = policy["spec"].as_mapping().unwrap();
    assert_eq!(
        spec.keys().next().and_then(Value::as_str),
        Some("mode"),
        "the example policy's spec starts with its mode"
    );
    assert_eq!(policy["spec"]["mode"].as_str(), Some("Audit"));
    assert_eq!(
        strings(&policy["spec"]["rules"][0]["operations"]),
        ["UPDATE", "DELETE"]
    );

    server_dry_run(&servable(&docs));
}

#[tokio::test]
async fn edge_values_render_optional_objects_and_the_apiserver_accepts_them() {
    let ns = namespace("chart-edge").await;
    let edge = edge_values();
    let docs = render(LONG_RELEASE, &ns, &["-f", edge.to_str().unwrap()]);
    let fullname = "a-release-name-that-is-long-enough-to-truncate-xyz12-approval-g";
    assert_eq!(fullname.len(), 63);

    // One replica: no PodDisruptionBudget (it would block every drain); no
    // example policy, but both presets, each without a coverage gap.
    let present = kinds(&docs);
    assert!(!present.contains("PodDisruptionBudget"), "{present:?}");
    let presets: Vec<&serde_yaml_ng::Value> = docs
        .iter()
        .filter(|d| kind(d) == "ApprovalPolicy")
        .collect();
    let names: Vec<String> = presets.iter().map(|d| name(d).to_owned()).collect();
    assert_eq!(
        names,
        [
            format!("{fullname}-workloads"),
            format!("{fullname}-namespace-deletion")
        ]
    );
    for preset in presets {
        let spec: approval_gate::crd::ApprovalPolicySpec =
            serde_yaml_ng::from_value(preset["spec"].clone()).unwrap();
        assert_eq!(
            approval_gate::admission::guard::review_policy(&spec),
            Vec::<String>::new()
        );
        assert_eq!(
            approval_gate::admission::coverage::describe(&spec),
            None,
            "{}",
            name(preset)
        );
    }
    for doc in &docs {
        let n = name(doc);
        assert!(
            n == fullname || n.starts_with(&format!("{fullname}-")),
            "{} {n} is not named after the truncated full name",
            kind(doc)
        );
    }
    assert!(name(one(&docs, "Service", fullname)).len() <= 63);

    let deployment = one(&docs, "Deployment", fullname);
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["priorityClassName"].as_str(),
        Some("system-cluster-critical")
    );
    assert_eq!(
        pod["nodeSelector"]["kubernetes.io/os"].as_str(),
        Some("linux")
    );
    assert_eq!(
        pod["tolerations"][0]["key"].as_str(),
        Some("node-role.kubernetes.io/control-plane")
    );
    assert!(
        pod["affinity"]["podAntiAffinity"].is_null() && !pod["affinity"]["nodeAffinity"].is_null(),
        "a given affinity replaces the default anti-affinity"
    );
    let c = container(deployment);
    assert_eq!(c["resources"]["limits"]["memory"].as_str(), Some("128Mi"));
    assert_eq!(c["resources"]["requests"]["cpu"].as_str(), Some("10m"));
    let args = strings(&c["args"]);
    for flag in expected_args(&ns, fullname, "Ignore", 30) {
        assert!(args.contains(&flag), "missing {flag} in {args:?}");
    }
    assert!(args.contains(&"--retention=24h".to_owned()), "{args:?}");
    assert!(args.contains(&"--lease-seconds=30".to_owned()), "{args:?}");
    assert!(args.contains(&"--external-certs".to_owned()), "{args:?}");
    // Only the apiserver's client certificate gets a review read.
    for flag in [
        "--client-ca-file=/etc/approval-gate/client-ca/ca.crt",
        "--client-name=kube-apiserver-webhook-client",
    ] {
        assert!(
            args.contains(&flag.to_owned()),
            "missing {flag} in {args:?}"
        );
    }
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"].as_str(),
        Some("apiserver-webhook-client-ca")
    );
    assert_eq!(
        c["volumeMounts"][0]["mountPath"].as_str(),
        Some("/etc/approval-gate/client-ca")
    );

    let policy = one(&docs, "NetworkPolicy", fullname);
    let ingress = policy["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress[0]["ports"][0]["port"].as_u64(), Some(8443));
    assert_eq!(
        ingress[0]["from"][0]["ipBlock"]["cidr"].as_str(),
        Some("10.0.0.1/32"),
        "the webhook port is open to the apiserver only"
    );
    assert_eq!(ingress[1]["ports"][0]["port"].as_u64(), Some(8080));
    assert_eq!(
        ingress[1]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str(),
        Some("prometheus")
    );
    let egress = policy["spec"]["egress"].as_sequence().unwrap();
    let egress_ports: Vec<u64> = egress
        .iter()
        .flat_map(|e| e["ports"].as_sequence().unwrap())
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert_eq!(egress_ports, [443, 6443, 53, 53]);
    assert_eq!(
        egress[0]["to"][0]["ipBlock"]["cidr"].as_str(),
        Some("10.0.0.0/8")
    );

    // Objects of CRDs the local control plane lacks: checked as rendered.
    let monitor = one(&docs, "ServiceMonitor", fullname);
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(
        monitor["metadata"]["labels"]["release"].as_str(),
        Some("prometheus")
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"].as_str(),
        Some("metrics")
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["path"].as_str(),
        Some("/metrics")
    );
    let readable = rules_of(one(&docs, "Role", fullname))
        .into_iter()
        .find(|r| r.verbs == ["get"])
        .and_then(|r| r.resource_names)
        .unwrap();
    assert_eq!(
        readable,
        [
            &format!("{fullname}-notify"),
            "slack-webhooks",
            "smtp-relay"
        ],
        "the Secrets notification channels may name"
    );
    let dashboard = one(&docs, "ConfigMap", &format!("{fullname}-dashboard"));
    let labels = &dashboard["metadata"]["labels"];
    assert_eq!(labels["grafana_dashboard"].as_str(), Some("1"));
    assert_eq!(
        dashboard["metadata"]["annotations"]["grafana_folder"].as_str(),
        Some("approval-gate")
    );
    let shipped = dashboard["data"]["approval-gate.json"].as_str().unwrap();
    let on_disk = std::fs::read_to_string(chart().join("dashboards/approval-gate.json")).unwrap();
    assert_eq!(
        shipped,
        on_disk.trim_end(),
        "the ConfigMap holds the dashboard file"
    );
    let service = one(&docs, "Service", fullname);
    let service_ports: Vec<(&str, u64)> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_u64().unwrap()))
        .collect();
    assert_eq!(service_ports, [("https", 443), ("metrics", 8080)]);

    let serving = one(&docs, "Certificate", &format!("{fullname}-serving"));
    assert_eq!(
        serving["spec"]["secretName"].as_str(),
        Some(format!("{fullname}-tls").as_str())
    );
    assert_eq!(
        strings(&serving["spec"]["dnsNames"]),
        [
            format!("{fullname}.{ns}.svc"),
            format!("{fullname}.{ns}.svc.cluster.local")
        ]
    );
    assert_eq!(
        serving["spec"]["issuerRef"]["name"].as_str(),
        Some(format!("{fullname}-ca").as_str())
    );
    let ca = one(&docs, "Certificate", &format!("{fullname}-ca"));
    assert_eq!(ca["spec"]["isCA"].as_bool(), Some(true));
    assert_eq!(
        ca["spec"]["issuerRef"]["name"].as_str(),
        Some(format!("{fullname}-selfsigned").as_str())
    );
    let selfsigned = one(&docs, "Issuer", &format!("{fullname}-selfsigned"));
    assert!(selfsigned["spec"]["selfSigned"].is_mapping());
    let ca_issuer = one(&docs, "Issuer", &format!("{fullname}-ca"));
    assert_eq!(
        ca_issuer["spec"]["ca"]["secretName"].as_str(),
        Some(format!("{fullname}-ca").as_str())
    );
    assert_eq!(all_of(&docs, "Certificate").len(), 2);
    assert_eq!(all_of(&docs, "Issuer").len(), 2);

    let served = servable(&docs);
    assert_eq!(served.len(), docs.len() - 5, "5 objects need absent CRDs");
    server_dry_run(&served);
}

#[test]
fn values_schema_rejects_bad_values() {
    let chart = chart();
    for (set, field) in [
        ("webhook.failurePolicy=Sometimes", "failurePolicy"),
        ("replicaCount=0", "replicaCount"),
        ("webhook.timeoutSeconds=31", "timeoutSeconds"),
        ("webhook.timeoutSeconds=0", "timeoutSeconds"),
        ("examplePolicy.mode=Off", "mode"),
        ("operator.retention=a-week", "retention"),
        ("replicas=3", "replicas"),
        ("grafana.dashboard.enable=true", "enable"),
        (
            "operator.confirmUseReads[0].apiGroups[0]=,operator.confirmUseReads[0].resources[0]=secrets",
            "confirmUseReads",
        ),
        ("operator.useConfirmWindow=soon", "useConfirmWindow"),
    ] {
        let out = helm([
            "template",
            "approval-gate",
            chart.to_str().unwrap(),
            "--kube-version",
            KUBE_VERSION,
            "--set",
            set,
        ]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains("schema") && stderr.contains(field),
            "--set {set}: the error does not name {field}:\n{stderr}"
        );
    }
}

const CONSOLE_VALUES: [&str; 8] = [
    "--set",
    "console.enabled=true",
    "--set",
    "console.publicURL=https://approvals.example.com",
    "--set",
    "console.oidc.issuerURL=https://idp.example.com",
    "--set",
    "console.oidc.clientSecretName=approval-gate-oidc",
];

#[tokio::test]
async fn the_console_is_its_own_deployment_with_a_read_only_account_and_notifications_link_to_it() {
    let ns = namespace("chart-console").await;
    let docs = render("approval-gate", &ns, &CONSOLE_VALUES);
    let console = one(&docs, "Deployment", "approval-gate-console");
    let args = strings(&container(console)["args"]);
    for arg in [
        "console",
        "--public-url=https://approvals.example.com",
        "--issuer-url=https://idp.example.com",
        "--client-id=approval-gate-console",
        "--client-secret-file=/etc/approval-gate/oidc/client-secret",
    ] {
        assert!(
            args.contains(&arg.to_owned()),
            "{arg} missing from {args:?}"
        );
    }
    assert_eq!(
        console["spec"]["template"]["spec"]["serviceAccountName"].as_str(),
        Some("approval-gate-console")
    );

    // Neither the webhook's Service nor its Deployment selects the console's pods.
    let pod_labels = &console["spec"]["template"]["metadata"]["labels"];
    let service = one(&docs, "Service", "approval-gate");
    let webhook = one(&docs, "Deployment", "approval-gate");
    for selector in [
        &service["spec"]["selector"],
        &webhook["spec"]["selector"]["matchLabels"],
    ] {
        let selects = selector
            .as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v));
        assert!(!selects, "{selector:?} selects the console's pods");
    }
    let webhook_args = strings(&container(webhook)["args"]);
    assert!(webhook_args.contains(&"--console-url=https://approvals.example.com".to_owned()));

    // The console's own account reads requests and nothing more.
    let role = one(&docs, "ClusterRole", "approval-gate-console");
    assert_eq!(
        rules_of(role),
        [rule(
            &["approvalgate.dev"],
            &["approvalrequests"],
            &[],
            &["get", "list", "watch"]
        )]
    );
    server_dry_run(&servable(&docs));

    // Turned on without what it needs: a clear error, nothing rendered.
    let out = helm([
        "template",
        "approval-gate",
        chart().to_str().unwrap(),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "console.enabled=true",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("console.publicURL is required"),
        "{}",
        text(&out.stderr)
    );
}

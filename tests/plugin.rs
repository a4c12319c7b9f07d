//! `kubectl approve` as people use it: the real kubectl finds the plugin on
//! PATH and talks to the real apiserver, which calls the real webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    process::{Output, Stdio},
    time::Duration,
};

use approval_gate::crd::{ApprovalRequest, Phase};
use approval_gate_testenv::Identity;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use support::{golden::goldens, *};

/// `kubectl approve ARGS` as `id`, finished.
fn approve_cmd(id: &Identity, args: &[&str]) -> Output {
    plugin(id).args(args).output().expect("kubectl runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Asserts success and returns stdout.
fn ok(id: &Identity, args: &[&str]) -> String {
    plugin_ok(id, args)
}

/// The exit code and stderr.
fn code(id: &Identity, args: &[&str]) -> (i32, String) {
    let out = approve_cmd(id, args);
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

async fn policy(ns: &str, extra: &str) -> String {
    let spec = format!(
        "rules: [{{apiGroups: [apps], resources: [deployments], namespaces: [{ns}], \
         operations: [UPDATE]}}]\napprovers: {{groups: [sre]}}\n{extra}"
    );
    support::install_policy(ns, &spec).await
}

/// A deployment the admin creates, and a change to it alice tries: held,
/// which makes the webhook create a pending request. Returns its name.
async fn held_change(ns: &str, image: &str) -> String {
    apply(&ADMIN, &deployment(ns, "checkout", "app:v1")).ok();
    let msg = apply(&ALICE, &deployment(ns, "checkout", image)).fails();
    request_name(&msg, ns)
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

/// `out` with what differs from run to run replaced: each `known` string by
/// its placeholder, RFC 3339 times by `<time>`, ages and durations (`3s`,
/// `14m`, `2h5m`) by `<dur>`, the number after `resourceVersion` by `<rv>`.
/// A table cell keeps its column: the gap of two or more spaces after it
/// takes up what the placeholders changed, so the golden files keep the real
/// layout.
fn normalise(out: &str, known: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for line in out.split_inclusive('\n') {
        let (line, end) = line.strip_suffix('\n').map_or((line, ""), |l| (l, "\n"));
        let mut rest = line.trim_start_matches(' ');
        text.push_str(&line[..line.len() - rest.len()]);
        // How much longer the line has grown since the last column gap.
        let mut grown = 0isize;
        let mut previous = "";
        while !rest.is_empty() {
            let word_len = rest.find(' ').unwrap_or(rest.len());
            let (word, tail) = rest.split_at(word_len);
            let after = tail.trim_start_matches(' ');
            let mut gap = tail.len() - after.len();
            let unnumbered = word.trim_start_matches(|c: char| c.is_ascii_digit());
            let new = if previous == "resourceVersion" && unnumbered.len() < word.len() {
                format!("<rv>{unnumbered}")
            } else {
                normalise_word(word, known)
            };
            previous = word;
            grown += new.chars().count() as isize - word.chars().count() as isize;
            text.push_str(&new);
            if gap >= 2 && !after.is_empty() {
                let wanted = (gap as isize - grown).max(1) as usize;
                grown += wanted as isize - gap as isize;
                gap = wanted;
            }
            text.push_str(&" ".repeat(gap));
            rest = after;
        }
        text.push_str(end);
    }
    text
}

fn normalise_word(word: &str, known: &[(&str, &str)]) -> String {
    let mut word = known
        .iter()
        .fold(word.to_owned(), |w, (from, to)| w.replace(from, to));
    while let Some((start, len)) = find_time(&word) {
        word.replace_range(start..start + len, "<time>");
    }
    if is_duration(&word) {
        "<dur>".to_owned()
    } else {
        word
    }
}

/// `3s`, `14m`, `2h5m`, `3d4h`: how the plugin prints ages and durations.
fn is_duration(word: &str) -> bool {
    let units: Vec<&str> = word.split_inclusive(['s', 'm', 'h', 'd']).collect();
    (1..=2).contains(&units.len())
        && units.iter().all(|u| {
            u.strip_suffix(['s', 'm', 'h', 'd'])
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Where the first RFC 3339 time (`2026-03-01T12:00:00Z`, fractions and
/// offsets allowed) in `s` starts, and its length.
fn find_time(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let fits = |at: usize, shape: &str| {
        shape
            .bytes()
            .enumerate()
            .all(|(i, c)| match (c, b.get(at + i)) {
                (b'd', Some(x)) => x.is_ascii_digit(),
                (c, Some(&x)) => c == x,
                (_, None) => false,
            })
    };
    (0..b.len()).find_map(|start| {
        if !fits(start, "dddd-dd-ddTdd:dd:dd") {
            return None;
        }
        let mut end = start + 19;
        if b.get(end) == Some(&b'.') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        if b.get(end) == Some(&b'Z') {
            end += 1;
        } else if (b.get(end) == Some(&b'+') || b.get(end) == Some(&b'-')) && fits(end + 1, "dd:dd")
        {
            end += 6;
        }
        Some((start, end - start))
    })
}

#[test]
fn normalise_keeps_columns_and_describe_layout() {
    let known = [("ns-policy", "<policy>"), ("ns", "<ns>")];
    let table = "NAME   POLICY      EXPIRES IN   AGE\n\
                 x      ns-policy   59m          3s\n";
    assert_eq!(
        normalise(table, &known),
        "NAME   POLICY      EXPIRES IN   AGE\n\
         x      <policy>    <dur>        <dur>\n"
    );
    let events = "  AGE   TYPE\n  14s   Normal\n  3s    Normal\n";
    assert_eq!(
        normalise(events, &known),
        "  AGE   TYPE\n  <dur> Normal\n  <dur> Normal\n"
    );
    let diff = "  --- deployments.apps/checkout (live, resourceVersion 253)\n";
    assert_eq!(
        normalise(diff, &known),
        "  --- deployments.apps/checkout (live, resourceVersion <rv>)\n"
    );
    let field = "Created:      1m5s ago (2026-03-01T11:50:00Z) in ns\n";
    assert_eq!(
        normalise(field, &known),
        "Created:      <dur> ago (<time>) in <ns>\n"
    );
    assert_eq!(
        normalise("app:v2 0/1 10 5ms → 2026-03-01T11:50:00.5+01:00", &[]),
        "app:v2 0/1 10 5ms → <time>"
    );
}

#[tokio::test]
async fn requester_lists_approver_approves_and_phases_follow() {
    let ns = namespace("plugin-list").await;
    let policy = policy(&ns, "").await;
    let name = held_change(&ns, "app:v2").await;

    let listed = ok(&ALICE, &["list", "-n", &ns]);
    let row = listed
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{listed}"));
    for cell in [
        "Pending",
        "alice",
        "UPDATE",
        "deployments.apps/checkout",
        &policy,
        "0/1",
    ] {
        assert!(row.contains(cell), "{cell} missing in: {row}");
    }
    assert!(listed.starts_with("NAME "), "{listed}");
    let mine = ok(&BOB, &["list", "-A", "--mine"]);
    assert!(
        mine.contains(&name) && mine.starts_with("NAMESPACE "),
        "{mine}"
    );
    assert!(!ok(&ALICE, &["list", "-n", &ns, "--mine"]).contains(&name));

    // The webhook records its Event in the background: describe shows it
    // once it is there.
    for _ in 0..100 {
        if !operator::events_about(&ns, &name, "Blocked").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let described = ok(&BOB, &["describe", &name, "-n", &ns]);
    for part in [
        "Action:       UPDATE deployments.apps/checkout in namespace",
        "Requester:    alice",
        "group sre",
        "0/1 required",
        "left",
    ] {
        assert!(described.contains(part), "{part} missing in:\n{described}");
    }

    assert!(ok(&BOB, &["list", "-n", &ns, "--requester", "alice"]).contains(&name));
    assert!(!ok(&BOB, &["list", "-n", &ns, "--requester", "dave"]).contains(&name));
    let (status, err) = code(&BOB, &["--all", "-n", &ns]);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("pass --yes"),
        "no prompt without a terminal: {err}"
    );

    let approved = ok(&BOB, &[&name, "-n", &ns, "--comment", "looks right"]);
    assert!(
        approved.contains("approved: Approved (1/1 approvals"),
        "{approved}"
    );

    assert!(
        !ok(&ALICE, &["list", "-n", &ns]).contains(&name),
        "approved is not pending"
    );
    let all = ok(&ALICE, &["list", "-n", &ns, "--all-phases", "-o", "wide"]);
    let row = all
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(row.contains("Approved") && row.contains("1/1"), "{row}");

    let req = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns)
        .get(&name)
        .await
        .unwrap();
    let digest = req.spec.digest.clone().unwrap_or_default();
    let approval = &req.status.unwrap().approvals[0];
    assert_eq!(
        (approval.user.as_str(), approval.comment.as_str()),
        ("bob", "looks right")
    );
    assert_eq!(approval.groups, ["sre"]);

    assert_eq!(ok(&BOB, &["wait", &name, "-n", &ns, "--timeout", "5s"]), "");

    // What people see, with the run's names, times and digest replaced.
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(hex.len(), 64, "{digest}");
    let known = [
        (policy.as_str(), "<policy>"),
        (name.as_str(), "<name>"),
        (ns.as_str(), "<ns>"),
        (hex, "<digest>"),
        (&hex[..12], "<short-digest>"),
    ];
    goldens(&[
        ("e2e-list.txt", &normalise(&listed, &known)),
        ("e2e-describe-pending.txt", &normalise(&described, &known)),
        ("e2e-list-wide-approved.txt", &normalise(&all, &known)),
    ]);
}

#[tokio::test]
async fn json_parses_and_yaml_round_trips() {
    let ns = namespace("plugin-output").await;
    policy(&ns, "").await;
    let name = held_change(&ns, "app:v2").await;

    let json: serde_json::Value =
        serde_json::from_str(&ok(&ALICE, &["list", "-n", &ns, "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "List");
    let item: ApprovalRequest = serde_json::from_value(json["items"][0].clone()).unwrap();
    assert_eq!(item.metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(item.spec.requester, "alice");

    let yaml = ok(&ALICE, &["describe", &name, "-n", &ns, "-o", "yaml"]);
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    let again: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(parsed, again);
    let typed: ApprovalRequest = serde_yaml_ng::from_value(parsed).unwrap();
    assert_eq!(typed.spec.target.name, "checkout");

    let names = ok(&ALICE, &["list", "-n", &ns, "-o", "name"]);
    assert_eq!(names, format!("approvalrequest.approvalgate.dev/{name}\n"));
}

#[tokio::test]
async fn outsider_and_requester_get_plain_refusals() {
    let ns = namespace("plugin-refuse").await;
    policy(&ns, "").await;
    let name = held_change(&ns, "app:v2").await;
    let admin = plane().kubeconfig(&ADMIN);
    let kubeconfig = admin.to_str().unwrap();

    let (status, err) = code(
        &ADMIN,
        &[
            &name,
            "-n",
            &ns,
            "--kubeconfig",
            kubeconfig,
            "--as",
            "carol",
            "--as-group",
            "approval-gate:approvers",
        ],
    );
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("you are not an approver for this policy"),
        "{err}"
    );
    assert!(
        !err.contains("Status {") && !err.contains("ApiError"),
        "no debug dumps: {err}"
    );

    let (status, err) = code(
        &ADMIN,
        &[
            &name,
            "-n",
            &ns,
            "--as",
            "alice",
            "--as-group",
            "sre",
            "--as-group",
            "approval-gate:approvers",
        ],
    );
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("you cannot approve your own request"), "{err}");

    let (status, err) = code(&BOB, &["describe", "no-such-request", "-n", &ns]);
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains(&format!(
            "approvalrequest no-such-request not found in namespace {ns}"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn mistyped_commands_before_a_name_approve_nothing() {
    let ns = namespace("plugin-typo").await;
    policy(&ns, "").await;
    let name = held_change(&ns, "app:v2").await;

    let (status, err) = code(&BOB, &["nosuchword", &name, "-n", &ns]);
    assert_eq!(status, 2, "{err}");
    assert!(
        err.contains("approvalrequest nosuchword not found")
            && err.contains("nothing was approved"),
        "{err}"
    );
    let (status, err) = code(&BOB, &["descibe", &name, "-n", &ns]);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("error: unknown command \"descibe\" for \"kubectl approve\"")
            && err.contains("Did you mean this?\n\tdescribe"),
        "{err}"
    );
    // Whatever `diff` does, it is a command, never an approval.
    code(&BOB, &["diff", &name, "-n", &ns]);

    let req = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(req.phase(), Phase::Pending);
    assert_eq!(req.status.unwrap_or_default().approvals, []);
}

#[tokio::test]
async fn wait_exit_codes_tell_the_outcome() {
    let ns = namespace("plugin-wait").await;
    policy(&ns, "approvalTTL: 2s\n").await;
    let denied = held_change(&ns, "app:v2").await;
    ok(
        &BOB,
        &[
            "deny",
            &denied,
            "-n",
            &ns,
            "--reason",
            "not during the freeze",
        ],
    );
    assert_eq!(code(&ALICE, &["wait", &denied, "-n", &ns]).0, 3);
    let described = ok(&ALICE, &["describe", &denied, "-n", &ns]);
    assert!(
        described.contains("Denied:") && described.contains("not during the freeze"),
        "{described}"
    );

    let expiring = request_name(
        &apply(&ALICE, &deployment(&ns, "checkout", "app:v3")).fails(),
        &ns,
    );
    ok(&BOB, &[&expiring, "-n", &ns]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, err) = code(&ALICE, &["wait", &expiring, "-n", &ns]);
    assert_eq!(status, 4, "{err}");
    let (status, err) = code(&BOB, &["revoke", &expiring, "-n", &ns, "--reason", "late"]);
    assert_eq!(status, 4, "{err}");
    assert!(
        err.contains("the request expired") && err.contains("ago"),
        "{err}"
    );

    let (status, _) = code(&ALICE, &["wait", "nothing-here", "-n", &ns]);
    assert_eq!(status, 2);
}

#[tokio::test]
async fn wait_times_out_and_revoke_ends_an_approval() {
    let ns = namespace("plugin-revoke").await;
    policy(&ns, "").await;
    let name = held_change(&ns, "app:v2").await;
    assert_eq!(
        code(&ALICE, &["wait", &name, "-n", &ns, "--timeout", "1s"]).0,
        6
    );
    ok(&BOB, &[&name, "-n", &ns]);
    assert_eq!(code(&ALICE, &["wait", &name, "-n", &ns]).0, 0);
    ok(
        &DAVE,
        &["revoke", &name, "-n", &ns, "--reason", "wrong change"],
    );
    assert_eq!(code(&ALICE, &["wait", &name, "-n", &ns]).0, 5);
}

#[tokio::test]
async fn run_waits_for_approval_and_retries() {
    let ns = namespace("plugin-run").await;
    policy(&ns, "").await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let file = plane().dir().join(format!("{ns}-deploy.yaml"));
    std::fs::write(&file, deployment(&ns, "checkout", "app:v2")).unwrap();

    let run = plugin(&ALICE)
        .args(["run", "--timeout", "60s", "--", "kubectl", "apply", "-f"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, &ns);
    let mut name = None;
    for _ in 0..200 {
        if let Some(r) = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
        {
            name = r.metadata.name;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name = name.expect("the held apply created a request");
    ok(&BOB, &[&name, "-n", &ns]);
    let out = tokio::task::spawn_blocking(move || run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        out.status.success(),
        "run failed ({:?}):\n{err}",
        out.status.code()
    );
    assert!(err.contains("Who can approve: group sre"), "{err}");
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[tokio::test]
async fn request_by_hand_picks_the_only_policy() {
    let ns = namespace("plugin-request").await;
    policy(&ns, "bindToContent: false\n").await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let created = ok(
        &ALICE,
        &[
            "request",
            "deployment/checkout",
            "-n",
            &ns,
            "--reason",
            "INC-7",
            "-o",
            "name",
        ],
    );
    let name = created.trim().rsplit('/').next().unwrap().to_owned();
    let listed = ok(&BOB, &["list", "-n", &ns, "-o", "wide"]);
    assert!(
        listed.contains(&name) && listed.contains("INC-7"),
        "{listed}"
    );
    ok(&BOB, &[&name, "-n", &ns]);
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;
    apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).ok();
    assert_eq!(image_of(&ns, "checkout").await, "app:v2");
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        &[][..],
        &["list"],
        &["describe"],
        &["approve"],
        &["deny"],
        &["revoke"],
        &["wait"],
        &["run"],
        &["request"],
    ] {
        let out = approve_cmd(&ADMIN, &[cmd, &["--help"]].concat());
        let help = text(&out.stdout);
        assert!(
            out.status.success() && help.contains("Examples:"),
            "{cmd:?}: {help}"
        );
    }
    let wait = text(&approve_cmd(&ADMIN, &["wait", "--help"]).stdout);
    assert!(
        wait.contains("3  Denied") && wait.contains("6  timed out"),
        "{wait}"
    );
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef kubectl-approve"),
        ("fish", "complete -c kubectl-approve"),
    ] {
        let script = ok(&ADMIN, &["completion", shell]);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        for sub in ["list", "describe", "deny", "revoke", "wait"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

//! The approvers' web console in a real browser: headless Chromium from
//! Debian's packages driven by chromedriver, people signing in through a real
//! OpenID Connect provider (`oidc-provider` on Node.js) with its own login
//! form, and a real kube-apiserver that trusts that provider's ID tokens
//! (a JWT authenticator). The console acts as the signed-in person.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    future::Future,
    path::Path,
    sync::OnceLock,
    time::{Duration, Instant},
};

use approval_gate::crd::ApprovalRequest;
use approval_gate_testenv::{
    console::{ConsolePlan, LocalConsole},
    identities::CONSOLE,
    oidc::{CONSOLE_CLIENT_ID, DEMO_USERS, DemoUser, IdentityProvider},
    process::ManagedProcess,
    webhook::LocalWebhook,
};
use fantoccini::{Client as Browser, ClientBuilder, Locator, elements::Element, error::CmdError};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use serde_json::json;
use support::{install_policy as policy, operator, receiver::HttpReceiver, *};
use tokio::sync::Semaphore;

struct Env {
    dir: std::path::PathBuf,
    provider: IdentityProvider,
    console: LocalConsole,
    /// A second client of the provider, for a console in impersonation mode
    /// (the apiserver does not accept its tokens).
    impersonating: ConsolePlan,
    driver_url: String,
    _driver: ManagedProcess,
    /// The operator: it records the Events a request's page shows, and its
    /// notifications link to [`Env::console`].
    _operator: LocalWebhook,
    _dir: tempfile::TempDir,
}

static ENV: OnceLock<Env> = OnceLock::new();
/// Browsers open at once (each is a Chromium; the machine has 2 cores).
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// The provider, the control plane trusting it, the console and chromedriver,
/// started once per test binary on a runtime of their own.
fn env() -> &'static Env {
    ENV.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(start())
        })
        .join()
        .unwrap()
    })
}

async fn start() -> Env {
    // Removed by a later run once this one is gone, with any browser left.
    let dir = approval_gate_testenv::scratch_dir().unwrap();
    let plan = ConsolePlan::new().unwrap();
    let impersonating = ConsolePlan::for_client("approval-gate-console-impersonating").unwrap();
    let provider = IdentityProvider::start(
        dir.path(),
        &[plan.client.clone(), impersonating.client.clone()],
    )
    .await
    .unwrap_or_else(|e| panic!("starting the identity provider: {e}"));
    JWT.set(provider.jwt_issuer(CONSOLE_CLIENT_ID)).unwrap();
    let plane = plane();
    let console = LocalConsole::start(
        Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        &dir.path().join("console"),
        &plane.kubeconfig(&CONSOLE),
        &plan,
        &provider,
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("starting the console: {e}"));
    let keep = Duration::from_secs(3600);
    let args = operator::serve_args_linking(keep, &console.url);
    let operator = operator::start("operator", &args).await;
    operator::await_leader(&operator::instance(&operator)).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = ManagedProcess::spawn(
        "chromedriver",
        Path::new("/usr/bin/chromedriver"),
        &[format!("--port={port}")],
        &dir.path().join("chromedriver.log"),
    )
    .expect("chromedriver (Debian's chromium-driver; hack/node-deps.sh installs it)");
    let driver_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http
        .get(format!("{driver_url}/status"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Env {
        dir: dir.path().to_owned(),
        provider,
        console,
        impersonating,
        driver_url,
        _driver: driver,
        _operator: operator,
        _dir: dir,
    }
}

fn user(name: &str) -> &'static DemoUser {
    DEMO_USERS.iter().find(|u| u.name == name).unwrap()
}

/// A browser window for one test. Dropped (a test passing or panicking),
/// its Chromium is stopped, found by its profile folder.
struct Window {
    client: Browser,
    profile: std::path::PathBuf,
}

impl std::ops::Deref for Window {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.client
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        approval_gate_testenv::process::kill_processes_mentioning(&self.profile);
    }
}

impl Window {
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

static PROFILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh headless Chromium (its own profile, so its own cookies).
async fn browser() -> Window {
    let env = env();
    let n = PROFILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = env.dir.join(format!("chromium-{n}"));
    let mut caps = serde_json::Map::new();
    // The provider and the console serve certificates of CAs made per run.
    caps.insert("acceptInsecureCerts".into(), json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1200,900",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&env.driver_url)
        .await
        .expect("a Chromium session from chromedriver");
    Window { client, profile }
}

/// Opens the console, signs in through the provider's own form, and
/// returns once the console shows who is signed in.
async fn sign_in(b: &Browser, who: &DemoUser, next: &str) {
    sign_in_at(b, &env().console, who, next).await;
}

/// [`sign_in`] at the console `console`.
async fn sign_in_at(b: &Browser, console: &LocalConsole, who: &DemoUser, next: &str) {
    let env = env();
    b.goto(&format!("{}{next}", console.url)).await.unwrap();
    let name = b.wait().for_element(Locator::Id("username")).await.unwrap();
    assert!(
        b.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(env.provider.issuer()),
        "the login form is the provider's own"
    );
    name.send_keys(who.name).await.unwrap();
    let password = b.find(Locator::Id("password")).await.unwrap();
    password.send_keys(who.password).await.unwrap();
    let done = Locator::Css("#signed-in-as, #sign-in-error");
    click(b, Locator::Id("sign-in"), done).await;
    let page = b.source().await.unwrap();
    assert!(
        page.contains("Signed in as"),
        "{} could not sign in:\n{page}\nconsole log:\n{}",
        who.name,
        console.log()
    );
}

/// Does `act` to what `locator` finds. A request's page swaps its live part
/// whenever the request changes (an approval, an Event, the operator's
/// notification record), so an element found a moment ago may be gone by the
/// time it is used: then it is found again. WebDriver refuses a stale element
/// before acting, so nothing is done twice.
async fn with_element<T, F, Fut>(b: &Browser, locator: Locator<'_>, act: F) -> T
where
    F: Fn(Element) -> Fut,
    Fut: Future<Output = Result<T, CmdError>>,
{
    for _ in 0..20 {
        let element = b
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("{locator:?}: {e}"));
        match act(element).await {
            Ok(done) => return done,
            Err(e) if e.is_stale_element_reference() => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{locator:?}: {e}"),
        }
    }
    panic!("{locator:?} was swapped out 20 times in a row");
}

/// Clicks what `locator` finds, then waits until the page shows `then`.
async fn click(b: &Browser, locator: Locator<'_>, then: Locator<'_>) {
    with_element(b, locator, |e| async move { e.click().await }).await;
    b.wait().for_element(then).await.unwrap();
}

/// Saves what the browser shows as `target/tmp/console-screenshots/<name>.png`,
/// for people to look at (nothing compares its pixels).
async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn text(b: &Browser, id: &str) -> String {
    with_element(b, Locator::Id(id), |e| async move { e.text().await }).await
}

/// Types `words` into the element with id `id` (a field, or keys pressed on
/// a focused button).
async fn type_into(b: &Browser, id: &str, words: &str) {
    with_element(
        b,
        Locator::Id(id),
        |e| async move { e.send_keys(words).await },
    )
    .await;
}

/// Waits until the page shows the request in `phase`.
async fn await_shown_phase(b: &Browser, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(b, "phase").await.contains(phase) {
        assert!(Instant::now() < deadline, "the page never showed {phase}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts a form by hand from the signed-in page, as someone crafting the
/// request would: `csrf` is the session's own token (read off the page) or none.
async fn forge_post(b: &Browser, action: &str, with_csrf: bool) {
    let script = r#"
        const [action, withCsrf] = arguments;
        const f = document.createElement('form');
        f.method = 'post';
        f.action = action;
        const add = (name, value) => {
            const i = document.createElement('input');
            i.type = 'hidden'; i.name = name; i.value = value; f.appendChild(i);
        };
        if (withCsrf) { add('csrf', document.querySelector('input[name=csrf]').value); }
        add('comment', 'forged');
        document.body.appendChild(f);
        f.submit();
    "#;
    b.execute(script, vec![json!(action), json!(with_csrf)])
        .await
        .unwrap();
    b.wait()
        .for_element(Locator::Id("refused"))
        .await
        .unwrap_or_else(|e| panic!("no refusal page after a forged POST: {e}"));
}

const POLICY: &str = "rules: [{apiGroups: [apps], resources: [deployments], namespaces: [NS], \
    operations: [UPDATE]}]\napprovers: {groups: [sre]}\nrequiredApprovals: 1\n";

/// alice's change to `checkout` in a fresh namespace, held: returns the
/// namespace and the pending request's name.
async fn held_change(prefix: &str) -> (String, String) {
    env();
    let ns = namespace(prefix).await;
    policy(&ns, &POLICY.replace("NS", &ns)).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let msg = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    (ns.clone(), request_name(&msg, &ns))
}

/// The approvals recorded on the request, as `user: comment`.
async fn approvals(ns: &str, name: &str) -> Vec<String> {
    let api = Api::<ApprovalRequest>::namespaced(client(&ADMIN).await, ns);
    let req = api.get(name).await.unwrap();
    let status = req.status.unwrap_or_default();
    status
        .approvals
        .iter()
        .map(|a| format!("{}: {}", a.user, a.comment))
        .collect()
}

#[tokio::test]
async fn bob_approves_in_the_browser_dave_sees_it_live_and_alices_retry_passes() {
    let (ns, name) = held_change("console-flow").await;
    let page = format!("/requests/{ns}/{name}");
    let _permit = BROWSERS.acquire_many(2).await.unwrap();

    // dave, a second eligible approver, has the request open.
    let dave = browser().await;
    sign_in(&dave, user("dave"), &page).await;
    assert!(text(&dave, "phase").await.contains("Pending"));
    dave.execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();

    // bob signs in, finds it waiting for him, reads the diff and approves.
    let bob = browser().await;
    sign_in(&bob, user("bob"), "/").await;
    let row = bob
        .find(Locator::Css(&format!("tr[data-request='{ns}/{name}'] a")))
        .await
        .unwrap_or_else(|_| panic!("bob's inbox lacks {ns}/{name}"));
    screenshot(&bob, "inbox").await;
    row.click().await.unwrap();
    let diff = bob
        .wait()
        .for_element(Locator::Id("diff"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(diff.contains("+ ") && diff.contains("app:v2"), "{diff}");
    assert!(diff.contains("- ") && diff.contains("app:v1"), "{diff}");
    assert_eq!(text(&bob, "requester").await, "alice");
    assert!(text(&bob, "approvals-count").await.starts_with("0 of 1"));
    // Tall enough to show the whole diff and the decision forms.
    bob.set_window_size(1200, 1800).await.unwrap();
    screenshot(&bob, "request-page").await;
    type_into(
        &bob,
        "approve-comment",
        "new image checked with the release notes",
    )
    .await;
    click(&bob, Locator::Id("approve"), Locator::Id("phase")).await;
    assert!(text(&bob, "phase").await.contains("Approved"));
    assert!(
        text(&bob, "approvals")
            .await
            .contains("new image checked with the release notes")
    );
    assert_eq!(
        approvals(&ns, &name).await,
        ["bob: new image checked with the release notes"]
    );

    // dave's page follows without a reload.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = dave
            .execute(
                "return [window.notReloaded === true, document.getElementById('phase').textContent];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(seen[0], json!(true), "dave's page was reloaded");
        if seen[1].as_str().unwrap_or_default().contains("Approved") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dave's page never showed the approval: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(dave.find(Locator::Id("approve")).await.is_err());

    // alice's retry with kubectl passes.
    await_allowed(&ALICE, &deployment(&ns, "checkout", "app:v2")).await;
    apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).ok();
    bob.close().await;
    dave.close().await;
}

#[tokio::test]
async fn carol_sees_nothing_to_approve_and_a_forged_approval_names_the_guards_rule() {
    let (ns, name) = held_change("console-carol").await;
    // RBAC lets carol write decisions; the policy does not make her an approver.
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{ns}-carol-approver")),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "approval-gate-approver".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: "carol".into(),
            ..Subject::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(client(&ADMIN).await)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let _permit = BROWSERS.acquire().await.unwrap();
    let carol = browser().await;
    sign_in(&carol, user("carol"), "/").await;
    assert_eq!(
        text(&carol, "nothing-waiting").await,
        "Nothing is waiting for your approval."
    );
    carol
        .goto(&format!("{}/requests/{ns}/{name}", env().console.url))
        .await
        .unwrap();
    assert!(carol.find(Locator::Id("approve")).await.is_err());
    forge_post(&carol, &format!("/requests/{ns}/{name}/approve"), true).await;
    assert_eq!(text(&carol, "rule").await, "eligible-approver");
    screenshot(&carol, "refusal").await;
    let refusal = text(&carol, "refusal").await;
    assert!(refusal.contains("not an approver"), "{refusal}");
    assert!(!carol.source().await.unwrap().contains("panicked"));
    assert!(approvals(&ns, &name).await.is_empty());
    carol.close().await;
}

#[tokio::test]
async fn alice_sees_her_request_and_its_approvers_but_cannot_approve_it() {
    let (ns, name) = held_change("console-alice").await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let alice = browser().await;
    sign_in(&alice, user("alice"), "/mine").await;
    let row = alice
        .find(Locator::Css(&format!("tr[data-request='{ns}/{name}']")))
        .await
        .unwrap_or_else(|_| panic!("alice's requests lack {ns}/{name}"))
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("Pending") && row.contains("group sre"),
        "{row}"
    );
    alice
        .goto(&format!("{}/requests/{ns}/{name}", env().console.url))
        .await
        .unwrap();
    assert!(alice.find(Locator::Id("approve")).await.is_err());
    assert!(
        text(&alice, "no-decision")
            .await
            .contains("your own request")
    );
    forge_post(&alice, &format!("/requests/{ns}/{name}/approve"), true).await;
    let refusal = text(&alice, "refusal").await;
    assert!(!refusal.is_empty());
    assert!(approvals(&ns, &name).await.is_empty());
    alice.close().await;
}

#[tokio::test]
async fn forms_need_their_csrf_token_cookies_are_locked_down_and_no_token_is_logged() {
    let (ns, name) = held_change("console-csrf").await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let bob = browser().await;
    sign_in(&bob, user("bob"), &format!("/requests/{ns}/{name}")).await;

    forge_post(&bob, &format!("/requests/{ns}/{name}/approve"), false).await;
    assert_eq!(text(&bob, "refused").await, "Form not accepted");
    assert!(approvals(&ns, &name).await.is_empty());

    let cookies = bob.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "__Host-ag-session")
        .expect("a session cookie");
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Lax)");
    let visible = bob
        .execute("return document.cookie;", vec![])
        .await
        .unwrap();
    assert!(
        !visible.as_str().unwrap_or_default().contains("ag-session"),
        "{visible}"
    );
    let url = bob.current_url().await.unwrap();
    assert!(!url.as_str().contains("token"), "{url}");

    // Every page carries a strict Content-Security-Policy.
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http
        .get(format!("{}/", env().console.url))
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // Signing out ends the session on the server too.
    click(
        &bob,
        Locator::Css("form[action='/logout'] button"),
        Locator::Id("sign-in"),
    )
    .await;
    let replay = http
        .get(format!("{}/", env().console.url))
        .header("cookie", format!("__Host-ag-session={}", session.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303, "a signed-out session must not work");

    let log = env().console.log();
    assert!(log.contains("signed in"), "{log}");
    assert!(
        !log.contains("eyJ"),
        "a JWT appears in the console's log:\n{log}"
    );
    assert!(!log.contains(session.value()), "the session id is logged");
    bob.close().await;
}

#[tokio::test]
async fn the_consoles_own_service_account_cannot_approve() {
    let (ns, name) = held_change("console-sa").await;
    let console = kubectl(&CONSOLE);
    let can_i = console
        .args([
            "auth",
            "can-i",
            "update",
            "approvalrequests.approvalgate.dev",
            "--subresource=status",
            "-n",
            &ns,
        ])
        .run();
    assert_eq!(can_i.stdout().trim(), "no");
    let can_list = kubectl(&CONSOLE)
        .args([
            "auth",
            "can-i",
            "watch",
            "approvalrequests.approvalgate.dev",
            "-A",
        ])
        .run();
    assert_eq!(can_list.stdout().trim(), "yes");

    // A direct call: the console's own identity writing an approval.
    let api = Api::<ApprovalRequest>::namespaced(client(&CONSOLE).await, &ns);
    let mut req = api.get(&name).await.unwrap();
    req.status
        .get_or_insert_with(Default::default)
        .approvals
        .push(approval_gate::crd::Approval {
            user: "bob".into(),
            groups: vec!["sre".into()],
            time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            comment: "from the console's own account".into(),
        });
    let err = api
        .replace_status(&name, &PostParams::default(), &req)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    assert!(approvals(&ns, &name).await.is_empty());
}

#[tokio::test]
async fn in_impersonation_mode_the_console_acts_as_the_person_through_its_own_account() {
    let (ns, name) = held_change("console-imp").await;
    // The chart's console RBAC with impersonation on, as release `ns`.
    let out = std::process::Command::new(plane().bin_dir().join("helm"))
        .args(["template", &ns])
        .arg(approval_gate_testenv::rbac::chart_dir())
        .args(["--namespace", &ns, "--kube-version", "1.35.4"])
        .args(approval_gate_testenv::rbac::CONSOLE_ON)
        .args(["--set", "console.impersonation=true"])
        .args(["--show-only", "templates/console-rbac.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rbac = String::from_utf8(out.stdout).unwrap();
    assert!(rbac.contains("impersonate"), "{rbac}");
    kubectl(&ADMIN)
        .args(["apply", "-f", "-"])
        .stdin(rbac)
        .run()
        .ok();
    let account = format!("{ns}-approval-gate-console");
    let token = kubectl(&ADMIN)
        .args(["create", "token", &account, "-n", &ns, "--duration=1h"])
        .run()
        .ok();
    let kubeconfig = plane()
        .token_kubeconfig(&format!("{ns}-console"), token.trim())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let console = LocalConsole::start(
        Path::new(env!("CARGO_BIN_EXE_approval-gate")),
        dir.path(),
        &kubeconfig,
        &env().impersonating,
        &env().provider,
        &["--impersonate"],
    )
    .await
    .unwrap();

    let _permit = BROWSERS.acquire().await.unwrap();
    let bob = browser().await;
    sign_in_at(
        &bob,
        &console,
        user("bob"),
        &format!("/requests/{ns}/{name}"),
    )
    .await;
    assert_eq!(text(&bob, "signed-in-as").await, "Signed in as bob");
    click(&bob, Locator::Id("approve"), Locator::Id("approvals")).await;
    assert_eq!(approvals(&ns, &name).await, ["bob: "]);
    bob.close().await;

    // The apiserver's audit names both: the console's account, impersonating
    // bob. (The operator writes the request's status too, as its own account.)
    let audit = std::fs::read_to_string(plane().audit_log()).unwrap();
    let console_account = format!("system:serviceaccount:{ns}:{account}");
    let writes: Vec<serde_json::Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["objectRef"]["resource"] == "approvalrequests"
                && e["objectRef"]["subresource"] == "status"
                && e["objectRef"]["name"] == name.as_str()
                && e["verb"] == "update"
                && e["responseStatus"]["code"] == 200
                && e["user"]["username"] != CONTROLLER.username
        })
        .collect();
    assert_eq!(writes.len(), 1, "the approval's one write: {writes:?}");
    let write = &writes[0];
    assert_eq!(write["user"]["username"], console_account.as_str());
    assert_eq!(write["impersonatedUser"]["username"], "bob");
    let groups = write["impersonatedUser"]["groups"].to_string();
    assert!(groups.contains("\"sre\""), "{groups}");
    assert!(console.log().contains("impersonation mode"));
    console.stop();
}

#[tokio::test]
async fn on_a_phone_sized_window_bob_denies_by_keyboard_and_the_history_finds_it() {
    use fantoccini::key::Key;
    let (ns, name) = held_change("console-keys").await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let bob = browser().await;
    bob.set_window_size(390, 844).await.unwrap();
    sign_in(&bob, user("bob"), &format!("/requests/{ns}/{name}")).await;
    let fits = bob
        .execute(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true), "the page scrolls sideways on a phone");

    // Keyboard only: type the reason, Tab to Deny, press Enter.
    // The page keeps typed text and the focused id across a live swap.
    type_into(&bob, "deny-comment", "not during the freeze").await;
    type_into(&bob, "deny-comment", &char::from(Key::Tab).to_string()).await;
    let focused = bob
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("deny"), "Tab did not reach Deny");
    let enter = char::from(Key::Enter).to_string();
    type_into(&bob, "deny", &enter).await;
    bob.wait().for_element(Locator::Id("phase")).await.unwrap();
    await_shown_phase(&bob, "Denied").await;

    // History: found by namespace and requester, not under another requester.
    let console = &env().console.url;
    bob.goto(&format!("{console}/history?namespace={ns}&requester=alice"))
        .await
        .unwrap();
    let row = bob
        .find(Locator::Css(&format!("tr[data-request='{ns}/{name}']")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("Denied"), "{row}");
    bob.goto(&format!("{console}/history?namespace={ns}&requester=dave"))
        .await
        .unwrap();
    assert!(
        bob.find(Locator::Css(&format!("tr[data-request='{ns}/{name}']")))
            .await
            .is_err()
    );
    bob.close().await;
}

/// Reloads until the request's Events on the page name `reason`.
async fn await_event(b: &Browser, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Not there yet, or swapped out just now: the refresh below retries.
        let events = match b.find(Locator::Css("ul.events")).await {
            Ok(list) => match list.text().await {
                Ok(events) => events,
                Err(e) if e.is_stale_element_reference() => String::new(),
                Err(e) => panic!("the page's Events: {e}"),
            },
            Err(_) => String::new(),
        };
        if events.contains(reason) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page's Events never named {reason}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.refresh().await.unwrap();
    }
}

#[tokio::test]
async fn the_slack_message_links_the_page_where_bob_approves_then_revokes() {
    env();
    let receiver = HttpReceiver::start(0).await;
    let ns = namespace("console-slack").await;
    let key = format!("{ns}-slack");
    let hook = "/services/T0/B0/console";
    operator::secret(&key, receiver.url(hook).as_bytes()).await;
    let notify = format!(
        "notify:\n- slack: {{webhookUrlSecretRef: {{name: {}, key: {key}}}}}\n",
        operator::SECRET
    );
    policy(&ns, &format!("{}{notify}", POLICY.replace("NS", &ns))).await;
    apply(&ADMIN, &deployment(&ns, "checkout", "app:v1")).ok();
    let msg = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    let name = request_name(&msg, &ns);

    // The Slack message the receiver got links to the request's page.
    let slack = receiver.await_on(hook, 1, operator::SLACK).await;
    assert_eq!(slack.len(), 1, "the approvers' Slack message");
    let blocks = slack[0].json()["blocks"].to_string();
    let end = blocks
        .find("|Review it in the console>")
        .unwrap_or_else(|| panic!("no link to the console in {blocks}"));
    let link = &blocks[blocks[..end].rfind('<').unwrap() + 1..end];
    let console = &env().console;
    assert_eq!(link, format!("{}/requests/{ns}/{name}", console.url));

    // bob follows it: signed in, he lands on that page, with its Events.
    let _permit = BROWSERS.acquire().await.unwrap();
    let bob = browser().await;
    sign_in(
        &bob,
        user("bob"),
        link.strip_prefix(console.url.as_str()).unwrap(),
    )
    .await;
    assert_eq!(bob.current_url().await.unwrap().as_str(), link);
    assert_eq!(text(&bob, "requester").await, "alice");
    assert!(text(&bob, "phase").await.contains("Pending"));
    await_event(&bob, "Requested").await;

    // Approve, then Revoke with a reason: alice's retry is held again.
    click(&bob, Locator::Id("approve"), Locator::Id("revoke")).await;
    assert!(text(&bob, "phase").await.contains("Approved"));
    type_into(&bob, "revoke-comment", "approved the wrong tag").await;
    click(&bob, Locator::Id("revoke"), Locator::Id("phase")).await;
    await_shown_phase(&bob, "Revoked").await;
    assert!(
        bob.source()
            .await
            .unwrap()
            .contains("approved the wrong tag")
    );
    await_event(&bob, "Revoked").await;
    let again = apply(&ALICE, &deployment(&ns, "checkout", "app:v2")).fails();
    assert_ne!(request_name(&again, &ns), name, "{again}");
    bob.close().await;
}

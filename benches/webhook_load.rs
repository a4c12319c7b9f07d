//! Load test: the admission webhook over TLS, against a bare always-allow
//! axum + rustls server on the same machine (the ceiling), driven by `oha`.
//!
//! Run it with `make bench` (`hack/bench.sh`), which installs oha and passes
//! its path. BENCHMARKS.md describes the method and records the figures.
//!
//! One binary, three modes:
//! - `cargo bench` (cargo passes `--bench`): the driver. It starts each server
//!   as a child process of its own, so the RSS it reads is that server's
//!   alone, loads it with oha, and prints a Markdown table and a JSON summary.
//! - `serve --kind webhook|ceiling --requests N --port-file F`: one server.
//! - no `--bench`, as `cargo test --all-targets` runs it: no load at all, only
//!   an in-process check that the scenario is still allowed through the
//!   prepared approval, so `make test` notices when the setup rots.

use std::{
    io::Read as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, ensure};
use approval_gate::{
    server::tls::{CertReloader, install_crypto_provider, serve_tls, server_config},
    webhook::{Readiness, Webhook, WebhookConfig, handler},
};
use axum::{Router, body::Bytes, extract::DefaultBodyLimit, http::header, routing::post};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Load-test the webhook against a bare TLS server with oha")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Mode>,
    /// Passed by `cargo bench`; without it the binary only checks its setup.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(flatten)]
    drive: driver::DriveArgs,
}

#[derive(Subcommand)]
enum Mode {
    /// Run one server until standard input closes.
    Serve(ServeArgs),
    /// Answer the review in process N times (what callgrind counts).
    Count(instructions::CountArgs),
}

#[path = "webhook_load/instructions.rs"]
mod instructions;
#[path = "shared/oha.rs"]
mod oha;
#[path = "shared/procfs.rs"]
mod procfs;
#[path = "shared/review.rs"]
mod review;
#[path = "shared/server.rs"]
mod server;

#[derive(Args)]
struct ServeArgs {
    #[arg(long, value_enum)]
    kind: Kind,
    /// ApprovalRequests in the webhook's index (ignored by the ceiling).
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Where to write the port once the server listens.
    #[arg(long)]
    port_file: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Webhook,
    /// The bare TLS server: reads the body, answers a fixed allow.
    Ceiling,
    /// Deserializes the review as the kube-rs admission example does
    /// (`AdmissionReview<DynamicObject>`), then allows.
    ParseOnly,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Ceiling => "ceiling",
            Self::ParseOnly => "parse-only",
        }
    }
}

/// The allocator the `approval-gate` binary uses, so the served code runs as
/// it does in production (the ceiling uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Some(Mode::Serve(args)) => runtime()?.block_on(serve(args)),
        Some(Mode::Count(args)) => instructions::count(&args),
        None if cli.bench => driver::drive(&cli.drive),
        None => runtime()?.block_on(self_check()),
    }
}

/// The same runtime shape as the real binary's `#[tokio::main]`.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Test mode: both routers answer the bench's review as the load test expects.
async fn self_check() -> Result<()> {
    use tower::ServiceExt as _;
    let body = review::review_body()?;
    for kind in [Kind::Ceiling, Kind::ParseOnly, Kind::Webhook] {
        let request = axum::http::Request::post("/validate")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.clone()))?;
        let response = router(kind, 100)?.oneshot(request).await?;
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        fixture::verify(kind, &bytes).with_context(|| format!("{kind:?}"))?;
    }
    println!(
        "webhook_load: setup check passed with a {} byte review (no load; run `make bench` to measure)",
        body.len()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let certs = tempfile::tempdir()?;
    let reloader = throwaway_cert(certs.path())?;
    let app = router(args.kind, args.requests)?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    // Written whole, then renamed, so the driver never reads half a number.
    let partial = args.port_file.with_extension("partial");
    std::fs::write(&partial, port.to_string())?;
    std::fs::rename(&partial, &args.port_file)?;
    serve_tls(
        listener,
        app,
        server_config(reloader, None),
        Default::default(),
        stdin_closed(),
    )
    .await?;
    Ok(())
}

/// Resolves when the driver closes our stdin, or dies and the OS closes it.
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
}

fn throwaway_cert(dir: &Path) -> Result<Arc<CertReloader>> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let pair = rcgen::generate_simple_self_signed(names)?;
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, pair.cert.pem())?;
    std::fs::write(&key, pair.signing_key.serialize_pem())?;
    Ok(CertReloader::load(cert, key)?)
}

/// Needs a runtime: the webhook starts its event worker.
fn router(kind: Kind, requests: usize) -> Result<Router> {
    match kind {
        Kind::Ceiling => Ok(ceiling_router()),
        Kind::ParseOnly => Ok(parse_only_router()),
        Kind::Webhook => webhook_router(requests),
    }
}

/// Parses the review into kube-rs' types and allows: the cost of reading a
/// review the usual way, the second ceiling.
fn parse_only_router() -> Router {
    use kube::core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
    };
    let allow = |axum::Json(review): axum::Json<AdmissionReview<DynamicObject>>| async move {
        let request: Result<AdmissionRequest<DynamicObject>, _> = review.try_into();
        let response = match request {
            Ok(request) => AdmissionResponse::from(&request),
            Err(_) => AdmissionResponse::invalid("the review has no request"),
        };
        axum::Json(response.into_review())
    };
    Router::new()
        .route("/validate", post(allow))
        .layer(DefaultBodyLimit::disable())
}

/// Reads the body and always allows: what serving costs without deciding.
fn ceiling_router() -> Router {
    let allow = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{}","allowed":true}}}}"#,
        review::REVIEW_UID
    );
    Router::new()
        .route(
            "/validate",
            post(move |body: Bytes| async move {
                drop(body);
                ([(header::CONTENT_TYPE, "application/json")], allow)
            }),
        )
        .layer(DefaultBodyLimit::disable())
}

/// The real webhook router over an index filled by hand; the client points
/// at a closed port because the measured scenario never calls the API.
fn webhook_router(requests: usize) -> Result<Router> {
    let index = fixture::index(requests, jiff::Timestamp::now())?;
    let ready = Arc::new(Readiness::default());
    ready.mark_all_ready();
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    let config = WebhookConfig::new("approval-gate", Duration::from_millis(500));
    let index = Arc::new(RwLock::new(index));
    let webhook = Webhook::new(client, config, index, ready, "bench".to_owned());
    Ok(handler::router(webhook))
}

/// The scenario: `alice` rolls the `prod/checkout` Deployment to a new image
/// (the review of `shared/review.rs`), with a reusable (not single-use)
/// approval from `bob` in the index, so the decision needs no API call and
/// emits no Event.
mod fixture {
    use std::collections::BTreeMap;

    use approval_gate::{
        admission::digest::digest,
        crd::{
            Approval, ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec, ApprovalRequestStatus,
            Operation, Phase, Target, UsedBy,
        },
        index::Index,
    };
    use jiff::{SignedDuration, Timestamp};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::{
        review::{DEPLOYMENT, NAMESPACE, REQUESTER, REVIEW_UID, new_object, old_object},
        *,
    };

    const APPROVER: &str = "bob";
    const POLICY: &str = "prod-workloads";

    /// The index: the policies, the approval the scenario uses, and
    /// `requests - 1` other requests, so it holds exactly `requests`.
    pub fn index(requests: usize, now: Timestamp) -> Result<Index> {
        ensure!(
            requests >= 1,
            "the index needs room for the scenario's approval"
        );
        let mut index = Index::default();
        for policy in policies()? {
            index.apply_policy(policy);
        }
        index.requests.apply(grant(now)?);
        for i in 1..requests {
            index.requests.apply(other_request(i, now));
        }
        ensure!(
            index.requests.len() == requests,
            "the index holds {} requests, not {requests}",
            index.requests.len()
        );
        Ok(index)
    }

    /// The policy that holds the scenario, and two that do not match it.
    fn policies() -> Result<Vec<ApprovalPolicy>> {
        let policy = |name: &str, rule: Value| -> Result<ApprovalPolicy> {
            Ok(serde_json::from_value(json!({
                "apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalPolicy", "metadata": {"name": name},
                "spec": {"rules": [rule], "approvers": {"users": [APPROVER], "groups": ["sre"]},
                         "approvalTTL": "24h", "singleUse": false, "bindToContent": true},
            }))?)
        };
        Ok(vec![
            policy(
                POLICY,
                json!({"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "operations": ["UPDATE", "DELETE"], "namespaces": [NAMESPACE]}),
            )?,
            policy(
                "exec-into-prod",
                json!({"apiGroups": [""], "resources": ["pods/exec"], "operations": ["CONNECT"], "namespaces": [NAMESPACE]}),
            )?,
            policy(
                "namespace-deletion",
                json!({"apiGroups": [""], "resources": ["namespaces"], "operations": ["DELETE"]}),
            )?,
        ])
    }

    /// Bob's approval of exactly this change by alice.
    fn grant(now: Timestamp) -> Result<ApprovalRequest> {
        let digest = digest(Operation::Update, Some(&new_object()), Some(&old_object()))
            .ok_or_else(|| anyhow!("an UPDATE with an object has a digest"))?;
        let target = deployment_target(NAMESPACE, DEPLOYMENT);
        let spec = spec(REQUESTER, Operation::Update, target, digest);
        Ok(request(
            review::GRANT,
            NAMESPACE,
            spec,
            Phase::Approved,
            now,
            0,
        ))
    }

    /// One of the other requests: many users, namespaces, targets and phases,
    /// including alice's requests for other objects and others' for checkout.
    fn other_request(i: usize, now: Timestamp) -> ApprovalRequest {
        let (requester, namespace, name) = match i % 10 {
            0 => (
                REQUESTER.to_owned(),
                NAMESPACE.to_owned(),
                format!("service-{i}"),
            ),
            1 => (
                format!("user-{:04}", i % 1000),
                NAMESPACE.to_owned(),
                DEPLOYMENT.to_owned(),
            ),
            _ => (
                format!("user-{:04}", i % 1000),
                format!("team-{:03}", i % 200),
                format!("service-{i}"),
            ),
        };
        let operation = if i % 4 == 3 {
            Operation::Delete
        } else {
            Operation::Update
        };
        let phase = [Phase::Pending, Phase::Approved, Phase::Used, Phase::Expired][i % 4];
        let spec = spec(
            &requester,
            operation,
            deployment_target(&namespace, &name),
            format!("sha256:{i:064x}"),
        );
        request(
            &format!("deployment-{name}-{i:010x}"),
            &namespace,
            spec,
            phase,
            now,
            i,
        )
    }

    fn deployment_target(namespace: &str, name: &str) -> Target {
        Target {
            api_group: "apps".to_owned(),
            resource: "deployments".to_owned(),
            subresource: None,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn spec(
        requester: &str,
        operation: Operation,
        target: Target,
        digest: String,
    ) -> ApprovalRequestSpec {
        ApprovalRequestSpec {
            requester: requester.to_owned(),
            operation,
            target,
            digest: Some(digest),
            reason: "CHG-4711: roll out the quarterly release".to_owned(),
            policy: POLICY.to_owned(),
            change: None,
            previous: None,
        }
    }

    /// A request as the watch stores it (managedFields stripped), with a
    /// status as the operator writes it.
    fn request(
        name: &str,
        namespace: &str,
        spec: ApprovalRequestSpec,
        phase: Phase,
        now: Timestamp,
        serial: usize,
    ) -> ApprovalRequest {
        let target = spec.target.to_string();
        let mut req = ApprovalRequest::new(name, spec);
        req.metadata.namespace = Some(namespace.to_owned());
        req.metadata.uid = Some(format!("9e1c0a52-0000-4000-8000-{serial:012x}"));
        req.metadata.resource_version = Some("48377".to_owned());
        req.metadata.creation_timestamp = Some(Time(now));
        req.metadata.labels = Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "approval-gate".to_owned(),
            ),
            ("approvalgate.dev/policy".to_owned(), POLICY.to_owned()),
        ]));
        req.status = Some(status(phase, target, now));
        req
    }

    fn status(phase: Phase, target: String, now: Timestamp) -> ApprovalRequestStatus {
        let later = now
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::MAX);
        let approved = phase != Phase::Pending;
        let condition = Condition {
            type_: "Approved".to_owned(),
            status: if approved { "True" } else { "False" }.to_owned(),
            reason: phase.as_str().to_owned(),
            message: format!("the request is {phase}"),
            last_transition_time: Time(now),
            observed_generation: Some(1),
        };
        let approval = Approval {
            user: APPROVER.to_owned(),
            groups: vec!["sre".to_owned(), "system:authenticated".to_owned()],
            time: Time(now),
            comment: "looks good".to_owned(),
        };
        let used = phase == Phase::Used;
        ApprovalRequestStatus {
            phase: Some(phase),
            target: Some(target),
            required_approvals: Some(1),
            approvals: if approved { vec![approval] } else { Vec::new() },
            approved_at: approved.then_some(Time(now)),
            expires_at: Some(Time(later)),
            used_at: used.then_some(Time(now)),
            used_by: used.then(|| UsedBy {
                uid: REVIEW_UID.to_owned(),
                user: "someone".to_owned(),
            }),
            conditions: vec![condition],
            ..ApprovalRequestStatus::default()
        }
    }

    /// Fails unless `review` allows the scenario; for the webhook, through
    /// the prepared approval.
    pub fn verify(kind: Kind, review: &[u8]) -> Result<()> {
        review::verify(review, kind == Kind::Webhook)
    }
}

/// The driver: one child process per server, oha against each, a report.
mod driver {
    use super::*;

    #[derive(Args)]
    pub struct DriveArgs {
        /// The oha binary (hack/bench.sh installs it).
        #[arg(long, env = "OHA", default_value = "oha")]
        pub oha: PathBuf,
        /// Index sizes (ApprovalRequests) to measure the webhook at.
        #[arg(long, value_delimiter = ',', default_value = "100,10000,100000")]
        pub sizes: Vec<usize>,
        /// Connections for the throughput run.
        #[arg(long, default_value_t = 32)]
        pub connections: u32,
        /// Requests per second for the fixed-rate run.
        #[arg(long, default_value_t = 1000)]
        pub rate: u32,
        /// Connections for the fixed-rate run.
        #[arg(long, default_value_t = 8)]
        pub rate_connections: u32,
        /// Seconds of each measured run.
        #[arg(long, default_value_t = 10)]
        pub seconds: u64,
        /// Seconds of unmeasured load before the measured runs.
        #[arg(long, default_value_t = 2)]
        pub warmup: u64,
        /// Runs during which other processes used more CPU than this
        /// (in cores) are repeated; an idle machine shows about 0.05.
        #[arg(long, default_value_t = 0.3)]
        pub max_other_cores: f64,
        /// How many times a disturbed run may be tried in all.
        #[arg(long, default_value_t = 2)]
        pub attempts: u32,
        /// Also write the JSON summary here.
        #[arg(long)]
        pub json_out: Option<PathBuf>,
        /// Count instructions per admission with callgrind instead of
        /// loading the servers (needs valgrind).
        #[arg(long)]
        pub instructions: bool,
        /// The valgrind binary, for `--instructions`.
        #[arg(long, default_value = "valgrind")]
        pub valgrind: PathBuf,
    }

    pub fn drive(args: &DriveArgs) -> Result<()> {
        ensure!(
            (2..=60).contains(&args.seconds)
                && args.warmup <= 30
                && (1..=5).contains(&args.attempts),
            "keep runs short: --seconds 2..=60 (the fixed-rate steady state starts after 1 s), --warmup <= 30, --attempts 1..=5"
        );
        // About 4 KiB of memory per cached request.
        ensure!(
            args.sizes.iter().all(|n| (1..=1_000_000).contains(n)),
            "--sizes must each be 1..=1000000"
        );
        let work = tempfile::tempdir()?;
        if args.instructions {
            let counted = instructions::measure(&args.valgrind, &args.sizes, work.path())?;
            print!("{}", instructions::markdown(&counted));
            return Ok(());
        }
        let body_path = work.path().join("review.json");
        let body = review::review_body()?;
        std::fs::write(&body_path, &body)?;
        let oha = oha::Oha::new(&args.oha, &body_path)?;
        eprintln!(
            "webhook_load: {}, review body {} bytes",
            oha.version,
            body.len()
        );
        let load_before = procfs::loadavg();
        let mut runs = Vec::new();
        let servers = [(Kind::Ceiling, 0), (Kind::ParseOnly, 0)]
            .into_iter()
            .chain(args.sizes.iter().map(|n| (Kind::Webhook, *n)));
        for (kind, requests) in servers {
            eprintln!(
                "webhook_load: measuring the {} ({requests} ApprovalRequests)",
                kind.name()
            );
            runs.push(measure(args, &oha, &body, kind, requests, work.path())?);
        }
        let setting = report::Setting {
            args,
            oha: &oha.version,
            body_bytes: body.len(),
            load_before,
            load_after: procfs::loadavg(),
        };
        let report = report::Report::new(setting, runs)?;
        print!("{}", report.markdown());
        let summary = serde_json::to_string_pretty(&report.json())?;
        println!("\n```json\n{summary}\n```");
        if let Some(path) = &args.json_out {
            std::fs::write(path, summary).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// What one server did under load.
    pub struct Run {
        pub kind: Kind,
        pub requests: usize,
        pub throughput: oha::Stats,
        pub fixed_rate: oha::RateStats,
        pub memory: Memory,
        /// Server CPU time (user + system, all threads) per answered request
        /// in the throughput run: what the server costs, whatever else runs.
        pub cpu_us_per_request: f64,
        /// Cores' worth of CPU that other processes (not the server, oha or
        /// the driver) used during the throughput and the fixed-rate run.
        pub others: [f64; 2],
        /// Attempts made for each run (see `--attempts`).
        pub tries: [u32; 2],
    }

    fn measure(
        args: &DriveArgs,
        oha: &oha::Oha,
        body: &[u8],
        kind: Kind,
        requests: usize,
        dir: &Path,
    ) -> Result<Run> {
        let server = server::Server::spawn(&std::env::current_exe()?, kind.name(), requests, dir)?;
        let url = format!("https://127.0.0.1:{}/validate", server.port);
        check_over_tls(&url, body, kind)?;
        let idle = Memory::read(server.pid())?;
        oha.run(&url, args.connections, args.warmup)?;
        let throughput = undisturbed(args, &server, || {
            oha.run(&url, args.connections, args.seconds)
        })?;
        let fixed_rate = undisturbed(args, &server, || {
            oha.run_rate(&url, args.rate_connections, args.rate, args.seconds)
        })?;
        let cpu_us_per_request =
            throughput.server_cpu.as_secs_f64() * 1e6 / throughput.stats.responses as f64;
        let loaded = Memory::read(server.pid())?;
        server.ensure_running()?;
        let memory = Memory {
            idle_rss_kib: idle.rss_kib,
            ..loaded
        };
        Ok(Run {
            kind,
            requests,
            throughput: throughput.stats,
            fixed_rate: fixed_rate.stats,
            memory,
            cpu_us_per_request,
            others: [throughput.others, fixed_rate.others],
            tries: [throughput.tries, fixed_rate.tries],
        })
    }

    /// One measured oha run and what else the machine did meanwhile.
    struct Measured<T> {
        stats: T,
        server_cpu: Duration,
        others: f64,
        /// How many attempts were made; the least disturbed one is kept.
        tries: u32,
    }

    /// An oha run, repeated (up to `--attempts` in all) while other
    /// processes took more than `--max-other-cores`; the least disturbed
    /// attempt counts. On a shared machine this keeps a neighbour's build
    /// out of the figures, and the report shows what interference remained.
    fn undisturbed<T>(
        args: &DriveArgs,
        server: &server::Server,
        mut run: impl FnMut() -> Result<T>,
    ) -> Result<Measured<T>> {
        let mut best: Option<Measured<T>> = None;
        let mut tries = 0;
        for attempt in 1..=args.attempts {
            tries = attempt;
            let before = procfs::Snapshot::take(server.pid())?;
            let stats = run()?;
            let (server_cpu, others) = procfs::Snapshot::take(server.pid())?.since(&before);
            if best.as_ref().is_none_or(|b| others < b.others) {
                best = Some(Measured {
                    stats,
                    server_cpu,
                    others,
                    tries: 0,
                });
            }
            if others <= args.max_other_cores {
                break;
            }
            eprintln!(
                "webhook_load: other processes used {others:.2} cores during the run (attempt {attempt})"
            );
        }
        let mut best = best.ok_or_else(|| anyhow!("no attempt ran"))?;
        best.tries = tries;
        Ok(best)
    }

    /// One real request over TLS, checked before anything is measured: a
    /// broken setup must abort, not produce numbers.
    fn check_over_tls(url: &str, body: &[u8], kind: Kind) -> Result<()> {
        let answer = server::post_once(url, body)?;
        fixture::verify(kind, &answer).with_context(|| format!("checking {kind:?} before the load"))
    }

    /// Memory of a server process, from /proc/<pid>/status.
    #[derive(Clone, Copy, Debug)]
    pub struct Memory {
        /// Resident set before any load (after building the index).
        pub idle_rss_kib: u64,
        /// Resident set right after the load.
        pub rss_kib: u64,
        /// Peak resident set over the process' life (VmHWM).
        pub peak_kib: u64,
    }

    impl Memory {
        fn read(pid: u32) -> Result<Self> {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let field = |name: &str| -> Result<u64> {
                let line = status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .ok_or_else(|| anyhow!("no {name} for {pid}"))?;
                let kib = line
                    .trim_start_matches(name)
                    .trim()
                    .trim_end_matches("kB")
                    .trim();
                Ok(kib.parse()?)
            };
            let rss_kib = field("VmRSS:")?;
            Ok(Self {
                idle_rss_kib: rss_kib,
                rss_kib,
                peak_kib: field("VmHWM:")?,
            })
        }
    }
}

/// The Markdown table, the verdict on each target, and the JSON summary.
mod report {
    use std::fmt::Write as _;

    use super::{driver::Run, *};

    pub struct Report {
        /// The bare TLS server.
        ceiling: Run,
        /// The server that only parses the review.
        parse_only: Run,
        webhooks: Vec<Run>,
        settings: Value,
    }

    const MIB: f64 = 1024.0;

    /// What the run was, for the report's header.
    pub struct Setting<'a> {
        pub args: &'a driver::DriveArgs,
        pub oha: &'a str,
        pub body_bytes: usize,
        pub load_before: String,
        pub load_after: String,
    }

    impl Report {
        pub fn new(setting: Setting<'_>, runs: Vec<Run>) -> Result<Self> {
            let mut runs = runs.into_iter();
            let ceiling = runs
                .next()
                .filter(|r| r.kind == Kind::Ceiling)
                .ok_or_else(|| anyhow!("no ceiling run"))?;
            let parse_only = runs
                .next()
                .filter(|r| r.kind == Kind::ParseOnly)
                .ok_or_else(|| anyhow!("no parse-only run"))?;
            let args = setting.args;
            let settings = json!({
                "oha": setting.oha,
                "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
                "loadavg_before": setting.load_before,
                "loadavg_after": setting.load_after,
                "review_body_bytes": setting.body_bytes,
                "throughput": {"connections": args.connections, "seconds": args.seconds, "warmup_seconds": args.warmup},
                "fixed_rate": {"requests_per_sec": args.rate, "connections": args.rate_connections, "seconds": args.seconds,
                               "steady_after_secs": oha::STEADY_AFTER_SECS, "latency_correction": true},
            });
            Ok(Self {
                ceiling,
                parse_only,
                webhooks: runs.collect(),
                settings,
            })
        }

        fn ratio(&self, run: &Run) -> f64 {
            run.throughput.requests_per_sec / self.ceiling.throughput.requests_per_sec
        }

        fn parse_ratio(&self, run: &Run) -> f64 {
            run.throughput.requests_per_sec / self.parse_only.throughput.requests_per_sec
        }

        fn runs(&self) -> impl Iterator<Item = &Run> {
            [&self.ceiling, &self.parse_only]
                .into_iter()
                .chain(&self.webhooks)
        }

        pub fn markdown(&self) -> String {
            let s = &self.settings;
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let mut out = format!(
                "{} cores, {}, review body {} bytes, load average before {} / after {}\n\n",
                s["cores"],
                text(&s["oha"]),
                s["review_body_bytes"],
                text(&s["loadavg_before"]),
                text(&s["loadavg_after"]),
            );
            let (t, f) = (&s["throughput"], &s["fixed_rate"]);
            let title = format!(
                "Throughput: {} connections, {} s",
                t["connections"], t["seconds"]
            );
            let columns = [
                "req/s",
                "ratio to ceiling",
                "ratio to parse-only",
                "p50 ms",
                "p99 ms",
                "server CPU µs/request",
                "other processes, cores",
                "attempts",
            ];
            let rows = self.runs().map(|r| {
                let t = &r.throughput;
                let figures = [
                    t.requests_per_sec,
                    self.ratio(r),
                    self.parse_ratio(r),
                    t.p50_ms,
                    t.p99_ms,
                    r.cpu_us_per_request,
                    r.others[0],
                    f64::from(r.tries[0]),
                ];
                row(r, &figures, &[0, 2, 2, 3, 3, 0, 2, 0])
            });
            table(&mut out, &title, &columns, rows);
            let title = format!(
                "Fixed rate: {} requests/s on {} new connections, {} s, latency corrected for coordinated omission; \
                 steady state = requests due after the first {} s, once every connection is open",
                f["requests_per_sec"],
                f["connections"],
                f["seconds"],
                oha::STEADY_AFTER_SECS
            );
            let columns = [
                "achieved req/s",
                "p50 ms, all",
                "p99 ms, all",
                "p50 ms, steady",
                "p99 ms, steady",
                "other processes, cores",
                "attempts",
            ];
            let rows = self.runs().map(|r| {
                let (all, steady) = (&r.fixed_rate.all, &r.fixed_rate.steady);
                let figures = [
                    all.requests_per_sec,
                    all.p50_ms,
                    all.p99_ms,
                    steady.p50_ms,
                    steady.p99_ms,
                    r.others[1],
                    f64::from(r.tries[1]),
                ];
                row(r, &figures, &[0, 3, 3, 3, 3, 2, 0])
            });
            table(&mut out, &title, &columns, rows);
            let columns = ["RSS idle MiB", "RSS after load MiB", "peak RSS MiB"];
            let rows = self.runs().map(|r| {
                let m = &r.memory;
                let mib = [m.idle_rss_kib, m.rss_kib, m.peak_kib].map(|kib| kib as f64 / MIB);
                row(r, &mib, &[1, 1, 1])
            });
            table(&mut out, "Memory of the server process", &columns, rows);
            out.push_str("Targets\n\n");
            for line in self.verdicts() {
                let _ = writeln!(out, "- {line}");
            }
            out
        }

        /// Each target, met or not, with the figure it was judged on.
        fn verdicts(&self) -> Vec<String> {
            let mark = |met: bool| if met { "MET" } else { "NOT MET" };
            let mut lines = Vec::new();
            for run in &self.webhooks {
                let (ratio, parse) = (self.ratio(run), self.parse_ratio(run));
                let n = run.requests;
                lines.push(format!(
                    "{}: throughput >= 0.5 x the bare TLS ceiling at {n} requests: {ratio:.2}",
                    mark(ratio >= 0.5)
                ));
                lines.push(format!(
                    "{}: throughput >= 0.9 x the parse-only ceiling at {n} requests: {parse:.2}",
                    mark(parse >= 0.9)
                ));
                let cpu = run.cpu_us_per_request;
                lines.push(format!(
                    "{}: server CPU <= 50 us per admission at {n} requests: {cpu:.0} us",
                    mark(cpu <= 50.0)
                ));
            }
            for run in &self.webhooks {
                let (all, steady) = (&run.fixed_rate.all, &run.fixed_rate.steady);
                for (what, stats) in [("all requests", all), ("steady state", steady)] {
                    lines.push(format!(
                        "{}: p99 < 1 ms at {:.0} req/s, {} requests, {what}: {:.3} ms",
                        mark(stats.p99_ms < 1.0),
                        all.requests_per_sec,
                        run.requests,
                        stats.p99_ms
                    ));
                }
            }
            if let Some((small, large)) = self.size(100).zip(self.size(100_000)) {
                let runs = [
                    (
                        small.fixed_rate.steady,
                        large.fixed_rate.steady,
                        "fixed rate, steady state",
                    ),
                    (small.throughput, large.throughput, "throughput run"),
                ];
                for (small, large, what) in runs {
                    let growth = large.p50_ms / small.p50_ms;
                    lines.push(format!(
                        "{}: p50 at 100000 within 1.2x of p50 at 100 ({what}): {growth:.2}x",
                        mark(growth <= 1.2)
                    ));
                }
            }
            if let Some(run) = self.size(10_000) {
                let peak = run.memory.peak_kib as f64 / MIB;
                lines.push(format!(
                    "{}: peak RSS < 64 MiB at 10000 requests: {peak:.1} MiB",
                    mark(peak < 64.0)
                ));
            }
            lines
        }

        fn size(&self, requests: usize) -> Option<&Run> {
            self.webhooks.iter().find(|r| r.requests == requests)
        }

        pub fn json(&self) -> Value {
            let stats = |s: &oha::Stats| json!({"requests_per_sec": s.requests_per_sec, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "responses": s.responses});
            let run = |r: &Run| {
                json!({
                    "kind": r.kind.name(),
                    "approval_requests": r.requests,
                    "ratio_to_ceiling": self.ratio(r),
                    "ratio_to_parse_only": self.parse_ratio(r),
                    "throughput": stats(&r.throughput),
                    "cpu_us_per_request": r.cpu_us_per_request,
                    "other_processes_cores": {"throughput": r.others[0], "fixed_rate": r.others[1]},
                    "attempts": {"throughput": r.tries[0], "fixed_rate": r.tries[1]},
                    "fixed_rate": {"all": stats(&r.fixed_rate.all), "steady_state": stats(&r.fixed_rate.steady)},
                    "rss_idle_kib": r.memory.idle_rss_kib,
                    "rss_after_load_kib": r.memory.rss_kib,
                    "rss_peak_kib": r.memory.peak_kib,
                })
            };
            json!({
                "bench": "webhook_load",
                "settings": self.settings,
                "runs": self.runs().map(run).collect::<Vec<_>>(),
                "targets": self.verdicts(),
            })
        }
    }

    /// A Markdown table whose first columns name the server.
    fn table(out: &mut String, title: &str, columns: &[&str], rows: impl Iterator<Item = String>) {
        let _ = writeln!(
            out,
            "{title}\n\n| server | ApprovalRequests | {} |\n|---|---:|{}",
            columns.join(" | "),
            "---:|".repeat(columns.len())
        );
        for row in rows {
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }

    /// One table row: the server, then each figure with its decimals.
    fn row(run: &Run, figures: &[f64], decimals: &[usize]) -> String {
        let size = match run.kind {
            Kind::Ceiling | Kind::ParseOnly => "-".to_owned(),
            Kind::Webhook => run.requests.to_string(),
        };
        let cells: Vec<String> = figures
            .iter()
            .zip(decimals)
            .map(|(x, d)| format!("{x:.d$}"))
            .collect();
        format!("| {} | {size} | {} |", run.kind.name(), cells.join(" | "))
    }
}

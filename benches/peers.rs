//! Peer comparison: approval-gate's webhook next to OPA Gatekeeper and
//! Kyverno, each run as a local process beside a real etcd + kube-apiserver
//! on loopback.
//!
//! Run it with `make bench-peers` (`hack/bench-peers.sh`), which builds
//! Gatekeeper and Kyverno from their pinned Go modules, the control plane
//! tools, oha, the release binary and `benches/webhook_load.rs`, and passes
//! their paths.
//! BENCHMARKS.md describes the method and records the figures.
//!
//! - `cargo bench` (cargo passes `--bench`): the driver. It measures
//!   1. direct over TLS: the 8,888-byte Deployment UPDATE AdmissionReview of
//!      `benches/webhook_load.rs`, POSTed by oha on 32 keep-alive connections
//!      for 10 s (after 2 s of warm-up) to each webhook's validating endpoint,
//!      with the server's CPU time per answered request from /proc;
//!   2. end to end: sequential PATCHes of one Deployment's annotation through
//!      the kube-apiserver with no webhook, then with each webhook registered
//!      for Deployment UPDATEs, and the latency each webhook adds.
//! - no `--bench`, as `cargo test --benches` runs it: no Go, no peers, no
//!   control plane; only a check that the review and the peers' objects still
//!   say what the driver relies on.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use approval_gate::crd::{
    Approval, ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec, ApprovalRequestStatus,
    Operation, Phase, Target,
};
use approval_gate_testenv::{
    self, ControlPlane, Options, certs::ServingCerts, identities, process::ManagedProcess,
    webhook::LocalWebhook,
};
use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        admissionregistration::v1::{RuleWithOperations, ValidatingWebhookConfiguration},
        apps::v1::Deployment,
        core::v1::Pod,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
use kube::{
    Api, Client,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PostParams,
    },
};
use serde::Serialize;
use serde_json::{Value, json};

use review::{DEPLOYMENT, NAMESPACE};

/// The label both policies require, which the bench's objects carry.
const REQUIRED_LABEL: &str = "team";
const GATEKEEPER_NAMESPACE: &str = "gatekeeper-system";
const GATEKEEPER_POD: &str = "gatekeeper-bench";
const GATEKEEPER_CONFIGURATION: &str = "bench-peers-gatekeeper";
const POLICY: &str = "bench-peers";
const APPROVAL: &str = "bench-peers-checkout";

#[derive(Parser)]
#[command(about = "Compare the webhook with peer admission controllers on a local control plane")]
struct Cli {
    /// Passed by `cargo bench`; without it the binary only checks its setup.
    #[arg(long, hide = true)]
    bench: bool,
    /// The oha binary (hack/bench-peers.sh passes the one hack/bench.sh installs).
    #[arg(long, env = "OHA", default_value = "oha")]
    oha: PathBuf,
    /// Gatekeeper's manager binary, built by hack/bench-peers.sh.
    #[arg(long)]
    gatekeeper: Option<PathBuf>,
    /// The folder of Gatekeeper's pinned module source (its chart's CRDs).
    #[arg(long)]
    gatekeeper_source: Option<PathBuf>,
    /// Kyverno's admission controller binary, built by hack/bench-peers.sh.
    #[arg(long)]
    kyverno: Option<PathBuf>,
    /// The folder of Kyverno's pinned module source (its CRDs).
    #[arg(long)]
    kyverno_source: Option<PathBuf>,
    /// The webhooks to measure, in this order, each beside "no webhook".
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "gatekeeper,kyverno,approval-gate"
    )]
    peers: Vec<Peer>,
    /// The `webhook_load` bench binary: approval-gate's server for the
    /// direct run is its `serve --kind webhook --requests 100`.
    #[arg(long)]
    webhook_load: Option<PathBuf>,
    /// The approval-gate binary registered end to end; defaults to
    /// target/release/approval-gate.
    #[arg(long)]
    approval_gate: Option<PathBuf>,
    /// Connections for the direct run.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Seconds of the measured direct run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of unmeasured load before it.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Sequential PATCHes measured per end-to-end scenario.
    #[arg(long, default_value_t = 400)]
    patches: usize,
    /// Unmeasured PATCHes before them.
    #[arg(long, default_value_t = 100)]
    warmup_patches: usize,
    /// Also write the JSON summary here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Also write the Markdown report here.
    #[arg(long)]
    markdown_out: Option<PathBuf>,
    /// Keep the control plane's files and the peers' logs in this folder
    /// instead of a temporary one.
    #[arg(long)]
    keep_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !cli.bench {
        return self_check();
    }
    ensure!(
        (2..=60).contains(&cli.seconds)
            && cli.warmup <= 30
            && (1..=256).contains(&cli.connections)
            && (10..=5_000).contains(&cli.patches)
            && cli.warmup_patches <= 1_000,
        "keep runs bounded: --seconds 2..=60, --warmup <= 30, --connections 1..=256, \
         --patches 10..=5000, --warmup-patches <= 1000"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // A backstop: each step has its own, shorter, limit.
    let report = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(1200), drive(&cli)).await })
        .map_err(|_| anyhow!("the benchmark did not finish within 20 minutes"))??;
    let markdown = report.markdown();
    print!("{markdown}");
    let summary = serde_json::to_string_pretty(&report)?;
    println!("\n```json\n{summary}\n```");
    if let Some(path) = &cli.json_out {
        std::fs::write(path, &summary).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.markdown_out {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Test mode: the review is the load test's, carries the label the peers
/// require, and the variant without it does not; the peers' objects parse.
fn self_check() -> Result<()> {
    let body = fixture::review_body()?;
    let review: Value = serde_json::from_slice(&body)?;
    ensure!(
        review
            .pointer(&format!("/request/object/metadata/labels/{REQUIRED_LABEL}"))
            .is_some(),
        "the review's object lacks the label the policies require"
    );
    let unlabelled: Value = serde_json::from_slice(&fixture::unlabelled_review_body()?)?;
    ensure!(
        unlabelled
            .pointer(&format!("/request/object/metadata/labels/{REQUIRED_LABEL}"))
            .is_none(),
        "the denied variant still has the label"
    );
    let allow = json!({"response": {"uid": review::REVIEW_UID, "allowed": true}});
    review::verify(&serde_json::to_vec(&allow)?, false)?;
    ensure!(
        review::verify(
            &serde_json::to_vec(
                &json!({"response": {"uid": review::REVIEW_UID, "allowed": false}})
            )?,
            false
        )
        .is_err(),
        "a denial passed the check"
    );
    gatekeeper::template()?;
    gatekeeper::constraint()?;
    gatekeeper::configuration(1, "")?;
    kyverno::policy()?;
    let policy = approval::policy()?;
    let problems = approval_gate::admission::guard::review_policy(&policy.spec);
    ensure!(
        problems.is_empty(),
        "the bench policy is invalid: {problems:?}"
    );
    let (_, status) = approval::request(Timestamp::now())?;
    ensure!(
        status.phase == Some(Phase::Approved),
        "the approval is not Approved"
    );
    let latencies: Vec<f64> = (1..=100).map(f64::from).collect();
    let stats = Percentiles::of(latencies)?;
    ensure!(
        (stats.p50_ms, stats.p90_ms, stats.p99_ms) == (50.0, 90.0, 99.0),
        "percentiles: {stats:?}"
    );
    procfs::cpu(std::process::id())?;
    println!(
        "peers: setup check passed with a {} byte review (no Go, no peers; run `make bench-peers` to measure)",
        body.len()
    );
    Ok(())
}

#[derive(Serialize)]
struct Report {
    machine: Machine,
    versions: BTreeMap<String, String>,
    direct: Vec<DirectRun>,
    end_to_end: Vec<E2eRun>,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    loadavg_start: String,
    loadavg_end: String,
    review_body_bytes: usize,
    connections: u32,
    seconds: u64,
    warmup_seconds: u64,
    patches: usize,
    warmup_patches: usize,
}

#[derive(Serialize)]
struct DirectRun {
    webhook: String,
    endpoint: String,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    responses: u64,
    server_cpu_us_per_request: f64,
    /// Cores' worth of CPU that other processes used meanwhile.
    other_processes_cores: f64,
}

#[derive(Serialize)]
struct E2eRun {
    scenario: String,
    latency: Percentiles,
    /// Over the mean of the two "no webhook" runs.
    added: Option<Percentiles>,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct Percentiles {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    count: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles of latencies in milliseconds.
    fn of(mut ms: Vec<f64>) -> Result<Self> {
        ensure!(!ms.is_empty(), "no latencies");
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Ok(Self {
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            count: ms.len(),
        })
    }

    /// The mean of each figure of two runs.
    fn mean_with(&self, other: &Self) -> Self {
        let mean = |a: f64, b: f64| f64::midpoint(a, b);
        Self {
            p50_ms: mean(self.p50_ms, other.p50_ms),
            p90_ms: mean(self.p90_ms, other.p90_ms),
            p99_ms: mean(self.p99_ms, other.p99_ms),
            mean_ms: mean(self.mean_ms, other.mean_ms),
            count: self.count + other.count,
        }
    }

    fn minus(&self, base: &Self) -> Self {
        Self {
            p50_ms: self.p50_ms - base.p50_ms,
            p90_ms: self.p90_ms - base.p90_ms,
            p99_ms: self.p99_ms - base.p99_ms,
            mean_ms: self.mean_ms - base.mean_ms,
            count: self.count,
        }
    }
}

impl Report {
    fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let m = &self.machine;
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        let mut out = format!(
            "{} cores, load average at start {} / at end {}; review body {} bytes; {}\n\n",
            m.cores,
            m.loadavg_start,
            m.loadavg_end,
            m.review_body_bytes,
            versions.join("; ")
        );
        let _ = writeln!(
            out,
            "Direct over TLS: {} keep-alive connections, {} s after {} s of warm-up\n\n\
             | webhook | endpoint | req/s | p50 ms | p99 ms | server CPU µs/request | other processes, cores |\n\
             |---|---|---:|---:|---:|---:|---:|",
            m.connections, m.seconds, m.warmup_seconds
        );
        for r in &self.direct {
            let _ = writeln!(
                out,
                "| {} | `{}` | {:.0} | {:.3} | {:.3} | {:.0} | {:.2} |",
                r.webhook,
                r.endpoint,
                r.requests_per_sec,
                r.p50_ms,
                r.p99_ms,
                r.server_cpu_us_per_request,
                r.other_processes_cores
            );
        }
        let _ = writeln!(
            out,
            "\nEnd to end: {} sequential PATCHes of a Deployment's annotation through the kube-apiserver \
             (after {} unmeasured), client-side latency; \
             added = over the mean of the two runs without a webhook\n\n\
             | webhook registered | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p90 ms | added p99 ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|",
            m.patches, m.warmup_patches
        );
        for r in &self.end_to_end {
            let l = &r.latency;
            let added = r.added.map_or_else(
                || "- | - | -".to_owned(),
                |a| format!("{:+.2} | {:+.2} | {:+.2}", a.p50_ms, a.p90_ms, a.p99_ms),
            );
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {added} |",
                r.scenario, l.p50_ms, l.p90_ms, l.p99_ms, l.mean_ms
            );
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Peer {
    Gatekeeper,
    Kyverno,
    ApprovalGate,
}

async fn drive(cli: &Cli) -> Result<Report> {
    let wants = |peer| cli.peers.contains(&peer);
    let approval_gate_bin = match &cli.approval_gate {
        Some(path) => canonical(Some(path), "--approval-gate")?,
        None => release_binary()?,
    };
    let work = tempfile::tempdir()?;
    let body_path = work.path().join("review.json");
    let body = fixture::review_body()?;
    std::fs::write(&body_path, &body)?;
    let oha = oha::Oha::new(&cli.oha, &body_path)?;
    let loadavg_start = procfs::loadavg();
    eprintln!(
        "peers: load average at start {loadavg_start}; {}",
        oha.version
    );
    let mut versions = BTreeMap::from([("oha".to_owned(), oha.version.clone())]);

    let options = Options {
        dir: cli.keep_dir.clone(),
        ..Options::from_env().context(
            "setup: run through `make bench-peers`, which builds etcd and kube-apiserver",
        )?
    };
    let plane = ControlPlane::start(options)
        .await
        .context("setup: starting etcd + kube-apiserver")?;
    versions.insert(
        "kube-apiserver".to_owned(),
        version_of(&plane.bin_dir().join("kube-apiserver"), &["--version"]),
    );
    let admin = plane.client(&identities::ADMIN).await?;
    let alice = plane.client(&identities::ALICE).await?;
    let dave = plane.client(&identities::DAVE).await?;
    plane.create_namespace_named(NAMESPACE).await?;
    Api::<Deployment>::namespaced(admin.clone(), NAMESPACE)
        .create(&PostParams::default(), &fixture::cluster_deployment()?)
        .await
        .context("setup: creating the Deployment")?;
    let patcher = Patcher::new(alice.clone(), cli.patches, cli.warmup_patches);

    let mut direct = Vec::new();
    let mut end_to_end = Vec::new();
    eprintln!("peers: end to end, no webhook");
    let baseline = patcher.measure().await?;
    end_to_end.push(E2eRun {
        scenario: "none".to_owned(),
        latency: baseline,
        added: None,
    });
    let mut registered = |scenario: &str, latency: Percentiles| {
        end_to_end.push(E2eRun {
            scenario: scenario.to_owned(),
            added: None,
            latency,
        });
    };

    // Each peer: direct, then registered, then gone again.
    if wants(Peer::Gatekeeper) {
        let binary = canonical(cli.gatekeeper.as_deref(), "--gatekeeper")?;
        let source = canonical(cli.gatekeeper_source.as_deref(), "--gatekeeper-source")?;
        let gk = gatekeeper::Gatekeeper::start(&plane, &admin, &binary, &source).await?;
        versions.insert("Gatekeeper".to_owned(), version_from_name(&binary));
        eprintln!("peers: direct, Gatekeeper");
        direct.push(tokio::task::block_in_place(|| {
            measure_direct(cli, &oha, "Gatekeeper", &gk.url, gk.pid(), &body, false)
        })?);
        eprintln!("peers: end to end, Gatekeeper registered");
        gk.register(&admin).await?;
        patcher
            .expect_denied(&alice, "you must provide labels")
            .await?;
        registered("Gatekeeper", patcher.measure().await?);
        Api::<ValidatingWebhookConfiguration>::all(admin.clone())
            .delete(GATEKEEPER_CONFIGURATION, &DeleteParams::default())
            .await?;
        patcher.expect_unlabelled_allowed().await?;
        gk.stop();
    }

    if wants(Peer::Kyverno) {
        let binary = canonical(cli.kyverno.as_deref(), "--kyverno")?;
        let source = canonical(cli.kyverno_source.as_deref(), "--kyverno-source")?;
        let ky = kyverno::Kyverno::start(&plane, &admin, &binary, &source).await?;
        versions.insert("Kyverno".to_owned(), version_from_name(&binary));
        eprintln!("peers: direct, Kyverno");
        direct.push(tokio::task::block_in_place(|| {
            measure_direct(cli, &oha, "Kyverno", &ky.url, ky.pid(), &body, false)
        })?);
        eprintln!("peers: end to end, Kyverno registered (by itself)");
        patcher.expect_denied(&alice, kyverno::MESSAGE).await?;
        registered("Kyverno", patcher.measure().await?);
        ky.stop();
        kyverno::unregister(&admin).await?;
        patcher.expect_unlabelled_allowed().await?;
    }

    if wants(Peer::ApprovalGate) {
        let webhook_load = canonical(cli.webhook_load.as_deref(), "--webhook-load")?;
        versions.insert(
            "approval-gate".to_owned(),
            version_of(&approval_gate_bin, &["--version"]),
        );
        eprintln!("peers: direct, approval-gate");
        {
            let server = server::Server::spawn(&webhook_load, "webhook", 100, work.path())?;
            let url = format!("https://127.0.0.1:{}/validate", server.port);
            direct.push(tokio::task::block_in_place(|| {
                measure_direct(cli, &oha, "approval-gate", &url, server.pid(), &body, true)
            })?);
            server.ensure_running()?;
        }
        eprintln!("peers: end to end, approval-gate registered");
        let webhook = approval::start(&plane, &admin, &approval_gate_bin).await?;
        patcher.expect_denied(&dave, "approval").await?;
        approval::expect_granted(&admin, &patcher).await?;
        registered("approval-gate", patcher.measure().await?);
        approval::unregister(&admin).await?;
        patcher.expect_allowed(&dave).await?;
        drop(webhook);
    }

    eprintln!("peers: end to end, no webhook again");
    let again = patcher.measure().await?;
    registered("none (again, at the end)", again);
    // Added latency: over the mean of the two runs without a webhook, which
    // bracket the others.
    let base = baseline.mean_with(&again);
    for run in end_to_end
        .iter_mut()
        .skip(1)
        .filter(|r| !r.scenario.starts_with("none"))
    {
        run.added = Some(run.latency.minus(&base));
    }
    plane.stop();
    Ok(Report {
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            loadavg_start,
            loadavg_end: procfs::loadavg(),
            review_body_bytes: body.len(),
            connections: cli.connections,
            seconds: cli.seconds,
            warmup_seconds: cli.warmup,
            patches: cli.patches,
            warmup_patches: cli.warmup_patches,
        },
        versions,
        direct,
        end_to_end,
    })
}

/// `v3.23.1` from `gatekeeper-v3.23.1`, as hack/bench-peers.sh names the
/// binaries (neither prints its version without a cluster).
fn version_from_name(binary: &Path) -> String {
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.rsplit_once('-').map_or(name, |(_, v)| v).to_owned()
}

fn canonical(path: Option<&Path>, flag: &str) -> Result<PathBuf> {
    let path = path.ok_or_else(|| anyhow!("{flag} is needed: run through `make bench-peers`"))?;
    std::fs::canonicalize(path).with_context(|| format!("{flag} {}", path.display()))
}

/// target/release/approval-gate: the bench runs from target/release/deps.
fn release_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("approval-gate"))
        .ok_or_else(|| anyhow!("no folder above {}", exe.display()))?;
    ensure!(
        path.exists(),
        "{} is missing: `cargo build --release --bin approval-gate` first",
        path.display()
    );
    Ok(path)
}

/// The first line a binary prints for `args`, for the report.
fn version_of(binary: &Path, args: &[&str]) -> String {
    Command::new(binary)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// One checked, warmed-up, measured oha run against `url`.
fn measure_direct(
    cli: &Cli,
    oha: &oha::Oha,
    name: &str,
    url: &str,
    pid: u32,
    body: &[u8],
    granted: bool,
) -> Result<DirectRun> {
    let answer =
        server::post_once(url, body).with_context(|| format!("checking {name} before the load"))?;
    review::verify(&answer, granted)
        .with_context(|| format!("setup: {name} does not allow the bench's review"))?;
    oha.run(url, cli.connections, cli.warmup)?;
    let before = procfs::Snapshot::take(pid)?;
    let stats = oha.run(url, cli.connections, cli.seconds)?;
    let (server_cpu, others) = procfs::Snapshot::take(pid)?.since(&before);
    Ok(DirectRun {
        webhook: name.to_owned(),
        endpoint: url
            .get(8..)
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_default(),
        requests_per_sec: stats.requests_per_sec,
        p50_ms: stats.p50_ms,
        p99_ms: stats.p99_ms,
        responses: stats.responses,
        server_cpu_us_per_request: server_cpu.as_secs_f64() * 1e6 / stats.responses as f64,
        other_processes_cores: others,
    })
}

/// Sequential PATCHes of the Deployment, each a real UPDATE (a new annotation value).
struct Patcher {
    alice: Client,
    patches: usize,
    warmup: usize,
    serial: std::sync::atomic::AtomicU64,
}

impl Patcher {
    fn new(alice: Client, patches: usize, warmup: usize) -> Self {
        Self {
            alice,
            patches,
            warmup,
            serial: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn api(client: &Client) -> Api<Deployment> {
        Api::namespaced(client.clone(), NAMESPACE)
    }

    async fn patch(&self, client: &Client, extra: Value) -> Result<(), kube::Error> {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut patch = json!({"metadata": {"annotations": {"bench.approvalgate.dev/serial": serial.to_string()}}});
        if let (Some(m), Some(extra)) = (patch["metadata"].as_object_mut(), extra.as_object()) {
            m.extend(extra.clone());
        }
        Self::api(client)
            .patch(DEPLOYMENT, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }

    /// The latencies of `patches` PATCHes as alice, after the warm-up.
    async fn measure(&self) -> Result<Percentiles> {
        for _ in 0..self.warmup {
            self.patch(&self.alice, json!({})).await?;
        }
        let mut ms = Vec::with_capacity(self.patches);
        for _ in 0..self.patches {
            let started = Instant::now();
            self.patch(&self.alice, json!({}))
                .await
                .context("a measured PATCH failed")?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        Percentiles::of(ms)
    }

    /// Waits (30 s at most) until a PATCH by `client` is denied with a
    /// message holding `needle`: the webhook is registered and judging. The
    /// PATCH removes the required label, which only Gatekeeper's policy minds.
    async fn expect_denied(&self, client: &Client, needle: &str) -> Result<()> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            match self
                .patch(client, json!({"labels": {REQUIRED_LABEL: null}}))
                .await
            {
                Err(kube::Error::Api(status)) if status.message.contains(needle) => {
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
                Ok(()) => {
                    last = "allowed".to_owned();
                    self.restore_label().await?;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("setup: a PATCH was never denied with {needle:?} (last: {last})")
    }

    /// Waits until alice may remove the label again (no webhook judges it).
    async fn expect_unlabelled_allowed(&self) -> Result<()> {
        self.expect_allowed_with(&self.alice, json!({"labels": {REQUIRED_LABEL: null}}))
            .await?;
        self.restore_label().await
    }

    async fn expect_allowed(&self, client: &Client) -> Result<()> {
        self.expect_allowed_with(client, json!({})).await
    }

    async fn expect_allowed_with(&self, client: &Client, extra: Value) -> Result<()> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(30) {
            match self.patch(client, extra.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("a PATCH stayed denied after the webhook was removed: {last}")
    }

    async fn restore_label(&self) -> Result<()> {
        self.patch(&self.alice, json!({"labels": {REQUIRED_LABEL: "payments"}}))
            .await
            .context("restoring the label")
    }
}

/// Waits until `url` answers 200, over plain HTTP or over TLS with any
/// certificate (loopback only).
async fn wait_ok(url: &str, what: &str, limit: Duration) -> Result<()> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what} was not ready within {limit:?} ({url})")
}

/// Gatekeeper as a local process: CRDs from its chart, a Pod object it can
/// own its status objects with, the webhook and generate operations, and
/// one ConstraintTemplate K8sRequiredLabels with one constraint on Deployments.
mod gatekeeper {
    use super::*;

    pub struct Gatekeeper {
        pub url: String,
        ca_pem: String,
        binary: PathBuf,
        process: ManagedProcess,
    }

    pub fn template() -> Result<DynamicObject> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8srequiredlabels"},
            "spec": {
                "crd": {"spec": {"names": {"kind": "K8sRequiredLabels"},
                        "validation": {"openAPIV3Schema": {"type": "object", "properties": {
                            "labels": {"type": "array", "items": {"type": "string"}}}}}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": concat!(
                    "package k8srequiredlabels\n\n",
                    "violation[{\"msg\": msg, \"details\": {\"missing_labels\": missing}}] {\n",
                    "  provided := {label | input.review.object.metadata.labels[label]}\n",
                    "  required := {label | label := input.parameters.labels[_]}\n",
                    "  missing := required - provided\n",
                    "  count(missing) > 0\n",
                    "  msg := sprintf(\"you must provide labels: %v\", [missing])\n",
                    "}\n")}],
            },
        }))?)
    }

    pub fn constraint() -> Result<DynamicObject> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
            "metadata": {"name": "deployments-must-have-team"},
            "spec": {
                "match": {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]},
                "parameters": {"labels": [REQUIRED_LABEL]},
            },
        }))?)
    }

    /// Gatekeeper's validating endpoint for Deployment UPDATEs only, as
    /// approval-gate is registered in this bench; fails closed, so a broken
    /// setup cannot pass as a fast one.
    pub fn configuration(port: u16, ca_pem: &str) -> Result<ValidatingWebhookConfiguration> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": GATEKEEPER_CONFIGURATION},
            "webhooks": [{
                "name": "validation.gatekeeper.sh",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/v1/admit"),
                                 "caBundle": base64_encode(ca_pem.as_bytes())},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                           "resources": ["deployments"], "scope": "*"}],
                "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"], "matchPolicy": "Exact",
            }],
        }))?)
    }

    fn base64_encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    impl Gatekeeper {
        pub async fn start(
            plane: &ControlPlane,
            admin: &Client,
            binary: &Path,
            source: &Path,
        ) -> Result<Self> {
            install_crds(admin, &source.join("charts/gatekeeper/crds"))
                .await
                .context("setup: installing Gatekeeper's CRDs")?;
            plane.create_namespace_named(GATEKEEPER_NAMESPACE).await?;
            let pod: Pod = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": GATEKEEPER_POD, "namespace": GATEKEEPER_NAMESPACE},
                "spec": {"containers": [{"name": "manager", "image": "gatekeeper:local"}]},
            }))?;
            Api::<Pod>::namespaced(admin.clone(), GATEKEEPER_NAMESPACE)
                .create(&PostParams::default(), &pod)
                .await
                .context("setup: Gatekeeper's Pod object")?;

            let dir = plane.dir().join("gatekeeper");
            std::fs::create_dir_all(&dir)?;
            let certs = ServingCerts::generate("gatekeeper-webhook", &["127.0.0.1", "localhost"])?;
            std::fs::write(dir.join("tls.crt"), &certs.cert_pem)?;
            std::fs::write(dir.join("tls.key"), &certs.key_pem)?;
            let [port, health, prometheus] = free_ports::<3>()?;
            let args = vec![
                "--operation=webhook".to_owned(),
                // Without it the constraint CRDs never appear.
                "--operation=generate".to_owned(),
                "--host=127.0.0.1".to_owned(),
                format!("--port={port}"),
                format!("--cert-dir={}", dir.display()),
                "--disable-cert-rotation".to_owned(),
                format!("--health-addr=127.0.0.1:{health}"),
                "--metrics-addr=0".to_owned(),
                // Its default metrics backend; the exporter listens on all
                // interfaces, so give it a free port.
                format!("--prometheus-port={prometheus}"),
                "--log-level=INFO".to_owned(),
            ];
            let kubeconfig = plane.kubeconfig(&identities::ADMIN).display().to_string();
            let process = ManagedProcess::spawn_with_env(
                "gatekeeper",
                binary,
                &args,
                &[
                    ("KUBECONFIG", kubeconfig.as_str()),
                    ("POD_NAME", GATEKEEPER_POD),
                    ("POD_NAMESPACE", GATEKEEPER_NAMESPACE),
                ],
                &dir.join("gatekeeper.log"),
            )?;
            let mut gk = Self {
                url: format!("https://127.0.0.1:{port}/v1/admit"),
                ca_pem: certs.ca_pem,
                binary: binary.to_owned(),
                process,
            };
            let log = dir.join("gatekeeper.log");
            let url = format!("http://127.0.0.1:{health}/healthz");
            let ready = wait_ok(&url, "Gatekeeper", Duration::from_secs(90)).await;
            started("Gatekeeper", &mut gk.process, ready, &log)?;
            let loaded = gk.load_policy(admin).await;
            loaded.with_context(|| format!("Gatekeeper's log:\n{}", tail(&log)))?;
            Ok(gk)
        }

        /// Creates the template, waits for the constraint kind Gatekeeper
        /// generates from it, creates the constraint, and waits until
        /// Gatekeeper denies the review without the label over TLS.
        async fn load_policy(&self, admin: &Client) -> Result<()> {
            let template_ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("templates.gatekeeper.sh", "v1", "ConstraintTemplate"),
                "constrainttemplates",
            );
            Api::<DynamicObject>::all_with(admin.clone(), &template_ar)
                .create(&PostParams::default(), &template()?)
                .await
                .context("setup: creating the ConstraintTemplate")?;
            let constraint_ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("constraints.gatekeeper.sh", "v1beta1", "K8sRequiredLabels"),
                "k8srequiredlabels",
            );
            let constraints = Api::<DynamicObject>::all_with(admin.clone(), &constraint_ar);
            let started = Instant::now();
            let mut last = String::new();
            loop {
                match constraints
                    .create(&PostParams::default(), &constraint()?)
                    .await
                {
                    Ok(_) => break,
                    Err(e) if started.elapsed() < Duration::from_secs(90) => last = e.to_string(),
                    Err(e) => bail!(
                        "setup: the constraint kind K8sRequiredLabels never appeared ({e}; before: {last})"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if denies_unlabelled(&self.url, Duration::from_secs(90)).await? {
                return Ok(());
            }
            bail!(
                "setup: Gatekeeper never denied a Deployment without the label {REQUIRED_LABEL:?}"
            )
        }

        pub fn pid(&self) -> u32 {
            self.process.program_id(&self.binary).unwrap_or(0)
        }

        pub async fn register(&self, admin: &Client) -> Result<()> {
            let port = self
                .url
                .rsplit_once(':')
                .and_then(|(_, rest)| rest.split('/').next())
                .ok_or_else(|| anyhow!("no port in {}", self.url))?
                .parse()?;
            Api::<ValidatingWebhookConfiguration>::all(admin.clone())
                .create(&PostParams::default(), &configuration(port, &self.ca_pem)?)
                .await
                .context("registering Gatekeeper")?;
            Ok(())
        }

        pub fn stop(mut self) {
            self.process.stop(Duration::from_secs(15));
        }
    }
}

/// The CustomResourceDefinitions in the YAML files under `dir` (and its
/// subfolders), applied and established.
async fn install_crds(admin: &Client, dir: &Path) -> Result<()> {
    use serde::Deserialize as _;
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(doc)?;
            if value.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                continue;
            }
            let crd: CustomResourceDefinition = serde_yaml_ng::from_value(value)
                .with_context(|| format!("parsing {}", file.display()))?;
            crds.push(crd);
        }
    }
    ensure!(!crds.is_empty(), "no CRDs in {}", dir.display());
    Ok(approval_gate_testenv::install_crds(admin, &crds).await?)
}

/// Kyverno's admission controller as a local process, out of cluster as its
/// `--serverIP` mode runs it: it issues its own certificate into Secrets,
/// and registers its own webhooks by URL for what its policies match. One
/// ClusterPolicy validates that Deployments have the label.
mod kyverno {
    use super::*;

    const NAMESPACE: &str = "kyverno";
    const POLICY: &str = "require-team-label";
    pub const MESSAGE: &str = "the label team is required";

    pub struct Kyverno {
        /// The resource validating endpoint for policies that fail closed.
        pub url: String,
        binary: PathBuf,
        process: ManagedProcess,
    }

    pub fn policy() -> Result<DynamicObject> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": POLICY},
            "spec": {
                "background": false,
                "rules": [{
                    "name": "check-team",
                    "match": {"any": [{"resources": {"kinds": ["Deployment"], "operations": ["UPDATE"]}}]},
                    "validate": {"failureAction": "Enforce", "message": MESSAGE,
                                 "pattern": {"metadata": {"labels": {REQUIRED_LABEL: "?*"}}}},
                }],
            },
        }))?)
    }

    fn policies(admin: &Client) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kyverno.io", "v1", "ClusterPolicy"),
            "clusterpolicies",
        );
        Api::all_with(admin.clone(), &resource)
    }

    impl Kyverno {
        pub async fn start(
            plane: &ControlPlane,
            admin: &Client,
            binary: &Path,
            source: &Path,
        ) -> Result<Self> {
            install_crds(admin, &source.join("config/crds"))
                .await
                .context("setup: installing Kyverno's CRDs")?;
            plane.create_namespace_named(NAMESPACE).await?;
            let dir = plane.dir().join("kyverno");
            std::fs::create_dir_all(&dir)?;
            let [port, metrics] = free_ports::<2>()?;
            let args = vec![
                format!(
                    "--kubeconfig={}",
                    plane.kubeconfig(&identities::ADMIN).display()
                ),
                format!("--serverIP=127.0.0.1:{port}"),
                format!("--servicePort={port}"),
                "--webhookServerHost=127.0.0.1".to_owned(),
                format!("--webhookServerPort={port}"),
                "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca".to_owned(),
                "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair".to_owned(),
                // As Gatekeeper's and approval-gate's registrations here.
                "--webhookTimeout=5".to_owned(),
                "--metricsHost=127.0.0.1".to_owned(),
                format!("--metricsPort={metrics}"),
                "--controllerRuntimeMetricsAddress=0".to_owned(),
            ];
            let process = ManagedProcess::spawn_with_env(
                "kyverno",
                binary,
                &args,
                &[
                    ("KYVERNO_NAMESPACE", NAMESPACE),
                    ("KYVERNO_POD_NAME", "kyverno-bench"),
                    ("KYVERNO_DEPLOYMENT", "kyverno-admission-controller"),
                    (
                        "KYVERNO_SERVICEACCOUNT_NAME",
                        "kyverno-admission-controller",
                    ),
                    ("KYVERNO_SVC", "kyverno-svc"),
                    ("INIT_CONFIG", "kyverno"),
                    ("METRICS_CONFIG", "kyverno-metrics"),
                ],
                &dir.join("kyverno.log"),
            )?;
            let mut ky = Self {
                url: format!("https://127.0.0.1:{port}/validate/fail"),
                binary: binary.to_owned(),
                process,
            };
            let log = dir.join("kyverno.log");
            let url = format!("https://127.0.0.1:{port}/health/readiness");
            let ready = wait_ok(&url, "Kyverno", Duration::from_secs(120)).await;
            started("Kyverno", &mut ky.process, ready, &log)?;
            let loaded = ky.load_policy(admin).await;
            loaded.with_context(|| format!("Kyverno's log:\n{}", tail(&log)))?;
            Ok(ky)
        }

        /// Creates the policy and waits until Kyverno calls it ready (its
        /// webhook registered) and denies the review without the label.
        async fn load_policy(&self, admin: &Client) -> Result<()> {
            let policies = policies(admin);
            policies
                .create(&PostParams::default(), &policy()?)
                .await
                .context("setup: creating the ClusterPolicy")?;
            let started = Instant::now();
            loop {
                let policy = policies.get(POLICY).await?;
                let last = &policy.data["status"];
                let conditions = last["conditions"].as_array().cloned().unwrap_or_default();
                if conditions
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                {
                    break;
                }
                ensure!(
                    started.elapsed() < Duration::from_secs(120),
                    "setup: the ClusterPolicy never became ready: {last}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if denies_unlabelled(&self.url, Duration::from_secs(60)).await? {
                return Ok(());
            }
            bail!("setup: Kyverno never denied a Deployment without the label {REQUIRED_LABEL:?}")
        }

        pub fn pid(&self) -> u32 {
            self.process.program_id(&self.binary).unwrap_or(0)
        }

        pub fn stop(mut self) {
            self.process.stop(Duration::from_secs(15));
        }
    }

    /// Removes the webhook configurations Kyverno registered (it leaves them
    /// when it stops).
    pub async fn unregister(admin: &Client) -> Result<()> {
        use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
        let selector = ListParams::default().labels("webhook.kyverno.io/managed-by=kyverno");
        Api::<ValidatingWebhookConfiguration>::all(admin.clone())
            .delete_collection(&DeleteParams::default(), &selector)
            .await?;
        Api::<MutatingWebhookConfiguration>::all(admin.clone())
            .delete_collection(&DeleteParams::default(), &selector)
            .await?;
        Ok(())
    }
}

/// approval-gate end to end: the real binary's `webhook` as approval-gate's
/// service account, registered by URL, with a policy holding UPDATEs of
/// Deployments in `prod` and alice's reusable approval (not bound to the
/// content), so every measured PATCH is judged and granted.
mod approval {
    use super::*;

    pub fn policy() -> Result<ApprovalPolicy> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "approvalgate.dev/v1alpha1", "kind": "ApprovalPolicy", "metadata": {"name": POLICY},
            "spec": {"rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "operations": ["UPDATE"],
                                "namespaces": [NAMESPACE]}],
                     "approvers": {"users": [identities::BOB.username]},
                     "approvalTTL": "24h", "singleUse": false, "bindToContent": false},
        }))?)
    }

    /// Alice's request and the status an approval by bob gives it.
    pub fn request(now: Timestamp) -> Result<(ApprovalRequest, ApprovalRequestStatus)> {
        let target = Target {
            api_group: "apps".to_owned(),
            resource: "deployments".to_owned(),
            subresource: None,
            namespace: NAMESPACE.to_owned(),
            name: DEPLOYMENT.to_owned(),
        };
        let spec = ApprovalRequestSpec {
            requester: identities::ALICE.username.to_owned(),
            operation: Operation::Update,
            target: target.clone(),
            digest: None,
            reason: "bench-peers: every PATCH of the benchmark".to_owned(),
            policy: POLICY.to_owned(),
            change: None,
            previous: None,
        };
        let mut request = ApprovalRequest::new(APPROVAL, spec);
        request.metadata.namespace = Some(NAMESPACE.to_owned());
        let later = now.checked_add(SignedDuration::from_hours(23))?;
        let status = ApprovalRequestStatus {
            phase: Some(Phase::Approved),
            target: Some(target.to_string()),
            required_approvals: Some(1),
            approvals: vec![Approval {
                user: identities::BOB.username.to_owned(),
                groups: identities::BOB
                    .groups
                    .iter()
                    .map(|g| (*g).to_owned())
                    .chain(["system:authenticated".to_owned()])
                    .collect(),
                time: Time(now),
                comment: "bench".to_owned(),
            }],
            approved_at: Some(Time(now)),
            expires_at: Some(Time(later)),
            conditions: vec![Condition {
                type_: "Approved".to_owned(),
                status: "True".to_owned(),
                reason: Phase::Approved.as_str().to_owned(),
                message: "approved by bob".to_owned(),
                last_transition_time: Time(now),
                observed_generation: Some(1),
            }],
            ..ApprovalRequestStatus::default()
        };
        Ok((request, status))
    }

    pub struct Running {
        _webhook: LocalWebhook,
    }

    pub async fn start(plane: &ControlPlane, admin: &Client, binary: &Path) -> Result<Running> {
        Api::<ApprovalPolicy>::all(admin.clone())
            .create(&PostParams::default(), &policy()?)
            .await
            .context("setup: creating the ApprovalPolicy")?;
        let requests = Api::<ApprovalRequest>::namespaced(admin.clone(), NAMESPACE);
        let (made, _) = request(Timestamp::now())?;
        requests
            .create(&PostParams::default(), &made)
            .await
            .context("setup: creating alice's ApprovalRequest")?;
        // Approved a second after it was made, as a real approval is.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, status) = request(Timestamp::now())?;
        requests
            .patch_status(
                APPROVAL,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .context("setup: approving alice's ApprovalRequest")?;
        let webhook = LocalWebhook::spawn(
            binary,
            &plane.dir().join("approval-gate"),
            &plane.kubeconfig(&identities::CONTROLLER),
        )?;
        webhook.wait_ready(Duration::from_secs(60)).await?;
        wait_index(&webhook).await?;
        webhook.register(admin, rules()).await?;
        Ok(Running { _webhook: webhook })
    }

    /// Deployment UPDATEs, as Gatekeeper is registered in this bench.
    fn rules() -> Vec<RuleWithOperations> {
        vec![RuleWithOperations {
            api_groups: Some(vec!["apps".to_owned()]),
            api_versions: Some(vec!["v1".to_owned()]),
            operations: Some(vec!["UPDATE".to_owned()]),
            resources: Some(vec!["deployments".to_owned()]),
            scope: Some("*".to_owned()),
        }]
    }

    /// Waits until the webhook's index holds the policy and a request (the
    /// approval; that it grants is checked by [`expect_granted`]).
    async fn wait_index(webhook: &LocalWebhook) -> Result<()> {
        let url = format!("{}/debug/index", webhook.metrics_url);
        let client = reqwest::Client::builder().no_proxy().build()?;
        let started = Instant::now();
        let mut last = Value::Null;
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = client.get(&url).send().await {
                last = r.json().await.unwrap_or_default();
                let has_policy = last["policies"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p == POLICY));
                if has_policy && last["requests"].as_u64().unwrap_or(0) >= 1 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("setup: the webhook's index never held the policy and the approval: {last}")
    }

    /// A PATCH by alice is allowed through her approval: the webhook counts
    /// the use in the request's status within a few seconds.
    pub async fn expect_granted(admin: &Client, patcher: &Patcher) -> Result<()> {
        patcher
            .expect_allowed(&patcher.alice)
            .await
            .context("setup: alice's PATCH under her approval")?;
        let requests = Api::<ApprovalRequest>::namespaced(admin.clone(), NAMESPACE);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            let request = requests.get(APPROVAL).await?;
            let status = request.status.unwrap_or_default();
            if status.uses.unwrap_or(0) > 0 {
                ensure!(
                    status.phase == Some(Phase::Approved),
                    "the approval is {:?}",
                    status.phase
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("setup: alice's PATCH was allowed but no use of her approval was recorded")
    }

    pub async fn unregister(admin: &Client) -> Result<()> {
        Api::<ValidatingWebhookConfiguration>::all(admin.clone())
            .delete(
                approval_gate::registration::CONFIGURATION_NAME,
                &DeleteParams::default(),
            )
            .await?;
        Ok(())
    }
}

/// `n` free loopback ports.
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Whether the webhook at `url` comes to deny the review without the
/// required label within `limit` (its policy is in force).
async fn denies_unlabelled(url: &str, limit: Duration) -> Result<bool> {
    let denied = fixture::unlabelled_review_body()?;
    let started = Instant::now();
    while started.elapsed() < limit {
        let (url, denied) = (url.to_owned(), denied.clone());
        let answer = tokio::task::spawn_blocking(move || server::post_once(&url, &denied)).await?;
        if let Ok(answer) = answer {
            let review: Value = serde_json::from_slice(&answer)?;
            if review["response"]["allowed"] == false {
                return Ok(true);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(false)
}

/// A peer's start: its exit or a failed readiness check, with the end of its log.
fn started(name: &str, process: &mut ManagedProcess, ready: Result<()>, log: &Path) -> Result<()> {
    if let Some(status) = process.exited() {
        bail!("{name} exited ({status}); its log:\n{}", tail(log));
    }
    ready.with_context(|| format!("{name}'s log:\n{}", tail(log)))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// Each bench uses part of the shared oha module (peers: no fixed-rate runs).
#[allow(dead_code)]
#[path = "shared/oha.rs"]
mod oha;
#[path = "shared/procfs.rs"]
mod procfs;
#[path = "shared/review.rs"]
mod review;
#[path = "shared/server.rs"]
mod server;

/// The review of `benches/webhook_load.rs` (`shared/review.rs`): `alice`
/// rolls the `prod/checkout` Deployment to a new image. The driver checks it
/// is the same change: approval-gate's server from that bench grants it
/// through the approval it holds for exactly that content.
mod fixture {
    use super::{review::new_object, *};

    /// The size `make bench` reports for the shared review.
    pub const REVIEW_BYTES: usize = 8_888;

    pub fn review_body() -> Result<Vec<u8>> {
        let body = review::review_body()?;
        ensure!(
            body.len() == REVIEW_BYTES,
            "the review is {} bytes, not the {REVIEW_BYTES} the benchmarks report",
            body.len()
        );
        Ok(body)
    }

    /// The same review with the required label removed from the new object.
    pub fn unlabelled_review_body() -> Result<Vec<u8>> {
        let mut object = new_object();
        if let Some(labels) = object
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(REQUIRED_LABEL);
        }
        Ok(serde_json::to_vec(&review::review(object))?)
    }

    /// The Deployment the end-to-end PATCHes change: the review's new
    /// object without what the apiserver owns (uid, versions, status, ...).
    pub fn cluster_deployment() -> Result<Deployment> {
        let mut object = new_object();
        if let Some(metadata) = object["metadata"].as_object_mut() {
            for owned in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
            ] {
                metadata.remove(owned);
            }
        }
        if let Some(object) = object.as_object_mut() {
            object.remove("status");
        }
        Ok(serde_json::from_value(object)?)
    }
}

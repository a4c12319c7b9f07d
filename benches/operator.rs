//! Operator benchmark against a real etcd + kube-apiserver on loopback, with
//! the operator as a separate `approval-gate operator` process.
//!
//! Run it with `make bench-operator`, which builds the control plane tools and
//! the release binary first. BENCHMARKS.md describes the method and the figures.
//!
//! - `cargo bench` (cargo passes `--bench`): the driver. It measures
//!   1. expiry lateness: 500 Pending requests with a 10 s TTL, created over
//!      5 s while the operator runs; lateness is when a watch in this process
//!      saw the request Expired minus `creationTimestamp + TTL`;
//!   2. start-up throughput: 10,000 requests created while no operator runs,
//!      then the time from starting one until each carries a phase and expiresAt;
//!   3. the idle cost of that operator: CPU over a 30 s window, VmRSS, VmHWM.
//! - no `--bench`, as `cargo test --all-targets` runs it: no control plane, only
//!   a check that the fixtures still plan the way the driver waits for.

// A benchmark driver, not library code: it owns the process, and every failed
// step must abort the run loudly instead of turning into a figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use approval_gate::{
    controller::plan::plan,
    crd::{ApprovalPolicy, ApprovalRequest, ApprovalRequestSpec, Operation, Phase, Target},
};
use approval_gate_testenv::{ControlPlane, Options, identities, process::ManagedProcess};
use clap::Parser;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Client, ResourceExt as _,
    api::{DeleteParams, ListParams, PostParams},
    runtime::{WatchStreamExt as _, watcher},
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;

const EXPIRY_POLICY: &str = "bench-expiry";
const EXPIRY_TTL: SignedDuration = SignedDuration::from_secs(10);
const STARTUP_POLICY: &str = "bench-startup";

#[derive(Parser)]
#[command(about = "Benchmark the operator against a local etcd + kube-apiserver")]
struct Cli {
    /// Passed by `cargo bench`; without it the binary only checks its fixtures.
    #[arg(long, hide = true)]
    bench: bool,
    /// The approval-gate binary; defaults to the one next to this bench's
    /// profile directory (target/release/approval-gate).
    #[arg(long, env = "APPROVAL_GATE_OPERATOR_BIN")]
    operator_bin: Option<PathBuf>,
    /// Pending requests that must expire (scenario 1).
    #[arg(long, default_value_t = 500)]
    expiry_requests: usize,
    /// Seconds over which those requests are created.
    #[arg(long, default_value_t = 5)]
    spread_seconds: u64,
    /// Requests present when the operator starts (scenario 2).
    #[arg(long, default_value_t = 10_000)]
    startup_requests: usize,
    /// Creates in flight while filling the apiserver.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of the idle CPU window (scenario 3).
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    /// Also write the JSON summary here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Keep the control plane's files (and the operator logs) in this
    /// directory, cleared first, instead of a temporary one.
    #[arg(long)]
    keep_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !cli.bench {
        return self_check();
    }
    ensure!(
        (1..=2_000).contains(&cli.expiry_requests)
            && (1..=20_000).contains(&cli.startup_requests)
            && (1..=64).contains(&cli.concurrency)
            && (1..=30).contains(&cli.spread_seconds)
            && (5..=120).contains(&cli.idle_seconds),
        "keep runs bounded: expiry 1..=2000, startup 1..=20000, concurrency 1..=64, \
         spread 1..=30 s, idle 5..=120 s"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // A backstop: each step has its own, shorter, limit.
    let report = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(600), drive(&cli)).await })
        .map_err(|_| anyhow!("the benchmark did not finish within 10 minutes"))??;
    print!("{}", report.markdown());
    let summary = serde_json::to_string_pretty(&report)?;
    println!("\n```json\n{summary}\n```");
    if let Some(path) = &cli.json_out {
        std::fs::write(path, summary).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Test mode: the fixtures plan to Pending with the deadline the driver
/// measures against, and to Expired at that deadline.
fn self_check() -> Result<()> {
    let policy = fixture::policy(EXPIRY_POLICY, "10s")?;
    let problems = approval_gate::admission::guard::review_policy(&policy.spec);
    ensure!(
        problems.is_empty(),
        "the bench policy is invalid: {problems:?}"
    );
    let created = Timestamp::now().round(jiff::Unit::Second)?;
    let mut req = fixture::request("check", "bench", EXPIRY_POLICY);
    req.metadata.creation_timestamp = Some(Time(created));
    let retention = Duration::from_secs(3600);
    let first = plan(&req, Some(&policy.spec), created, retention);
    let status = first.status.context("a new request gets a status")?;
    ensure!(
        status.phase == Some(Phase::Pending),
        "not Pending: {status:?}"
    );
    let deadline = created.checked_add(EXPIRY_TTL)?;
    ensure!(
        status.expires_at.as_ref().map(|t| t.0) == Some(deadline),
        "wrong deadline"
    );
    ensure!(
        first.requeue_after == Some(Duration::from_secs(10)),
        "no requeue at the deadline"
    );
    req.status = Some(status);
    let late = plan(&req, Some(&policy.spec), deadline, retention);
    let phase = late.status.and_then(|s| s.phase);
    ensure!(
        phase == Some(Phase::Expired),
        "not Expired at the deadline: {phase:?}"
    );
    procfs::listen_overflows()?;
    let ticks = procfs::cpu_ticks(std::process::id())?;
    let rss = procfs::memory_kib(std::process::id(), "VmRSS:")?;
    ensure!(rss > 0, "no VmRSS for this process ({ticks} ticks)");
    println!(
        "operator: setup check passed (no control plane; run `make bench-operator` to measure)"
    );
    Ok(())
}

async fn drive(cli: &Cli) -> Result<Report> {
    let binary = operator_binary(cli.operator_bin.as_deref())?;
    let options = Options {
        dir: cli.keep_dir.clone(),
        ..Options::from_env().context(
            "setup: run through `make bench-operator`, which builds etcd and kube-apiserver",
        )?
    };
    let (started, loadavg_before) = (Instant::now(), loadavg());
    let plane = ControlPlane::start(options)
        .await
        .context("setup: starting etcd + kube-apiserver")?;
    let admin = plane
        .client(&identities::ADMIN)
        .await
        .context("setup: admin client")?;
    let policies = Api::<ApprovalPolicy>::all(admin.clone());
    for (name, ttl) in [(EXPIRY_POLICY, "10s"), (STARTUP_POLICY, "1h")] {
        policies
            .create(&PostParams::default(), &fixture::policy(name, ttl)?)
            .await
            .with_context(|| format!("setup: creating the policy {name}"))?;
    }
    eprintln!(
        "operator bench: control plane up in {:.1} s at {}; operator {}",
        started.elapsed().as_secs_f64(),
        plane.url(),
        binary.display()
    );
    let scenarios = async {
        let expiry = scenario::expiry(cli, &plane, &admin, &binary).await?;
        let rest = scenario::startup(cli, &plane, &admin, &binary).await?;
        anyhow::Ok((expiry, rest))
    };
    let (expiry, (startup, idle, counters)) = match scenarios.await {
        Ok(figures) => figures,
        Err(err) => return Err(err.context(plane_state(&plane, &admin).await)),
    };
    plane.stop();
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        expiry,
        startup,
        idle,
        operator_counters: counters,
        total_seconds: round(started.elapsed().as_secs_f64(), 1),
        loadavg_before,
        loadavg_after: loadavg(),
    })
}

/// Whether the apiserver still answers, and the ends of its and etcd's logs.
async fn plane_state(plane: &ControlPlane, admin: &Client) -> String {
    let probe = async {
        let req = http::Request::get("/readyz").body(Vec::new())?;
        anyhow::Ok(admin.request_text(req).await?)
    };
    let readyz = match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(text)) => text,
        Ok(Err(err)) => format!("{err:#}"),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    let logs = ["kube-apiserver.log", "etcd.log"].map(|name| tail(&plane.dir().join(name)));
    format!(
        "the benchmark failed; apiserver /readyz: {readyz}\n{}",
        logs.join("\n")
    )
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The binary to run: given, or `approval-gate` in the directory above
/// `deps/`, where cargo put this bench (target/release for `cargo bench`).
fn operator_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => {
            let exe = std::env::current_exe()?;
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .context("setup: cannot locate the target directory")?;
            profile.join("approval-gate")
        }
    };
    ensure!(
        path.is_file(),
        "setup: no operator binary at {}: run `cargo build --release --bin approval-gate` \
         (`make bench-operator` does) or set APPROVAL_GATE_OPERATOR_BIN",
        path.display()
    );
    Ok(path)
}

/// The three scenarios, each against the shared control plane.
mod scenario {
    use super::*;

    pub async fn expiry(
        cli: &Cli,
        plane: &ControlPlane,
        admin: &Client,
        binary: &Path,
    ) -> Result<Expiry> {
        let n = cli.expiry_requests;
        let ns = plane.create_namespace("bench-expiry").await?;
        let api = Api::<ApprovalRequest>::namespaced(admin.clone(), &ns);
        let mut operator = Operator::start(plane, binary, "expiry").await?;
        let policies = Api::<ApprovalPolicy>::all(admin.clone());
        operator
            .while_alive("the operator to lead", 60, wait_policy_ready(&policies))
            .await?;
        // The request controller reads policies from a cache of its own, filled
        // by a separate watch: give it a moment so no request sees no policy.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let seen = Arc::new(AtomicUsize::new(0));
        let (ready, watching) = oneshot::channel();
        let observer = tokio::spawn(watch::expiry(api.clone(), n, ready, Arc::clone(&seen)));
        operator
            .while_alive("the bench's watch", 30, async { Ok(watching.await?) })
            .await?;
        eprintln!(
            "operator bench: creating {n} requests over {} s",
            cli.spread_seconds
        );
        let spread = Duration::from_secs(cli.spread_seconds);
        let sent = create(&api, &ns, EXPIRY_POLICY, n, spread, cli.concurrency).await?;
        let limit = cli.spread_seconds + 10 + 45;
        let observed = operator
            .while_alive("requests to expire", limit, async { observer.await? })
            .await
            .with_context(|| format!("{} of {n} seen Expired", seen.load(Ordering::Relaxed)))?;
        drop(operator);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .context("deleting the expired requests")?;
        let delivery: Vec<f64> = observed
            .added
            .iter()
            .filter_map(|(name, at)| Some(ms(at.saturating_duration_since(*sent.get(name)?))))
            .collect();
        Ok(Expiry {
            requests: n,
            ttl_seconds: 10,
            spread_seconds: cli.spread_seconds,
            lateness_ms: Stats::of(observed.lateness_ms)?,
            create_to_watch_ms: Stats::of(delivery)?,
            wrong_deadline: observed.wrong_deadline,
            largest_burst: observed.deadlines.values().copied().max().unwrap_or(0),
        })
    }

    pub async fn startup(
        cli: &Cli,
        plane: &ControlPlane,
        admin: &Client,
        binary: &Path,
    ) -> Result<(Startup, Idle, Counters)> {
        let n = cli.startup_requests;
        let ns = plane.create_namespace("bench-startup").await?;
        let api = Api::<ApprovalRequest>::namespaced(admin.clone(), &ns);
        eprintln!(
            "operator bench: creating {n} requests, {} in flight",
            cli.concurrency
        );
        let began = Instant::now();
        let fill = create(
            &api,
            &ns,
            STARTUP_POLICY,
            n,
            Duration::ZERO,
            cli.concurrency,
        );
        tokio::time::timeout(Duration::from_secs(180), fill)
            .await
            .context("creating the start-up requests took over 180 s")??;
        let create_seconds = began.elapsed().as_secs_f64();
        eprintln!("operator bench: created {n} requests in {create_seconds:.1} s");
        let done = Arc::new(AtomicUsize::new(0));
        let (ready, listed) = oneshot::channel();
        let observer = tokio::spawn(watch::reconciled(api, n, ready, Arc::clone(&done)));
        tokio::time::timeout(Duration::from_secs(60), listed)
            .await
            .context("the bench's watch did not list the requests within 60 s")??;
        eprintln!("operator bench: starting the operator over {n} requests");
        let overflows = procfs::listen_overflows()?;
        let spawned = Instant::now();
        let mut operator = Operator::start(plane, binary, "startup").await?;
        let peak_fds = Arc::new(AtomicUsize::new(0));
        let sampler = tokio::spawn(progress(
            operator.pid,
            operator.metrics_url.clone(),
            (Arc::clone(&done), n),
            Arc::clone(&peak_fds),
        ));
        let reconciled = operator
            .while_alive("the start-up reconcile", 300, async { observer.await? })
            .await;
        sampler.abort();
        let (first, last) = reconciled
            .with_context(|| format!("{} of {n} reconciled", done.load(Ordering::Relaxed)))?;
        let cpu_ticks = procfs::cpu_ticks(operator.pid)?;
        let all = last.saturating_duration_since(spawned).as_secs_f64();
        let startup = Startup {
            requests: n,
            concurrency: cli.concurrency,
            create_seconds: round(create_seconds, 2),
            create_per_second: round(n as f64 / create_seconds, 0),
            first_status_seconds: round(first.saturating_duration_since(spawned).as_secs_f64(), 2),
            all_reconciled_seconds: round(all, 2),
            reconciled_per_second: round(n as f64 / all, 0),
            operator_cpu_seconds: round(cpu_ticks as f64 / procfs::USER_HZ, 2),
            operator_peak_fds: peak_fds.load(Ordering::Relaxed),
            listen_overflows: procfs::listen_overflows()?.saturating_sub(overflows),
        };
        let before = operator.counters().await?;
        let idle = idle(&mut operator, Duration::from_secs(cli.idle_seconds)).await?;
        let after = operator.counters().await?;
        let counters = Counters {
            idle_reconciles: after.reconciles.saturating_sub(before.reconciles),
            ..after
        };
        Ok((startup, idle, counters))
    }

    /// Every second, the operator's open file descriptors (mostly connections
    /// to the apiserver); every 10 s, a progress line.
    async fn progress(
        pid: u32,
        metrics_url: String,
        (done, want): (Arc<AtomicUsize>, usize),
        peak_fds: Arc<AtomicUsize>,
    ) {
        let began = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        for second in 0u64.. {
            ticker.tick().await;
            let fds = procfs::open_fds(pid);
            peak_fds.fetch_max(fds, Ordering::Relaxed);
            if second % 10 == 9 {
                let errors = scrape(&metrics_url).await.map(|c| c.reconcile_errors);
                eprintln!(
                    "operator bench: {:>3.0} s: {} of {want} reconciled; operator fds {fds}, \
                     reconcile errors {errors:?}",
                    began.elapsed().as_secs_f64(),
                    done.load(Ordering::Relaxed),
                );
            }
        }
    }

    /// Waits (at most 60 s) for the operator's CPU use to fall to 1 % of a core
    /// over 3 s, then samples it over `window`.
    async fn idle(operator: &mut Operator, window: Duration) -> Result<Idle> {
        let settling = Instant::now();
        let settled = loop {
            let before = procfs::cpu_ticks(operator.pid)?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            if procfs::cpu_ticks(operator.pid)? - before <= 3 {
                break true;
            }
            if settling.elapsed() > Duration::from_secs(60) {
                break false;
            }
        };
        let settle_seconds = settling.elapsed().as_secs_f64();
        eprintln!("operator bench: idle window of {} s", window.as_secs());
        let (began, before) = (Instant::now(), procfs::cpu_ticks(operator.pid)?);
        tokio::time::sleep(window).await;
        let ticks = procfs::cpu_ticks(operator.pid)? - before;
        let seconds = began.elapsed().as_secs_f64();
        operator.ensure_running()?;
        let mib = |key| procfs::memory_kib(operator.pid, key).map(|k| round(k as f64 / 1024.0, 1));
        Ok(Idle {
            settled,
            settle_seconds: round(settle_seconds, 1),
            window_seconds: round(seconds, 1),
            cpu_percent: round(ticks as f64 / procfs::USER_HZ / seconds * 100.0, 2),
            rss_mib: mib("VmRSS:")?,
            hwm_mib: mib("VmHWM:")?,
        })
    }

    /// Until the operator has written the Ready condition of the expiry policy.
    async fn wait_policy_ready(policies: &Api<ApprovalPolicy>) -> Result<()> {
        loop {
            let policy = policies.get(EXPIRY_POLICY).await?;
            let conditions = policy.status.map(|s| s.conditions).unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Creates `bench-NNNNN` requests, the i-th no earlier than `i/n` of
    /// `spread` from now, `in_flight` at a time; returns when each was sent.
    async fn create(
        api: &Api<ApprovalRequest>,
        ns: &str,
        policy: &str,
        n: usize,
        spread: Duration,
        in_flight: usize,
    ) -> Result<HashMap<String, Instant>> {
        let start = tokio::time::Instant::now();
        let step = spread.div_f64(n as f64);
        stream::iter(0..n)
            .map(|i| async move {
                tokio::time::sleep_until(start + step.mul_f64(i as f64)).await;
                let name = format!("bench-{i:05}");
                let sent = Instant::now();
                api.create(&PostParams::default(), &fixture::request(&name, ns, policy))
                    .await
                    .with_context(|| format!("creating {ns}/{name}"))?;
                anyhow::Ok((name, sent))
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await
    }
}

/// Watches in the bench process: what the operator's writes look like to a client.
mod watch {
    use super::*;

    #[derive(Default)]
    pub struct Expired {
        /// When each request was first delivered.
        pub added: HashMap<String, Instant>,
        pub lateness_ms: Vec<f64>,
        /// Expired requests whose expiresAt is not creationTimestamp + TTL.
        pub wrong_deadline: usize,
        /// Requests per deadline: creationTimestamp has whole seconds, so
        /// every request created in one second expires at the same instant.
        pub deadlines: HashMap<Timestamp, usize>,
    }

    fn objects(
        api: Api<ApprovalRequest>,
    ) -> impl futures::Stream<Item = Result<watcher::Event<ApprovalRequest>, watcher::Error>> {
        watcher(api, watcher::Config::default()).default_backoff()
    }

    /// Until `want` requests were delivered Expired.
    pub async fn expiry(
        api: Api<ApprovalRequest>,
        want: usize,
        ready: oneshot::Sender<()>,
        seen: Arc<AtomicUsize>,
    ) -> Result<Expired> {
        let mut events = pin!(objects(api));
        let mut ready = Some(ready);
        let mut out = Expired::default();
        let mut expired = HashSet::new();
        while expired.len() < want {
            let req = match next(&mut events, &mut ready).await? {
                Some(req) => req,
                None => continue,
            };
            // Read the clock first: everything after is the bench's own cost.
            let (now, at) = (Timestamp::now(), Instant::now());
            let name = req.name_any();
            out.added.entry(name.clone()).or_insert(at);
            if req.phase() != Phase::Expired || !expired.insert(name) {
                continue;
            }
            let created = req.creation_timestamp().context("no creationTimestamp")?.0;
            let deadline = created.checked_add(EXPIRY_TTL)?;
            out.lateness_ms
                .push(ms_signed(now.duration_since(deadline)));
            *out.deadlines.entry(deadline).or_default() += 1;
            let expires_at = req.status.as_ref().and_then(|s| s.expires_at.as_ref());
            if expires_at.map(|t| t.0) != Some(deadline) {
                out.wrong_deadline += 1;
            }
            seen.store(expired.len(), Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Until `want` requests carry a phase and expiresAt; when the first and
    /// the last did.
    pub async fn reconciled(
        api: Api<ApprovalRequest>,
        want: usize,
        ready: oneshot::Sender<()>,
        done: Arc<AtomicUsize>,
    ) -> Result<(Instant, Instant)> {
        let mut events = pin!(objects(api));
        let mut ready = Some(ready);
        let mut finished = HashSet::new();
        let mut first = None;
        while finished.len() < want {
            let Some(req) = next(&mut events, &mut ready).await? else {
                continue;
            };
            let status = req.status.as_ref();
            let complete = status.is_some_and(|s| s.phase.is_some() && s.expires_at.is_some());
            if complete && finished.insert(req.name_any()) {
                first.get_or_insert_with(Instant::now);
                done.store(finished.len(), Ordering::Relaxed);
            }
        }
        let last = Instant::now();
        Ok((first.unwrap_or(last), last))
    }

    /// The next object, signalling `ready` once the initial list is done.
    /// Watch errors are retried with backoff; the callers' limits bound them.
    async fn next<S>(
        events: &mut std::pin::Pin<&mut S>,
        ready: &mut Option<oneshot::Sender<()>>,
    ) -> Result<Option<ApprovalRequest>>
    where
        S: futures::Stream<Item = Result<watcher::Event<ApprovalRequest>, watcher::Error>>,
    {
        match events.next().await.context("the watch ended")? {
            Ok(watcher::Event::Apply(req) | watcher::Event::InitApply(req)) => Ok(Some(req)),
            Ok(watcher::Event::InitDone) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
                Ok(None)
            }
            Ok(watcher::Event::Init | watcher::Event::Delete(_)) => Ok(None),
            Err(err) => {
                eprintln!("operator bench: watch error (retrying): {err}");
                Ok(None)
            }
        }
    }
}

/// The operator process, run as a cluster would: its own process, the
/// controller's identity, leader election.
struct Operator {
    process: ManagedProcess,
    pid: u32,
    metrics_url: String,
    log: PathBuf,
}

impl Operator {
    async fn start(plane: &ControlPlane, binary: &Path, tag: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("--metrics-listen=127.0.0.1:{port}");
        let args = [
            "operator",
            &listen,
            "--control-namespace=approval-gate",
            "--instance=bench",
            "--lease-seconds=15",
        ]
        .map(str::to_owned);
        let kubeconfig = plane.kubeconfig(&identities::CONTROLLER);
        let kubeconfig = kubeconfig.to_str().context("a non-UTF-8 kubeconfig path")?;
        // The binary's own default filter, whatever this shell has set.
        let env = [
            ("KUBECONFIG", kubeconfig),
            ("RUST_LOG", "info,kube=warn,hyper=warn"),
        ];
        let log = plane.dir().join(format!("operator-{tag}.log"));
        let mut process = ManagedProcess::spawn_with_env("operator", binary, &args, &env, &log)?;
        let began = Instant::now();
        let pid = loop {
            if let Some(pid) = procfs::find(binary, &listen) {
                break pid;
            }
            if let Some(status) = process.exited() {
                bail!("the operator exited at once ({status}):\n{}", tail(&log));
            }
            ensure!(
                began.elapsed() < Duration::from_secs(10),
                "no operator process after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let metrics_url = format!("http://127.0.0.1:{port}/metrics");
        Ok(Self {
            process,
            pid,
            metrics_url,
            log,
        })
    }

    /// Runs `work` for at most `limit` seconds, failing with the operator's
    /// log if the operator exits first.
    async fn while_alive<T>(
        &mut self,
        what: &str,
        limit: u64,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let log = self.log.clone();
        let process = &mut self.process;
        let exited = async move {
            loop {
                if let Some(status) = process.exited() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        tokio::select! {
            done = tokio::time::timeout(Duration::from_secs(limit), work) => match done {
                Ok(result) => result,
                Err(_) => bail!("timed out after {limit} s waiting for {what}; operator log:\n{}", tail(&log)),
            },
            status = exited => bail!("the operator exited ({status}) while waiting for {what}:\n{}", tail(&log)),
        }
    }

    fn ensure_running(&mut self) -> Result<()> {
        match self.process.exited() {
            Some(status) => bail!("the operator exited ({status}):\n{}", tail(&self.log)),
            None => Ok(()),
        }
    }

    async fn counters(&self) -> Result<Counters> {
        scrape(&self.metrics_url).await
    }
}

/// The operator's counters, from its /metrics.
async fn scrape(url: &str) -> Result<Counters> {
    let text = async { reqwest::get(url).await?.error_for_status()?.text().await }
        .await
        .with_context(|| format!("scraping {url}"))?;
    let sum = |name: &str, label: &str| -> u64 {
        text.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .filter(|(series, _)| series.contains(label))
            .filter_map(|(_, value)| value.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    Ok(Counters {
        reconciles: sum("approval_gate_reconciles_total", "approvalrequest"),
        idle_reconciles: 0,
        reconcile_errors: sum("approval_gate_reconcile_errors_total", ""),
        events_dropped: sum("approval_gate_events_dropped_total", ""),
    })
}

/// The end of a log, with the number of warnings and the last one: the
/// operator logs every transition, so the tail alone may show none.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let warnings: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN") || l.contains("\"level\":\"ERROR"))
        .collect();
    format!(
        "{} ({} lines, {} warnings or errors; the last: {})\n{}",
        log.display(),
        lines.len(),
        warnings.len(),
        warnings.last().map_or("none", |l| l),
        lines[lines.len().saturating_sub(10)..].join("\n")
    )
}

/// Process figures from /proc.
mod procfs {
    use super::*;

    /// The unit of /proc/<pid>/stat times: USER_HZ, 100 on every Linux ABI in use.
    pub const USER_HZ: f64 = 100.0;

    /// utime + stime of every thread, in USER_HZ ticks.
    pub fn cpu_ticks(pid: u32) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name is in parentheses and may hold spaces; after it
        // comes field 3 (state), so utime and stime (14 and 15) are at 11 and 12.
        let (_, rest) = stat.rsplit_once(')').context("unreadable /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field =
            |i: usize| -> Result<u64> { Ok(fields.get(i).context("short /proc stat")?.parse()?) };
        Ok(field(11)? + field(12)?)
    }

    /// TcpExt ListenOverflows from /proc/net/netstat: SYNs dropped because an
    /// accept queue was full; the client retries them after 1, 3, 7, 15... s.
    pub fn listen_overflows() -> Result<u64> {
        let text = std::fs::read_to_string("/proc/net/netstat")?;
        let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
        let (names, values) = (rows.next(), rows.next());
        let (names, values) = names
            .zip(values)
            .context("no TcpExt in /proc/net/netstat")?;
        let (_, value) = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "ListenOverflows")
            .context("no ListenOverflows in /proc/net/netstat")?;
        Ok(value.parse()?)
    }

    /// How many file descriptors the process holds (0 if it is gone).
    pub fn open_fds(pid: u32) -> usize {
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
    }

    /// A `Vm*:` line of /proc/<pid>/status, in KiB.
    pub fn memory_kib(pid: u32, key: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .with_context(|| format!("no {key} for {pid}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    }

    /// The process whose argv[0] is `program` and which was given `flag`
    /// (not its watchdog shell, which has both as later arguments).
    pub fn find(program: &Path, flag: &str) -> Option<u32> {
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let mut args = cmdline.split(|b| *b == 0);
                let is_program = args.next() == Some(program.as_os_str().as_bytes());
                (is_program && args.any(|a| a == flag.as_bytes())).then_some(pid)
            })
    }
}

mod fixture {
    use super::*;

    /// A policy that binds no content, so hand-made requests need no digest.
    pub fn policy(name: &str, request_ttl: &str) -> Result<ApprovalPolicy> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "approvalgate.dev/v1alpha1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": name},
            "spec": {
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "operations": ["UPDATE"]}],
                "approvers": {"groups": ["sre"]},
                "requestTTL": request_ttl,
                "bindToContent": false,
            },
        }))?)
    }

    pub fn request(name: &str, ns: &str, policy: &str) -> ApprovalRequest {
        let mut req = ApprovalRequest::new(
            name,
            ApprovalRequestSpec {
                requester: identities::ALICE.username.to_owned(),
                operation: Operation::Update,
                target: Target {
                    api_group: "apps".to_owned(),
                    resource: "deployments".to_owned(),
                    subresource: None,
                    namespace: ns.to_owned(),
                    name: format!("checkout-{name}"),
                },
                digest: None,
                reason: "operator benchmark".to_owned(),
                policy: policy.to_owned(),
                change: None,
                previous: None,
            },
        );
        req.metadata.namespace = Some(ns.to_owned());
        req
    }
}

#[derive(Serialize)]
struct Report {
    cores: usize,
    expiry: Expiry,
    startup: Startup,
    idle: Idle,
    operator_counters: Counters,
    total_seconds: f64,
    /// 1, 5 and 15 minute load averages at the start and the end: the
    /// machine is shared, so how busy it was anyway.
    loadavg_before: String,
    loadavg_after: String,
}

#[derive(Serialize)]
struct Expiry {
    requests: usize,
    ttl_seconds: u64,
    spread_seconds: u64,
    /// Watch delivery of Expired minus creationTimestamp + TTL.
    lateness_ms: Stats,
    /// Create call sent to its first watch delivery: the watch's own latency.
    create_to_watch_ms: Stats,
    wrong_deadline: usize,
    /// Most requests sharing one deadline (created in the same second).
    largest_burst: usize,
}

#[derive(Serialize)]
struct Startup {
    requests: usize,
    concurrency: usize,
    create_seconds: f64,
    create_per_second: f64,
    /// From spawning the operator until the first request carried a status.
    first_status_seconds: f64,
    /// From spawning the operator until every request carried phase and expiresAt.
    all_reconciled_seconds: f64,
    reconciled_per_second: f64,
    /// Operator CPU (user + system) from its start to the last status seen.
    operator_cpu_seconds: f64,
    /// Most file descriptors the operator held, sampled each second: with
    /// HTTP/1.1 each concurrent API call holds a connection of its own.
    operator_peak_fds: usize,
    /// Connections the kernel refused because a listen backlog was full
    /// (TcpExt ListenOverflows, for the whole network namespace) meanwhile.
    listen_overflows: u64,
}

#[derive(Serialize)]
struct Idle {
    settled: bool,
    settle_seconds: f64,
    window_seconds: f64,
    /// Of one core.
    cpu_percent: f64,
    rss_mib: f64,
    hwm_mib: f64,
}

#[derive(Serialize)]
struct Counters {
    reconciles: u64,
    idle_reconciles: u64,
    reconcile_errors: u64,
    events_dropped: u64,
}

#[derive(Serialize)]
struct Stats {
    count: usize,
    min: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    /// Nearest-rank percentiles.
    fn of(mut values: Vec<f64>) -> Result<Self> {
        ensure!(!values.is_empty(), "no samples");
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| values[((p / 100.0 * values.len() as f64).ceil() as usize).max(1) - 1];
        Ok(Self {
            count: values.len(),
            min: round(values[0], 1),
            p50: round(rank(50.0), 1),
            p99: round(rank(99.0), 1),
            max: round(values[values.len() - 1], 1),
        })
    }
}

impl Report {
    fn markdown(&self) -> String {
        let (e, s, i, c) = (
            &self.expiry,
            &self.startup,
            &self.idle,
            &self.operator_counters,
        );
        let rows = [
            (
                format!(
                    "expiry lateness, {} requests, TTL {} s",
                    e.requests, e.ttl_seconds
                ),
                format!(
                    "p50 {} ms, p99 {} ms (min {}, max {})",
                    e.lateness_ms.p50, e.lateness_ms.p99, e.lateness_ms.min, e.lateness_ms.max
                ),
            ),
            (
                "largest burst: requests sharing one deadline".to_owned(),
                e.largest_burst.to_string(),
            ),
            (
                "create → watch delivery (included above)".to_owned(),
                format!(
                    "p50 {} ms, p99 {} ms",
                    e.create_to_watch_ms.p50, e.create_to_watch_ms.p99
                ),
            ),
            (
                format!(
                    "create {} requests, {} in flight",
                    s.requests, s.concurrency
                ),
                format!("{} s ({}/s)", s.create_seconds, s.create_per_second),
            ),
            (
                format!("operator start → all {} reconciled", s.requests),
                format!(
                    "{} s ({}/s); first after {} s",
                    s.all_reconciled_seconds, s.reconciled_per_second, s.first_status_seconds
                ),
            ),
            (
                "operator CPU for that start-up; peak open fds; listen overflows".to_owned(),
                format!(
                    "{} s; {}; {}",
                    s.operator_cpu_seconds, s.operator_peak_fds, s.listen_overflows
                ),
            ),
            (
                format!(
                    "idle CPU over {} s (settled: {})",
                    i.window_seconds, i.settled
                ),
                format!("{} % of one core", i.cpu_percent),
            ),
            (
                "operator VmRSS / VmHWM".to_owned(),
                format!("{} / {} MiB", i.rss_mib, i.hwm_mib),
            ),
            (
                "reconciles (idle) / errors / events dropped".to_owned(),
                format!(
                    "{} ({}) / {} / {}",
                    c.reconciles, c.idle_reconciles, c.reconcile_errors, c.events_dropped
                ),
            ),
        ];
        let mut out = format!(
            "\n## Operator ({} cores, {} s in all, load {} → {})\n\n\
             | measure | value |\n|---|---|\n",
            self.cores, self.total_seconds, self.loadavg_before, self.loadavg_after
        );
        for (measure, value) in rows {
            out.push_str(&format!("| {measure} | {value} |\n"));
        }
        out
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms_signed(d: SignedDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

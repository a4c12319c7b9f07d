//! Running oha and reading its JSON or CSV output, shared by the
//! `webhook_load` and `peers` benches (each includes this file with
//! `#[path]`, and each uses part of it).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde_json::Value;

pub struct Oha {
    path: PathBuf,
    body: PathBuf,
    pub version: String,
}

/// The figures of one oha run, latencies in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub responses: u64,
}

impl Oha {
    pub fn new(path: &Path, body: &Path) -> Result<Self> {
        let out = Command::new(path)
            .arg("--version")
            .output()
            .with_context(|| {
                format!("running {} (install it with hack/bench.sh)", path.display())
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // The flags below are oha 1.x's; anything else would fail obscurely.
        ensure!(
            version.starts_with("oha 1."),
            "{} is not oha 1.x: {version:?}",
            path.display()
        );
        Ok(Self {
            path: path.to_owned(),
            body: body.to_owned(),
            version,
        })
    }

    /// `seconds` of HTTP/1.1 keep-alive POSTs on `connections`
    /// connections, as fast as the server answers.
    pub fn run(&self, url: &str, connections: u32, seconds: u64) -> Result<Stats> {
        let mut cmd = self.command("json", connections, seconds);
        let output = run_bounded(cmd.arg(url), Duration::from_secs(seconds + 30))?;
        let json: Value = serde_json::from_slice(&output).context("oha's output is not JSON")?;
        Stats::from_json(&json)
    }

    /// The same at a fixed `rate`, with every request's latency measured
    /// from when it was due, so a stall is not hidden by the requests
    /// it delayed (coordinated omission).
    pub fn run_rate(
        &self,
        url: &str,
        connections: u32,
        rate: u32,
        seconds: u64,
    ) -> Result<RateStats> {
        let mut cmd = self.command("csv", connections, seconds);
        cmd.args(["-q", &rate.to_string(), "--latency-correction"]);
        let output = run_bounded(cmd.arg(url), Duration::from_secs(seconds + 30))?;
        RateStats::from_csv(&String::from_utf8(output)?, seconds as f64)
    }

    fn command(&self, format: &str, connections: u32, seconds: u64) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(["--no-tui", "--output-format", format, "--insecure"])
            .args([
                "--http-version",
                "1.1",
                "-m",
                "POST",
                "-T",
                "application/json",
                "-D",
            ])
            .arg(&self.body)
            .args(["-c", &connections.to_string(), "-z", &format!("{seconds}s")]);
        cmd
    }
}

/// Requests due in the first second of a fixed-rate run include each
/// connection's TCP and TLS setup; after it, every connection is open.
pub const STEADY_AFTER_SECS: f64 = 1.0;

/// A fixed-rate run over every request, and over the steady state.
#[derive(Clone, Copy, Debug)]
pub struct RateStats {
    pub all: Stats,
    pub steady: Stats,
}

impl RateStats {
    /// From oha's per-request CSV; fails on any answer but a 200.
    fn from_csv(csv: &str, seconds: f64) -> Result<Self> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| anyhow!("oha's CSV has no {name}: {header:?}"))
        };
        let (start, duration, status) = (
            column("request-start")?,
            column("request-duration")?,
            column("status")?,
        );
        let (mut all, mut steady) = (Vec::new(), Vec::new());
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or_default();
            ensure!(field(status) == "200", "a non-200 answer: {line}");
            let took: f64 = field(duration).parse()?;
            if field(start).parse::<f64>()? >= STEADY_AFTER_SECS {
                steady.push(took);
            }
            all.push(took);
        }
        Ok(Self {
            all: Stats::from_seconds(all, seconds)?,
            steady: Stats::from_seconds(steady, seconds - STEADY_AFTER_SECS)?,
        })
    }
}

/// Runs a command whose own limit should stop it, killing it if not.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Vec<u8>> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
    let mut stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("oha ran past {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader
        .join()
        .map_err(|_| anyhow!("reading oha's output panicked"))??;
    ensure!(status.success(), "oha failed: {status}");
    Ok(out)
}

impl Stats {
    /// From request latencies in seconds over a window of `seconds`.
    fn from_seconds(mut latencies: Vec<f64>, seconds: f64) -> Result<Self> {
        ensure!(!latencies.is_empty(), "no answers at all");
        latencies.sort_by(f64::total_cmp);
        // Nearest rank: the smallest latency at least `q` of all reach.
        let rank = |q: f64| {
            let i = (q * latencies.len() as f64).ceil() as usize;
            latencies[i.clamp(1, latencies.len()) - 1] * 1e3
        };
        Ok(Self {
            requests_per_sec: latencies.len() as f64 / seconds,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            responses: latencies.len() as u64,
        })
    }

    /// Also fails the run when any answer was not a 200 or any request
    /// failed for a reason other than the run's end cutting it off.
    fn from_json(json: &Value) -> Result<Self> {
        let number = |pointer: &str| {
            json.pointer(pointer)
                .and_then(Value::as_f64)
                .ok_or_else(|| anyhow!("oha's output has no {pointer}: {json}"))
        };
        let codes = json["statusCodeDistribution"]
            .as_object()
            .ok_or_else(|| anyhow!("no status codes: {json}"))?;
        ensure!(
            codes.keys().all(|code| code == "200"),
            "non-200 answers: {codes:?}"
        );
        let responses = codes.values().filter_map(Value::as_u64).sum();
        ensure!(responses > 0, "no answers at all: {json}");
        let errors = json["errorDistribution"]
            .as_object()
            .ok_or_else(|| anyhow!("no errors field: {json}"))?;
        let real_errors: Vec<_> = errors.keys().filter(|e| !e.contains("deadline")).collect();
        ensure!(real_errors.is_empty(), "requests failed: {errors:?}");
        Ok(Self {
            requests_per_sec: number("/summary/requestsPerSec")?,
            p50_ms: number("/latencyPercentiles/p50")? * 1e3,
            p99_ms: number("/latencyPercentiles/p99")? * 1e3,
            responses,
        })
    }
}

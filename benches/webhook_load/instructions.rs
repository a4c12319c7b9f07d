//! Instructions per admission, counted by callgrind: a figure that stays put
//! on a shared, noisy machine where timings do not.
//!
//! Each server's router answers the bench's review in process (no TLS, no
//! sockets), once `--iterations` times under `valgrind --tool=callgrind`.
//! Two runs, of 100 and 1,100 admissions, are subtracted, so building the
//! index, the runtime and the first allocations cancel out: what is left is
//! 1,000 admissions' worth of instructions.

use std::fmt::Write as _;

use super::*;

/// Admissions in the shorter and the longer run.
const RUNS: [u32; 2] = [100, 1_100];

#[derive(Args)]
pub struct CountArgs {
    #[arg(long, value_enum)]
    kind: Kind,
    /// ApprovalRequests in the webhook's index (ignored by the ceilings).
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Admissions to run.
    #[arg(long)]
    iterations: u32,
}

/// `count`: the admissions themselves, then a check that the last answer is
/// the one the load test expects (so a broken setup is never counted).
pub fn count(args: &CountArgs) -> Result<()> {
    use tower::ServiceExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let body = Bytes::from(review::review_body()?);
        let app = router(args.kind, args.requests)?;
        let mut last = Bytes::new();
        for _ in 0..args.iterations {
            let request = axum::http::Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(body.clone()))?;
            let response = app.clone().oneshot(request).await?;
            last = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        }
        if args.iterations > 0 {
            fixture::verify(args.kind, &last)?;
        }
        Ok(())
    })
}

/// One server's count.
pub struct Counted {
    pub kind: Kind,
    pub requests: usize,
    pub per_admission: f64,
}

/// Counts each server's instructions per admission with `valgrind`.
pub fn measure(valgrind: &Path, sizes: &[usize], dir: &Path) -> Result<Vec<Counted>> {
    let servers = [(Kind::Ceiling, 0), (Kind::ParseOnly, 0)]
        .into_iter()
        .chain(sizes.iter().map(|n| (Kind::Webhook, *n)));
    let mut counted = Vec::new();
    for (kind, requests) in servers {
        eprintln!(
            "webhook_load: counting the {}'s instructions ({requests} ApprovalRequests)",
            kind.name()
        );
        let [short, long] = RUNS.map(|n| run(valgrind, kind, requests, n, dir));
        let (short, long) = (short?, long?);
        ensure!(long > short, "the longer run counted fewer instructions");
        let per_admission = (long - short) as f64 / f64::from(RUNS[1] - RUNS[0]);
        counted.push(Counted {
            kind,
            requests,
            per_admission,
        });
    }
    Ok(counted)
}

/// The instructions one `count` process executed in all.
fn run(valgrind: &Path, kind: Kind, requests: usize, iterations: u32, dir: &Path) -> Result<u64> {
    let out = dir.join(format!("callgrind.{}.{requests}.{iterations}", kind.name()));
    let status = Command::new(valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe()?)
        .args(["count", "--kind", kind.name()])
        .args(["--requests", &requests.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", valgrind.display()))?;
    ensure!(
        status.success(),
        "callgrind of the {kind:?} failed: {status}"
    );
    let text = std::fs::read_to_string(&out)?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or(line.strip_prefix("totals:"))
        })
        .ok_or_else(|| anyhow!("no summary in {}", out.display()))?
        .trim()
        .parse()
        .context("callgrind's summary")
}

/// The counts as a Markdown table.
pub fn markdown(counted: &[Counted]) -> String {
    let bare = counted.iter().find(|c| c.kind == Kind::Ceiling);
    let parse = counted.iter().find(|c| c.kind == Kind::ParseOnly);
    let mut out = String::from(
        "Instructions per admission (callgrind; (1,100 − 100 admissions) / 1,000, in process, no TLS)\n\n\
         | server | ApprovalRequests | instructions | × bare | × parse-only |\n|---|---:|---:|---:|---:|\n",
    );
    for c in counted {
        let times = |base: Option<&Counted>| {
            base.map_or_else(String::new, |b| {
                format!("{:.1}", c.per_admission / b.per_admission)
            })
        };
        let size = if c.kind == Kind::Webhook {
            c.requests.to_string()
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {size} | {:.0} | {} | {} |",
            c.kind.name(),
            c.per_admission,
            times(bare),
            times(parse)
        );
    }
    out
}

//! CPU times and load averages from /proc, shared by the `webhook_load` and
//! `peers` benches (each includes this file with `#[path]`).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};

/// The 1, 5 and 15 minute load averages: how busy the machine was anyway.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the machine's CPU time had gone at one instant.
pub struct Snapshot {
    at: Instant,
    /// Busy time of all cores, from /proc/stat.
    machine: Duration,
    server: Duration,
    /// The driver and the children it has reaped (each oha run).
    ours: Duration,
}

impl Snapshot {
    pub fn take(server: u32) -> Result<Self> {
        ensure!(server != 0, "no server process to measure");
        Ok(Self {
            at: Instant::now(),
            machine: machine_busy()?,
            server: cpu(server)?,
            ours: process_cpu("self", true)?,
        })
    }

    /// The server's CPU time since `earlier`, and how many cores' worth
    /// other processes (not the server, the driver or oha) used meanwhile:
    /// above about 0.1, the figures of that run were disturbed by something
    /// else on the machine.
    pub fn since(&self, earlier: &Self) -> (Duration, f64) {
        let server = self.server.saturating_sub(earlier.server);
        let ours = self.ours.saturating_sub(earlier.ours);
        let busy = self.machine.saturating_sub(earlier.machine);
        let others = busy.saturating_sub(server + ours).as_secs_f64();
        (server, others / (self.at - earlier.at).as_secs_f64())
    }
}

/// User plus system time of every thread of process `pid`.
pub fn cpu(pid: u32) -> Result<Duration> {
    process_cpu(&pid.to_string(), false)
}

/// USER_HZ, the unit of /proc's CPU times, is 100 on every Linux ABI in use.
fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

/// User plus system time of every thread of a process, and optionally
/// of its reaped children, from /proc/<pid>/stat.
fn process_cpu(pid: &str, with_children: bool) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14 to 17 of the line;
    // what follows the name starts at field 3.
    let field = |n: usize| -> Result<u64> {
        let text = fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?;
        Ok(text.parse()?)
    };
    let mut total = field(14)? + field(15)?;
    if with_children {
        total += field(16)? + field(17)?;
    }
    Ok(ticks(total))
}

/// Busy time of all cores: everything but idle and iowait.
fn machine_busy() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    ensure!(fields.len() >= 8, "unexpected /proc/stat: {line}");
    // user nice system idle iowait irq softirq steal
    Ok(ticks([0, 1, 2, 5, 6, 7].iter().map(|i| fields[*i]).sum()))
}

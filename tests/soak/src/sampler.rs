//! Owns the daemon's resource samples: resident memory (`VmRSS`), threads and open file
//! descriptors of one process, read from /proc (Linux), on a fixed period.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProcSample {
    /// ms after traffic began (negative readings are clamped to 0).
    pub t_ms: u64,
    pub rss_kb: u64,
    pub fds: u64,
    pub threads: u64,
}

/// Reads `pid` now; None when the process is gone or /proc is unreadable.
pub fn read(pid: u32, start: Instant) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> { status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()) };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcSample { t_ms: Instant::now().saturating_duration_since(start).as_millis() as u64, rss_kb: field("VmRSS:")?, fds, threads: field("Threads:").unwrap_or(0) })
}

/// Samples `pid` every `every` into `out` until `stop` is set (one last reading then).
pub async fn run(pid: u32, start: Instant, every: Duration, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<ProcSample>>>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(s) = read(pid, start) {
            out.lock().unwrap().push(s);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
}

/// After traffic: polls `pid` once a second until its fds are at most `baseline + slack` or
/// `timeout` passes; returns the last reading and how long it took.
pub async fn settle_fds(pid: u32, start: Instant, baseline: u64, slack: u64, timeout: Duration) -> (Option<ProcSample>, Duration) {
    let t0 = Instant::now();
    loop {
        let s = read(pid, start);
        let done = s.is_none_or(|s| s.fds <= baseline + slack);
        if done || t0.elapsed() >= timeout {
            return (s, t0.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

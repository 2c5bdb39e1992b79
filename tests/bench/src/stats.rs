//! Owns the arithmetic of the figures: latency samples and their percentiles, run budgets
//! (every loop is bounded in count AND time), and the machine facts recorded next to them.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises samples given in milliseconds (nearest-rank percentiles).
    pub fn of_ms(samples: &[f64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let rank = |p: f64| v[(((p / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1];
        Summary { n, p50: rank(50.0), p90: rank(90.0), p99: rank(99.0), mean: v.iter().sum::<f64>() / n as f64, min: v[0], max: v[n - 1] }
    }

    pub fn json(&self) -> Value {
        json!({"n": self.n, "p50_ms": r4(self.p50), "p90_ms": r4(self.p90), "p99_ms": r4(self.p99),
               "mean_ms": r4(self.mean), "min_ms": r4(self.min), "max_ms": r4(self.max)})
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rounds to 4 decimals (0.1 µs when in ms) for the JSON report.
pub fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A bound on a loop: at most `count` iterations and at most `time` of wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub count: usize,
    pub time: Duration,
}

impl Budget {
    pub fn new(count: usize, secs: f64) -> Budget {
        Budget { count, time: Duration::from_secs_f64(secs) }
    }
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.time
    }
}

/// Everything about the machine that changes how to read the figures.
pub fn machine_facts() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| cpuinfo.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string());
    let logical = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let mem_total = read("/proc/meminfo").lines().next().unwrap_or_default().split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpus_in_cpuinfo": logical,
        "cpu_model": field("model name").unwrap_or_else(|| "unknown".into()),
        "cpu_mhz": field("cpu MHz"),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "mem_total_mib": mem_total / 1024,
        "loadavg_at_start": loadavg(),
        "fdatasync": fsync_probe().map(|s| s.json()),
        "build": if cfg!(debug_assertions) { "debug (figures are meaningless: use --release)" } else { "release" },
    })
}

/// How long the disk under the system temp dir (where the bench's ledger lives) takes to make a
/// small append durable: 4 KiB write + fdatasync, 100 times or 5 s, whichever comes first.
fn fsync_probe() -> Option<Summary> {
    use std::io::Write;
    let mut file = tempfile::tempfile().ok()?;
    let block = [0x5au8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut samples = Vec::with_capacity(100);
    for _ in 0..100 {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        file.write_all(&block).ok()?;
        file.sync_data().ok()?;
        samples.push(ms(t.elapsed()));
    }
    Some(Summary::of_ms(&samples))
}

/// The 1/5/15-minute load averages: the machine is shared, so they say how quiet it was.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// CPU time (user + system) this process's threads have used so far, summed by thread name
/// (tokio names every thread of a runtime, its blocking pool included, after the runtime).
pub fn cpu_by_thread_name() -> std::collections::BTreeMap<String, Duration> {
    let mut out = std::collections::BTreeMap::new();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // pid (comm) state ppid ... ; utime and stime are fields 14 and 15, counted from 1.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| rest.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let cpu = Duration::from_secs_f64((field(14) + field(15)) as f64 / ticks);
        *out.entry(name).or_insert(Duration::ZERO) += cpu;
    }
    out
}

/// CPU used per thread name between two snapshots, in ms (threads that ended are not counted).
pub fn cpu_delta_ms(before: &std::collections::BTreeMap<String, Duration>, after: &std::collections::BTreeMap<String, Duration>) -> Value {
    let mut m = serde_json::Map::new();
    for (name, t) in after {
        let d = t.saturating_sub(before.get(name).copied().unwrap_or_default());
        if !d.is_zero() {
            m.insert(name.clone(), json!(r4(ms(d))));
        }
    }
    Value::Object(m)
}

/// Samples collected by several concurrent agents, merged.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// End-to-end time of each successful request, as the agent saw it.
    pub e2e_ms: Vec<f64>,
    /// `Server-Timing: purser;dur=` of each successful request.
    pub inside_ms: Vec<f64>,
    pub ok: usize,
    pub failed: usize,
    /// Status and body start of the first failure, to say why.
    pub first_failure: Option<String>,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.e2e_ms.extend(other.e2e_ms);
        self.inside_ms.extend(other.inside_ms);
        self.ok += other.ok;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// The `purser;dur=<ms>` entry of one or more Server-Timing header values.
pub fn purser_dur<'a>(values: impl Iterator<Item = &'a str>) -> Option<f64> {
    values.flat_map(|v| v.split(',')).find_map(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        (parts.next()? == "purser").then_some(())?;
        parts.find_map(|p| p.strip_prefix("dur=")).and_then(|d| d.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of_ms(&v);
        assert_eq!((s.p50, s.p99, s.min, s.max, s.n), (50.0, 99.0, 1.0, 100.0, 100));
        assert_eq!(Summary::of_ms(&[]).n, 0);
    }

    #[test]
    fn server_timing_parsing() {
        assert_eq!(purser_dur(["purser;dur=0.123"].into_iter()), Some(0.123));
        assert_eq!(purser_dur(["db;dur=5, purser;desc=x;dur=1.5"].into_iter()), Some(1.5));
        assert_eq!(purser_dur(["app;dur=2"].into_iter()), None);
    }
}

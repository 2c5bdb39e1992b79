//! Owns the load generators: sequential keep-alive latency over several targets, interleaved in
//! rounds so a busy shared machine disturbs them alike; and N concurrent agents sending paid
//! requests through Purser, each loop bounded in count and in time.

use crate::net::{Answer, Conn};
use crate::stats::{cpu_by_thread_name, cpu_delta_ms, ms, purser_dur, Budget, Samples};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Where one series of requests goes.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Target {
    async fn send(&self, conn: &mut Conn) -> anyhow::Result<Answer> {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        conn.get(&self.path, &headers).await
    }
}

/// Records one answer: `ok` decides success; failures keep the first reason.
fn record(s: &mut Samples, answer: anyhow::Result<Answer>, ok: impl Fn(&Answer) -> bool) {
    match answer {
        Ok(a) if ok(&a) => {
            s.ok += 1;
            s.e2e_ms.push(ms(a.elapsed));
            if let Some(d) = purser_dur(a.headers.get_all("server-timing").iter().filter_map(|v| v.to_str().ok())) {
                s.inside_ms.push(d);
            }
        }
        Ok(a) => {
            s.failed += 1;
            s.first_failure.get_or_insert_with(|| format!("HTTP {}: {}", a.status, String::from_utf8_lossy(&a.body[..a.body.len().min(300)])));
        }
        Err(e) => {
            s.failed += 1;
            s.first_failure.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

/// Sequential latency of each target over its own keep-alive connection: `warmup` requests
/// each, then `rounds` rounds in rotating order, `budget.count / rounds` requests per target per
/// round, all within `budget.time`. Only 200 answers count.
pub async fn hop_latency(targets: &[Target], warmup: usize, rounds: usize, budget: Budget) -> anyhow::Result<Vec<Samples>> {
    let mut conns = Vec::with_capacity(targets.len());
    for t in targets {
        conns.push(Conn::open(t.addr).await?);
    }
    for (t, c) in targets.iter().zip(conns.iter_mut()) {
        for _ in 0..warmup {
            let _ = t.send(c).await;
        }
    }
    let mut out = vec![Samples::default(); targets.len()];
    let per_round = (budget.count / rounds.max(1)).max(1);
    let deadline = budget.deadline();
    'rounds: for round in 0..rounds.max(1) {
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            for _ in 0..per_round {
                if Instant::now() >= deadline {
                    break 'rounds;
                }
                let answer = targets[i].send(&mut conns[i]).await;
                record(&mut out[i], answer, |a| a.status == http::StatusCode::OK);
            }
        }
    }
    Ok(out)
}

/// What one concurrent paid run produced.
pub struct PaidRun {
    pub agents: usize,
    pub samples: Samples,
    /// From the moment all agents were released to the last answer.
    pub elapsed: Duration,
    /// Whether the time bound (rather than the count bound) ended the run.
    pub time_bound_hit: bool,
    /// CPU ms this process used during the run, by thread name (`purser` is Purser's runtime).
    pub cpu_ms: serde_json::Value,
}

impl PaidRun {
    pub fn per_sec(&self) -> f64 {
        self.samples.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A paid answer: 200 from upstream, governed by Purser (it carries a receipt).
fn is_paid(a: &Answer) -> bool {
    a.status == http::StatusCode::OK && a.headers.contains_key(purser_core::upstream::RECEIPT_HEADER)
}

/// `agents` concurrent agents, each on its own keep-alive connection to Purser, send paid
/// requests to `target` until `budget.count` requests were sent or `budget.time` has passed.
/// Each first sends `warmup` requests that are not counted.
pub async fn paid_load(target: &Target, agents: usize, warmup: usize, budget: Budget) -> anyhow::Result<PaidRun> {
    let agents = agents.max(1);
    let issued = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(agents + 1));
    let mut tasks = Vec::with_capacity(agents);
    for _ in 0..agents {
        let (target, issued, barrier) = (target.clone(), issued.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            let conn = Conn::open(target.addr).await;
            let mut conn = match conn {
                Ok(c) => Some(c),
                Err(e) => {
                    s.failed += 1;
                    s.first_failure = Some(format!("{e:#}"));
                    None
                }
            };
            if let Some(c) = conn.as_mut() {
                for _ in 0..warmup {
                    let _ = target.send(c).await;
                }
            }
            barrier.wait().await;
            let Some(mut conn) = conn else { return (s, Instant::now()) };
            let deadline = Instant::now() + budget.time;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < budget.count {
                let answer = target.send(&mut conn).await;
                record(&mut s, answer, is_paid);
            }
            (s, Instant::now())
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let cpu_before = cpu_by_thread_name();
    let mut samples = Samples::default();
    let mut last = start;
    for t in tasks {
        let (s, done) = t.await?;
        samples.merge(s);
        last = last.max(done);
    }
    let cpu_ms = cpu_delta_ms(&cpu_before, &cpu_by_thread_name());
    let time_bound_hit = issued.load(Ordering::Relaxed) < budget.count;
    Ok(PaidRun { agents, samples, elapsed: last.duration_since(start), time_bound_hit, cpu_ms })
}

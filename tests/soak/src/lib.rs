//! purser-soak: runs the real `purser serve` under steady mixed agent traffic (pass-through,
//! auto-paid, three kinds of refusal, held-and-approved, held-and-denied) against the real x402
//! reference peers for a given time, samples the daemon's RSS and fds, audits the ledger and the
//! chain at the end, and reports latency per window and the drift.
//!
//! * [`kinds`]: the traffic mix, one agent and grant per kind, what each answer must be.
//! * [`traffic`]: the steady-rate generators, the approving user, the top-ups.
//! * [`sampler`]: /proc readings of the daemon.
//! * [`report`]: windows, percentiles, drift, the table.
//! * [`check`]: the end-of-run audit (verify, receipts, counts, grants, chain).

#![forbid(unsafe_code)]

pub mod check;
pub mod kinds;
pub mod report;
pub mod sampler;
pub mod traffic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purser_testkit::{usdc_balance, Mode, Peers, Purser};
use serde::Serialize;

use crate::kinds::{Kind, Urls};
use crate::traffic::{Control, Record, Shared};

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub purser_bin: PathBuf,
    pub duration: Duration,
    /// Requests per second over all agents.
    pub rate: f64,
    /// Report window (5 minutes for the hour).
    pub window: Duration,
    /// Sampling period of RSS and fds.
    pub sample_every: Duration,
    /// Requests one agent may have open before a tick is shed.
    pub max_in_flight: usize,
    /// After traffic, fds must come back to baseline + this within `settle_timeout`.
    pub fd_slack: u64,
    pub settle_timeout: Duration,
    /// Leave Base Sepolia on its public default RPC instead of the peers' chain (offline here:
    /// every balance refresh and reconciliation fails), to soak the daemon with its RPC down.
    pub unreachable_rpc: bool,
}

impl Config {
    pub fn new(purser_bin: PathBuf, duration: Duration) -> Config {
        Config {
            purser_bin,
            duration,
            rate: 4.0,
            window: Duration::from_secs(300),
            sample_every: Duration::from_secs(10),
            max_in_flight: 32,
            fd_slack: 16,
            settle_timeout: Duration::from_secs(150),
            unreachable_rpc: false,
        }
    }
}

/// Requests of one kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindCount {
    pub sent: u64,
    pub expected: u64,
    pub unexpected: u64,
    pub shed: u64,
}

/// Everything the soak measured; written as JSON by the bin.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub minutes: f64,
    pub rate_per_s: f64,
    pub window_s: u64,
    pub sample_s: u64,
    pub counts: BTreeMap<&'static str, KindCount>,
    pub approved_by_user: u64,
    pub denied_by_user: u64,
    pub topups: u64,
    /// Daemon readings: before traffic, first and last during traffic, and after it settled.
    pub baseline: Option<sampler::ProcSample>,
    pub after: Option<sampler::ProcSample>,
    pub fd_settle_s: f64,
    pub rss_kb: (u64, u64, u64, u64),
    pub fds: (u64, u64, u64, u64),
    pub overall: BTreeMap<&'static str, report::Lat>,
    pub windows: Vec<report::Window>,
    pub drift: Option<report::Drift>,
    pub audit: check::Audit,
    /// Every problem found (empty: the soak passed).
    pub problems: Vec<String>,
    pub samples: Vec<sampler::ProcSample>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

fn range(v: impl Iterator<Item = u64> + Clone, first: Option<u64>, last: Option<u64>) -> (u64, u64, u64, u64) {
    (first.unwrap_or(0), last.unwrap_or(0), v.clone().min().unwrap_or(0), v.max().unwrap_or(0))
}

/// Runs one soak (starts the peers and the daemon; blocks a multi-thread runtime's worker for
/// the blocking parts). `progress` gets a line now and then.
pub async fn run(cfg: &Config, progress: &(dyn Fn(String) + Sync)) -> anyhow::Result<Report> {
    let peers = tokio::task::block_in_place(|| Peers::start(Mode::Real));
    let p = tokio::task::block_in_place(|| {
        // The peers are on 127.0.0.1, which a grant reaches only by listing it: the daemon lets
        // every grant reach it, so the refused_host agent meets its 402 (and a host_not_allowed
        // receipt) rather than `internal_target` at the door.
        // The audit matches every answer's receipt id one by one: no receipt is folded.
        let env = vec![("PURSER_INTERNAL_HOSTS".into(), "127.0.0.1".into()), ("PURSER_RECEIPTS_PER_MINUTE".into(), "1000000".into())];
        let opts = purser_testkit::ServeOptions { env, ..Default::default() };
        let mut p = Purser::start_with(&cfg.purser_bin.to_string_lossy(), &peers.payer_key, opts);
        // Balances and reconciliation read the peers' chain (Base Sepolia's stand-in), as a
        // user's daemon reads a reachable RPC; the public default is out of reach here.
        if !cfg.unreachable_rpc {
            p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
            p.restart();
        }
        p
    });
    let p = Arc::new(p);
    let pid = p.pid().ok_or_else(|| anyhow::anyhow!("purser serve has no pid"))?;
    let minutes = cfg.duration.as_secs().div_ceil(60);
    let agents = tokio::task::block_in_place(|| kinds::create_agents(&p, minutes));
    let control = Control::read(&p.data_dir)?;
    let payees = [peers.pay_to.clone(), peers.pay_to_alt.clone()];
    let mut before: Vec<u128> = Vec::new();
    for a in &payees {
        before.push(usdc_balance(&peers.rpc, a).await);
    }
    progress(format!("peers up, purser serve pid {pid} at {}, {} agents, {} req/s for {:?}", p.proxy_url, agents.len(), cfg.rate, cfg.duration));

    let shared = Shared::new();
    let baseline = sampler::read(pid, shared.start);
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler_task = tokio::spawn(sampler::run(pid, shared.start, cfg.sample_every, stop.clone(), samples.clone()));
    let grant_of = |k: Kind| agents.iter().find(|a| a.kind == k).map(|a| a.grant_id.clone()).unwrap_or_default();
    let approver = tokio::spawn(traffic::approver(control.clone(), grant_of(Kind::Approved), grant_of(Kind::Denied), stop.clone(), shared.clone()));
    let topper = tokio::spawn(traffic::topper(p.clone(), control, agents.clone(), stop.clone(), shared.clone()));
    let until = shared.start + cfg.duration;
    let urls = Urls::of(&peers);
    let gens: Vec<_> = agents
        .iter()
        .map(|a| {
            let per_sec = cfg.rate * a.kind.per_mille() as f64 / 1000.0;
            tokio::spawn(traffic::generate(a.clone(), p.proxy_url.clone(), urls.clone(), per_sec, until, cfg.max_in_flight, shared.clone()))
        })
        .collect();
    let progress_every = Duration::from_secs(60).min(cfg.duration);
    let mut next = Instant::now() + progress_every;
    while gens.iter().any(|g| !g.is_finished()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if Instant::now() >= next {
            next += progress_every;
            let n = shared.records.lock().unwrap().len();
            let bad = shared.records.lock().unwrap().iter().filter(|r| r.problem.is_some()).count();
            let last = samples.lock().unwrap().last().copied();
            progress(format!("t={}s answers={n} unexpected={bad} last sample={last:?}", shared.start.elapsed().as_secs()));
        }
    }
    for g in gens {
        g.await?;
    }
    let duration_ms = shared.start.elapsed().as_millis().min(cfg.duration.as_millis() + 1) as u64;
    stop.store(true, Ordering::Relaxed);
    approver.await?;
    topper.await?;
    sampler_task.await?;
    progress("traffic stopped; waiting for fds to settle".into());

    let (after, settle) = sampler::settle_fds(pid, shared.start, baseline.map_or(0, |b| b.fds), cfg.fd_slack, cfg.settle_timeout).await;
    let mut delta: u128 = 0;
    for (a, b) in payees.iter().zip(&before) {
        delta += usdc_balance(&peers.rpc, a).await.saturating_sub(*b);
    }
    let records: Vec<Record> = std::mem::take(&mut *shared.records.lock().unwrap());
    let samples: Vec<sampler::ProcSample> = std::mem::take(&mut *samples.lock().unwrap());
    let audit = tokio::task::block_in_place(|| check::audit(&p, &agents, &records, delta));
    Ok(build(cfg, duration_ms, &shared, records, samples, baseline, after, settle, audit))
}

#[allow(clippy::too_many_arguments)]
fn build(
    cfg: &Config,
    duration_ms: u64,
    shared: &Shared,
    records: Vec<Record>,
    samples: Vec<sampler::ProcSample>,
    baseline: Option<sampler::ProcSample>,
    after: Option<sampler::ProcSample>,
    settle: Duration,
    audit: check::Audit,
) -> Report {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&'static str, KindCount> = BTreeMap::new();
    for r in &records {
        let c = counts.entry(r.kind.name()).or_default();
        c.sent += 1;
        match &r.problem {
            None => c.expected += 1,
            Some(p) => {
                c.unexpected += 1;
                if problems.len() < 50 {
                    problems.push(format!("{} at {} ms: {p}", r.kind.name(), r.t_ms));
                }
            }
        }
    }
    for (k, n) in shared.shed.lock().unwrap().iter() {
        counts.entry(k.name()).or_default().shed = *n;
    }
    problems.extend(shared.problems.lock().unwrap().iter().cloned());
    problems.extend(audit.problems.iter().cloned());
    if let (Some(b), Some(a)) = (baseline, after) {
        if a.fds > b.fds + cfg.fd_slack {
            problems.push(format!("fds did not come back: {} before traffic, {} after {:?}", b.fds, a.fds, settle));
        }
    } else {
        problems.push("no reading of the daemon before or after traffic (did it exit?)".into());
    }
    let mut overall = BTreeMap::new();
    for k in Kind::ALL {
        let rs: Vec<&Record> = records.iter().filter(|r| r.kind == k).collect();
        overall.insert(k.name(), report::lat(&rs));
    }
    let windows = report::windows(&records, &samples, duration_ms, cfg.window.as_millis() as u64);
    let (first, last) = (samples.first().copied(), samples.last().copied());
    Report {
        minutes: duration_ms as f64 / 60_000.0,
        rate_per_s: cfg.rate,
        window_s: cfg.window.as_secs(),
        sample_s: cfg.sample_every.as_secs(),
        counts,
        approved_by_user: shared.approved.load(Ordering::Relaxed),
        denied_by_user: shared.denied.load(Ordering::Relaxed),
        topups: shared.topups.load(Ordering::Relaxed),
        baseline,
        after,
        fd_settle_s: settle.as_secs_f64(),
        rss_kb: range(samples.iter().map(|s| s.rss_kb), first.map(|s| s.rss_kb), last.map(|s| s.rss_kb)),
        fds: range(samples.iter().map(|s| s.fds), first.map(|s| s.fds), last.map(|s| s.fds)),
        overall,
        drift: report::drift(&windows, &samples),
        windows,
        audit,
        problems,
        samples,
    }
}

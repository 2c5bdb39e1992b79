//! purser-crashloop: runs `purser serve` under a steady stream of concurrent paid requests
//! (real reference peers; the facilitator settles on the local anvil chain), SIGKILLs it at
//! seeded random moments and restarts it on the same data dir, and after every restart checks
//! that money and receipts survived: the hash chain verifies, every receipt id an agent was
//! given exists, budgets equal their reservations, nothing was signed twice for one request or
//! sent before its nonce was on disk, and the chain never moved more than the ledger knows of.
//! At the end the chain's clock passes every authorization's validBefore and the ledger must
//! equal the chain exactly.

#![forbid(unsafe_code)]

pub mod checks;
pub mod facts;
pub mod report;
pub mod traffic;

use anyhow::{bail, Context, Result};
use purser_testkit::{Mode, Peers, Purser};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use report::Report;

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `purser` binary to drive.
    pub purser: PathBuf,
    pub kills: usize,
    pub seed: u64,
    /// Concurrent agents.
    pub concurrency: usize,
    /// Traffic runs this long (uniformly random, seeded) between a restart and the next kill.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Print one line per kill.
    pub verbose: bool,
}

impl Config {
    pub fn new(purser: PathBuf, kills: usize) -> Config {
        Config { purser, kills, seed: 1, concurrency: 8, min_delay: Duration::from_millis(150), max_delay: Duration::from_millis(2500), verbose: false }
    }
}

/// Grants the agents pay under: budgets far above what a run spends; `/pricey` ($2.00) is
/// above the ask ceiling, so refused.
const GRANTS: usize = 3;

/// Runs the loop (blocking parts on the runtime's blocking threads). Violations are collected
/// in the report, not raised: a run always ends with its figures.
pub async fn run(cfg: &Config) -> Result<Report> {
    let started = Instant::now();
    let peers = tokio::task::spawn_blocking(|| Peers::start(Mode::Real)).await.context("peers")?;
    let bin = cfg.purser.to_string_lossy().into_owned();
    let (mut p, tokens) = {
        let rpc = peers.rpc.clone();
        let (key, payer) = (peers.payer_key.clone(), peers.payer_address.clone());
        tokio::task::spawn_blocking(move || {
            let p = Purser::start_with_key(&bin, &key);
            assert!(p.address.eq_ignore_ascii_case(&payer), "wallet {} is not the peers' payer {payer}", p.address);
            p.cli_ok(&["network", "set-rpc", "base-sepolia", &rpc]);
            let tokens: Vec<String> = (0..GRANTS)
                .map(|i| {
                    let label = format!("crash{i}");
                    p.grant(&["--label", &label, "--budget", "200.00", "--expires", "24h", "--per-request-max", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"]).1
                })
                .collect();
            (p, tokens)
        })
        .await
        .context("purser start")?
    };
    let traffic = traffic::Traffic::new();
    traffic.set_url(&p.proxy_url);
    let agents = traffic::spawn(&traffic, cfg.concurrency, cfg.seed, &tokens, &peers.v2);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut report = Report { kills: cfg.kills, seed: cfg.seed, concurrency: cfg.concurrency, ..Default::default() };

    for k in 1..=cfg.kills {
        traffic.open();
        let delay = rng.gen_range(cfg.min_delay..=cfg.max_delay);
        tokio::time::sleep(delay).await;
        let Some(pid) = p.pid() else { bail!("kill {k}: the daemon is not running") };
        purser_testkit::proc::signal(pid, libc::SIGKILL);
        let (restarted, p2) = tokio::task::spawn_blocking(move || {
            let dead = p.wait_exit(Duration::from_secs(20)).is_some();
            (dead, p)
        })
        .await?;
        p = p2;
        if !restarted {
            bail!("kill {k}: purser serve (pid {pid}) did not die from SIGKILL");
        }
        traffic.close().await;
        p = tokio::task::spawn_blocking(move || {
            p.restart();
            p
        })
        .await
        .with_context(|| format!("restart after kill {k}"))?;
        traffic.set_url(&p.proxy_url);
        let (p2, found) = check(p, &peers, &traffic, false).await?;
        p = p2;
        if cfg.verbose {
            eprintln!(
                "kill {k:>3}/{} after {:>4} ms: {} sent, {} receipts, {} interrupted ({} spent, {} released, {} unknown), {} violations",
                cfg.kills,
                delay.as_millis(),
                traffic.sent(),
                found.receipts,
                found.interrupted,
                found.interrupted_spent,
                found.interrupted_released,
                found.interrupted_unknown,
                found.violations.len()
            );
        }
        report.add_check(k, &found);
    }
    traffic.shutdown();
    for a in agents {
        let _ = a.await;
    }

    // The chain's clock passes every validBefore (Purser signs for at most 300 s), so each
    // authorization is decided for good: used (spent) or never usable again (released).
    purser_testkit::onchain::time_travel(&peers.rpc, 400).await;
    let mut last = None;
    for _ in 0..20 {
        let (p2, found) = check(p, &peers, &traffic, true).await?;
        p = p2;
        let done = found.unknown == 0;
        last = Some(found);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = last.expect("a final check ran");
    report.finish(&traffic.answers(), &last, traffic.sent(), started.elapsed());
    tokio::task::spawn_blocking(move || {
        p.stop();
        drop(peers);
    })
    .await?;
    Ok(report)
}

/// Reconciles once (`purser wallet reconcile`), runs `purser receipts verify`, and judges the
/// ledger, chain and logs. Hands the daemon back.
async fn check(p: Purser, peers: &Peers, traffic: &traffic::Traffic, settled: bool) -> Result<(Purser, checks::Findings)> {
    let (p, verified, reconcile_ok) = tokio::task::spawn_blocking(move || {
        let rec = p.cli(&["wallet", "reconcile", "--json"]);
        let v = p.cli(&["receipts", "verify", "--json"]);
        let ok = v.status.success() && serde_json::from_slice::<serde_json::Value>(&v.stdout).map(|j| j["ok"] == true).unwrap_or(false);
        (p, ok, rec.status.success())
    })
    .await?;
    let ledger = facts::ledger(&p.db_path())?;
    let chain = facts::chain(&peers.rpc, &peers.token, &peers.payer_address, &peers.pay_to).await;
    let logs = facts::peer_logs(&peers.log_dir());
    let mut found = checks::judge(&ledger, &chain, &logs, &traffic.answers(), settled);
    found.verified = verified;
    if !verified {
        found.violations.insert(0, "`purser receipts verify` failed".into());
    }
    if !reconcile_ok {
        found.violations.push("`purser wallet reconcile` failed".into());
    }
    Ok((p, found))
}

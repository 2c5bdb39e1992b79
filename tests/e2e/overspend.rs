//! e2e: overspend at scale. 1,000 concurrent paid requests (auto tier) through the proxy, all on
//! their own connections, against one grant whose budget covers only a few dozen payments: the
//! grant never spends one atomic unit more than its budget, exactly the payments that fit are
//! paid and settled on chain, every other request is refused `over_budget` with a receipt, and
//! the ledger, the receipts and the chain agree to the unit.
//!
//! `PURSER_OVERSPEND_RUNS` (default 1) repeats it, each run with a fresh Purser against the same
//! peers; `PURSER_OVERSPEND_CONCURRENCY` (default 1000) sets the requests per run.
//! `tests/hardening/overspend.sh` runs it 10 times and prints each run's figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use purser_testkit::{agent, facilitator_count, send, usdc_balance, Mode, Peers, Purser, Reply};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_purser");
/// The v2 paywall's `/echo` price: $0.01 in USDC atomic units.
const PRICE: u128 = 10_000;
/// $0.375: 37 payments fit, and the 5,000 units left are less than one more.
const BUDGET: &str = "0.375";
const BUDGET_ATOMIC: u128 = 375_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Raises this process's open-file limit soft to hard (the peers started after it inherit it):
/// 1,000 agent sockets alone would hit the usual soft limit of 1024. Returns (soft, hard).
/// Process-wide (every e2e test shares this process), but a limit that only grows takes nothing
/// from any other test.
fn raise_open_files() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: get/setrlimit read and write one rlimit through a valid pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0, "getrlimit");
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0, "getrlimit");
    }
    // `rlim_t` is u64 on Linux but not everywhere: the casts stay.
    #[allow(clippy::unnecessary_cast)]
    (lim.rlim_cur as u64, lim.rlim_max as u64)
}

/// `Max open files` (soft, hard) of a running process, from /proc.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/PID/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files line");
    let mut w = line.split_whitespace().skip(3);
    (w.next().unwrap_or_default().to_string(), w.next().unwrap_or_default().to_string())
}

/// Samples the daemon's open descriptors every 10 ms until `stop`; returns the peak.
fn watch_fds(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let peak = AtomicUsize::new(0);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                peak.fetch_max(d.count(), Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        peak.load(Ordering::Relaxed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_holds_under_1000_concurrent_requests() {
    let (soft, hard) = raise_open_files();
    let (runs, n) = (env_usize("PURSER_OVERSPEND_RUNS", 1), env_usize("PURSER_OVERSPEND_CONCURRENCY", 1000));
    assert!(soft as usize > 2 * n + 200, "the test needs about {} open files; the hard limit is {hard}", 2 * n + 200);
    let peers = Peers::start(Mode::Real);
    println!("overspend: {runs} run(s) x {n} concurrent requests; budget {BUDGET_ATOMIC} atomic, price {PRICE} (test process open-file limit {soft}/{hard})");
    for run in 1..=runs {
        one_run(&peers, run, n).await;
    }
}

async fn one_run(peers: &Peers, run: usize, n: usize) {
    // This test matches every answer's receipt id one by one: no refusal is folded into a
    // per-minute summary (`PURSER_RECEIPTS_PER_MINUTE`; folding has its own test in integrity).
    let opts = purser_testkit::ServeOptions { env: vec![("PURSER_RECEIPTS_PER_MINUTE".into(), "1000000".into())], ..Default::default() };
    let p = Purser::start_with(BIN, &peers.payer_key, opts);
    let pid = p.pid().expect("serve pid");
    let (soft, hard) = open_files_limit(pid);
    assert_eq!(soft, hard, "purser serve raised its open-file limit soft to hard");
    let (gid, token) = p.grant(&["--label", "swarm", "--budget", BUDGET, "--per-request-max", "0.05", "--auto-below", "0.02", "--ask-below", "1.00"]);
    let url = p.gateway_url(&format!("{}/echo", peers.v2));
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let settles_before = facilitator_count(&peers.facilitator, "settle").await;

    let stop = Arc::new(AtomicBool::new(false));
    let fds = watch_fds(pid, stop.clone());
    let c = agent();
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, url, token) = (c.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let rb = c.post(url).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json").json(&json!({"run": run, "i": i}));
                (i, send(rb).await)
            })
        })
        .collect();
    let mut replies: Vec<(usize, Reply)> = Vec::with_capacity(n);
    for t in tasks {
        replies.push(t.await.expect("agent task"));
    }
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak_fds = fds.join().expect("fd watcher");

    let mut by_code: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for (i, r) in &replies {
        *by_code.entry((r.status, r.code().unwrap_or_default())).or_default() += 1;
        assert!(r.receipt().is_some(), "every answer carries its receipt: {r}");
        match r.status {
            200 => assert_eq!(r.json()["echo"], json!({"run": run, "i": i}), "request {i} got another's answer: {r}"),
            403 => assert_eq!(r.code().as_deref(), Some("over_budget"), "{r}"),
            _ => panic!("request {i}: neither paid nor refused over budget: {r}"),
        }
    }
    let paid_answers = by_code.get(&(200, String::new())).copied().unwrap_or(0);
    let refused_answers = by_code.get(&(403, "over_budget".to_string())).copied().unwrap_or(0);

    let receipts = p.receipts();
    assert_eq!(receipts.len(), n, "one receipt per request");
    let paid: Vec<_> = receipts.iter().filter(|r| r["outcome"] == "paid").collect();
    let refused = receipts.iter().filter(|r| r["outcome"] == "refused" && r["reason"] == "over_budget").count();
    let paid_sum: u128 = paid.iter().map(|r| r["amount_atomic"].as_str().expect("paid amount").parse::<u128>().expect("atomic amount")).sum();
    let chain_delta = usdc_balance(&peers.rpc, &peers.pay_to).await - payee_before;
    let settles = facilitator_count(&peers.facilitator, "settle").await - settles_before;
    let g = p.grant_show(&gid);
    let atomic = |k: &str| g[k].as_str().and_then(|s| s.parse::<u128>().ok()).unwrap_or_else(|| panic!("{k} in {g}"));
    let (spent, reserved, remaining, budget) = (atomic("spent_atomic"), atomic("reserved_atomic"), atomic("remaining_atomic"), atomic("budget_atomic"));
    let verify = p.cli(&["receipts", "verify"]);
    println!(
        "run {run}: requests {n}, paid {}, answers {by_code:?}, spent {spent} of budget {budget} (reserved {reserved}, remaining {remaining}), chain delta {chain_delta}, settlements {settles}, peak daemon fds {peak_fds} (limit {soft}), wall {:.1} s",
        paid.len(),
        wall.as_secs_f64()
    );

    assert!(spent <= budget, "spent {spent} > budget {budget}");
    assert_eq!(budget, BUDGET_ATOMIC);
    assert_eq!(spent + reserved + remaining, budget, "spent + reserved + remaining == budget: {g}");
    assert_eq!((reserved, remaining), (0, BUDGET_ATOMIC % PRICE), "nothing left reserved, less than one price left: {g}");
    let fit = (BUDGET_ATOMIC / PRICE) as usize;
    assert_eq!((paid_answers, paid.len()), (fit, fit), "exactly the payments that fit were paid: {by_code:?}");
    assert_eq!((refused_answers, refused), (n - fit, n - fit), "every other request refused over_budget: {by_code:?}");
    assert_eq!((paid_sum, chain_delta, spent), (fit as u128 * PRICE, paid_sum, paid_sum), "paid receipts, the payee's on-chain delta and the grant's spent agree");
    assert_eq!(settles, fit as u64, "one settlement per paid request, none extra");
    let mut txs: Vec<&str> = paid.iter().map(|r| r["tx"].as_str().expect("paid receipt has its tx")).collect();
    txs.sort();
    txs.dedup();
    assert_eq!(txs.len(), fit, "distinct settlement transactions");
    let mut answered: Vec<String> = replies.iter().filter_map(|(_, r)| r.receipt()).collect();
    let mut stored: Vec<String> = receipts.iter().map(|r| r["id"].as_str().expect("receipt id").to_string()).collect();
    answered.sort();
    stored.sort();
    assert_eq!(answered, stored, "the answers' Purser-Receipt ids are the ledger's");
    assert!(verify.status.success(), "receipts verify: {}", String::from_utf8_lossy(&verify.stdout));
}

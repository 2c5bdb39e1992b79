//! CI crash loop (issue 10): `purser serve` under concurrent paid traffic against the real
//! peers, SIGKILLed 20 times at seeded random moments and restarted on the same data dir. After
//! every restart and at the end (chain clock past every validBefore) the invariants hold: the
//! receipts verify, every Purser-Receipt id an agent got exists, budgets equal their
//! reservations, no request was signed twice or sent before its nonce was on disk, and the
//! ledger's spending equals the chain's transfers. Built as a module of the `purser` package's
//! `e2e` test (tests/e2e/main.rs) so cargo builds the daemon first:
//! `cargo test -p purser --test e2e crash20:: -- --nocapture`. The long run:
//! tests/hardening/crashloop.sh.

use purser_crashloop::{run, Config};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_kills_lose_no_money_and_no_receipt() {
    let mut cfg = Config::new(PathBuf::from(env!("CARGO_BIN_EXE_purser")), 20);
    cfg.seed = 20;
    cfg.concurrency = 6;
    cfg.min_delay = Duration::from_millis(150);
    cfg.max_delay = Duration::from_millis(1800);
    cfg.verbose = true;
    let report = run(&cfg).await.expect("crash loop ran");
    println!("{}", report.table());
    assert!(report.ok(), "invariants broke:\n{}", report.violations.join("\n"));
    // The loop must actually have exercised what it claims to check.
    assert_eq!(report.verify_passes, report.checks, "receipts verify after every restart");
    assert!(report.paid >= 20, "too little paid traffic to mean anything: {}", report.paid);
    assert!(report.refused > 0, "no refusal was exercised");
    assert!(report.interrupted > 0, "no kill interrupted a payment in flight");
    assert_eq!(report.unknown_left, 0, "every interrupted payment was decided by the chain");
    assert_eq!(u128::from(report.spent), report.chain_sum, "ledger spent == on-chain transfers");
    assert!(report.max_nonces_per_request <= 1 && report.max_paid_retries <= 1);
}

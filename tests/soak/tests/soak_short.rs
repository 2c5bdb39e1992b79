//! e2e (CI): 45 s of the soak's mixed traffic (pass-through, auto-paid, three kinds of refusal,
//! held-and-approved, held-and-denied, from seven concurrent agents) through the debug
//! `purser serve` against the real x402 peers. Asserts behaviour, never time: every kind ran and
//! got exactly the answers it must, the ledger verifies, every governed answer's receipt is in
//! the ledger with its outcome (and no other receipt is), counts by outcome agree, every grant
//! balances with nothing left reserved, paid receipts equal the payees' on-chain gain, and the
//! daemon's open fds come back to (near) their baseline once traffic stops.
//! The long run is `tests/hardening/soak.sh --minutes 60`.

use std::time::Duration;

use purser_soak::{report, Config};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_traffic_keeps_ledger_receipts_and_fds() {
    let mut cfg = Config::new(BIN.into(), Duration::from_secs(45));
    cfg.rate = 4.0;
    cfg.window = Duration::from_secs(15);
    cfg.sample_every = Duration::from_secs(2);
    let r = purser_soak::run(&cfg, &|l| eprintln!("soak: {l}")).await.expect("the soak ran");
    println!("{}", report::table(&r.windows));
    println!("counts {:?}\nledger {:?}", r.counts, r.audit.ledger);
    println!("fds baseline {:?} after {:?} ({:.0} s)", r.baseline.map(|b| b.fds), r.after.map(|a| a.fds), r.fd_settle_s);

    for k in purser_soak::kinds::Kind::ALL {
        let c = r.counts.get(k.name()).cloned().unwrap_or_default();
        assert!(c.expected > 0, "{}: no request of this kind got its expected answer: {c:?}", k.name());
        assert_eq!(c.unexpected, 0, "{}: unexpected answers: {:#?}", k.name(), r.problems);
    }
    assert!(r.audit.verify_ok, "receipts verify: {}", r.audit.verify_output);
    assert_eq!(r.audit.agents, r.audit.ledger, "counts by outcome: agents vs ledger");
    assert_eq!(r.approved_by_user, r.counts["approved"].expected, "each approval answered one held request");
    assert_eq!(r.denied_by_user, r.counts["denied"].expected, "each denial answered one held request");
    assert_eq!(r.audit.paid_atomic, r.audit.payee_delta_atomic, "paid receipts vs the chain");
    assert!(r.audit.paid_atomic > 0, "something was paid");
    let (b, a) = (r.baseline.expect("a reading before traffic"), r.after.expect("a reading after traffic"));
    assert!(a.fds <= b.fds + cfg.fd_slack, "fds {} before traffic, {} after it stopped", b.fds, a.fds);
    assert!(r.problems.is_empty(), "problems: {:#?}", r.problems);
}

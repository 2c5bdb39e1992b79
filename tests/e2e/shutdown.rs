//! e2e: SIGTERM while paid requests are in flight — they complete (or are denied with a receipt),
//! the daemon exits 0 promptly, and the ledger is intact and matches the answers.

use std::time::{Duration, Instant};

use purser_testkit::{agent, facilitator_count, usdc_balance, Mode, Peers, Purser};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_paid_requests() {
    let peers = Peers::start(Mode::Real);
    let mut p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let c = agent();

    // Two /slow requests ($0.001 each, answered 2 s after the paid retry arrives).
    let mut inflight = Vec::new();
    for base in [&peers.v2, &peers.v1] {
        let rb = c.get(p.gateway_url(&format!("{base}/slow"))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json");
        inflight.push(tokio::spawn(purser_testkit::agent::try_send(rb)));
    }
    // Wait until both paid retries reached the servers (the facilitator verified them).
    let deadline = Instant::now() + Duration::from_secs(30);
    while facilitator_count(&peers.facilitator, "verify").await < 2 {
        assert!(Instant::now() < deadline, "the paid /slow retries never reached the facilitator");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inflight.iter().all(|t| !t.is_finished()), "/slow answered before SIGTERM; the test proves nothing");

    let t0 = Instant::now();
    p.sigterm();
    let mut answers = Vec::new();
    for t in inflight {
        answers.push(tokio::time::timeout(Duration::from_secs(30), t).await.expect("in-flight request answered").unwrap());
    }
    let status = tokio::task::block_in_place(|| p.wait_exit(Duration::from_secs(15)));
    let took = t0.elapsed();
    let status = status.unwrap_or_else(|| panic!("purser still running {took:?} after SIGTERM"));
    assert!(status.success(), "purser exited with {status} after SIGTERM; stderr:\n{}", p.serve_log_tail(30));
    assert!(took < Duration::from_secs(12), "exit took {took:?}");
    for a in &answers {
        match a {
            Ok(r) => println!("in-flight answer: HTTP {} receipt {:?} code {:?}", r.status, r.receipt(), r.code()),
            Err(e) => println!("in-flight request failed: {e}"),
        }
    }
    println!("exit {status} {took:?} after SIGTERM");

    let mut with_receipt = Vec::new();
    let mut paid = 0u128;
    for a in &answers {
        let r = a.as_ref().unwrap_or_else(|e| panic!("an in-flight request was cut off without an answer: {e}"));
        let id = r.receipt().unwrap_or_else(|| panic!("in-flight answer without Purser-Receipt: {r}"));
        if r.status == 200 {
            assert_eq!(r.json()["route"], "slow", "{r}");
            paid += 1000;
        } else {
            assert_eq!(r.status, 403, "an in-flight request must complete or be denied: {r}");
        }
        with_receipt.push(id);
    }

    let (ok, text) = {
        let out = p.cli(&["receipts", "verify"]);
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    assert!(ok, "receipts verify after shutdown: {text}");
    let receipts = p.receipts();
    assert_eq!(receipts.len(), answers.len(), "one receipt per answer: {receipts:#?}");
    for id in &with_receipt {
        let rec = p.receipt(id);
        let r = answers.iter().flatten().find(|a| a.receipt().as_deref() == Some(id.as_str())).unwrap();
        let want = if r.status == 200 { "paid" } else { "refused" };
        assert_eq!(rec["outcome"], want, "receipt {rec} for {r}");
    }
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - before, paid, "payee delta matches the 200s");
    let g = p.grant_show(&gid);
    assert_eq!(g["spent_atomic"], paid.to_string(), "{g}");
    assert_eq!(g["reserved_atomic"], "0", "{g}");
}

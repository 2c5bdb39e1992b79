//! e2e: settlement fails (facilitator `failsettle`): the agent gets the upstream's answer with a
//! receipt, exactly one signature is sent (no retry), and the reservation is kept.

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

async fn one_failed_settlement(v2: bool) {
    let peers = Peers::start(Mode::FailSettle);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let base = if v2 { &peers.v2 } else { &peers.v1 };
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    let r = send(agent().get(p.gateway_url(&format!("{base}/cheap"))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
    assert_eq!(r.status, 402, "the upstream's answer is passed back: {r}");
    if v2 {
        assert!(r.header("payment-response").is_some(), "v2 failure answer keeps PAYMENT-RESPONSE: {r}");
    } else {
        assert_eq!(r.json()["error"], "unexpected_settle_error", "v1 failure body passed through: {r}");
    }
    let rec = p.receipt(&r.receipt_id());
    assert_eq!(rec["outcome"], "failed", "{rec}");
    assert_eq!(rec["reason"], "settlement_failed", "{rec}");
    assert_eq!(rec["amount_atomic"], "1000", "{rec}");
    assert_eq!(rec["upstream_status"], 402, "{rec}");

    let stats = facilitator_stats(&peers.facilitator).await;
    assert_eq!(stats["settle"], 1, "exactly one settlement attempt (one signature, no retry): {stats}");
    assert_eq!(stats["settleOk"], 0, "{stats}");
    assert_eq!(p.receipts().len(), 1, "{:#?}", p.receipts());

    let g = p.grant_show(&gid);
    assert_eq!(g["reserved_atomic"], "1000", "the reservation is kept: {g}");
    assert_eq!(g["spent_atomic"], "0", "{g}");
    assert_eq!(g["remaining_atomic"], "999000", "{g}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before, "no money moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_settlement_v2() {
    one_failed_settlement(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_settlement_v1() {
    one_failed_settlement(false).await;
}

//! e2e (issue 7): receipts reconciled with the peers' anvil chain. A settled payment is
//! confirmed by its Transfer log; a server that names an unrelated transaction is flagged
//! (`mismatch`); payments whose settlement was unknown are decided by `authorizationState`:
//! used (we submit the captured authorization ourselves) → the reservation is spent; unused →
//! it stays reserved while the authorization could still be submitted, and is released once the
//! chain's clock has passed its validBefore.

use purser_testkit::hostile::RawResponse;
use purser_testkit::onchain::{settlement_header, submit_authorization, time_travel, unrelated_tx, SettlingPaywall};
use purser_testkit::{agent, send, usdc_balance, Mode, Peers, Purser, Reply};
use serde_json::Value;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

async fn pay(p: &Purser, token: &str, url: &str) -> Reply {
    send(agent().get(p.gateway_url(url)).header("Proxy-Authorization", format!("Bearer {token}"))).await
}

/// Runs `wallet reconcile` (the daemon reconciles in the background too) until `pred` holds
/// for the receipt's reconciliation as `receipts show` prints it.
fn reconciled(p: &Purser, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = p.cli_ok(&["wallet", "reconcile"]);
        let rec = p.cli_json(&["receipts", "show", id]);
        if pred(&rec["reconciliation"]) {
            return rec;
        }
        assert!(Instant::now() < deadline, "receipt {id} never reconciled as expected: {}\nlast reconcile output:\n{out}", rec["reconciliation"]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn state_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |r: &Value| r["state"] == s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settled_payment_is_confirmed_and_a_forged_tx_is_flagged() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
    let (_, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.05"]);

    let real = pay(&p, &token, &format!("{}/cheap", peers.v2)).await;
    assert_eq!(real.status, 200, "{real}");
    let real_id = real.receipt_id();

    // A server that answers "paid" naming a transaction that moved no USDC.
    let bogus_tx = unrelated_tx(&peers.rpc, &peers.accounts[4].address, &peers.accounts[5].address).await;
    let paywall = SettlingPaywall::start("1000").await;
    paywall.on_paid(RawResponse::new(200, &[("content-type", "application/json"), ("x-payment-response", &settlement_header(&bogus_tx, &peers.payer_address))], &b"{}"[..]));
    let forged = pay(&p, &token, &format!("{}/forged", paywall.url)).await;
    assert_eq!(forged.status, 200, "{forged}");
    let forged_id = forged.receipt_id();
    assert_eq!(p.receipt(&forged_id)["tx"], bogus_tx.as_str());

    let rec = reconciled(&p, &real_id, state_is("confirmed"));
    assert!(rec["reconciliation"]["detail"].as_str().unwrap().contains("Transfer of 1000"), "{rec}");
    let rec = reconciled(&p, &forged_id, state_is("mismatch"));
    assert!(rec["reconciliation"]["detail"].as_str().unwrap().contains("no Transfer of 1000"), "{rec}");
    assert_eq!(rec["outcome"], "paid", "the receipt itself is unchanged (immutable): {rec}");

    // The hash chain is still intact: reconciliation lives beside the receipts, not in them.
    let verify = p.cli_json(&["receipts", "verify", "--json"]);
    assert_eq!(verify["ok"], true, "{verify}");
    // Re-running finds nothing new to check.
    let again = p.cli_json(&["wallet", "reconcile", "--json"]);
    assert_eq!(again["checked"].as_array().unwrap().len(), 0, "{again}");
    // ...and lists the flagged receipt (only that one).
    let flagged: Vec<&Value> = again["flagged_receipts"].as_array().unwrap().iter().collect();
    assert_eq!(flagged.len(), 1, "{again}");
    assert_eq!((flagged[0]["receipt_id"].as_str(), flagged[0]["state"].as_str()), (Some(forged_id.as_str()), Some("mismatch")), "{again}");
    let text = p.cli_ok(&["wallet", "reconcile"]);
    assert!(text.contains(&format!("flagged: {forged_id} mismatch")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_settlements_are_decided_by_nonce() {
    let peers = Peers::start(Mode::FailSettle);
    let p = Purser::start(BIN, &peers);
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
    let (gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.05"]);

    // A: the facilitator refuses to settle; the authorization is never used.
    let a = pay(&p, &token, &format!("{}/cheap", peers.v2)).await;
    assert_eq!(p.receipt(&a.receipt_id())["reason"], "settlement_failed");
    // B: a server that keeps the payment and answers without a settlement; we submit it ourselves.
    let paywall = SettlingPaywall::start("1000").await;
    let b = pay(&p, &token, &format!("{}/kept", paywall.url)).await;
    assert_eq!(p.receipt(&b.receipt_id())["reason"], "settlement_failed");
    let g = p.grant_show(&gid);
    assert_eq!(g["reserved_atomic"], "2000", "both kept reserved: {g}");

    // Neither is used yet and both could still be: they stay pending and reserved.
    let out = p.cli_json(&["wallet", "reconcile", "--json"]);
    eprintln!("reconcile pass: {} receipts checked, {} ms, {} us per receipt", out["checked"].as_array().map_or(0, Vec::len), out["elapsed_ms"], out["per_receipt_us"]);
    let rec = p.cli_json(&["receipts", "show", &a.receipt_id()]);
    assert_eq!(rec["reconciliation"]["state"], "pending", "{rec}\n{out}");
    assert_eq!(p.grant_show(&gid)["reserved_atomic"], "2000");

    // B's authorization is used on chain → its reservation is spent.
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let payments = paywall.payments();
    assert_eq!(payments.len(), 1, "one signature");
    submit_authorization(&peers.rpc, &payments[0], &peers.accounts[3].address).await;
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, payee_before + 1000);
    let rec = reconciled(&p, &b.receipt_id(), state_is("confirmed"));
    assert!(rec["reconciliation"]["detail"].as_str().unwrap().contains("settled"), "{rec}");
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("1000"), Some("1000")), "{g}");
    assert_eq!(p.cli_json(&["receipts", "show", &a.receipt_id()])["reconciliation"]["state"], "pending", "A is still open");

    // The chain's clock passes A's validBefore (at most 300 s ahead) → unused forever → released.
    time_travel(&peers.rpc, 400).await;
    let rec = reconciled(&p, &a.receipt_id(), state_is("released"));
    assert!(rec["reconciliation"]["detail"].as_str().unwrap().contains("expired unused"), "{rec}");
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str(), g["remaining_atomic"].as_str()), (Some("1000"), Some("0"), Some("999000")), "{g}");
}

//! e2e: an agent pays the reference v2 and v1 paywalls through the gateway (auto tier); the
//! money moves on chain exactly as the receipts say.

use purser_testkit::{agent, send, tx_transfer, usdc_balance, Mode, Peers, Purser, Reply};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

fn assert_paid_receipt(r: &Value, amount: &str, reply: &Reply) {
    assert_eq!(r["outcome"], "paid", "receipt {r}\nfor {reply}");
    assert_eq!(r["amount_atomic"], amount, "receipt {r}");
    assert_eq!(r["decided_by"], "auto", "receipt {r}");
    assert!(r["tx"].as_str().is_some_and(|t| t.starts_with("0x") && t.len() == 66), "receipt tx: {r}");
    assert!(r["hash"].as_str().is_some_and(|h| !h.is_empty()), "receipt hash: {r}");
    assert!(r["asset"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(purser_testkit::USDC_BASE_SEPOLIA)), "receipt asset: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pays_cheap_on_v2_and_v1() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let g = p.grant_create(&["--label", "pay", "--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    assert_eq!(g["budget_atomic"], "1000000", "grant {g}");
    assert_eq!(g["spent_atomic"], "0", "grant {g}");
    let (gid, token) = (g["id"].as_str().unwrap(), g["token"].as_str().unwrap());
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let payer_before = usdc_balance(&peers.rpc, &peers.payer_address).await;
    let c = agent();

    // v2 with Proxy-Authorization.
    let v2 = send(c.get(p.gateway_url(&format!("{}/cheap?q=1", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
    assert_eq!(v2.status, 200, "{v2}");
    assert_eq!(v2.json()["route"], "cheap", "{v2}");
    assert_eq!(v2.json()["x402"], 2, "{v2}");
    let r2 = p.receipt(&v2.receipt_id());
    assert_paid_receipt(&r2, "1000", &v2);
    assert_eq!(r2["grant_id"], gid, "{r2}");
    assert_eq!(r2["method"], "GET", "{r2}");
    assert!(r2["url"].as_str().is_some_and(|u| u.contains("/cheap")), "{r2}");

    // v1 with the X-Purser-Grant header variant.
    let v1 = send(c.get(p.gateway_url(&format!("{}/cheap", peers.v1))).header("X-Purser-Grant", token).header("Accept", "application/json")).await;
    assert_eq!(v1.status, 200, "{v1}");
    assert_eq!(v1.json()["route"], "cheap", "{v1}");
    assert_eq!(v1.json()["x402"], 1, "{v1}");
    let r1 = p.receipt(&v1.receipt_id());
    assert_paid_receipt(&r1, "1000", &v1);
    assert_ne!(r1["id"], r2["id"]);

    // The chain agrees with the receipts, to the unit.
    let after = usdc_balance(&peers.rpc, &peers.pay_to).await;
    assert_eq!(after - before, 2000, "payee balance delta");
    let payer_after = usdc_balance(&peers.rpc, &peers.payer_address).await;
    assert_eq!(payer_before - payer_after, 2000, "payer balance delta");
    for r in [&r2, &r1] {
        let (from, to, value) = tx_transfer(&peers.rpc, r["tx"].as_str().unwrap()).await;
        assert_eq!(from, peers.payer_address.to_ascii_lowercase(), "transfer of {r}");
        assert_eq!(to, peers.pay_to.to_ascii_lowercase(), "transfer of {r}");
        assert_eq!(value, 1000, "transfer of {r}");
        assert!(r["pay_to"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&peers.pay_to)), "{r}");
    }

    let g = p.grant_show(gid);
    assert_eq!(g["spent_atomic"], "2000", "grant {g}");
    assert_eq!(g["reserved_atomic"], "0", "grant {g}");
    assert_eq!(g["remaining_atomic"], "998000", "grant {g}");
    let listed: Vec<Value> = p.receipts();
    assert_eq!(listed.len(), 2, "exactly two receipts: {listed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_body_and_free_passthrough() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let g = p.grant_create(&["--budget", "0.50", "--per-request-max", "0.10", "--auto-below", "0.05", "--ask-below", "0.10"]);
    let (gid, token) = (g["id"].as_str().unwrap(), g["token"].as_str().unwrap());
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let c = agent();

    // A non-402 answer passes through untouched and is not governed.
    let free = send(c.get(p.gateway_url(&format!("{}/free", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
    assert_eq!(free.status, 200, "{free}");
    assert_eq!(free.json(), json!({"route": "free", "ok": true, "x402": 2}), "{free}");
    assert_eq!(free.receipt(), None, "a free answer carries no receipt: {free}");
    assert!(p.receipts().is_empty(), "no receipt for a free route: {:#?}", p.receipts());

    // POST /echo ($0.01) on both generations: the JSON body reaches the server and comes back.
    for (base, gen) in [(&peers.v2, 2), (&peers.v1, 1)] {
        let sent = json!({"task": "e2e", "n": gen, "nested": {"list": [1, 2, 3], "s": "h\u{e9}llo"}});
        let r = send(c.post(p.gateway_url(&format!("{base}/echo"))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json").json(&sent)).await;
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(r.json()["route"], "echo", "{r}");
        assert_eq!(r.json()["x402"], gen, "{r}");
        assert_eq!(r.json()["echo"], sent, "{r}");
        let rec = p.receipt(&r.receipt_id());
        assert_paid_receipt(&rec, "10000", &r);
        assert_eq!(rec["method"], "POST", "{rec}");
        let (_, to, value) = tx_transfer(&peers.rpc, rec["tx"].as_str().unwrap()).await;
        assert_eq!((to.as_str(), value), (peers.pay_to.to_ascii_lowercase().as_str(), 10000), "{rec}");
    }

    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - before, 20000, "payee delta");
    let g = p.grant_show(gid);
    assert_eq!(g["spent_atomic"], "20000", "grant {g}");
    assert_eq!(g["remaining_atomic"], "480000", "grant {g}");
    assert_eq!(p.receipts().len(), 2, "{:#?}", p.receipts());
}

//! e2e: 200 concurrent paid requests against a budget that covers exactly 100 — the budget is
//! never overspent, the chain, the receipts and the grant agree to the unit.

use std::collections::BTreeMap;

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser, Reply};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_purser");
const N: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_holds_under_200_concurrent_requests() {
    let peers = Peers::start(Mode::Real);
    // This test matches every answer's receipt id one by one: no refusal is folded into a
    // per-minute summary (`PURSER_RECEIPTS_PER_MINUTE`; folding has its own test in integrity).
    let opts = purser_testkit::ServeOptions { env: vec![("PURSER_RECEIPTS_PER_MINUTE".into(), "1000000".into())], ..Default::default() };
    let p = Purser::start_with(BIN, &peers.payer_key, opts);
    let (gid, token) = p.grant(&["--label", "swarm", "--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.02", "--ask-below", "1.00"]);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let url = p.gateway_url(&format!("{}/echo", peers.v2));
    let c = agent();

    let mut tasks = Vec::new();
    for i in 0..N {
        let (c, url, token) = (c.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"i": i});
            let r = send(c.post(url).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json").json(&body)).await;
            (i, r)
        }));
    }
    let mut replies: Vec<(usize, Reply)> = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("agent task"));
    }

    let mut by_status: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for (i, r) in &replies {
        *by_status.entry((r.status, r.code().unwrap_or_default())).or_default() += 1;
        match r.status {
            200 => assert_eq!(r.json()["echo"], json!({"i": i}), "answer for request {i} carries another body: {r}"),
            403 => assert_eq!(r.code().as_deref(), Some("over_budget"), "{r}"),
            _ => {}
        }
        assert!(r.receipt().is_some(), "every governed answer has a receipt: {r}");
    }
    println!("answers by (status, code): {by_status:?}");
    let oks = replies.iter().filter(|(_, r)| r.status == 200).count();
    let over = replies.iter().filter(|(_, r)| r.status == 403 && r.code().as_deref() == Some("over_budget")).count();
    let example = replies.iter().find(|(_, r)| r.status != 200 && r.code().as_deref() != Some("over_budget"));
    assert_eq!((oks, over), (100, 100), "want exactly 100 paid and 100 over_budget; got {by_status:?}; an odd one: {:?}", example.map(|(_, r)| r.to_string()));

    let delta = usdc_balance(&peers.rpc, &peers.pay_to).await - before;
    assert_eq!(delta, 1_000_000, "payee on-chain delta");

    let receipts = p.receipts();
    let paid: Vec<_> = receipts.iter().filter(|r| r["outcome"] == "paid").collect();
    let refused: Vec<_> = receipts.iter().filter(|r| r["outcome"] == "refused" && r["reason"] == "over_budget").collect();
    assert_eq!(receipts.len(), N, "one receipt per request");
    assert_eq!((paid.len(), refused.len()), (100, 100), "receipt outcomes");
    let paid_sum: u128 = paid.iter().map(|r| r["amount_atomic"].as_str().unwrap().parse::<u128>().unwrap()).sum();
    assert_eq!(paid_sum, delta, "sum of paid receipts equals the chain delta");
    let mut txs: Vec<&str> = paid.iter().map(|r| r["tx"].as_str().expect("paid receipt has tx")).collect();
    txs.sort();
    txs.dedup();
    assert_eq!(txs.len(), 100, "100 distinct settlement txs");
    // Receipt ids in the answers are exactly the ledger's.
    let mut ids_answers: Vec<String> = replies.iter().filter_map(|(_, r)| r.receipt()).collect();
    let mut ids_ledger: Vec<String> = receipts.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    ids_answers.sort();
    ids_ledger.sort();
    assert_eq!(ids_answers, ids_ledger, "answers' Purser-Receipt ids vs ledger ids");

    let g = p.grant_show(&gid);
    assert_eq!(g["spent_atomic"], "1000000", "{g}");
    assert_eq!(g["reserved_atomic"], "0", "{g}");
    assert_eq!(g["remaining_atomic"], "0", "{g}");
    let stats = facilitator_stats(&peers.facilitator).await;
    assert_eq!(stats["settleOk"], 100, "facilitator stats {stats}");
    assert_eq!(stats["settle"], 100, "no extra settlement attempts: {stats}");
    let v = p.cli(&["receipts", "verify"]);
    assert!(v.status.success(), "receipts verify after the swarm: {}", String::from_utf8_lossy(&v.stdout));
}

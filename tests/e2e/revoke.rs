//! e2e: revoking a grant denies the requests held for approval at once (not at the approval
//! timeout), refuses later requests, and pays nothing.

use std::time::{Duration, Instant};

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

fn spawn_get(c: &reqwest::Client, url: String, token: &str) -> tokio::task::JoinHandle<(Reply, Instant)> {
    let (c, token) = (c.clone(), token.to_string());
    tokio::spawn(async move {
        let r = send(c.get(url).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
        (r, Instant::now())
    })
}

fn assert_revoked(p: &Purser, r: &Reply) {
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.code().as_deref(), Some("revoked"), "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!(rec["outcome"], "refused", "{rec}");
    assert_eq!(rec["reason"], "revoked", "{rec}");
    assert!(rec["tx"].is_null(), "{rec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_denies_held_and_later_requests() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "60s"]);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let c = agent();

    let held: Vec<_> = (0..3).map(|i| spawn_get(&c, p.gateway_url(&format!("{}/mid?n={i}", peers.v2)), &token)).collect();
    let list = p.wait_approvals(3, Duration::from_secs(20), |a| a["grant_id"] == gid.as_str());
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list.iter().all(|a| a["amount_atomic"] == "50000"), "{list:?}");

    let t0 = Instant::now();
    p.cli_ok(&["grant", "revoke", &gid]);
    for h in held {
        let (r, at) = tokio::time::timeout(Duration::from_secs(20), h).await.expect("held request answered").unwrap();
        let after = at.saturating_duration_since(t0);
        assert!(after < Duration::from_secs(5), "held request answered {after:?} after revoke (approval timeout is 60 s)");
        assert_revoked(&p, &r);
    }
    assert!(p.approvals().is_empty(), "approvals left after revoke: {:?}", p.approvals());
    let g = p.grant_show(&gid);
    assert_eq!(g["state"], "revoked", "{g}");
    assert_eq!(g["spent_atomic"], "0", "{g}");
    assert_eq!(g["reserved_atomic"], "0", "{g}");

    // A later request, even one in the auto tier, is refused.
    let (r, _) = spawn_get(&c, p.gateway_url(&format!("{}/cheap", peers.v2)), &token).await.unwrap();
    assert_revoked(&p, &r);

    assert_eq!(p.receipts().len(), 4, "{:#?}", p.receipts());
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before, "payee balance unchanged");
    let stats = facilitator_stats(&peers.facilitator).await;
    assert_eq!(stats["settle"], 0, "nothing settled: {stats}");
}

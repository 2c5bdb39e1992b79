//! e2e: the approval tiers — auto, held-then-approved, held-then-denied, held-then-timed-out,
//! above the ask tier — against the reference v2 paywall, each with its receipt.

use std::time::{Duration, Instant};

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

async fn get(p: &Purser, token: &str, url: &str) -> Reply {
    send(agent().get(p.gateway_url(url)).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await
}

fn spawn_get(p: &Purser, token: &str, url: &str) -> tokio::task::JoinHandle<(Reply, Duration)> {
    let (gw, token) = (p.gateway_url(url), token.to_string());
    tokio::spawn(async move {
        let t0 = Instant::now();
        let r = send(agent().get(gw).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
        (r, t0.elapsed())
    })
}

fn assert_refused(p: &Purser, r: &Reply, code: &str) -> serde_json::Value {
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.code().as_deref(), Some(code), "{r}");
    let id = r.receipt_id();
    assert_eq!(r.json()["receipt"].as_str(), Some(id.as_str()), "403 body names the receipt: {r}");
    let rec = p.receipt(&id);
    assert_eq!(rec["outcome"], "refused", "{rec}");
    assert_eq!(rec["reason"], code, "{rec}");
    assert!(rec["tx"].is_null(), "a refusal has no tx: {rec}");
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_then_ask_approved_by_user() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.01", "--ask-below", "0.50"]);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    // Auto tier: $0.001 < $0.01 is paid at once, with no approval.
    let auto = get(&p, &token, &format!("{}/cheap", peers.v2)).await;
    assert_eq!(auto.status, 200, "{auto}");
    let rec = p.receipt(&auto.receipt_id());
    assert_eq!((rec["outcome"].as_str(), rec["decided_by"].as_str()), (Some("paid"), Some("auto")), "{rec}");
    assert!(p.approvals().is_empty(), "auto tier left an approval: {:?}", p.approvals());

    // Ask tier: $0.05 is held until approved over the control API.
    let held = spawn_get(&p, &token, &format!("{}/mid", peers.v2));
    let list = p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str());
    let a = &list[0];
    assert_eq!(a["amount_atomic"], "50000", "approval {a}");
    assert_eq!(a["method"], "GET", "approval {a}");
    assert!(a["url"].as_str().is_some_and(|u| u.contains("/mid")), "approval {a}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "the ask-tier request must wait for the user");
    assert_eq!(facilitator_stats(&peers.facilitator).await["settle"], 1, "nothing settled while held");
    p.cli_ok(&["approvals", "approve", a["id"].as_str().unwrap()]);
    let (r, _) = tokio::time::timeout(Duration::from_secs(60), held).await.expect("approved request answered").unwrap();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.json()["route"], "mid", "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!(rec["outcome"], "paid", "{rec}");
    assert_eq!(rec["decided_by"], "user", "{rec}");
    assert_eq!(rec["amount_atomic"], "50000", "{rec}");
    assert!(p.approvals().is_empty(), "approval still pending: {:?}", p.approvals());

    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - before, 51000, "payee delta");
    let g = p.grant_show(&gid);
    assert_eq!(g["spent_atomic"], "51000", "{g}");
    assert_eq!(g["reserved_atomic"], "0", "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denied_timed_out_and_above_ask_tier() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    // Denied by the user.
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.01", "--ask-below", "0.50"]);
    let held = spawn_get(&p, &token, &format!("{}/mid", peers.v2));
    let list = p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str());
    assert_eq!(list[0]["amount_atomic"], "50000", "{}", list[0]);
    p.cli_ok(&["approvals", "deny", list[0]["id"].as_str().unwrap()]);
    let (r, _) = tokio::time::timeout(Duration::from_secs(30), held).await.expect("denied request answered").unwrap();
    let rec = assert_refused(&p, &r, "user_denied");
    assert_eq!(rec["decided_by"], "user", "{rec}");
    assert_eq!(rec["amount_atomic"], "50000", "{rec}");
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("0"), Some("0")), "{g}");

    // Timed out: nobody answers within --approval-timeout 2s.
    let (gid, token) = p.grant(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "2s"]);
    let held = spawn_get(&p, &token, &format!("{}/mid", peers.v2));
    p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str());
    let (r, took) = tokio::time::timeout(Duration::from_secs(30), held).await.expect("timed-out request answered").unwrap();
    let rec = assert_refused(&p, &r, "approval_timed_out");
    assert_eq!(rec["decided_by"], "timeout", "{rec}");
    assert!(took >= Duration::from_millis(1900) && took <= Duration::from_secs(8), "answered after {took:?}, want ~2 s");
    assert!(p.approvals().iter().all(|a| a["grant_id"] != gid.as_str()), "timed-out approval still listed");

    // Above the ask tier: $2.00 >= ask-below $1.00 is refused without asking.
    let g = p.grant_create(&["--budget", "10.00", "--per-request-max", "5.00", "--auto-below", "0.01", "--ask-below", "1.00"]);
    let token = g["token"].as_str().unwrap().to_string();
    let r = get(&p, &token, &format!("{}/pricey", peers.v2)).await;
    let rec = assert_refused(&p, &r, "above_ask_tier");
    assert_eq!(rec["amount_atomic"], "2000000", "{rec}");
    assert!(p.approvals().is_empty(), "above-ask request was queued: {:?}", p.approvals());

    assert_eq!(p.receipts().len(), 3, "{:#?}", p.receipts());
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before, "nothing paid");
    assert_eq!(facilitator_stats(&peers.facilitator).await["settle"], 0, "nothing settled");
}

//! e2e (issue 7): the wallet's balance is read over JSON-RPC from the peers' anvil and matches
//! `balanceOf` read independently; a payment above the known balance is refused before signing
//! (`insufficient_funds`, the facilitator saw nothing); grants that could spend more than the
//! wallet holds are warned about; funding data; network RPC settings; the grant networks rule.

use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Mode, Peers, Purser};
use serde_json::Value;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_purser");
/// Private key 1 (a fresh wallet, funded with 500 atomic USDC = $0.0005 by the peers).
const POOR_KEY: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";
const POOR_ADDR: &str = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf";

fn sepolia(v: &Value) -> Value {
    v["networks"].as_array().unwrap().iter().find(|n| n["network"] == "eip155:84532").cloned().unwrap_or_else(|| panic!("no base-sepolia in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_matches_chain_and_payments_above_it_are_refused() {
    let peers = Peers::start_with(Mode::Real, &[(POOR_ADDR, 500)]);
    let p = Purser::start_with_key(BIN, POOR_KEY);
    assert!(p.address.eq_ignore_ascii_case(POOR_ADDR), "{}", p.address);

    // Networks: Base Sepolia is read through anvil from now on (a bad URL is a named error).
    let bad = p.cli(&["network", "set-rpc", "base-sepolia", "gopher://x"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("invalid_rpc_url"), "{bad:?}");
    let set = p.cli_json(&["network", "set-rpc", "base-sepolia", &peers.rpc, "--json"]);
    assert_eq!(set["rpc_overridden"], true, "{set}");
    let list = p.cli_json(&["network", "list", "--json"]);
    assert!(list.as_array().unwrap().iter().any(|n| n["caip2"] == "eip155:84532" && n["rpc"].as_str().unwrap().starts_with(&peers.rpc)), "{list}");

    // Never read (Base mainnet is out of reach here): unknown, and said so.
    let before = p.cli_json(&["wallet", "balance", "--json", "--network", "base"]);
    let before = &before["networks"][0];
    assert!(before["balance_atomic"].is_null(), "{before}");
    assert!(before["warning"].as_str().unwrap().contains("unknown"), "{before}");

    // Read from the chain: exactly balanceOf.
    let t = Instant::now();
    let f = p.cli_json(&["wallet", "balance", "--json", "--refresh", "--network", "base-sepolia"]);
    let wall = t.elapsed();
    eprintln!("wallet balance --refresh against anvil: {} ms (wall, whole CLI process)", wall.as_millis());
    let n = sepolia(&f);
    let on_chain = usdc_balance(&peers.rpc, POOR_ADDR).await;
    assert_eq!(on_chain, 500);
    assert_eq!(n["balance_atomic"], on_chain.to_string(), "{n}");
    assert_eq!(n["balance"], "0.0005", "{n}");
    assert!(n["read_at"].is_string() && n["refresh_error"].is_null(), "{n}");
    assert_eq!(n["over_allocated"], false, "no grant yet: {n}");

    // A grant created without --network records the testnet, and is over-allocated.
    let g = p.grant_create(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    assert_eq!(g["networks"], serde_json::json!(["eip155:84532"]), "{g}");
    let (gid, token) = (g["id"].as_str().unwrap().to_string(), g["token"].as_str().unwrap().to_string());
    let n = sepolia(&p.cli_json(&["wallet", "balance", "--json"]));
    assert_eq!(n["allocated_atomic"], "1000000", "{n}");
    assert_eq!(n["over_allocated"], true, "{n}");
    assert!(n["warning"].as_str().unwrap().contains("could spend 1 USDC"), "{n}");
    let text = p.cli_ok(&["wallet", "balance"]);
    assert!(text.contains("0.0005 USDC") && text.contains("warning"), "{text}");

    // $0.001 > $0.0005: refused before signing, with a receipt; nothing reached the facilitator.
    let r = send(agent().get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.json()["code"], "insufficient_funds", "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["outcome"].as_str(), rec["reason"].as_str()), (Some("refused"), Some("insufficient_funds")), "{rec}");
    assert!(rec["payload_hash"].is_null() && rec["authorization_nonce"].is_null(), "nothing was signed: {rec}");
    let stats = facilitator_stats(&peers.facilitator).await;
    assert_eq!((stats["verify"].as_u64(), stats["settle"].as_u64()), (Some(0), Some(0)), "{stats}");
    let g = p.grant_show(&gid);
    assert_eq!((g["reserved_atomic"].as_str(), g["spent_atomic"].as_str()), (Some("0"), Some("0")), "reservation released: {g}");
    assert_eq!(usdc_balance(&peers.rpc, POOR_ADDR).await, 500, "no money moved");

    // Funding: address, asset, network and an EIP-681 URI.
    let fund = sepolia(&p.cli_json(&["wallet", "fund", "--json"]));
    assert_eq!(fund["fund_uri"], format!("ethereum:0x036CbD53842c5426634e7929541eC2318f3dCF7e@84532/transfer?address={POOR_ADDR}"), "{fund}");
    assert!(fund["instructions"].as_str().unwrap().contains(POOR_ADDR), "{fund}");
    let text = p.cli_ok(&["wallet", "fund"]);
    assert!(text.contains("ethereum:0x036CbD53842c5426634e7929541eC2318f3dCF7e@84532/transfer"), "{text}");

    // An RPC serving another chain is never trusted: anvil (84532) given as Base (8453).
    p.cli_ok(&["network", "set-rpc", "base", &peers.rpc]);
    let f = p.cli_json(&["wallet", "balance", "--json", "--refresh", "--network", "base"]);
    let base = &f["networks"][0];
    assert_eq!(base["refresh_error"]["code"], "rpc_chain_mismatch", "{f}");
    assert!(base["balance_atomic"].is_null(), "{f}");

    // Testnet and mainnet are never mixed silently.
    let mixed = p.cli(&["grant", "create", "--label", "m", "--budget", "1", "--expires", "1h", "--host", "x.com", "--network", "base", "--network", "base-sepolia"]);
    assert!(!mixed.status.success() && String::from_utf8_lossy(&mixed.stderr).contains("mixed_networks"), "{mixed:?}");
    let ok = p.grant_create(&["--label", "m2", "--network", "base", "--network", "base-sepolia", "--allow-mixed"]);
    assert_eq!(ok["networks"], serde_json::json!(["eip155:8453", "eip155:84532"]), "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_is_refreshed_after_a_settlement() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
    let (_, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.05"]);
    let n = sepolia(&p.cli_json(&["wallet", "balance", "--json", "--refresh"]));
    assert_eq!(n["balance_atomic"], usdc_balance(&peers.rpc, &peers.payer_address).await.to_string(), "{n}");
    let r = send(agent().get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(r.status, 200, "{r}");
    let want = usdc_balance(&peers.rpc, &peers.payer_address).await.to_string();
    // The daemon re-reads the balance in the background after the settlement (no --refresh here).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = sepolia(&p.cli_json(&["wallet", "balance", "--json"]));
        if n["balance_atomic"] == want.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "cached balance {} never became {want}", n["balance_atomic"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! Chain and facilitator helpers over plain JSON-RPC / HTTP (reqwest): USDC balances, the USDC
//! Transfer a settlement tx emitted, facilitator `/stats`.

use serde_json::{json, Value};

use crate::USDC_BASE_SEPOLIA;

const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// One JSON-RPC call; panics on an error answer.
pub async fn rpc_call(rpc: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp = crate::agent().post(rpc).json(&body).send().await.unwrap_or_else(|e| panic!("JSON-RPC {method} to {rpc}: {e}"));
    let v: Value = resp.json().await.unwrap_or_else(|e| panic!("JSON-RPC {method}: bad JSON: {e}"));
    if v.get("error").is_some_and(|e| !e.is_null()) {
        panic!("JSON-RPC {method} {params}: error {}", v["error"]);
    }
    v["result"].clone()
}

fn hex_u128(s: &str) -> u128 {
    let h = s.trim_start_matches("0x");
    let h = h.trim_start_matches('0');
    if h.is_empty() {
        return 0;
    }
    u128::from_str_radix(h, 16).unwrap_or_else(|e| panic!("not a u128 hex {s:?}: {e}"))
}

fn topic_addr(t: &str) -> String {
    let h = t.trim_start_matches("0x");
    format!("0x{}", &h[h.len() - 40..]).to_ascii_lowercase()
}

/// USDC (at the Base Sepolia address) balance of `addr`, atomic units.
pub async fn usdc_balance(rpc: &str, addr: &str) -> u128 {
    let a = addr.trim_start_matches("0x").to_ascii_lowercase();
    let data = format!("0x70a08231{a:0>64}");
    let r = rpc_call(rpc, "eth_call", json!([{"to": USDC_BASE_SEPOLIA, "data": data}, "latest"])).await;
    hex_u128(r.as_str().unwrap_or_else(|| panic!("eth_call balanceOf returned {r}")))
}

/// The single USDC `Transfer(from, to, value)` of a mined tx; addresses lowercase 0x-hex.
/// Panics when the tx has no receipt, failed, or has not exactly one USDC Transfer log.
pub async fn tx_transfer(rpc: &str, tx_hash: &str) -> (String, String, u128) {
    let r = rpc_call(rpc, "eth_getTransactionReceipt", json!([tx_hash])).await;
    assert!(!r.is_null(), "no receipt on chain for tx {tx_hash}");
    assert_eq!(r["status"].as_str(), Some("0x1"), "tx {tx_hash} reverted: {r}");
    let logs: Vec<&Value> = r["logs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["address"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(USDC_BASE_SEPOLIA)) && l["topics"][0].as_str().is_some_and(|t| t.eq_ignore_ascii_case(TRANSFER_TOPIC)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(logs.len(), 1, "tx {tx_hash}: want exactly one USDC Transfer log, receipt: {r}");
    let l = logs[0];
    (topic_addr(l["topics"][1].as_str().unwrap()), topic_addr(l["topics"][2].as_str().unwrap()), hex_u128(l["data"].as_str().unwrap()))
}

/// The facilitator's `GET /stats` → `{"verify","settle","settleOk","settleFail"}`.
pub async fn facilitator_stats(facilitator: &str) -> Value {
    let url = format!("{}/stats", facilitator.trim_end_matches('/'));
    let resp = crate::agent().get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json().await.unwrap_or_else(|e| panic!("GET {url}: bad JSON: {e}"))
}

/// A counter from [`facilitator_stats`] as u64 (0 when absent).
pub async fn facilitator_count(facilitator: &str, key: &str) -> u64 {
    facilitator_stats(facilitator).await[key].as_u64().unwrap_or(0)
}

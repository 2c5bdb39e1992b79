//! What the crash loop reads to judge a restart, each from its own source of truth: the ledger
//! file (one read transaction: grants, reservations, receipts), the chain (USDC `Transfer` and
//! `AuthorizationUsed` logs of the payer), and the peers' logs (every nonce the facilitator saw,
//! every paid retry the paywall received).

use alloy_primitives::keccak256;
use anyhow::{Context, Result};
use purser_testkit::chain::rpc_call;
use purser_testkit::rusqlite::{Connection, OpenFlags};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: String,
    pub budget: u64,
    pub spent: u64,
    pub reserved: u64,
}

#[derive(Debug, Clone)]
pub struct ReservationRow {
    pub id: String,
    pub grant: String,
    pub amount: u64,
    pub state: String,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReceiptRow {
    pub id: String,
    pub outcome: String,
    pub reason: String,
    pub detail: Option<String>,
    pub reservation: Option<String>,
    /// The logical request id (`?req=N` in the receipt's URL).
    pub req: Option<u64>,
    pub nonce: Option<String>,
    pub amount: u128,
}

/// The ledger as one read transaction saw it.
pub struct Ledger {
    pub grants: Vec<GrantRow>,
    pub reservations: HashMap<String, ReservationRow>,
    pub receipts: Vec<ReceiptRow>,
}

/// The `req=N` query parameter of a URL.
pub fn req_of(url: &str) -> Option<u64> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.strip_prefix("req=")).and_then(|v| v.parse().ok())
}

pub fn ledger(db: &Path) -> Result<Ledger> {
    let mut c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(|| format!("open {}", db.display()))?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = c.transaction()?;
    let grants = {
        let mut st = tx.prepare("SELECT id, budget, spent, reserved FROM grants ORDER BY created_at")?;
        let rows = st.query_map([], |r| Ok(GrantRow { id: r.get(0)?, budget: r.get::<_, i64>(1)? as u64, spent: r.get::<_, i64>(2)? as u64, reserved: r.get::<_, i64>(3)? as u64 }))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let reservations = {
        let mut st = tx.prepare("SELECT id, grant_id, amount, state, nonce FROM reservations")?;
        let rows = st.query_map([], |r| {
            Ok(ReservationRow { id: r.get(0)?, grant: r.get(1)?, amount: r.get::<_, i64>(2)? as u64, state: r.get(3)?, nonce: r.get::<_, Option<String>>(4)?.map(|n| n.to_ascii_lowercase()) })
        })?;
        rows.map(|r| r.map(|r| (r.id.clone(), r))).collect::<Result<HashMap<_, _>, _>>()?
    };
    let receipts = {
        // Bodies as stored: text, or compressed with the ledger's dictionary.
        let codec = purser_core::ledger::BodyCodec::default();
        let mut st = tx.prepare("SELECT id, outcome, reason, body, amount_atomic FROM receipts ORDER BY seq")?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let body = codec.text(&tx, r.get_ref(3)?).with_context(|| format!("receipt {id}"))?;
            let b: serde_json::Value = serde_json::from_str(&body).with_context(|| format!("receipt {id}"))?;
            let s = |k: &str| b.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let amount: Option<String> = r.get(4)?;
            out.push(ReceiptRow {
                id,
                outcome: r.get(1)?,
                reason: r.get(2)?,
                detail: s("detail"),
                reservation: s("reservation_id"),
                req: s("url").as_deref().and_then(req_of),
                nonce: s("authorization_nonce").map(|n| n.to_ascii_lowercase()),
                amount: amount.and_then(|a| a.parse().ok()).unwrap_or(0),
            });
        }
        out
    };
    tx.commit()?;
    Ok(Ledger { grants, reservations, receipts })
}

/// The payer's USDC movements on chain.
pub struct Chain {
    /// Values of every `Transfer(payer → pay_to)`.
    pub transfers: Vec<u128>,
    /// Every nonce of the payer's `AuthorizationUsed` (0x-hex, lowercase).
    pub used: HashSet<String>,
}

fn topic_addr(addr: &str) -> String {
    format!("0x{:0>64}", addr.trim_start_matches("0x").to_ascii_lowercase())
}

fn topic(sig: &str) -> String {
    format!("{}", keccak256(sig.as_bytes()))
}

pub async fn chain(rpc: &str, token: &str, payer: &str, pay_to: &str) -> Chain {
    let logs = |topics: serde_json::Value| rpc_call(rpc, "eth_getLogs", json!([{"address": token, "fromBlock": "0x0", "toBlock": "latest", "topics": topics}]));
    let transfers = logs(json!([topic("Transfer(address,address,uint256)"), topic_addr(payer), topic_addr(pay_to)])).await;
    let used = logs(json!([topic("AuthorizationUsed(address,bytes32)"), topic_addr(payer)])).await;
    let hex = |v: &serde_json::Value| v.as_str().unwrap_or("0x0").to_ascii_lowercase();
    Chain {
        transfers: transfers.as_array().into_iter().flatten().map(|l| u128::from_str_radix(hex(&l["data"]).trim_start_matches("0x"), 16).unwrap_or(0)).collect(),
        used: used.as_array().into_iter().flatten().map(|l| hex(&l["topics"][2])).collect(),
    }
}

/// What the peers' logs say Purser sent.
pub struct PeerLogs {
    /// Every authorization nonce the facilitator was asked to verify or settle.
    pub facilitator_nonces: HashSet<String>,
    /// Paid retries (`PAYMENT-SIGNATURE`) the v2 paywall received, per logical request id.
    pub paid_retries: BTreeMap<u64, usize>,
}

pub fn peer_logs(dir: &Path) -> PeerLogs {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let mut facilitator_nonces = HashSet::new();
    for line in read("facilitator.log").lines() {
        if let Some(i) = line.find("nonce=0x") {
            let n = &line[i + 6..];
            let end = n.find(|c: char| !c.is_ascii_hexdigit() && c != 'x').unwrap_or(n.len());
            facilitator_nonces.insert(n[..end].to_ascii_lowercase());
        }
    }
    let mut paid_retries = BTreeMap::new();
    for line in read("v2.log").lines().filter(|l| l.contains("PAYMENT-SIGNATURE")) {
        if let Some(req) = line.split_whitespace().find_map(req_of) {
            *paid_retries.entry(req).or_insert(0) += 1;
        }
    }
    PeerLogs { facilitator_nonces, paid_retries }
}

#[cfg(test)]
mod tests {
    #[test]
    fn req_ids_come_from_the_query() {
        assert_eq!(super::req_of("http://127.0.0.1:9/cheap?req=42"), Some(42));
        assert_eq!(super::req_of("/slow?a=1&req=7"), Some(7));
        assert_eq!(super::req_of("/slow"), None);
        assert_eq!(super::req_of("/slow?req=x"), None);
    }
}

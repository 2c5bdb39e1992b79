//! Reconciliation: checks each settled receipt against the chain (the transaction's status and
//! its `Transfer(from, to, value)` log), flags a mismatch or a missing transaction, and ends the
//! reservations of payments whose settlement was unknown by asking `authorizationState` for
//! their nonce: used → spent; unused once the chain's clock has passed `validBefore` → released
//! (before that the authorization could still be submitted, so the budget stays reserved).

use super::{http_client, Result, Rpc, TxReceipt};
use crate::api::ApiError;
use crate::ledger::{Ledger, Settle};
use crate::networks::{self, NetworkConfig};
use crate::receipt::{Outcome, Receipt};
use alloy_primitives::{Address, B256, U256};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What the chain says about one receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Confirmed(String),
    Mismatch(String),
    Missing(String),
    /// Not decidable yet (the authorization may still be submitted); checked again later.
    Pending(String),
    /// An unknown settlement turned out paid: its reservation is spent.
    SettledLate(String),
    /// An unknown settlement's authorization expired unused: its reservation is released.
    Released(String),
}

impl Finding {
    pub fn state(&self) -> &'static str {
        match self {
            Finding::Confirmed(_) | Finding::SettledLate(_) => "confirmed",
            Finding::Mismatch(_) => "mismatch",
            Finding::Missing(_) => "missing",
            Finding::Pending(_) => "pending",
            Finding::Released(_) => "released",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            Finding::Confirmed(d) | Finding::Mismatch(d) | Finding::Missing(d) | Finding::Pending(d) | Finding::SettledLate(d) | Finding::Released(d) => d,
        }
    }
}

/// Does the mined transaction carry exactly the transfer the receipt records?
pub fn judge_tx(tx: &TxReceipt, token: Address, payer: Address, pay_to: Address, amount: U256) -> Finding {
    if !tx.success {
        return Finding::Mismatch(format!("the transaction reverted (block {})", tx.block));
    }
    if tx.transfers.iter().any(|t| t.token == token && t.from == payer && t.to == pay_to && t.value == amount) {
        return Finding::Confirmed(format!("Transfer of {amount} from {payer} to {pay_to} in block {}", tx.block));
    }
    let seen: Vec<String> = tx.transfers.iter().filter(|t| t.token == token).map(|t| format!("{} from {} to {}", t.value, t.from, t.to)).collect();
    Finding::Mismatch(format!("the transaction has no Transfer of {amount} from {payer} to {pay_to} (its transfers of this token: {})", if seen.is_empty() { "none".into() } else { seen.join("; ") }))
}

/// A payment judged by its nonce: `used` read at a block no older than the one whose
/// timestamp is `chain_time`. `paid`: the receipt says paid (`tx_missing`: its recorded
/// transaction is not on chain); else the settlement's outcome was unknown.
pub fn judge_nonce(paid: bool, tx_missing: Option<&str>, used: bool, chain_time: u64, valid_before: u64) -> Finding {
    let expired = chain_time >= valid_before;
    match (paid, used, tx_missing) {
        (true, true, Some(tx)) => Finding::Mismatch(format!("the recorded transaction {tx} is not on chain, yet the authorization was used: the receipt names the wrong transaction")),
        (true, true, None) => Finding::Confirmed("the authorization was used on chain (the server sent no transaction hash)".into()),
        (true, false, _) if expired => Finding::Missing(format!(
            "{}the authorization expired unused (chain time {chain_time} >= validBefore {valid_before}): nothing was paid",
            tx_missing.map(|t| format!("the recorded transaction {t} is not on chain and ")).unwrap_or_default()
        )),
        (true, false, _) => Finding::Pending(format!("not on chain yet; the authorization is valid until {valid_before} (chain time {chain_time})")),
        (false, true, _) => Finding::SettledLate("the authorization was used on chain after all: the payment settled, its reservation is now spent".into()),
        (false, false, _) if expired => {
            Finding::Released(format!("the authorization expired unused (chain time {chain_time} >= validBefore {valid_before}): nothing was paid, its reservation was released"))
        }
        (false, false, _) => Finding::Pending(format!("not used yet; it could still be submitted until validBefore {valid_before} (chain time {chain_time}), so the budget stays reserved")),
    }
}

/// One receipt checked.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub receipt_id: String,
    pub outcome: String,
    pub tx: Option<String>,
    pub state: String,
    pub detail: String,
    /// `spent` or `released` when this check ended the receipt's reservation.
    pub reservation: Option<&'static str>,
    pub micros: u64,
}

/// What one pass found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub queued: usize,
    pub checked: Vec<Checked>,
    /// Networks whose RPC could not be used this time (their receipts stay pending).
    pub errors: Vec<NetworkProblem>,
    pub flagged: usize,
    pub elapsed_ms: u64,
    /// Time per receipt checked (its RPC round trips and the ledger write; the pass's one-time
    /// setup, the HTTP client and each network's chain-id check, is not counted), microseconds.
    pub per_receipt_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkProblem {
    pub network: String,
    #[serde(flatten)]
    pub error: ApiError,
}

struct Facts {
    network: &'static networks::Network,
    token: Address,
    payer: Address,
    pay_to: Address,
    amount: U256,
    nonce: Option<B256>,
    valid_before: u64,
}

fn facts(r: &Receipt) -> std::result::Result<Facts, String> {
    let network = r.network.as_deref().and_then(networks::by_name).ok_or("the receipt names no known network")?;
    let addr = |v: &Option<String>, what: &str| v.as_deref().and_then(|s| s.parse::<Address>().ok()).ok_or(format!("the receipt has no valid {what}"));
    Ok(Facts {
        network,
        token: addr(&r.asset, "asset")?,
        payer: addr(&r.payer, "payer")?,
        pay_to: addr(&r.pay_to, "payee")?,
        amount: r.amount_atomic.as_deref().and_then(|a| crate::money::parse_atomic(a).ok()).ok_or("the receipt has no valid amount")?,
        nonce: r.authorization_nonce.as_deref().and_then(|n| n.parse().ok()),
        valid_before: r.valid_before.unwrap_or(0),
    })
}

async fn judge(rpc: &Rpc, r: &Receipt, f: &Facts) -> Result<Finding> {
    let paid = r.outcome == Outcome::Paid;
    let mut tx_missing = None;
    if let (true, Some(tx)) = (paid, r.tx.as_deref()) {
        let Ok(hash) = tx.parse::<B256>() else {
            return Ok(Finding::Mismatch(format!("the recorded transaction {tx:?} is not a transaction hash")));
        };
        match rpc.tx_receipt(hash).await? {
            Some(t) => return Ok(judge_tx(&t, f.token, f.payer, f.pay_to, f.amount)),
            None => tx_missing = Some(tx),
        }
    }
    let Some(nonce) = f.nonce else {
        return Ok(Finding::Missing(format!("the recorded transaction {} is not on chain", tx_missing.unwrap_or("(none)"))));
    };
    // The chain's clock first, then the nonce at that block or a later one: an authorization
    // unused at a block stamped at or after validBefore can never be used.
    let (_, chain_time) = rpc.latest_block().await?;
    let used = rpc.authorization_used(f.token, f.payer, nonce).await?;
    Ok(judge_nonce(paid, tx_missing, used, chain_time, f.valid_before))
}

/// One pass: queues new receipts, then checks every pending one (networks whose RPC fails are
/// skipped and reported; their receipts stay pending).
pub async fn reconcile_once(ledger: &Ledger, dir: &Path, clock: &dyn crate::clock::Clock) -> Result<Report> {
    let started = Instant::now();
    let cfg = NetworkConfig::load(dir)?;
    let l = ledger.clone();
    let now = clock.now();
    let queued = l.blocking(move |l| l.queue_reconciliations(now)).await??;
    let l = ledger.clone();
    let pending = l.blocking(|l| l.pending_reconciliations(10_000)).await??;
    let mut report = Report { queued, ..Default::default() };
    let mut rpcs: HashMap<&'static str, Option<Rpc>> = HashMap::new();
    let http = http_client();
    // Time spent checking receipts, without the one-time setup (client, chain id per network).
    let mut checking = std::time::Duration::ZERO;
    for r in pending {
        let finding = match facts(&r) {
            Err(why) => Finding::Mismatch(why),
            Ok(f) => {
                if !rpcs.contains_key(f.network.caip2) {
                    let rpc = match Rpc::connect(http.clone(), f.network, cfg.rpc_url(f.network)).await {
                        Ok(rpc) => Some(rpc),
                        Err(e) => {
                            report.errors.push(NetworkProblem { network: f.network.v1_name.into(), error: ApiError { code: e.code(), message: e.to_string() } });
                            None
                        }
                    };
                    rpcs.insert(f.network.caip2, rpc);
                }
                let Some(rpc) = rpcs[f.network.caip2].clone() else { continue };
                let t = Instant::now();
                let judged = judge(&rpc, &r, &f).await;
                checking += t.elapsed();
                match judged {
                    Ok(finding) => finding,
                    Err(e) => {
                        report.errors.push(NetworkProblem { network: f.network.v1_name.into(), error: ApiError { code: e.code(), message: e.to_string() } });
                        rpcs.insert(f.network.caip2, None);
                        continue;
                    }
                }
            }
        };
        let how = match finding {
            Finding::SettledLate(_) => Some(Settle::Spend),
            Finding::Released(_) => Some(Settle::Release),
            _ => None,
        };
        let (l, id, res, state, detail) = (ledger.clone(), r.id.clone(), r.reservation_id.clone(), finding.state(), finding.detail().to_string());
        let now = clock.now();
        let t = Instant::now();
        let ended = l.blocking(move |l| l.set_reconciliation(&id, state, &detail, how.zip(res.as_deref()).map(|(h, r)| (r, h)), now)).await??.zip(how);
        checking += t.elapsed();
        if matches!(finding, Finding::Mismatch(_) | Finding::Missing(_)) {
            report.flagged += 1;
        }
        report.checked.push(Checked {
            receipt_id: r.id.clone(),
            outcome: r.outcome.as_str().into(),
            tx: r.tx.clone(),
            state: state.into(),
            detail: finding.detail().into(),
            reservation: ended.map(|(_, h)| if h == Settle::Spend { "spent" } else { "released" }),
            micros: ended.map(|(m, _)| m).unwrap_or(0),
        });
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report.per_receipt_us = if report.checked.is_empty() { 0 } else { checking.as_micros() as u64 / report.checked.len() as u64 };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::TransferLog;

    #[test]
    fn nonce_branches() {
        // Unknown settlement: used → spent whatever the time; unused → released only once the
        // chain's clock reached validBefore, pending before.
        assert!(matches!(judge_nonce(false, None, true, 10, 100), Finding::SettledLate(_)));
        assert!(matches!(judge_nonce(false, None, false, 99, 100), Finding::Pending(_)));
        assert!(matches!(judge_nonce(false, None, false, 100, 100), Finding::Released(_)));
        // Paid receipts.
        assert!(matches!(judge_nonce(true, Some("0xab"), true, 10, 100), Finding::Mismatch(_)));
        assert!(matches!(judge_nonce(true, None, true, 10, 100), Finding::Confirmed(_)));
        assert!(matches!(judge_nonce(true, Some("0xab"), false, 100, 100), Finding::Missing(_)));
        assert!(matches!(judge_nonce(true, Some("0xab"), false, 50, 100), Finding::Pending(_)));
    }

    #[test]
    fn transfer_must_match_exactly() {
        let (token, a, b) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let t = |value: u64, to: Address| TxReceipt { success: true, block: 7, transfers: vec![TransferLog { token, from: a, to, value: U256::from(value) }] };
        assert_eq!(judge_tx(&t(1000, b), token, a, b, U256::from(1000u64)).state(), "confirmed");
        assert_eq!(judge_tx(&t(999, b), token, a, b, U256::from(1000u64)).state(), "mismatch");
        assert_eq!(judge_tx(&t(1000, a), token, a, b, U256::from(1000u64)).state(), "mismatch");
        assert_eq!(judge_tx(&t(1000, b), Address::repeat_byte(9), a, b, U256::from(1000u64)).state(), "mismatch");
        let mut reverted = t(1000, b);
        reverted.success = false;
        assert_eq!(judge_tx(&reverted, token, a, b, U256::from(1000u64)).state(), "mismatch");
    }
}

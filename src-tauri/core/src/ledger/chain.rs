//! On-chain facts the ledger keeps beside the receipts (schema version 5): the wallet's balance
//! per network and asset with the time it was read, and each receipt's reconciliation state
//! against the chain (its own table: receipts are immutable). The chain calls are `chain`'s.

use super::reserve::{apply, Reservation, Settle};
use super::{parse_ts, to_i64, ts, Ledger, LedgerError, Result};
use crate::grants::Limits;
use crate::receipt::Receipt;
use alloy_primitives::U256;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// The settings key holding the last receipt `seq` the reconciler has looked at.
const SCAN_MARK: &str = "reconcile_scanned_seq";
/// Receipts the reconciler's queueing scan reads and queues per transaction (smaller in unit
/// tests, so a few thousand receipts exercise several chunks and rounds).
pub(super) const QUEUE_CHUNK: i64 = if cfg!(test) { 300 } else { 2_000 };
/// Receipts one queueing call looks at, at most (the rest wait for the next round).
pub(super) const QUEUE_MAX_SCAN: i64 = if cfg!(test) { 1_200 } else { 20_000 };

/// A balance as last read from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBalance {
    pub atomic: U256,
    pub block: Option<u64>,
    pub read_at: DateTime<Utc>,
}

/// A receipt's reconciliation with the chain.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reconciliation {
    pub receipt_id: String,
    /// `pending`, `confirmed`, `mismatch`, `missing` or `released`.
    pub state: String,
    pub checked_at: DateTime<Utc>,
    pub detail: String,
    pub attempts: u32,
}

fn covers(limits: &str, network: &str) -> Result<bool> {
    let l: Limits = serde_json::from_str(limits).map_err(|e| LedgerError::Corrupt(format!("grant limits: {e}")))?;
    Ok(l.networks.is_empty() || l.networks.iter().any(|n| n == network))
}

impl Ledger {
    pub fn store_balance(&self, network: &str, asset: &str, address: &str, atomic: U256, block: Option<u64>, read_at: DateTime<Utc>) -> Result<()> {
        let block = block.map(to_i64).transpose()?;
        self.with(|c| {
            c.execute(
                "INSERT INTO chain_balances (network, asset, address, atomic, block, read_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (network, asset, address) DO UPDATE SET atomic = ?4, block = ?5, read_at = ?6",
                params![network, asset.to_ascii_lowercase(), address.to_ascii_lowercase(), atomic.to_string(), block, ts(read_at)],
            )?;
            Ok(())
        })
    }

    /// The last balance read for this network, asset and address, if any.
    pub fn stored_balance(&self, network: &str, asset: &str, address: &str) -> Result<Option<StoredBalance>> {
        self.with(|c| {
            let row: Option<(String, Option<i64>, String)> = c
                .query_row(
                    "SELECT atomic, block, read_at FROM chain_balances WHERE network = ?1 AND asset = ?2 AND address = ?3",
                    params![network, asset.to_ascii_lowercase(), address.to_ascii_lowercase()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            row.map(|(a, b, t)| {
                let atomic = crate::money::parse_atomic(&a).map_err(|e| LedgerError::Corrupt(format!("stored balance {a:?}: {e}")))?;
                Ok(StoredBalance { atomic, block: b.map(|b| b as u64), read_at: parse_ts(&t)? })
            })
            .transpose()
        })
    }

    /// Micro-USD still held by open reservations (reserved, or signed with an unknown outcome)
    /// of grants that may pay on `network`: money the wallet may be about to lose.
    pub fn in_flight_micros(&self, network: &str) -> Result<u64> {
        self.with(|c| {
            let mut st = c.prepare("SELECT r.amount, g.limits FROM reservations r JOIN grants g ON g.id = r.grant_id WHERE r.state IN ('reserved', 'unknown')")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            let mut sum = 0u64;
            for row in rows {
                let (amount, limits) = row?;
                if covers(&limits, network)? {
                    sum = sum.checked_add(amount as u64).ok_or(LedgerError::Overflow)?;
                }
            }
            Ok(sum)
        })
    }

    /// What active grants that may pay on `network` could still spend (sum of remaining budgets).
    pub fn allocated_micros(&self, network: &str, now: DateTime<Utc>) -> Result<u64> {
        let mut sum = 0u64;
        for g in self.list_grants()? {
            if g.state(now) == crate::grants::GrantState::Active && (g.limits.networks.is_empty() || g.limits.networks.iter().any(|n| n == network)) {
                sum = sum.checked_add(g.remaining()).ok_or(LedgerError::Overflow)?;
            }
        }
        Ok(sum)
    }

    /// Queues (state `pending`) the receipts recorded since the last scan that the chain can
    /// confirm: paid ones, and failed ones whose signed payment's outcome is unknown. Returns
    /// how many were queued.
    ///
    /// The scan reads on the read-only pool and writes each chunk of [`QUEUE_CHUNK`] receipts in
    /// its own short transaction (advancing the scan mark with it), and one call looks at no
    /// more than [`QUEUE_MAX_SCAN`] receipts: a ledger with a long history (a million imported
    /// receipts) is worked through over several rounds and never holds up a payment's writes.
    pub fn queue_reconciliations(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut mark: i64 = self.setting(SCAN_MARK)?.and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut queued = 0usize;
        let mut scanned = 0i64;
        while scanned < QUEUE_MAX_SCAN {
            let (wanted, last, n) = self.read(|c| {
                let mut st = c.prepare_cached("SELECT seq, body FROM receipts WHERE seq > ?1 AND outcome IN ('paid', 'failed') ORDER BY seq LIMIT ?2")?;
                let mut unknown_st = c.prepare_cached("SELECT state FROM reservations WHERE id = ?1")?;
                let mut rows = st.query([mark, QUEUE_CHUNK])?;
                let (mut wanted, mut last, mut n) = (Vec::new(), mark, 0i64);
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    n += 1;
                    let rec: Receipt = serde_json::from_str(&self.codec.text(c, r.get_ref(1)?)?).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
                    let unknown = match &rec.reservation_id {
                        Some(id) => unknown_st.query_row([id], |r| r.get::<_, String>(0)).optional()?.as_deref() == Some("unknown"),
                        None => false,
                    };
                    let want = match rec.outcome {
                        crate::receipt::Outcome::Paid => rec.tx.is_some() || rec.authorization_nonce.is_some(),
                        _ => unknown && rec.authorization_nonce.is_some(),
                    };
                    if want {
                        wanted.push(rec.id);
                    }
                }
                Ok((wanted, last, n))
            })?;
            if n == 0 {
                break;
            }
            queued += self.with(|c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut added = 0usize;
                {
                    let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO reconciliation (receipt_id, state, checked_at, detail) VALUES (?1, 'pending', ?2, 'not checked yet')")?;
                    for id in &wanted {
                        added += ins.execute(params![id, ts(now)])?;
                    }
                }
                tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET value = ?2, updated_at = ?3",
                    params![SCAN_MARK, last.to_string(), ts(now)],
                )?;
                tx.commit()?;
                Ok(added)
            })?;
            mark = last;
            scanned += n;
        }
        Ok(queued)
    }

    /// Receipts waiting for a check, oldest first.
    pub fn pending_reconciliations(&self, limit: usize) -> Result<Vec<Receipt>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT r.body, r.hash FROM reconciliation q JOIN receipts r ON r.id = q.receipt_id WHERE q.state = 'pending' ORDER BY r.seq LIMIT ?1")?;
            super::receipts::body_hash_rows(c, &self.codec, &mut st, [limit as i64])
        })
    }

    /// Records what the chain said of a receipt and, in the same transaction, ends its
    /// reservation when the chain settled the question (spent if used, released if expired
    /// unused) and it is still `unknown` then. Returns the micro-USD it moved, if it ended one.
    pub fn set_reconciliation(&self, receipt_id: &str, state: &str, detail: &str, end: Option<(&str, Settle)>, now: DateTime<Utc>) -> Result<Option<u64>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut moved = None;
            if let Some((rid, how)) = end {
                let open = tx
                    .query_row("SELECT grant_id, amount, valid_before FROM reservations WHERE id = ?1 AND state = 'unknown'", [rid], |r| {
                        Ok(Reservation { id: rid.to_string(), grant_id: r.get(0)?, amount: r.get::<_, i64>(1)? as u64, valid_before: r.get::<_, i64>(2)? as u64 })
                    })
                    .optional()?;
                if let Some(r) = open {
                    apply(&tx, &r, how, now)?;
                    moved = Some(r.amount);
                }
            }
            tx.execute(
                "INSERT INTO reconciliation (receipt_id, state, checked_at, detail, attempts) VALUES (?1, ?2, ?3, ?4, 1)
                 ON CONFLICT (receipt_id) DO UPDATE SET state = ?2, checked_at = ?3, detail = ?4, attempts = attempts + 1",
                params![receipt_id, state, ts(now), detail],
            )?;
            tx.commit()?;
            Ok(moved)
        })
    }

    /// The reconciliation of one receipt, if it has one.
    pub fn reconciliation(&self, receipt_id: &str) -> Result<Option<Reconciliation>> {
        Ok(self.reconciliations(Some(receipt_id), false, 1)?.pop())
    }

    /// Reconciliations, newest check first; `flagged`: only mismatch and missing.
    pub fn reconciliations(&self, receipt_id: Option<&str>, flagged: bool, limit: usize) -> Result<Vec<Reconciliation>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT receipt_id, state, checked_at, detail, attempts FROM reconciliation
                 WHERE (?1 IS NULL OR receipt_id = ?1) AND (?2 = 0 OR state IN ('mismatch', 'missing')) ORDER BY checked_at DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![receipt_id, flagged as i64, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, i64>(4)?))
            })?;
            rows.map(|row| {
                let (receipt_id, state, t, detail, attempts) = row?;
                Ok(Reconciliation { receipt_id, state, checked_at: parse_ts(&t)?, detail, attempts: attempts as u32 })
            })
            .collect()
        })
    }
}

//! Receipts: appended in the same transaction as the reservation change they record, each
//! holding the hash of the one before; listing, and verification of the chain.

use super::reserve::{apply, Reservation, Settle};
use super::{grants::load, ts, BodyCodec, Ledger, LedgerError, Result};
use crate::receipt::{LedgerAfter, Receipt};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The `prev_hash` of the first receipt.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact { count: u64, head: String },
    Broken { id: String, seq: i64, why: String, checked: u64 },
}

impl Ledger {
    /// Appends `receipt` (filling `ledger_after`, `prev_hash` and `hash`) and, in the same
    /// transaction, ends `reservation` as `how` says. Nothing is half-written.
    pub fn finish(&self, reservation: Option<(&Reservation, Settle)>, receipt: &mut Receipt, now: DateTime<Utc>) -> Result<()> {
        let reservation = reservation.map(|(r, how)| (r.clone(), how));
        let mut rec = receipt.clone();
        let codec = self.codec.clone();
        // A group-committed write: answered only once its COMMIT is durable.
        let done = self.write(move |tx| {
            if let Some((r, how)) = &reservation {
                apply(tx, r, *how, now)?;
            }
            if let Some(gid) = &rec.grant_id {
                if let Ok(g) = load(tx, gid) {
                    rec.ledger_after = Some(LedgerAfter::from(&g));
                }
            }
            rec.hash = append(tx, &codec, &mut rec)?;
            Ok(rec)
        })?;
        *receipt = done;
        Ok(())
    }

    /// Appends a receipt that moves no money.
    pub fn record(&self, receipt: &mut Receipt, now: DateTime<Utc>) -> Result<()> {
        self.finish(None, receipt, now)
    }

    /// The newest `limit` receipts, newest first.
    pub fn list_receipts(&self, limit: usize) -> Result<Vec<Receipt>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT body, hash FROM receipts ORDER BY seq DESC LIMIT ?1")?;
            body_hash_rows(c, &self.codec, &mut st, [limit as i64])
        })
    }

    /// The receipt with this id.
    pub fn receipt(&self, id: &str) -> Result<Option<Receipt>> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT body, hash FROM receipts WHERE id = ?1")?;
            Ok(body_hash_rows(c, &self.codec, &mut st, [id])?.pop())
        })
    }

    /// Walks every receipt in order: each body must hash to its stored hash, link to the one
    /// before, and agree with its indexed columns. Names the first broken receipt.
    /// The chain starts at genesis, or at the last receipt moved to an archive (see `archive`).
    pub fn verify_chain(&self) -> Result<ChainReport> {
        self.with(|c| verify_conn(c, &self.codec))
    }
}

/// Appends `receipt` to the chain inside the caller's transaction (filling `prev_hash`) and
/// indexes it for search in the same transaction; returns its hash.
pub(super) fn append(tx: &Connection, codec: &Arc<BodyCodec>, receipt: &mut Receipt) -> Result<String> {
    let prev: Option<(i64, String)> = tx.query_row("SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let seq = prev.as_ref().map_or(0, |p| p.0) + 1;
    receipt.prev_hash = match prev {
        Some((_, p)) => p,
        None => super::bulk::chain_start(tx)?.1,
    };
    receipt.hash.clear();
    let body = serde_json::to_string(&*receipt).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    let stored = codec.store(tx, seq, &body)?;
    tx.execute(
        "INSERT INTO receipts (id, time, grant_id, outcome, reason, amount_atomic, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![receipt.id, ts(receipt.time), receipt.grant_id, receipt.outcome.as_str(), receipt.reason, receipt.amount_atomic, stored, receipt.prev_hash, hash],
    )?;
    super::index::index_receipt(tx, tx.last_insert_rowid(), receipt)?;
    Ok(hash)
}

/// Walks the receipts of one ledger file (the main one or an archive) from its chain start.
pub(crate) fn verify_conn(c: &Connection, codec: &BodyCodec) -> Result<ChainReport> {
    verify_walk(c, codec, &mut |_, _| Ok(()))
}

/// [`verify_conn`], showing `visit` each receipt that checked out (with its seq and stored hash
/// in `hash`), in chain order.
pub(super) fn verify_walk(c: &Connection, codec: &BodyCodec, visit: &mut dyn FnMut(i64, &Receipt) -> Result<()>) -> Result<ChainReport> {
    let (after_seq, start_hash) = super::bulk::chain_start(c)?;
    let mut st = c.prepare("SELECT seq, id, time, grant_id, outcome, reason, amount_atomic, body, prev_hash, hash FROM receipts ORDER BY seq")?;
    let mut rows = st.query([])?;
    let (mut expect_prev, mut count, mut last_seq) = (start_hash, 0u64, after_seq);
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let id: String = r.get(1)?;
        let (prev, hash): (String, String) = (r.get(8)?, r.get(9)?);
        let broken = |why: String| Ok(ChainReport::Broken { id: id.clone(), seq, why, checked: count });
        let body = match codec.text(c, r.get_ref(7)?) {
            Ok(b) => b,
            Err(e) => return broken(format!("its stored body cannot be read: {e}")),
        };
        if prev != expect_prev {
            return broken(format!("prev_hash {prev} does not link to the previous receipt's hash {expect_prev}"));
        }
        if hex::encode(Sha256::digest(body.as_bytes())) != hash {
            return broken("its body does not hash to its stored hash".into());
        }
        let rec: Receipt = match serde_json::from_str(&body) {
            Ok(rec) => rec,
            Err(e) => return broken(format!("its body is not a receipt: {e}")),
        };
        let cols = (r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?, r.get::<_, Option<String>>(6)?);
        let want = (rec.id.clone(), ts(rec.time), rec.grant_id.clone(), rec.outcome.as_str().to_string(), rec.reason.clone(), rec.amount_atomic.clone());
        if cols != want || rec.prev_hash != prev {
            return broken("its columns disagree with its hashed body".into());
        }
        let mut rec = rec;
        rec.hash = hash.clone();
        visit(seq, &rec)?;
        expect_prev = hash;
        count += 1;
        last_seq = seq;
    }
    // A deleted tail leaves no broken link; SQLite remembers the largest seq ever used.
    let used: Option<i64> = c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'receipts'", [], |r| r.get(0)).optional()?;
    if let Some(used) = used.filter(|u| *u > last_seq) {
        let why = format!("receipts #{}..#{used} were deleted from the end of the chain", last_seq + 1);
        return Ok(ChainReport::Broken { id: format!("#{}", last_seq + 1), seq: last_seq + 1, why, checked: count });
    }
    Ok(ChainReport::Intact { count, head: expect_prev })
}

/// The receipts a `SELECT body, hash …` statement yields, each with its stored hash.
pub(super) fn body_hash_rows(c: &Connection, codec: &BodyCodec, st: &mut rusqlite::Statement<'_>, params: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let body = codec.text(c, r.get_ref(0)?)?;
        let mut rec: Receipt = serde_json::from_str(&body).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        rec.hash = r.get(1)?;
        out.push(rec);
    }
    Ok(out)
}

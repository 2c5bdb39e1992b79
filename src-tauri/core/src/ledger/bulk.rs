//! Bulk operations on the receipt chain: appending many receipts in one transaction (the demo
//! and benchmark seeder), and archiving: moving the oldest receipts to a separate SQLite file
//! that stays verifiable on its own, while the main chain stays verifiable from an anchor (the
//! last archived receipt's seq and hash, recorded in `receipt_archives`).

use super::receipts::{append, verify_conn, ChainReport, GENESIS_HASH};
use super::{ts, Ledger, LedgerError, Result};
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where a ledger file's chain starts: after `(seq, hash)`. `(0, GENESIS_HASH)` for a chain
/// that starts at the first receipt ever; the last archived receipt for a main ledger that was
/// archived; the receipt before its first one for an archive file.
pub(crate) fn chain_start(c: &Connection) -> Result<(i64, String)> {
    let has = |name: &str| -> Result<bool> { Ok(c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| r.get::<_, i64>(0))? > 0) };
    if has("receipt_archives")? {
        let anchor: Option<(i64, String)> = c.query_row("SELECT last_seq, last_hash FROM receipt_archives ORDER BY last_seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some(a) = anchor {
            return Ok(a);
        }
    } else if has("archive_start")? {
        let start: Option<(i64, String)> = c.query_row("SELECT after_seq, prev_hash FROM archive_start WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some(s) = start {
            return Ok(s);
        }
    }
    Ok((0, GENESIS_HASH.to_string()))
}

/// What an archive run moved.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArchiveReport {
    pub moved: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash of the last archived receipt: the main chain now starts after it.
    pub anchor_hash: Option<String>,
    pub file: PathBuf,
}

/// One archive file recorded in the main ledger.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArchiveRecord {
    pub first_seq: i64,
    pub last_seq: i64,
    pub last_hash: String,
    pub count: u64,
    pub file: PathBuf,
    pub archived_at: String,
}

const ARCHIVE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    grant_id TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    amount_atomic TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archive_start (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    after_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS receipts_no_update BEFORE UPDATE ON receipts
    BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TRIGGER IF NOT EXISTS receipts_no_delete BEFORE DELETE ON receipts
    BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
"#;

const COLS: &str = "seq, id, time, grant_id, outcome, reason, amount_atomic, body, prev_hash, hash";

/// Opens (creating if needed) an archive file, private to the user.
fn open_archive(path: &Path) -> Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.execute_batch(ARCHIVE_SCHEMA)?;
    crate::datadir::make_private(path)?;
    Ok(c)
}

impl Ledger {
    /// Appends `receipts` to the chain (and the search index) in one transaction, filling each
    /// one's `prev_hash` and `hash`. For seeding and imports: the proxy records with `finish`.
    pub fn record_batch(&self, receipts: &mut [Receipt]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut hashes = Vec::with_capacity(receipts.len());
            for r in receipts.iter_mut() {
                hashes.push(append(&tx, &self.codec, r)?);
            }
            tx.commit()?;
            for (r, h) in receipts.iter_mut().zip(hashes) {
                r.hash = h;
            }
            Ok(())
        })
    }

    /// Moves the receipts older than `before` to the archive file `file` (created, or continued
    /// when it already holds the receipts just before them). Only a prefix of the chain moves:
    /// it stops at the first receipt at or after `before`. The archive is written and synced
    /// first; then, in one transaction, the main ledger records the anchor and drops the rows
    /// and their index entries. Re-running after a crash in between is safe.
    pub fn archive_before(&self, before: DateTime<Utc>, file: &Path, now: DateTime<Utc>) -> Result<ArchiveReport> {
        let cutoff = before.timestamp() + i64::from(before.timestamp_subsec_nanos() > 0);
        let file = std::path::absolute(file)?;
        self.with(|c| {
            super::index::backfill_pending_now(c)?;
            let (after, _) = chain_start(c)?;
            let first_late: Option<i64> = c.query_row("SELECT min(seq) FROM receipt_facts WHERE t >= ?1", [cutoff], |r| r.get(0))?;
            let max_seq: i64 = c.query_row("SELECT coalesce(max(seq), 0) FROM receipts", [], |r| r.get(0))?;
            let last = first_late.map(|s| s - 1).unwrap_or(max_seq).min(max_seq);
            let empty = ArchiveReport { moved: 0, first_seq: None, last_seq: None, anchor_hash: None, file: file.clone() };
            if last <= after {
                return Ok(empty);
            }
            let first = after + 1;

            // 1. Write the archive (checking it continues this chain), and sync it.
            let mut arch = open_archive(&file)?;
            {
                let tx = arch.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let arch_last: Option<(i64, String)> = tx.query_row("SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
                match &arch_last {
                    None => {
                        let start = chain_start(c)?;
                        tx.execute("INSERT OR REPLACE INTO archive_start (id, after_seq, prev_hash) VALUES (1, ?1, ?2)", params![start.0, start.1])?;
                    }
                    Some((s, h)) if *s >= after => {
                        // Rows past the anchor are left from an interrupted run: they must match.
                        let ours: Option<String> = if *s == after { Some(chain_start(c)?.1) } else { c.query_row("SELECT hash FROM receipts WHERE seq = ?1", [s], |r| r.get(0)).optional()? };
                        if ours.as_deref() != Some(h.as_str()) {
                            return Err(LedgerError::Corrupt(format!("archive {} does not continue this ledger's chain (its receipt #{s} differs)", file.display())));
                        }
                    }
                    Some((s, _)) => {
                        return Err(LedgerError::Corrupt(format!("archive {} ends at receipt #{s} but this ledger's chain starts after #{after}: receipts in between are elsewhere", file.display())));
                    }
                }
                let mut read = c.prepare(&format!("SELECT {COLS} FROM receipts WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"))?;
                let mut write = tx.prepare(&format!("INSERT OR IGNORE INTO receipts ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))?;
                let mut rows = read.query(params![first, last])?;
                while let Some(r) = rows.next()? {
                    let mut v: Vec<rusqlite::types::Value> = (0..10).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
                    // The archive stands alone: its bodies are text (no dictionary needed).
                    v[7] = rusqlite::types::Value::Text(self.codec.text(c, (&v[7]).into())?);
                    write.execute(rusqlite::params_from_iter(v))?;
                }
                drop(write);
                tx.commit()?;
            }
            let arch_hash: Option<String> = arch.query_row("SELECT hash FROM receipts WHERE seq = ?1", [last], |r| r.get(0)).optional()?;
            drop(arch);

            // 2. Anchor the main chain and drop the archived rows, atomically.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last_hash: String = tx.query_row("SELECT hash FROM receipts WHERE seq = ?1", [last], |r| r.get(0))?;
            if arch_hash.as_deref() != Some(last_hash.as_str()) {
                return Err(LedgerError::Corrupt(format!("archive {} does not hold receipt #{last} as this ledger does", file.display())));
            }
            let moved: i64 = tx.query_row("SELECT count(*) FROM receipts WHERE seq >= ?1 AND seq <= ?2", params![first, last], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO receipt_archives (last_seq, first_seq, last_hash, count, file, archived_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![last, first, last_hash, moved, file.to_string_lossy(), ts(now)],
            )?;
            let trigger: Option<String> = tx.query_row("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'receipts_no_delete'", [], |r| r.get(0)).optional()?;
            if trigger.is_some() {
                tx.execute_batch("DROP TRIGGER receipts_no_delete")?;
            }
            tx.execute("DELETE FROM receipts WHERE seq <= ?1", [last])?;
            if let Some(sql) = trigger {
                tx.execute_batch(&sql)?;
            }
            super::index::forget_through(&tx, last)?;
            tx.commit()?;
            Ok(ArchiveReport { moved: moved as u64, first_seq: Some(first), last_seq: Some(last), anchor_hash: Some(last_hash), file: file.clone() })
        })
    }

    /// Merges the full-text index into one segment (after a bulk load or an archive run; live
    /// appends rely on FTS5's automatic merging).
    pub fn optimize_search_index(&self) -> Result<()> {
        self.with(|c| Ok(c.execute_batch("INSERT INTO receipt_fts(receipt_fts) VALUES ('optimize')")?))
    }

    /// The archive files this ledger's receipts were moved to, oldest first.
    pub fn archives(&self) -> Result<Vec<ArchiveRecord>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT first_seq, last_seq, last_hash, count, file, archived_at FROM receipt_archives ORDER BY last_seq")?;
            let rows = st.query_map([], |r| {
                Ok(ArchiveRecord {
                    first_seq: r.get(0)?,
                    last_seq: r.get(1)?,
                    last_hash: r.get(2)?,
                    count: r.get::<_, i64>(3)? as u64,
                    file: PathBuf::from(r.get::<_, String>(4)?),
                    archived_at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

/// Verifies an archive file on its own: its chain from its recorded start to its last receipt.
pub fn verify_archive_file(path: &Path) -> Result<ChainReport> {
    if !path.exists() {
        return Err(LedgerError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no archive file {}", path.display()))));
    }
    let c = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    verify_conn(&c, &super::BodyCodec::default())
}

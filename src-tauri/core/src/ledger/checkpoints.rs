//! Checkpoints (schema version 10): `{count, head, time}` signed by the wallet's key, kept
//! beside the receipts. The file cannot forge them (it never holds the key); signing and
//! checking signatures are `anchor`'s, where they sit in the chain is the audit's.

use super::{parse_ts, to_i64, ts, Ledger, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

/// One signed checkpoint: the chain held `count` receipts ending at `head` at `time`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    pub count: u64,
    pub head: String,
    pub time: DateTime<Utc>,
    /// The address that signed (as recorded: checked against the vault's, never trusted).
    pub signer: String,
    /// EIP-191 signature (0x-hex, 65 bytes).
    pub signature: String,
}

impl Ledger {
    /// Stores a checkpoint (one per count; a later one at the same count replaces it).
    pub fn store_checkpoint(&self, cp: &Checkpoint) -> Result<()> {
        let count = to_i64(cp.count)?;
        self.with(|c| {
            c.execute("INSERT OR REPLACE INTO checkpoints (count, head, time, signer, signature) VALUES (?1, ?2, ?3, ?4, ?5)", params![count, cp.head, ts(cp.time), cp.signer, cp.signature])?;
            Ok(())
        })
    }

    /// Every checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.read(|c| checkpoints_conn(c))
    }
}

pub(super) fn checkpoints_conn(c: &Connection) -> Result<Vec<Checkpoint>> {
    let mut st = c.prepare("SELECT count, head, time, signer, signature FROM checkpoints ORDER BY count")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?)))?;
    rows.map(|row| {
        let (count, head, time, signer, signature) = row?;
        Ok(Checkpoint { count: count.max(0) as u64, head, time: parse_ts(&time)?, signer, signature })
    })
    .collect()
}

//! Grant rows: create, read, top up, revoke.

use super::{parse_ts, to_i64, ts, Ledger, LedgerError, Result};
use crate::grants::{Grant, Limits};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

const COLS: &str = "id, label, limits, spent, reserved, created_at, revoked_at";

pub(super) fn row_to_grant(r: &Row<'_>) -> rusqlite::Result<std::result::Result<Grant, LedgerError>> {
    let (id, label, limits, spent, reserved, created, revoked): (String, String, String, i64, i64, String, Option<String>) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
    Ok((|| {
        let limits: Limits = serde_json::from_str(&limits).map_err(|e| LedgerError::Corrupt(format!("grant {id} limits: {e}")))?;
        Ok(Grant {
            label,
            created_at: parse_ts(&created)?,
            revoked_at: revoked.as_deref().map(parse_ts).transpose()?,
            limits,
            spent: u64::try_from(spent).map_err(|_| LedgerError::Corrupt("negative spent".into()))?,
            reserved: u64::try_from(reserved).map_err(|_| LedgerError::Corrupt("negative reserved".into()))?,
            id,
        })
    })())
}

pub(super) fn load(conn: &rusqlite::Connection, id: &str) -> Result<Grant> {
    conn.query_row(&format!("SELECT {COLS} FROM grants WHERE id = ?1"), [id], row_to_grant).optional()?.ok_or_else(|| LedgerError::NoGrant(id.to_string()))?
}

impl Ledger {
    /// Stores a new grant whose token hashes to `token_hash`.
    pub fn create_grant(&self, id: &str, label: &str, limits: &Limits, token_hash: &str, now: DateTime<Utc>) -> Result<Grant> {
        let json = serde_json::to_string(limits).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        self.with(|c| {
            c.execute("INSERT INTO grants (id, label, token_hash, limits, budget, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![id, label, token_hash, json, to_i64(limits.budget)?, ts(now)])?;
            load(c, id)
        })
    }

    pub fn grant(&self, id: &str) -> Result<Grant> {
        self.with(|c| load(c, id))
    }

    /// The grant whose token hashes to `token_hash`, if any.
    pub fn grant_by_token_hash(&self, token_hash: &str) -> Result<Option<Grant>> {
        self.with(|c| {
            c.query_row(&format!("SELECT {COLS}, token_hash FROM grants WHERE token_hash = ?1"), [token_hash], |r| {
                let stored: String = r.get(7)?;
                Ok((row_to_grant(r)?, stored))
            })
            .optional()?
            .filter(|(_, stored)| crate::auth::ct_eq(stored.as_bytes(), token_hash.as_bytes()))
            .map(|(g, _)| g)
            .transpose()
        })
    }

    /// Every grant, newest first.
    pub fn list_grants(&self) -> Result<Vec<Grant>> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM grants ORDER BY created_at DESC, id DESC"))?;
            let rows = st.query_map([], row_to_grant)?;
            rows.map(|r| r?).collect()
        })
    }

    /// Adds `micros` to the grant's budget (refused on a revoked grant).
    pub fn top_up(&self, id: &str, micros: u64) -> Result<Grant> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut g = load(&tx, id)?;
            if g.revoked_at.is_some() {
                return Err(LedgerError::Revoked(id.to_string()));
            }
            g.limits.budget = g.limits.budget.checked_add(micros).filter(|b| *b <= i64::MAX as u64).ok_or(LedgerError::Overflow)?;
            let json = serde_json::to_string(&g.limits).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
            tx.execute("UPDATE grants SET budget = ?2, limits = ?3 WHERE id = ?1", params![id, to_i64(g.limits.budget)?, json])?;
            tx.commit()?;
            Ok(g)
        })
    }

    /// Revokes the grant (idempotent: the first revocation time is kept).
    pub fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> Result<Grant> {
        self.with(|c| {
            let n = c.execute("UPDATE grants SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1", params![id, ts(now)])?;
            if n == 0 {
                return Err(LedgerError::NoGrant(id.to_string()));
            }
            load(c, id)
        })
    }
}

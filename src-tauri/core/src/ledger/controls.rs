//! The user's controls over what is already stored: app settings (the "pause all spending"
//! switch survives a restart), edits of a live grant's limits, the undo of a revocation, and one
//! receipt with its place in the chain and its flags. Schema version 4.

use super::{grants::load, to_i64, ts, Ledger, LedgerError, Result};
use crate::grants::{Grant, Limits};
use crate::query::Flags;
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

/// The settings key of "pause all spending" (`1` on, `0` off).
pub const PAUSED: &str = "spending_paused";

/// Why an undo of a revocation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrevoke {
    /// Undone: the grant is active again.
    Done,
    /// The grant is not revoked.
    NotRevoked,
    /// It was revoked more than the undo window ago.
    TooLate,
    /// A request under it was decided since the revocation (refused, denied or settled).
    Decided,
}

impl Ledger {
    /// "Pause all spending" as stored (off when never set; see `pause`).
    pub fn spending_paused(&self) -> Result<bool> {
        Ok(self.setting(PAUSED)?.is_some_and(|v| v == "1"))
    }

    /// A setting's value, if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?))
    }

    /// Sets a setting (durably, before it takes effect).
    pub fn set_setting(&self, key: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
            c.execute("INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET value = ?2, updated_at = ?3", params![key, value, ts(now)])?;
            Ok(())
        })
    }

    /// Replaces a live grant's label and limits (the budget column follows `limits.budget`).
    /// Refused on a revoked grant; the budget must still cover what is spent and reserved.
    pub fn update_grant(&self, id: &str, label: &str, limits: &Limits) -> Result<Grant> {
        let json = serde_json::to_string(limits).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let g = load(&tx, id)?;
            if g.revoked_at.is_some() {
                return Err(LedgerError::Revoked(id.to_string()));
            }
            if g.spent.checked_add(g.reserved).is_none_or(|used| used > limits.budget) {
                return Err(LedgerError::Overflow);
            }
            tx.execute("UPDATE grants SET label = ?2, limits = ?3, budget = ?4 WHERE id = ?1", params![id, label, json, to_i64(limits.budget)?])?;
            let g = load(&tx, id)?;
            tx.commit()?;
            Ok(g)
        })
    }

    /// Takes back a revocation made at most `window` ago, if no request under the grant was
    /// decided since (no receipt at or after the revocation): then the revocation had no effect
    /// anyone saw. Checked and undone in one transaction.
    pub fn unrevoke_grant(&self, id: &str, now: DateTime<Utc>, window: chrono::Duration) -> Result<(Unrevoke, Grant)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let g = load(&tx, id)?;
            let Some(revoked_at) = g.revoked_at else { return Ok((Unrevoke::NotRevoked, g)) };
            // Whole milliseconds: stored times keep microseconds, the clock has nanoseconds.
            let age = (now - revoked_at).num_milliseconds();
            if age > window.num_milliseconds() || age < 0 {
                return Ok((Unrevoke::TooLate, g));
            }
            let since: i64 = tx.query_row("SELECT COUNT(*) FROM receipts WHERE grant_id = ?1 AND time >= ?2", params![id, ts(revoked_at)], |r| r.get(0))?;
            if since > 0 {
                return Ok((Unrevoke::Decided, g));
            }
            tx.execute("UPDATE grants SET revoked_at = NULL WHERE id = ?1 AND revoked_at = ?2", params![id, ts(revoked_at)])?;
            let g = load(&tx, id)?;
            tx.commit()?;
            Ok((Unrevoke::Done, g))
        })
    }

    /// One receipt (with its hash), its sequence number and its price-memory flags.
    pub fn receipt_detail(&self, id: &str) -> Result<Option<(Receipt, i64, Flags)>> {
        self.with(|c| {
            let row: Option<(i64, rusqlite::types::Value, String, Option<i64>)> = c
                .query_row("SELECT r.seq, r.body, r.hash, f.flags FROM receipts r LEFT JOIN receipt_facts f ON f.seq = r.seq WHERE r.id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            row.map(|(seq, body, hash, flags)| {
                let body = self.codec.text(c, (&body).into())?;
                let mut rec: Receipt = serde_json::from_str(&body).map_err(|e| LedgerError::Corrupt(format!("receipt #{seq}: {e}")))?;
                rec.hash = hash;
                Ok((rec, seq, Flags::from_bits(flags.unwrap_or(0).clamp(0, u32::MAX as i64) as u32)))
            })
            .transpose()
        })
    }
}

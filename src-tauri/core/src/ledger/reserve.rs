//! Reservations: budget set aside before a signature exists, then spent, released, or kept
//! while the outcome is unknown. The reservation is the promise that a budget is never overspent.

use super::grants::load;
use super::{to_i64, ts, Ledger, LedgerError, Result};
use crate::grants::Grant;
use crate::policy::{self, Refusal};
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

/// Budget set aside for one signed payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub grant_id: String,
    pub amount: u64,
    /// The signed authorization's `validBefore` (unix seconds): after it, it can't be settled.
    pub valid_before: u64,
}

/// How a reservation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Paid: the amount moves from reserved to spent.
    Spend,
    /// Never signed or provably not paid: the amount returns to the grant.
    Release,
    /// Signed and sent, outcome unknown: the amount stays reserved.
    KeepUnknown,
}

impl Ledger {
    /// In one `BEGIN IMMEDIATE` transaction: re-checks the grant (state, expiry, remaining
    /// budget) and reserves `micros`. The caller signs only after this returns `Ok(Ok(_))`.
    pub fn reserve(&self, id: &str, grant_id: &str, micros: u64, valid_before: u64, now: DateTime<Utc>) -> Result<std::result::Result<(Reservation, Grant), Refusal>> {
        self.reserve_payment(id, grant_id, micros, valid_before, None, now)
    }

    /// [`Ledger::reserve`], keeping with the reservation, in the same durable transaction, the
    /// receipt this payment gets if Purser stops before it ends (`draft`: outcome failed, reason
    /// `interrupted`, its authorization's nonce set). So the nonce is on disk before any signature
    /// exists, and a restart can write that receipt and reconcile the payment by its nonce on
    /// chain (see `recover`).
    pub fn reserve_payment(&self, id: &str, grant_id: &str, micros: u64, valid_before: u64, draft: Option<&Receipt>, now: DateTime<Utc>) -> Result<std::result::Result<(Reservation, Grant), Refusal>> {
        let (id, grant_id) = (id.to_string(), grant_id.to_string());
        let nonce = draft.and_then(|d| d.authorization_nonce.clone());
        let draft = draft.map(serde_json::to_string).transpose().map_err(|e| LedgerError::Corrupt(format!("draft receipt: {e}")))?;
        // A group-committed write: answered only once its COMMIT is durable.
        self.write(move |tx| {
            let mut g = load(tx, &grant_id)?;
            if let Err(refusal) = policy::check_budget(&g, micros, now) {
                return Ok(Err(refusal));
            }
            tx.execute(
                "INSERT INTO reservations (id, grant_id, amount, state, valid_before, created_at, updated_at, nonce, draft) VALUES (?1, ?2, ?3, 'reserved', ?4, ?5, ?5, ?6, ?7)",
                params![id, grant_id, to_i64(micros)?, to_i64(valid_before)?, ts(now), nonce, draft],
            )?;
            tx.execute("UPDATE grants SET reserved = reserved + ?2 WHERE id = ?1", params![grant_id, to_i64(micros)?])?;
            g.reserved += micros;
            Ok(Ok((Reservation { id, grant_id, amount: micros, valid_before }, g)))
        })
    }

    /// Reservations still holding budget (reserved or unknown), oldest first.
    pub fn open_reservations(&self) -> Result<Vec<(Reservation, String)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, grant_id, amount, valid_before, state FROM reservations WHERE state IN ('reserved', 'unknown') ORDER BY created_at")?;
            let rows = st.query_map([], |r| {
                let (amount, vb): (i64, i64) = (r.get(2)?, r.get(3)?);
                Ok((Reservation { id: r.get(0)?, grant_id: r.get(1)?, amount: amount as u64, valid_before: vb as u64 }, r.get::<_, String>(4)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

/// Moves a reservation to its end state inside the caller's transaction.
pub(super) fn apply(tx: &Connection, r: &Reservation, how: Settle, now: DateTime<Utc>) -> Result<()> {
    let state: Option<String> = tx.query_row("SELECT state FROM reservations WHERE id = ?1", [&r.id], |row| row.get(0)).optional()?;
    let state = state.ok_or_else(|| LedgerError::NoReservation(r.id.clone()))?;
    if state != "reserved" && state != "unknown" {
        return Err(LedgerError::Corrupt(format!("reservation {} is already {state}", r.id)));
    }
    let amount = to_i64(r.amount)?;
    let (new_state, grant_sql) = match how {
        Settle::Spend => ("settled", Some("UPDATE grants SET reserved = reserved - ?2, spent = spent + ?2 WHERE id = ?1")),
        Settle::Release => ("released", Some("UPDATE grants SET reserved = reserved - ?2 WHERE id = ?1")),
        Settle::KeepUnknown => ("unknown", None),
    };
    // Its draft receipt is no longer needed once a receipt records how it ended.
    tx.execute("UPDATE reservations SET state = ?2, updated_at = ?3, draft = NULL WHERE id = ?1", params![r.id, new_state, ts(now)])?;
    if let Some(sql) = grant_sql {
        tx.execute(sql, params![r.grant_id, amount])?;
    }
    Ok(())
}

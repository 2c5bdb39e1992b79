//! Crash recovery (schema version 6): what a reservation keeps so a payment interrupted by a
//! crash can be found again — its authorization's nonce and the receipt it gets if the process
//! dies (the "draft") — and the startup pass that turns the reservations a dead process left
//! `reserved` into `unknown` ones, each with its receipt, for the reconciler to decide by nonce.

use super::grants::load;
use super::receipts::append;
use super::reserve::{apply, Reservation, Settle};
use super::{Ledger, LedgerError, Result};
use crate::datadir::DirLock;
use crate::receipt::{DecidedBy, LedgerAfter, Outcome, Receipt};
use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;

/// The reason of a receipt written for a payment interrupted by a crash.
pub const INTERRUPTED: &str = "interrupted";

/// What one recovery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Receipts written, one per interrupted reservation (now `unknown`).
    pub receipts: Vec<String>,
    /// Of those, reservations without a recorded nonce (written by a version that kept none):
    /// the chain cannot decide them, so their budget stays reserved.
    pub without_nonce: usize,
    /// Micro-USD those reservations hold.
    pub micros: u64,
}

impl Ledger {
    /// Run once at startup by the data dir's owner (the [`DirLock`] is the proof: while a
    /// process owns the dir, its `reserved` rows are live requests). Every reservation still
    /// `reserved` belongs to a process that died mid-payment: its signature may have left, so in
    /// one transaction each becomes `unknown` (budget kept) and gets its draft receipt (failed,
    /// `interrupted`, detail `outcome_unknown`, with the nonce). The reconciler then asks the
    /// chain for that nonce: used → spent; unused once `validBefore` has passed → released.
    /// A ledger that cannot take writes (full disk) fails this pass; the rows stay `reserved`
    /// (their budget held, their nonce kept) for the next start.
    pub fn recover_interrupted(&self, _owner: &DirLock, now: DateTime<Utc>) -> Result<Recovered> {
        self.with(|c| {
            // Nothing interrupted (the usual start): no write transaction at all.
            let n: i64 = c.query_row("SELECT COUNT(*) FROM reservations WHERE state = 'reserved'", [], |r| r.get(0))?;
            if n == 0 {
                return Ok(Recovered::default());
            }
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(Reservation, Option<String>)> = {
                let mut st = tx.prepare("SELECT id, grant_id, amount, valid_before, draft FROM reservations WHERE state = 'reserved' ORDER BY created_at, id")?;
                let rows = st.query_map([], |r| {
                    let (amount, vb): (i64, i64) = (r.get(2)?, r.get(3)?);
                    Ok((Reservation { id: r.get(0)?, grant_id: r.get(1)?, amount: amount as u64, valid_before: vb as u64 }, r.get(4)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Recovered::default();
            for (r, draft) in rows {
                let mut rec = match draft {
                    Some(json) => serde_json::from_str::<Receipt>(&json).map_err(|e| LedgerError::Corrupt(format!("draft receipt of reservation {}: {e}", r.id)))?,
                    None => {
                        out.without_nonce += 1;
                        without_draft(&r, now)
                    }
                };
                apply(&tx, &r, Settle::KeepUnknown, now)?;
                if let Some(gid) = &rec.grant_id {
                    if let Ok(g) = load(&tx, gid) {
                        rec.ledger_after = Some(LedgerAfter::from(&g));
                    }
                }
                rec.hash = append(&tx, &self.codec, &mut rec)?;
                out.micros = out.micros.checked_add(r.amount).ok_or(LedgerError::Overflow)?;
                out.receipts.push(rec.id);
            }
            tx.commit()?;
            Ok(out)
        })
    }
}

/// The receipt of an interrupted reservation that kept no draft: what the row itself says.
fn without_draft(r: &Reservation, now: DateTime<Utc>) -> Receipt {
    let mut rec = Receipt::new(crate::clock::new_id(), now, "", "", "");
    rec.grant_id = Some(r.grant_id.clone());
    rec.reservation_id = Some(r.id.clone());
    rec.valid_before = Some(r.valid_before);
    let msg = format!(
        "Purser stopped while a payment of {} was in flight; its authorization's nonce was not recorded (an older version), so the chain cannot decide it and its budget stays reserved",
        crate::money::format_usd(r.amount)
    );
    rec.decide(Outcome::Failed, DecidedBy::Policy, crate::receipt::Reason::Interrupted, Some("nonce_unknown"), msg);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::GrantSpec;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let l = Ledger::open_in(&data).unwrap();
        let spec = GrantSpec { label: "t".into(), budget: "1.00".into(), expires: "1h".into(), hosts: vec!["x.com".into()], ..Default::default() };
        let (label, limits) = spec.validate(Utc::now()).unwrap();
        let g = l.create_grant("g1", &label, &limits, "hash1", Utc::now()).unwrap();
        (dir, data, g.id)
    }

    fn draft(id: &str, gid: &str, rid: &str, nonce: &str) -> Receipt {
        let mut r = Receipt::new(id.into(), Utc::now(), "GET", "http://x.com/a?req=7", "x.com");
        r.grant_id = Some(gid.into());
        r.reservation_id = Some(rid.into());
        r.authorization_nonce = Some(nonce.into());
        r.amount_atomic = Some("250000".into());
        r.decide(Outcome::Failed, DecidedBy::Auto, crate::receipt::Reason::Interrupted, Some("outcome_unknown"), "stopped");
        r
    }

    fn state(l: &Ledger, rid: &str) -> (String, Option<String>, Option<String>) {
        l.with(|c| Ok(c.query_row("SELECT state, nonce, draft FROM reservations WHERE id = ?1", [rid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)).unwrap()
    }

    #[test]
    fn a_crash_mid_payment_leaves_a_receipt_and_an_unknown_reservation_to_reconcile() {
        let (_d, data, gid) = setup();
        let now = Utc::now();
        let nonce = format!("0x{}", "ab".repeat(32));
        {
            // The process that "dies": two payments reserved, one of them ended normally.
            let l = Ledger::open_in(&data).unwrap();
            l.reserve_payment("r1", &gid, 250_000, 9_999_999_999, Some(&draft("rc1", &gid, "r1", &nonce)), now).unwrap().unwrap();
            assert_eq!(state(&l, "r1").1.as_deref(), Some(nonce.as_str()), "the nonce is on disk before any signature");
            let (r2, _) = l.reserve_payment("r2", &gid, 100_000, 9_999_999_999, Some(&draft("rc2", &gid, "r2", "0x02")), now).unwrap().unwrap();
            let mut done = draft("rc2", &gid, "r2", "0x02");
            done.decide(Outcome::Paid, DecidedBy::Auto, crate::receipt::Reason::Paid, None, "paid");
            l.finish(Some((&r2, Settle::Spend)), &mut done, now).unwrap();
            assert_eq!(state(&l, "r2").2, None, "an ended reservation drops its draft");
            // A row from before the nonce was recorded.
            l.reserve("r3", &gid, 50_000, 9_999_999_999, now).unwrap().unwrap();
        }
        let l = Ledger::open_in(&data).unwrap();
        let owner = crate::datadir::lock_exclusive(&data, crate::datadir::Owner::Daemon).unwrap();
        let rec = l.recover_interrupted(&owner, now).unwrap();
        assert_eq!(rec.receipts.len(), 2);
        assert_eq!((rec.without_nonce, rec.micros), (1, 300_000));
        assert_eq!(rec.receipts[0], "rc1", "the draft's receipt id is the one written");
        let r = l.receipt("rc1").unwrap().unwrap();
        assert_eq!((r.outcome, r.reason.as_str(), r.detail.as_deref()), (Outcome::Failed, INTERRUPTED, Some("outcome_unknown")));
        assert_eq!(r.authorization_nonce.as_deref(), Some(nonce.as_str()));
        assert_eq!(r.ledger_after.as_ref().unwrap().reserved_atomic, "300000");
        assert_eq!(state(&l, "r1"), ("unknown".into(), Some(nonce.clone()), None));
        assert_eq!(state(&l, "r3").0, "unknown");
        // Budget is neither lost nor counted twice: still reserved, spent unchanged.
        let g = l.grant(&gid).unwrap();
        assert_eq!((g.spent, g.reserved, g.remaining()), (100_000, 300_000, 600_000));
        assert!(matches!(l.verify_chain().unwrap(), super::super::ChainReport::Intact { count: 3, .. }));
        // Nothing left to recover; a second pass writes nothing.
        assert_eq!(l.recover_interrupted(&owner, now).unwrap(), Recovered::default());
        // The reconciler picks the nonce-bearing one up and ends it by the chain's answer.
        assert_eq!(l.queue_reconciliations(now).unwrap(), 2, "rc2 (paid) and rc1 (unknown, with a nonce)");
        let moved = l.set_reconciliation("rc1", "confirmed", "used", Some(("r1", Settle::Spend)), now).unwrap();
        assert_eq!(moved, Some(250_000));
        let g = l.grant(&gid).unwrap();
        assert_eq!((g.spent, g.reserved, g.remaining()), (350_000, 50_000, 600_000));
    }
}

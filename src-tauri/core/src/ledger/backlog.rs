//! Owns the receipts the ledger could not write (a full disk, a read-only database file): they
//! are never dropped silently. Each one is logged in full (JSON, at error level, on stderr),
//! kept in memory in decision order together with the reservation change it records, and written
//! (receipt and reservation in one transaction, as [`Ledger::finish`] does) as soon as the ledger
//! takes writes again: before the next receipt, and by a retry task every [`RETRY_EVERY`].
//!
//! Money is safe without them: a payment is signed only after its reservation is durably
//! committed, so while the ledger cannot write, nothing is paid (the reservation itself fails and
//! the agent gets `503 {"code":"ledger_unavailable"}` without a receipt id). A parked receipt
//! whose reservation was already committed keeps that budget reserved until it is written.
//! If the process ends before the ledger recovers, the parked receipts survive only in the log
//! (their reservations stay open and reconciliation settles them by nonce). At most
//! [`MAX_PARKED`] are kept; beyond that only the log has them.

use super::reserve::{Reservation, Settle};
use super::{Ledger, LedgerError, Result};
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Most receipts kept in memory while the ledger cannot write.
pub const MAX_PARKED: usize = 10_000;
/// How often the retry task tries to write parked receipts.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// One decision waiting to be written.
struct Parked {
    reservation: Option<(Reservation, Settle)>,
    receipt: Receipt,
    now: DateTime<Utc>,
}

/// The parked receipts of one ledger (shared by its clones).
#[derive(Default)]
pub(super) struct Backlog {
    items: Mutex<VecDeque<Parked>>,
    /// Held while writing parked receipts, so that two writers never write the same one.
    flushing: Mutex<()>,
    /// A retry task is running.
    retrying: AtomicBool,
}

impl Ledger {
    /// [`Ledger::finish`], never losing the receipt: parked receipts are written first (so the
    /// chain keeps decision order); if the ledger cannot write, this receipt is parked too and
    /// the error returned (the caller answers without a receipt id).
    pub fn finish_or_park(&self, reservation: Option<(&Reservation, Settle)>, receipt: &mut Receipt, now: DateTime<Utc>) -> Result<()> {
        let result = match self.flush_parked() {
            Ok(_) => self.finish(reservation, receipt, now),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if e.code() == "ledger_unavailable" {
                self.park(reservation.map(|(r, s)| (r.clone(), s)), receipt.clone(), now, e);
            }
        }
        result
    }

    /// Receipts waiting to be written.
    pub fn parked(&self) -> usize {
        self.backlog.items.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Writes parked receipts, oldest first, each in its own transaction; stops at the first
    /// that still cannot be written. Returns how many were written.
    pub fn flush_parked(&self) -> Result<usize> {
        if self.parked() == 0 {
            return Ok(0);
        }
        let _one = self.backlog.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let mut written = 0;
        loop {
            let Some(mut item) = self.backlog.items.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                return Ok(written);
            };
            // A COMMIT reported as failed may still have reached the disk: never write twice.
            if matches!(self.receipt(&item.receipt.id), Ok(Some(_))) {
                continue;
            }
            match self.finish(item.reservation.as_ref().map(|(r, s)| (r, *s)), &mut item.receipt, item.now) {
                Ok(()) => {
                    written += 1;
                    tracing::warn!(receipt = %item.receipt.id, "parked receipt written");
                }
                Err(e) if e.code() == "ledger_unavailable" => {
                    self.backlog.items.lock().unwrap_or_else(|p| p.into_inner()).push_front(item);
                    return Err(e);
                }
                Err(e) => {
                    let body = serde_json::to_string(&item.receipt).unwrap_or_default();
                    tracing::error!(error = %e, receipt = %body, "a parked receipt cannot be written; it is only in this log");
                }
            }
        }
    }

    fn park(&self, reservation: Option<(Reservation, Settle)>, receipt: Receipt, now: DateTime<Utc>, why: &LedgerError) {
        let body = serde_json::to_string(&receipt).unwrap_or_default();
        let mut items = self.backlog.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.len() >= MAX_PARKED {
            tracing::error!(error = %why, receipt = %body, "ledger unavailable and {MAX_PARKED} receipts already parked: this receipt is only in this log");
            return;
        }
        tracing::error!(error = %why, receipt = %body, "ledger unavailable: receipt parked in memory until it can be written");
        items.push_back(Parked { reservation, receipt, now });
        drop(items);
        self.spawn_retry();
    }

    /// Starts the retry task (one per ledger) on the current tokio runtime, if there is one.
    fn spawn_retry(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        if self.backlog.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        rt.spawn(async move {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                let l = this.clone();
                let _ = tokio::task::spawn_blocking(move || l.flush_parked()).await;
                if this.parked() == 0 {
                    this.backlog.retrying.store(false, Ordering::SeqCst);
                    // Parked after the check but before the flag fell: keep going.
                    if this.parked() == 0 || this.backlog.retrying.swap(true, Ordering::SeqCst) {
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settle;
    use super::*;
    use crate::grants::GrantSpec;
    use crate::receipt::{DecidedBy, Outcome};

    fn read_only(l: &Ledger, on: bool) {
        // `query_only` makes every write fail like a read-only file: SQLITE_READONLY.
        l.with(|c| Ok(c.pragma_update(None, "query_only", if on { "ON" } else { "OFF" })?)).unwrap();
    }

    fn receipt(id: &str, grant: &str, reason: &str) -> Receipt {
        let mut r = Receipt::new(id.into(), Utc::now(), "GET", "http://x.com/a", "x.com");
        r.grant_id = Some(grant.into());
        r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::parse(reason).expect("a reason"), None, "no");
        r
    }

    #[test]
    fn unwritable_receipts_are_parked_then_written_in_order_with_their_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(&dir.path().join("data")).unwrap();
        let spec = GrantSpec { label: "t".into(), budget: "1.00".into(), expires: "1h".into(), hosts: vec!["x.com".into()], ..Default::default() };
        let (label, limits) = spec.validate(Utc::now()).unwrap();
        let gid = l.create_grant("g1", &label, &limits, "hash1", Utc::now()).unwrap().id;
        let now = Utc::now();
        let (res, _) = l.reserve("r1", &gid, 10_000, 0, now).unwrap().unwrap();

        read_only(&l, true);
        let err = l.finish_or_park(Some((&res, Settle::Spend)), &mut receipt("a", &gid, "paid"), now).unwrap_err();
        assert_eq!(err.code(), "ledger_unavailable");
        assert!(l.finish_or_park(None, &mut receipt("b", &gid, "over_budget"), now).is_err());
        assert_eq!(l.parked(), 2);
        assert!(l.flush_parked().is_err(), "still unwritable: nothing is written, nothing dropped");
        assert_eq!(l.parked(), 2);
        assert!(l.receipt("a").unwrap().is_none());

        read_only(&l, false);
        // The next receipt writes the parked ones first, in decision order.
        l.finish_or_park(None, &mut receipt("c", &gid, "over_budget"), now).unwrap();
        assert_eq!(l.parked(), 0);
        let ids: Vec<String> = l.list_receipts(10).unwrap().into_iter().rev().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let g = l.grant(&gid).unwrap();
        assert_eq!((g.spent, g.reserved), (10_000, 0), "the parked receipt settled its reservation");
        assert!(matches!(l.verify_chain().unwrap(), super::super::ChainReport::Intact { count: 3, .. }));
        assert_eq!(l.flush_parked().unwrap(), 0, "nothing is written twice");
    }
}

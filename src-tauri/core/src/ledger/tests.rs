//! Ledger tests on a real SQLite file: reservations under concurrency, the hash chain, tampering.

use super::*;
use crate::grants::GrantSpec;
use crate::receipt::{DecidedBy, Outcome, Receipt};
use chrono::Utc;

fn ledger_with_grant(budget: &str) -> (tempfile::TempDir, Ledger, String) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(&dir.path().join("data")).unwrap();
    let spec = GrantSpec { label: "t".into(), budget: budget.into(), expires: "1h".into(), hosts: vec!["x.com".into()], ..Default::default() };
    let (label, limits) = spec.validate(Utc::now()).unwrap();
    let g = l.create_grant("g1", &label, &limits, "hash1", Utc::now()).unwrap();
    (dir, l, g.id)
}

fn receipt(id: &str, grant: &str) -> Receipt {
    let mut r = Receipt::new(id.into(), Utc::now(), "GET", "http://x.com/a", "x.com");
    r.grant_id = Some(grant.into());
    r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::OverBudget, None, "no");
    r.amount_atomic = Some("10".into());
    r
}

#[test]
fn reservations_never_overspend_under_threads() {
    let (_d, l, gid) = ledger_with_grant("1.00");
    let now = Utc::now();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (l, gid) = (l.clone(), gid.clone());
            std::thread::spawn(move || (0..30).filter(|i| l.reserve(&format!("r{t}-{i}"), &gid, 10_000, 0, now).unwrap().is_ok()).count())
        })
        .collect();
    let ok: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ok, 100);
    let g = l.grant(&gid).unwrap();
    assert_eq!((g.reserved, g.spent, g.remaining()), (1_000_000, 0, 0));
    assert_eq!(l.reserve("late", &gid, 1, 0, now).unwrap().unwrap_err(), crate::policy::Refusal::OverBudget);
}

#[test]
fn finish_moves_money_with_the_receipt() {
    let (_d, l, gid) = ledger_with_grant("1.00");
    let now = Utc::now();
    let (a, _) = l.reserve("a", &gid, 300_000, 0, now).unwrap().unwrap();
    let (b, _) = l.reserve("b", &gid, 200_000, 0, now).unwrap().unwrap();
    let (c, _) = l.reserve("c", &gid, 100_000, 0, now).unwrap().unwrap();
    let mut ra = receipt("ra", &gid);
    l.finish(Some((&a, Settle::Spend)), &mut ra, now).unwrap();
    let after = ra.ledger_after.clone().unwrap();
    assert_eq!((after.spent_atomic.as_str(), after.reserved_atomic.as_str(), after.remaining_atomic.as_str()), ("300000", "300000", "400000"));
    l.finish(Some((&b, Settle::Release)), &mut receipt("rb", &gid), now).unwrap();
    l.finish(Some((&c, Settle::KeepUnknown)), &mut receipt("rc", &gid), now).unwrap();
    let g = l.grant(&gid).unwrap();
    assert_eq!((g.spent, g.reserved, g.remaining()), (300_000, 100_000, 600_000));
    assert_eq!(l.open_reservations().unwrap().len(), 1);
    // A reservation ends once.
    assert!(l.finish(Some((&a, Settle::Spend)), &mut receipt("again", &gid), now).is_err());
    assert!(l.receipt("again").unwrap().is_none(), "a failed finish writes no receipt");
    // Revoked grants can't reserve or be topped up.
    l.revoke_grant(&gid, now).unwrap();
    assert_eq!(l.reserve("d", &gid, 1, 0, now).unwrap().unwrap_err(), crate::policy::Refusal::Revoked);
    assert!(matches!(l.top_up(&gid, 1), Err(LedgerError::Revoked(_))));
}

#[test]
fn chain_links_and_names_the_first_tampered_receipt() {
    let (_d, l, gid) = ledger_with_grant("1.00");
    for i in 0..5 {
        l.record(&mut receipt(&format!("r{i}"), &gid), Utc::now()).unwrap();
    }
    let list = l.list_receipts(3).unwrap();
    assert_eq!(list.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r4", "r3", "r2"]);
    assert_eq!(list[0].prev_hash, list[1].hash);
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 5, .. }));
    // Append-only: the schema refuses updates...
    assert!(l.with(|c| Ok(c.execute("UPDATE receipts SET reason = 'paid' WHERE id = 'r2'", [])?)).is_err());
    // ...but someone with the file can drop the trigger; the chain still catches it.
    l.with(|c| Ok(c.execute_batch("DROP TRIGGER receipts_no_update; UPDATE receipts SET amount_atomic = '999' WHERE id = 'r2';")?)).unwrap();
    match l.verify_chain().unwrap() {
        ChainReport::Broken { id, .. } => assert_eq!(id, "r2"),
        other => panic!("{other:?}"),
    }
    l.with(|c| Ok(c.execute_batch("UPDATE receipts SET amount_atomic = '10' WHERE id = 'r2'; UPDATE receipts SET body = replace(body, 'over_budget', 'paid') WHERE id = 'r3';")?)).unwrap();
    match l.verify_chain().unwrap() {
        ChainReport::Broken { id, .. } => assert_eq!(id, "r3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (d, l, gid) = ledger_with_grant("1.00");
    l.record(&mut receipt("r", &gid), Utc::now()).unwrap();
    let dir = d.path().join("data");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", e.path());
    }
}

#[test]
fn a_long_read_neither_blocks_the_writer_nor_sees_its_later_commits() {
    let (_d, l, gid) = ledger_with_grant("1.00");
    let now = Utc::now();
    let count = |c: &Connection| -> Result<i64> { Ok(c.query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))?) };
    let seen = l
        .read(|c| {
            let tx = c.transaction()?;
            let before = count(&tx)?;
            // The writer commits while this read transaction is open (with one shared connection,
            // this call would wait on the read forever).
            assert!(l.reserve("w1", &gid, 10, 0, now).unwrap().is_ok());
            let during = count(&tx)?;
            Ok((before, during))
        })
        .unwrap();
    assert_eq!(seen.0, seen.1, "a read transaction keeps its snapshot");
    assert_eq!(l.read(|c| count(c)).unwrap(), seen.0 + 1, "the next read sees the commit");
    assert!(l.read(|c| Ok(c.execute("DELETE FROM grants", [])?)).is_err(), "pool connections are read-only");
}

#[test]
fn a_long_history_is_queued_for_reconciliation_in_bounded_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = Ledger::open_in(&data).unwrap();
    let now = Utc::now();
    let opts = crate::search::seed::SeedOptions { count: 3_000, batch: 3_000, ..Default::default() };
    crate::search::seed::seed(&l, &data, &opts, now, |_, _| {}).unwrap();
    // Bodies past the first 1,000 may be compressed (once the dictionary is trained): read
    // them through the codec, never with SQL's JSON functions.
    let (candidates, with_tx): (i64, i64) = l
        .read(|c| {
            let mut st = c.prepare("SELECT outcome, body FROM receipts WHERE outcome IN ('paid', 'failed')")?;
            let mut rows = st.query([])?;
            let (mut n, mut tx) = (0, 0);
            while let Some(r) = rows.next()? {
                n += 1;
                let body: serde_json::Value = serde_json::from_str(&l.codec.text(c, r.get_ref(1)?)?).unwrap();
                tx += i64::from(r.get::<_, String>(0)? == "paid" && !body["tx"].is_null());
            }
            Ok((n, tx))
        })
        .unwrap();
    let max = super::chain::QUEUE_MAX_SCAN;
    assert!(candidates > max && candidates <= 2 * max && with_tx > 0, "the fixture needs more candidates than one round scans ({candidates})");
    let first = l.queue_reconciliations(now).unwrap();
    let mark: i64 = l.setting("reconcile_scanned_seq").unwrap().unwrap().parse().unwrap();
    let scanned: i64 = l.read(|c| Ok(c.query_row("SELECT count(*) FROM receipts WHERE seq <= ?1 AND outcome IN ('paid', 'failed')", [mark], |r| r.get(0))?)).unwrap();
    assert_eq!(scanned, max, "one round looks at QUEUE_MAX_SCAN receipts at most");
    let second = l.queue_reconciliations(now).unwrap();
    assert_eq!(l.queue_reconciliations(now).unwrap(), 0, "nothing is queued twice");
    assert_eq!((first + second) as i64, with_tx, "every paid receipt with a transaction is queued once");
    assert_eq!(l.pending_reconciliations(usize::MAX >> 1).unwrap().len() as i64, with_tx);
}

//! The ledger audit on a real SQLite file: grant totals against spent reservations and their
//! receipts, nonce commitments, archives that must exist and join, heads and checkpoints.

use super::*;
use crate::grants::GrantSpec;
use crate::receipt::{DecidedBy, Outcome, Receipt};
use chrono::Utc;

fn ledger_with_grant() -> (tempfile::TempDir, Ledger, String) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(&dir.path().join("data")).unwrap();
    let spec = GrantSpec { label: "t".into(), budget: "1.00".into(), expires: "1h".into(), hosts: vec!["x.com".into()], ..Default::default() };
    let (label, limits) = spec.validate(Utc::now()).unwrap();
    let g = l.create_grant("g1", &label, &limits, "hash1", Utc::now()).unwrap();
    (dir, l, g.id)
}

/// A payment of `micros` as the pipeline makes it: reserved, its nonce committed to the head
/// as read, then paid (or failed with its outcome unknown).
fn pay(l: &Ledger, gid: &str, id: &str, micros: u64, paid: bool) -> Receipt {
    let now = Utc::now();
    let (res, _) = l.reserve(&format!("res-{id}"), gid, micros, 0, now).unwrap().unwrap();
    let mut r = Receipt::new(id.into(), now, "GET", "http://x.com/a", "x.com");
    r.grant_id = Some(gid.into());
    r.reservation_id = Some(res.id.clone());
    r.amount_usd = Some(crate::money::micros_decimal(micros));
    let c = crate::anchor::committed_nonce(&crate::clock::OsNonces, l, id);
    c.stamp(&mut r);
    r.authorization_nonce = Some(c.nonce.to_string());
    let how = if paid { Settle::Spend } else { Settle::KeepUnknown };
    r.decide(if paid { Outcome::Paid } else { Outcome::Failed }, DecidedBy::Auto, if paid { crate::receipt::Reason::Paid } else { crate::receipt::Reason::SettlementFailed }, None, "m");
    l.finish(Some((&res, how)), &mut r, now).unwrap();
    r
}

fn problems(l: &Ledger, expect: Option<&str>) -> Vec<String> {
    l.audit(expect).unwrap().problems
}

fn raw(l: &Ledger, sql: &str) {
    l.with(|c| {
        c.execute_batch("DROP TRIGGER receipts_no_update; DROP TRIGGER receipts_no_delete;")?;
        c.execute_batch(sql)?;
        c.execute_batch(
            "CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
             CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;",
        )?;
        Ok(())
    })
    .unwrap();
}

fn has(p: &[String], needle: &str) -> bool {
    p.iter().any(|x| x.contains(needle))
}

#[test]
fn spent_totals_must_be_the_receipts_and_a_removed_or_changed_one_is_named() {
    let (_d, l, gid) = ledger_with_grant();
    pay(&l, &gid, "p1", 1_000, true);
    pay(&l, &gid, "p2", 2_000, true);
    let unknown = pay(&l, &gid, "p3", 4_000, false);
    // Reconciled as used on chain: spent, accounted for by the failed receipt.
    l.set_reconciliation(&unknown.id, "confirmed", "used", Some(("res-p3", Settle::Spend)), Utc::now()).unwrap();
    pay(&l, &gid, "p4", 8_000, true);
    assert_eq!(l.grant(&gid).unwrap().spent, 15_000);
    assert_eq!(problems(&l, None), Vec::<String>::new());

    let (_d2, l2, gid2) = ledger_with_grant();
    pay(&l2, &gid2, "q1", 1_000, true);
    pay(&l2, &gid2, "q2", 2_000, true);
    raw(&l2, "DELETE FROM receipts WHERE id = 'q2'; UPDATE sqlite_sequence SET seq = 1 WHERE name = 'receipts';");
    assert!(matches!(l2.verify_chain().unwrap(), ChainReport::Intact { .. }), "the hash links alone do not see it");
    let p = problems(&l2, None);
    assert!(has(&p, "reservation res-q2 of grant g1 spent $0.002 but no receipt in the chain records it"), "{p:?}");

    raw(&l2, "UPDATE grants SET spent = 7 WHERE id = 'g1'");
    assert!(has(&problems(&l2, None), "grant g1 has spent $0.000007 but its spent reservations sum to $0.003"));
}

#[test]
fn nonce_commitments_recompute_and_point_to_an_earlier_receipt() {
    let (_d, l, gid) = ledger_with_grant();
    let first = pay(&l, &gid, "p1", 1_000, true);
    assert_eq!(first.nonce_commits_to.as_deref(), Some(GENESIS_HASH), "the first commits to genesis");
    let second = pay(&l, &gid, "p2", 1_000, true);
    assert_eq!(second.nonce_commits_to.as_deref(), Some(first.hash.as_str()), "the head as read when signing");
    assert_eq!(crate::anchor::commitment(&first.hash, "p2", second.nonce_salt.as_deref().unwrap()).unwrap().to_string(), second.authorization_nonce.clone().unwrap());
    assert!(problems(&l, None).is_empty());

    // The check itself, on receipts as a rewrite would leave them.
    let mut w = super::audit::tests_walk();
    let mut r = second.clone();
    w.visit(1, &first).unwrap();
    r.nonce_commits_to = Some("ab".repeat(32));
    w.visit(2, &r).unwrap();
    let mut r3 = second.clone();
    r3.id = "p3".into();
    w.visit(3, &r3).unwrap();
    let mut r4 = second.clone();
    r4.id = "p4".into();
    r4.nonce_salt = None;
    w.visit(4, &r4).unwrap();
    let p = super::audit::tests_problems(w);
    assert!(has(&p, "receipt p2 (#2): its nonce commits to head abab"), "{p:?}");
    assert!(has(&p, "receipt p3 (#3): its nonce 0x") && has(&p, "is not the commitment"), "{p:?}");
    assert!(has(&p, "receipt p4 (#4) was paid with a nonce that commits to no head"), "{p:?}");
}

#[test]
fn archives_must_exist_and_a_head_kept_before_must_be_in_the_chain() {
    let (d, l, gid) = ledger_with_grant();
    let first = pay(&l, &gid, "p1", 1_000, true);
    pay(&l, &gid, "p2", 1_000, true);
    let file = d.path().join("archive.db");
    let rep = l.archive_before(Utc::now() + chrono::Duration::seconds(5), &file, Utc::now()).unwrap();
    assert_eq!(rep.moved, 2);
    let last = pay(&l, &gid, "p3", 1_000, true);
    assert_eq!(l.head().unwrap(), (3, last.hash.clone()));
    assert!(problems(&l, Some(&first.hash)).is_empty(), "{:?}", problems(&l, Some(&first.hash)));
    assert!(has(&problems(&l, Some(&"cd".repeat(32))), "the expected head cdcd"));

    std::fs::rename(&file, d.path().join("moved.db")).unwrap();
    let p = problems(&l, None);
    assert!(has(&p, &format!("archive anchor #2 names {}, which does not exist", file.display())), "{p:?}");
    std::fs::rename(d.path().join("moved.db"), &file).unwrap();
    assert!(problems(&l, None).is_empty());
    // An anchor pointing past what the archive holds.
    l.with(|c| Ok(c.execute("UPDATE receipt_archives SET last_hash = ?1", [&"ef".repeat(32)])?)).unwrap();
    assert!(has(&problems(&l, None), "does not hold receipt #2"));
}

#[test]
fn checkpoints_are_signed_by_the_wallet_and_sit_at_their_position() {
    let (_d, l, gid) = ledger_with_grant();
    let w = crate::wallet::Wallet::from_key_hex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d").unwrap();
    let now = Utc::now();
    assert!(crate::anchor::checkpoint(&l, &w, now, None).unwrap().is_none(), "nothing to checkpoint");
    pay(&l, &gid, "p1", 1_000, true);
    assert!(crate::anchor::checkpoint(&l, &w, now, Some(2)).unwrap().is_none(), "not due yet");
    let p2 = pay(&l, &gid, "p2", 1_000, true);
    let cp = crate::anchor::checkpoint(&l, &w, now, Some(2)).unwrap().expect("due at 2");
    assert_eq!((cp.count, cp.head.as_str()), (2, p2.hash.as_str()));
    pay(&l, &gid, "p3", 1_000, true);
    assert_eq!(crate::anchor::checkpoint(&l, &w, now, None).unwrap().map(|c| c.count), Some(3), "at shutdown");
    let a = l.audit(None).unwrap();
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert!(crate::anchor::check_signatures(&a.checkpoints, w.address()).is_empty());
    let other = crate::wallet::Wallet::from_key_hex("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a").unwrap();
    assert_eq!(crate::anchor::check_signatures(&a.checkpoints, other.address()).len(), 2, "another key's address");

    // Truncated back past the last checkpoint.
    raw(&l, "DELETE FROM receipts WHERE seq = 3; UPDATE sqlite_sequence SET seq = 2 WHERE name = 'receipts';");
    assert!(has(&problems(&l, None), "checkpoint #3"));
    // The checkpoint moved back with it: its signature no longer covers it.
    l.with(|c| Ok(c.execute("UPDATE checkpoints SET count = 2, head = ?1 WHERE count = 3", [&p2.hash])?)).unwrap_err();
    l.with(|c| Ok(c.execute_batch(&format!("DELETE FROM checkpoints WHERE count = 2; UPDATE checkpoints SET count = 2, head = '{}' WHERE count = 3;", p2.hash))?)).unwrap();
    let a = l.audit(None).unwrap();
    let bad = crate::anchor::check_signatures(&a.checkpoints, w.address());
    assert!(has(&bad, "checkpoint #2") && has(&bad, "not signed by the wallet"), "{bad:?}");
}

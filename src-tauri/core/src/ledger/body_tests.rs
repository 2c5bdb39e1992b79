//! Compressed bodies: exact round trips through every reader, the dictionary's life cycle, and
//! tampering with a compressed body or a dictionary reported by `verify`, never papered over.

use super::*;
use crate::ledger::{ChainReport, Ledger};
use crate::receipt::{DecidedBy, Outcome, Receipt};
use chrono::{Duration, TimeZone, Utc};
use sha2::Digest;
use std::time::Duration as StdDuration;

fn receipt(i: usize) -> Receipt {
    let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::seconds(i as i64 * 7);
    let mut r = Receipt::new(format!("r{i:06}"), t, "GET", &format!("https://api{}.example.com/v1/items/{i}?q=w{}", i % 7, i % 13), &format!("api{}.example.com", i % 7));
    r.outcome = if i.is_multiple_of(3) { Outcome::Refused } else { Outcome::Paid };
    r.decided_by = DecidedBy::Auto;
    r.reason = if i.is_multiple_of(3) { "over_budget".into() } else { "paid".into() };
    r.intent = Some(format!("fetch item {i} for the weekly report, café ☕ {}", "x".repeat(i % 50)));
    r.challenge = Some(serde_json::json!({"x402Version": 2, "resource": {"url": r.url, "description": "an item"},
        "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": (1000 + i).to_string(), "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2", "f": 0.1 + i as f64}}]}));
    r
}

fn stored_kinds(l: &Ledger) -> (i64, i64) {
    l.with(|c| Ok(c.query_row("SELECT sum(typeof(body) = 'text'), sum(typeof(body) = 'blob') FROM receipts", [], |r| Ok((r.get(0)?, r.get(1)?)))?)).unwrap()
}

/// Fills a ledger past the first training point, waiting for the dictionary, and returns the
/// receipts as written.
fn filled(n: usize) -> (tempfile::TempDir, Ledger, Vec<Receipt>) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let mut all = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let mut batch: Vec<Receipt> = chunk.iter().map(|i| receipt(*i)).collect();
        l.record_batch(&mut batch).unwrap();
        assert!(l.wait_for_body_dictionary(StdDuration::from_secs(30)));
        all.extend(batch);
    }
    (dir, l, all)
}

#[test]
fn bodies_are_text_until_a_dictionary_is_trained_then_compressed_and_read_back_exactly() {
    let (_d, l, written) = filled(1_500);
    let (text, blob) = stored_kinds(&l);
    assert_eq!(text + blob, 1_500);
    assert!(text >= TRAIN_AFTER, "the first {TRAIN_AFTER} stay text: {text}");
    assert!(blob >= 250, "bodies after the dictionary are compressed: {blob}");
    let dicts: i64 = l.with(|c| Ok(c.query_row("SELECT count(*) FROM body_dicts", [], |r| r.get(0))?)).unwrap();
    assert_eq!(dicts, 1);
    // Every reader gives back the exact hashed text.
    assert_eq!(l.verify_chain().unwrap(), ChainReport::Intact { count: 1_500, head: written.last().unwrap().hash.clone() });
    for w in [&written[0], &written[1_499], &written[1_300]] {
        let got = l.receipt(&w.id).unwrap().unwrap();
        assert_eq!(serde_json::to_value(&got).unwrap(), serde_json::to_value(w).unwrap());
    }
    let newest = l.list_receipts(3).unwrap();
    assert_eq!(newest[0].id, written[1_499].id);
    // Compressed bodies are much smaller than text.
    let (t_len, b_len): (f64, f64) = l
        .with(|c| {
            Ok(c.query_row("SELECT avg(CASE WHEN typeof(body) = 'text' THEN length(body) END), avg(CASE WHEN typeof(body) = 'blob' THEN length(body) END) FROM receipts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .unwrap();
    assert!(b_len * 3.0 < t_len, "compressed {b_len} vs text {t_len}");
    // A reader of its own (a fresh codec) reads the file too.
    let c = rusqlite::Connection::open(l.path()).unwrap();
    let v: rusqlite::types::Value = c.query_row("SELECT body FROM receipts ORDER BY seq DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert!(matches!(v, rusqlite::types::Value::Blob(_)));
    let body = read_body(&c, (&v).into()).unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(body.as_bytes())), written[1_499].hash);
}

#[test]
fn a_ledger_trains_again_as_it_grows_tenfold() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(dir.path()).unwrap();
    let codec = Arc::new(BodyCodec::default());
    // Drive the codec directly with sequence numbers past each training point.
    l.with(|c| {
        for i in 0..1_200 {
            let mut r = receipt(i);
            crate::ledger::receipts::append(c, &codec, &mut r)?;
        }
        Ok(())
    })
    .unwrap();
    assert!(codec.wait_for_training(StdDuration::from_secs(30)));
    let stored = l.with(|c| codec.store(c, 10_000, "{\"a\":1}")).unwrap();
    assert!(matches!(stored, Value::Blob(_)));
    assert!(codec.wait_for_training(StdDuration::from_secs(30)));
    l.with(|c| codec.store(c, 10_001, "{\"a\":2}")).unwrap();
    let rows: Vec<i64> = l.with(|c| Ok(c.prepare("SELECT trained_at_seq FROM body_dicts ORDER BY id")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0] >= TRAIN_AFTER && rows[0] < 1_300 && rows[1] == 10_000, "{rows:?}");
}

#[test]
fn tampering_with_a_compressed_body_or_its_dictionary_is_reported_by_verify() {
    let (_d, l, written) = filled(1_300);
    let target: (i64, Vec<u8>) = l.with(|c| Ok(c.query_row("SELECT seq, body FROM receipts WHERE typeof(body) = 'blob' ORDER BY seq LIMIT 1 OFFSET 5", [], |r| Ok((r.get(0)?, r.get(1)?)))?)).unwrap();
    let path = l.path().to_path_buf();
    drop(l);
    let tamper = || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("DROP TRIGGER IF EXISTS receipts_no_update; DROP TRIGGER IF EXISTS body_dicts_no_update;").unwrap();
        c
    };
    // 1. One byte of a compressed body flipped: that receipt is named.
    {
        let c = tamper();
        let mut b = target.1.clone();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        c.execute("UPDATE receipts SET body = ?1 WHERE seq = ?2", params![b, target.0]).unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    match l.verify_chain().unwrap() {
        ChainReport::Broken { seq, .. } => assert_eq!(seq, target.0),
        other => panic!("a flipped byte went unnoticed: {other:?}"),
    }
    assert!(l.receipt(&written[(target.0 - 1) as usize].id).is_err(), "a reader gets a named error, not a wrong receipt");
    drop(l);
    // 2. Restored, then the dictionary altered: the first compressed receipt is named.
    {
        let c = tamper();
        c.execute("UPDATE receipts SET body = ?1 WHERE seq = ?2", params![target.1, target.0]).unwrap();
        c.execute("UPDATE body_dicts SET dict = substr(dict, 1, 100) || zeroblob(10) || substr(dict, 111)", []).unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    let first_blob: i64 = l.with(|c| Ok(c.query_row("SELECT min(seq) FROM receipts WHERE typeof(body) = 'blob'", [], |r| r.get(0))?)).unwrap();
    match l.verify_chain().unwrap() {
        ChainReport::Broken { seq, why, .. } => assert!(seq == first_blob && why.contains("body"), "{seq} {why}"),
        other => panic!("an altered dictionary went unnoticed: {other:?}"),
    }
}

#[test]
fn bad_stored_values_are_named_errors() {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    let codec = BodyCodec::default();
    for (name, v) in [
        ("empty blob", Value::Blob(vec![])),
        ("unknown tag", Value::Blob(vec![9, 1, 0, 0, 0, 1, 2])),
        ("no frame", Value::Blob(vec![1, 1, 0, 0, 0])),
        ("garbage frame", Value::Blob(vec![1, 1, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd, 0, 0x58, 1, 0])),
        ("integer", Value::Integer(5)),
    ] {
        let e = codec.text(&c, (&v).into()).unwrap_err();
        assert_eq!(e.code(), "ledger_corrupt", "{name}: {e}");
    }
    assert_eq!(codec.text(&c, ValueRef::Text(b"{\"a\":1}")).unwrap(), "{\"a\":1}");
}

//! e2e: the receipt ledger is a hash chain — verify passes when intact, names the tampered row
//! when a column or the body of one row is changed at rest, and `receipts list` is newest first.

use purser_testkit::{agent, good_v1_body, good_v2_required, send, v1_response, v2_response, Hostile402, Purser};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// Four governed requests against a hostile server (no chain): returns receipt ids, oldest first.
async fn make_receipts(p: &Purser, h: &Hostile402) -> Vec<String> {
    let g = p.grant_create(&["--budget", "10.00", "--per-request-max", "0.50", "--auto-below", "1.00", "--ask-below", "2.00"]);
    let token = g["token"].as_str().unwrap().to_string();
    let mut unknown = good_v2_required(&h.url_of("/c"), "1000");
    unknown["accepts"][0]["network"] = json!("eip155:999999999");
    let routes = [
        ("/a", v2_response(&good_v2_required(&h.url_of("/a"), "700000"))), // over the per-request cap
        ("/b", v1_response(&good_v1_body(&h.url_of("/b"), "1000"))),       // paid, then 402 again: failed
        ("/c", v2_response(&unknown)),                                     // not payable
        ("/d", v1_response(&good_v1_body(&h.url_of("/d"), "900000"))),     // over the per-request cap
    ];
    let mut ids = Vec::new();
    for (path, resp) in routes {
        h.route(path, resp);
        let r = send(agent().get(p.gateway_url(&h.url_of(path))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
        ids.push(r.receipt_id());
        // Distinct timestamps make "newest first" unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    ids
}

fn verify(p: &Purser) -> (bool, String) {
    let out = p.cli(&["receipts", "verify"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs `sql` as someone who can write the file (the append-only triggers out of the way).
fn without_triggers(c: &purser_testkit::rusqlite::Connection, sql: &str, params: impl purser_testkit::rusqlite::Params) -> usize {
    purser_testkit::without_receipt_triggers(c, |c| c.execute(sql, params).unwrap())
}

fn db(p: &Purser) -> purser_testkit::rusqlite::Connection {
    let c = purser_testkit::rusqlite::Connection::open(p.db_path()).expect("open purser.db");
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_list_order_and_links() {
    let h = Hostile402::start().await;
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let ids = make_receipts(&p, &h).await;
    let (ok, text) = verify(&p);
    assert!(ok, "receipts verify on an intact ledger failed: {text}");

    let two = p.receipts_limit(2);
    let got: Vec<&str> = two.iter().map(|r| r["id"].as_str().unwrap_or("?")).collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[2].as_str()], "--limit 2 gives the two newest, newest first");

    let all = p.receipts();
    let got: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap_or("?")).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want, "all receipts newest first");
    for (i, r) in all.iter().enumerate() {
        for k in ["id", "time", "grant_id", "method", "url", "outcome", "reason", "hash"] {
            assert!(r[k].is_string(), "receipt field {k} missing or not a string: {r}");
        }
        for k in ["amount_atomic", "detail", "network", "asset", "pay_to", "decided_by", "tx", "prev_hash", "upstream_status"] {
            assert!(r.get(k).is_some(), "receipt lacks field {k}: {r}");
        }
        if let Some(older) = all.get(i + 1) {
            assert_eq!(r["prev_hash"], older["hash"], "receipt {} does not link to {}", r["id"], older["id"]);
            assert!(r["time"].as_str() >= older["time"].as_str(), "times not newest first: {r} / {older}");
        }
    }
    let mut hashes: Vec<&str> = all.iter().map(|r| r["hash"].as_str().unwrap()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 4, "hashes must be distinct");
    let outcomes: Vec<&str> = all.iter().rev().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["refused", "failed", "not_payable", "refused"], "outcomes oldest first");

    // The ledger rows are the receipts.
    let c = db(&p);
    let n: i64 = c.query_row("SELECT COUNT(*) FROM receipts", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 4, "rows in receipts table");
    let (amount, body): (String, String) = c.query_row("SELECT amount_atomic, body FROM receipts WHERE id = ?1", [&ids[1]], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(amount, "1000");
    let body: Value = serde_json::from_str(&body).expect("body column is the receipt JSON");
    assert_eq!(body["id"], ids[1].as_str(), "{body}");
}

async fn tamper_case(what: &str, sql: &str, make_param: impl Fn(&purser_testkit::rusqlite::Connection, &str) -> String) {
    let h = Hostile402::start().await;
    let mut p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let ids = make_receipts(&p, &h).await;
    p.stop();
    let (ok, text) = verify(&p);
    assert!(ok, "verify before tampering: {text}");

    let victim = &ids[1];
    let c = db(&p);
    let (orig_amount, orig_body): (String, String) = c.query_row("SELECT amount_atomic, body FROM receipts WHERE id = ?1", [victim], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let param = make_param(&c, victim);
    let changed = without_triggers(&c, sql, purser_testkit::rusqlite::params![param, victim]);
    assert_eq!(changed, 1, "tampering updated {changed} rows");
    drop(c);

    let (ok, text) = verify(&p);
    assert!(!ok, "verify passed after tampering the {what} of {victim}: {text}");
    assert!(text.contains(victim.as_str()), "verify output does not name the tampered row {victim} ({what}): {text}");

    // Restoring the row makes the chain whole again: the failure was the tampering.
    let c = db(&p);
    without_triggers(&c, "UPDATE receipts SET amount_atomic = ?1, body = ?2 WHERE id = ?3", purser_testkit::rusqlite::params![orig_amount, orig_body, victim]);
    drop(c);
    let (ok, text) = verify(&p);
    assert!(ok, "verify after restoring {victim}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampered_amount_column_is_named() {
    tamper_case("amount_atomic column", "UPDATE receipts SET amount_atomic = ?1 WHERE id = ?2", |_, _| "1".to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampered_body_is_named() {
    tamper_case("body", "UPDATE receipts SET body = ?1 WHERE id = ?2", |c, id| {
        let body: String = c.query_row("SELECT body FROM receipts WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        let mut v: Value = serde_json::from_str(&body).expect("body is JSON");
        v["amount_atomic"] = json!("1");
        v["url"] = json!("http://127.0.0.1:1/forged");
        serde_json::to_string(&v).unwrap()
    })
    .await;
}

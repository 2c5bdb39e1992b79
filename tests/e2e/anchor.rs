//! e2e (issue 20, item 4): a ledger that cannot be quietly rewritten. A few real payments on
//! the peers' anvil chain, then each rewrite of purser.db that once passed `receipts verify` is
//! done on a copy of the data dir (daemon stopped), and verify must exit non-zero naming it:
//! (a) the last receipts deleted and sqlite_sequence rewound; (b) a paid amount changed and every
//! later hash recomputed; (c) the first receipts deleted behind a forged archive anchor; and the
//! same rewrites with the grants' totals fixed up too, which only the chain itself exposes.
//! `receipts head [--json]` prints `{count, head}`; `verify --expect-head` catches a truncation.

use purser_testkit::rusqlite::{params, Connection, OptionalExtension};
use purser_testkit::{agent, send, Mode, Peers, Purser};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// Runs the CLI on `dir` (a data dir or a copy of one).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out: Output = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("PURSER_DATA_DIR", dir)
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .expect("run purser");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, all)
}

/// A copy of the stopped daemon's data dir, to rewrite.
fn copy_of(p: &Purser, tmp: &tempfile::TempDir, name: &str) -> PathBuf {
    let to = tmp.path().join(name);
    let st = Command::new("cp").arg("-a").arg(&p.data_dir).arg(&to).status().unwrap();
    assert!(st.success());
    to
}

fn db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("purser.db")).expect("open purser.db");
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c
}

fn sha256_hex(s: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// Rewrites receipts from `from_seq` on: `edit` changes each body (as JSON), then every body's
/// prev_hash and every hash is recomputed so the hash links hold again.
fn rewrite_chain(c: &Connection, from_seq: i64, edit: impl Fn(i64, &mut Value)) {
    purser_testkit::without_receipt_triggers(c, |c| {
        let mut prev: String = c.query_row("SELECT hash FROM receipts WHERE seq < ?1 ORDER BY seq DESC LIMIT 1", [from_seq], |r| r.get(0)).optional().unwrap().unwrap_or_else(|| "0".repeat(64));
        let rows: Vec<(i64, String)> = {
            let mut st = c.prepare("SELECT seq, body FROM receipts WHERE seq >= ?1 ORDER BY seq").unwrap();
            let r = st.query_map([from_seq], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            r.map(Result::unwrap).collect()
        };
        for (seq, body) in rows {
            let mut v: Value = serde_json::from_str(&body).expect("a few receipts are stored as text");
            edit(seq, &mut v);
            v["prev_hash"] = Value::String(prev.clone());
            // Same serializer, same field order: the ledger hashes exactly this text.
            let text = serde_json::to_string(&v).unwrap();
            let hash = sha256_hex(&text);
            let amount = v["amount_atomic"].as_str().map(str::to_string);
            c.execute("UPDATE receipts SET body = ?1, prev_hash = ?2, hash = ?3, amount_atomic = ?4 WHERE seq = ?5", params![text, prev, hash, amount, seq]).unwrap();
            prev = hash;
        }
    });
}

struct Paid {
    peers: Peers,
    p: Purser,
    grant: String,
    tmp: tempfile::TempDir,
}

/// Four paid receipts on the real chain, then the daemon stopped.
async fn four_paid() -> Paid {
    let peers = Peers::start(Mode::Real);
    let mut p = Purser::start(BIN, &peers);
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
    let (grant, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.05"]);
    for _ in 0..4 {
        let r = send(agent().get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
        assert_eq!(r.status, 200, "{r}");
    }
    p.stop();
    Paid { peers, p, grant, tmp: tempfile::tempdir().unwrap() }
}

fn assert_fails(dir: &Path, args: &[&str], what: &str, needles: &[&str]) -> String {
    let (ok, _, text) = cli(dir, args);
    assert!(!ok, "verify passed after {what}: {text}");
    eprintln!("--- {what}:\n{text}");
    for n in needles {
        assert!(text.contains(n), "verify after {what} does not say {n:?}: {text}");
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untouched_ledger_verifies_and_head_has_its_shape() {
    let t = four_paid().await;
    let dir = &t.p.data_dir;
    let (ok, _, text) = cli(dir, &["receipts", "verify"]);
    assert!(ok, "untouched ledger: {text}");
    let (ok, out, text) = cli(dir, &["receipts", "head", "--json"]);
    assert!(ok, "{text}");
    let head: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("head --json printed no JSON ({e}): {out}"));
    let obj = head.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "exactly count and head: {head}");
    assert!(head["count"].as_u64().unwrap() >= 4, "{head}");
    let h = head["head"].as_str().unwrap();
    assert_eq!(h.len(), 64, "{head}");
    let last: String = db(dir).query_row("SELECT hash FROM receipts ORDER BY seq DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(h, last);
    let (ok, out, _) = cli(dir, &["receipts", "head"]);
    assert!(ok && out.contains(h), "{out}");
    // The head itself, and any receipt's hash before it, is accepted; a made-up one is not.
    let (ok, _, text) = cli(dir, &["receipts", "verify", "--expect-head", h]);
    assert!(ok, "{text}");
    let first: String = db(dir).query_row("SELECT hash FROM receipts ORDER BY seq LIMIT 1", [], |r| r.get(0)).unwrap();
    let (ok, _, text) = cli(dir, &["receipts", "verify", "--expect-head", &first]);
    assert!(ok, "{text}");
    assert_fails(dir, &["receipts", "verify", "--expect-head", &"ab".repeat(32)], "an unknown --expect-head", &["expect"]);
    // The daemon signed a checkpoint of its head as it stopped, with the wallet's key.
    let (cp_count, cp_head, signer): (i64, String, String) =
        db(dir).query_row("SELECT count, head, signer FROM checkpoints ORDER BY count DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("a checkpoint at shutdown");
    assert_eq!((cp_count as u64, cp_head.as_str()), (head["count"].as_u64().unwrap(), h));
    assert_eq!(signer.to_lowercase(), t.p.address.to_lowercase());
    let (_, out, _) = cli(dir, &["receipts", "verify"]);
    assert!(out.contains("checkpoints: 1, the last at #"), "{out}");
    // Every paid receipt's nonce commits to the ledger's head when it was signed.
    for r in t.p.receipts().iter().filter(|r| r["outcome"] == "paid") {
        assert_eq!(r["nonce_salt"].as_str().map(str::len), Some(66), "{r}");
        assert!(r["nonce_commits_to"].as_str().is_some(), "{r}");
    }
    drop(t.peers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_rewrite_fails_verify_naming_it() {
    let t = four_paid().await;
    let head = {
        let (ok, out, text) = cli(&t.p.data_dir, &["receipts", "head", "--json"]);
        assert!(ok, "{text}");
        serde_json::from_str::<Value>(&out).unwrap()["head"].as_str().unwrap().to_string()
    };
    let paid_seqs: Vec<i64> = {
        let c = db(&t.p.data_dir);
        let mut st = c.prepare("SELECT seq FROM receipts WHERE outcome = 'paid' ORDER BY seq").unwrap();
        let r = st.query_map([], |r| r.get(0)).unwrap();
        r.map(Result::unwrap).collect()
    };
    assert_eq!(paid_seqs.len(), 4);

    // (a) The last two receipts deleted and sqlite_sequence rewound.
    let a = copy_of(&t.p, &t.tmp, "a");
    {
        let c = db(&a);
        let keep = paid_seqs[1];
        purser_testkit::without_receipt_triggers(&c, |c| c.execute("DELETE FROM receipts WHERE seq > ?1", [keep]).unwrap());
        c.execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'receipts'", [keep]).unwrap();
    }
    let cp = format!("checkpoint #{}", paid_seqs[3]);
    assert_fails(&a, &["receipts", "verify"], "a truncation", &["spent", &cp]);
    assert_fails(&a, &["receipts", "verify", "--expect-head", &head], "a truncation past --expect-head", &[&head]);
    // ... and with the grant's totals and the reservations fixed up to match: the chain shows
    // authorizations no receipt explains.
    {
        let c = db(&a);
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let ids: Vec<String> = {
            let mut st = c.prepare("SELECT id FROM reservations WHERE state = 'settled' ORDER BY created_at").unwrap();
            let r = st.query_map([], |r| r.get(0)).unwrap();
            r.map(Result::unwrap).collect()
        };
        for id in &ids[2..] {
            c.execute("DELETE FROM reservations WHERE id = ?1", [id]).unwrap();
        }
        c.execute("UPDATE grants SET spent = 2000 WHERE id = ?1", [&t.grant]).unwrap();
        c.execute("DELETE FROM checkpoints", []).unwrap();
    }
    assert_fails(&a, &["receipts", "verify"], "a truncation with the totals fixed up", &["no receipt"]);

    // (b) A paid amount changed, every later hash recomputed.
    let b = copy_of(&t.p, &t.tmp, "b");
    let victim = paid_seqs[1];
    rewrite_chain(&db(&b), victim, |seq, v| {
        if seq == victim {
            v["amount_usd"] = Value::String("0.000500".into());
            v["amount_atomic"] = Value::String("500".into());
        }
    });
    assert_fails(&b, &["receipts", "verify"], "a changed paid amount", &["spent"]);
    // ... and with the grant's total and reservation fixed up: the later receipts' nonces
    // committed to hashes that are no longer in the chain.
    {
        let c = db(&b);
        c.execute("UPDATE grants SET spent = spent - 500 WHERE id = ?1", [&t.grant]).unwrap();
        let rid: String = c.query_row("SELECT json_extract(body, '$.reservation_id') FROM receipts WHERE seq = ?1", [victim], |r| r.get(0)).unwrap();
        c.execute("UPDATE reservations SET amount = 500 WHERE id = ?1", [rid]).unwrap();
    }
    assert_fails(&b, &["receipts", "verify"], "a changed paid amount with the totals fixed up", &["nonce"]);

    // (c) The first receipts deleted and an archive anchor put in their place.
    let cdir = copy_of(&t.p, &t.tmp, "c");
    {
        let c = db(&cdir);
        let cut = paid_seqs[1];
        let (hash, first): (String, i64) = c.query_row("SELECT hash, (SELECT min(seq) FROM receipts) FROM receipts WHERE seq = ?1", [cut], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        let fake = cdir.join("archive-that-never-was.db");
        c.execute(
            "INSERT INTO receipt_archives (last_seq, first_seq, last_hash, count, file, archived_at) VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-01T00:00:00Z')",
            params![cut, first, hash, cut - first + 1, fake.to_string_lossy()],
        )
        .unwrap();
        purser_testkit::without_receipt_triggers(&c, |c| c.execute("DELETE FROM receipts WHERE seq <= ?1", [cut]).unwrap());
    }
    assert_fails(&cdir, &["receipts", "verify"], "a forged archive anchor", &["archive-that-never-was.db"]);

    // (d) A checkpoint moved back to an earlier head: its signature no longer covers it.
    let d = copy_of(&t.p, &t.tmp, "d");
    {
        let c = db(&d);
        let (seq, hash): (i64, String) = c.query_row("SELECT seq, hash FROM receipts WHERE seq = ?1", [paid_seqs[1]], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        c.execute("UPDATE checkpoints SET count = ?1, head = ?2", params![seq, hash]).unwrap();
    }
    assert_fails(&d, &["receipts", "verify"], "a checkpoint rewritten", &["not signed by the wallet"]);

    // The copy of the untouched ledger still verifies: the failures were the rewrites.
    let (ok, _, text) = cli(&t.p.data_dir, &["receipts", "verify", "--expect-head", &head]);
    assert!(ok, "untouched: {text}");
    drop(t.peers);
}

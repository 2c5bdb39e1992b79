//! e2e: the receipt timeline's CLI contract — `dev seed-receipts`, `receipts search` (shape,
//! totals, keyset pages), `receipts stats`, `receipts export` + `verify-export`, `receipts
//! archive` + `verify-archive`, clear query errors — and that receipts recorded by the live
//! proxy are searchable at once.

use purser_testkit::{agent, good_v1_body, good_v2_required, send, v1_response, v2_response, Hostile402, Purser};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// A data dir with no wallet (the seeder refuses one that has a wallet), removed on drop.
struct Dir {
    root: PathBuf,
    data: PathBuf,
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Dir {
    fn new() -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("purser-timeline-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let data = root.join("data");
        Dir { root, data }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(&self.data).args(args).env_remove("PURSER_DATA_DIR");
        purser_testkit::proc::run_with_timeout(cmd, Duration::from_secs(120))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "purser {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let s = self.ok(args);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("purser {args:?} printed no JSON ({e}): {s}"))
    }

    fn path(&self, name: &str) -> String {
        self.data.join(name).to_string_lossy().into_owned()
    }
}

/// Exact micro-USD of a decimal string ("0.0123").
fn micros(s: &str) -> u64 {
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    let f = format!("{f:0<6}");
    i.parse::<u64>().unwrap() * 1_000_000 + f[..6].parse::<u64>().unwrap()
}

/// Every page of a search (`--limit per`), checking the contract on each page.
fn all_pages(d: &Dir, q: &str, per: usize) -> (Vec<Value>, u64) {
    let per_s = per.to_string();
    let mut items = vec![];
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let mut args = vec!["receipts", "search", q, "--json", "--limit", &per_s];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = d.json(&args);
        let t = page["total"].as_u64().expect("total is a number");
        assert!(total.is_none_or(|x| x == t), "total changed between pages");
        total = Some(t);
        let got = page["items"].as_array().expect("items is an array").clone();
        assert!(got.len() <= per);
        items.extend(got);
        match &page["next_cursor"] {
            Value::Null => return (items, t),
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor is {other}"),
        }
    }
}

#[test]
fn seeded_ledger_search_stats_export_contract() {
    let d = Dir::new();
    let seeded = d.json(&["dev", "seed-receipts", "3000", "--json"]);
    assert_eq!(seeded["receipts"], 3000, "{seeded}");
    let ok = d.ok(&["receipts", "verify"]);
    assert!(ok.contains("3000 receipts, chain intact"), "{ok}");

    // Items are `receipts list --json` items plus flags.
    let listed: Vec<Value> = serde_json::from_str(&d.ok(&["receipts", "list", "--json", "--limit", "3000"])).unwrap();
    let page = d.json(&["receipts", "search", "", "--json", "--limit", "5"]);
    assert_eq!(page["total"], 3000);
    assert!(page["next_cursor"].is_string());
    for (item, want) in page["items"].as_array().unwrap().iter().zip(&listed) {
        let mut item = item.clone();
        let flags = item.as_object_mut().unwrap().remove("flags").expect("items carry flags");
        assert!(flags.is_array());
        assert_eq!(&item, want, "a search item is the listed receipt plus flags");
    }

    // Keyset pages: every refused receipt exactly once, newest first, total = count.
    let (items, total) = all_pages(&d, "outcome:refused", 300);
    let want: Vec<&Value> = listed.iter().filter(|r| r["outcome"] == "refused").map(|r| &r["id"]).collect();
    let got: Vec<&Value> = items.iter().map(|r| &r["id"]).collect();
    assert_eq!(got, want, "pages of outcome:refused");
    assert_eq!(total, want.len() as u64);

    // Words and filters together.
    let (items, total) = all_pages(&d, "paid host:*.com amount:>0.01", 500);
    let want: Vec<&Value> =
        listed.iter().filter(|r| r["reason"] == "paid" && r["host"].as_str().unwrap().ends_with(".com") && r["amount_usd"].as_str().is_some_and(|a| micros(a) > 10_000)).map(|r| &r["id"]).collect();
    assert_eq!(items.iter().map(|r| &r["id"]).collect::<Vec<_>>(), want);
    assert_eq!(total, want.len() as u64);
    assert!(total > 0);

    // Aggregates: per-day groups add up; spend is exact.
    let stats = d.json(&["receipts", "stats", "", "--by", "day", "--json"]);
    let groups = stats["groups"].as_array().unwrap();
    assert_eq!(groups.iter().map(|g| g["receipts"].as_u64().unwrap()).sum::<u64>(), 3000);
    let spend: u64 = listed.iter().filter(|r| r["outcome"] == "paid").map(|r| micros(r["amount_usd"].as_str().unwrap())).sum();
    assert_eq!(micros(stats["total"]["spend_usd"].as_str().unwrap()), spend, "{}", stats["total"]);
    assert_eq!(stats["total"]["spend_atomic"], spend.to_string());
    let by_grant = d.json(&["receipts", "stats", "outcome:paid", "--by", "grant", "--json", "--top", "3"]);
    assert_eq!(by_grant["groups"].as_array().unwrap().len(), 3);
    assert!(by_grant["groups"][0]["grant_label"].is_string());
    for by in ["week", "host", "payee", "endpoint", "outcome", "decider", "network", "week,grant"] {
        d.json(&["receipts", "stats", "refused", "--by", by, "--json"]);
    }

    // Export, streamed, verifiable from the file alone.
    let jsonl = d.path("all.jsonl");
    let csv = d.path("refused.csv");
    let e = d.json(&["receipts", "export", "", "--format", "jsonl", "-o", &jsonl, "--chain", "--json"]);
    assert_eq!(e["rows"], 3000);
    let e = d.json(&["receipts", "export", "outcome:refused", "--format", "csv", "-o", &csv, "--chain", "--json"]);
    assert_eq!(e["rows"], want_count(&listed, "refused"));
    let v = d.json(&["receipts", "verify-export", &jsonl, "--json"]);
    assert_eq!((v["ok"].clone(), v["rows"].clone(), v["links"].clone()), (json!(true), json!(3000), json!(2999)));
    assert_eq!(v["head"], listed[0]["hash"]);
    let v = d.json(&["receipts", "verify-export", &csv, "--json"]);
    assert_eq!(v["rows"], want_count(&listed, "refused"));
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.first().unwrap()["id"], listed.last().unwrap()["id"], "oldest first");
    // A forged amount in the export is caught.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let forged = text.replacen("\"outcome\":\"refused\"", "\"outcome\":\"paid\"", 1);
    std::fs::write(&jsonl, forged).unwrap();
    let out = d.run(&["receipts", "verify-export", &jsonl]);
    assert!(!out.status.success(), "a forged export verified");
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKEN"));
}

fn want_count(listed: &[Value], outcome: &str) -> u64 {
    listed.iter().filter(|r| r["outcome"] == outcome).count() as u64
}

#[test]
fn malformed_queries_name_the_bad_token() {
    let d = Dir::new();
    d.ok(&["dev", "seed-receipts", "50"]);
    for (q, token) in
        [("weather colour:red", "colour:red"), ("amount:>0.1.0", "amount:>0.1.0"), ("outcome:won", "outcome:won"), ("since:2026-13-40", "since:2026-13-40"), ("grant:\"open", "grant:\"open")]
    {
        let out = d.run(&["receipts", "search", q, "--json"]);
        assert!(!out.status.success(), "{q} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(token) && err.contains("invalid_query"), "{q}: {err}");
        assert!(!err.to_lowercase().contains("sql") && !err.contains("fts5"), "{q}: {err}");
    }
    let out = d.run(&["receipts", "search", "", "--cursor", "nonsense"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_cursor"));
}

#[test]
fn seeding_refuses_a_data_dir_with_a_wallet() {
    let d = Dir::new();
    std::fs::create_dir_all(&d.data).unwrap();
    std::fs::write(d.data.join("wallet.json"), "{}").unwrap();
    let out = d.run(&["dev", "seed-receipts", "10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wallet"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!d.data.join("purser.db").exists() || d.json(&["receipts", "search", "", "--json"])["total"] == 0);
}

#[test]
fn archive_moves_old_receipts_and_both_chains_verify() {
    let d = Dir::new();
    d.ok(&["dev", "seed-receipts", "2000", "--days", "10"]);
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(5)).format("%Y-%m-%d").to_string();
    let before = d.json(&["receipts", "search", &format!("until:{cutoff}"), "--json", "--limit", "1"])["total"].as_u64().unwrap();
    let rep = d.json(&["receipts", "archive", "--before", &cutoff, "--json"]);
    let moved = rep["moved"].as_u64().unwrap();
    assert!(moved > 500 && moved < 1500, "{rep}");
    assert!(moved <= before + 50, "only receipts before the date (and a few out of order) move: {rep}");
    let v = d.ok(&["receipts", "verify"]);
    assert!(v.contains(&format!("{} receipts, chain intact", 2000 - moved)), "{v}");
    let a = d.json(&["receipts", "verify-archive", "--json"]);
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["archives"][0]["count"], moved);
    assert_eq!(a["archives"][0]["matches_ledger_anchor"], true);
    assert_eq!(d.json(&["receipts", "search", "", "--json"])["total"], 2000 - moved);
    assert_eq!(d.json(&["receipts", "stats", "", "--by", "day", "--json"])["total"]["receipts"], 2000 - moved);
    assert!(Path::new(&d.path("receipts-archive.db")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_from_the_proxy_are_searchable_at_once() {
    let h = Hostile402::start().await;
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let g = p.grant_create(&["--label", "weather-research", "--budget", "10.00", "--per-request-max", "0.50", "--auto-below", "1.00", "--ask-below", "2.00"]);
    let token = g["token"].as_str().unwrap().to_string();
    let mut unknown = good_v2_required(&h.url_of("/forecast/unknown"), "1000");
    unknown["accepts"][0]["network"] = json!("eip155:999999999");
    let routes = [
        ("/forecast/cap", v2_response(&good_v2_required(&h.url_of("/forecast/cap"), "700000"))),
        ("/forecast/unknown", v2_response(&unknown)),
        ("/quote/cap", v1_response(&good_v1_body(&h.url_of("/quote/cap"), "900000"))),
    ];
    let mut ids = vec![];
    for (path, resp) in routes {
        h.route(path, resp);
        let r = send(agent().get(p.gateway_url(&h.url_of(path))).header("Proxy-Authorization", format!("Bearer {token}")).header("Purser-Intent", "compare forecasts for the Lisbon trip")).await;
        ids.push(r.receipt_id());
    }
    let search = |q: &str| -> Vec<String> {
        let page = p.cli_json(&["receipts", "search", q, "--json"]);
        page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(search("forecast"), [ids[1].clone(), ids[0].clone()], "path words");
    assert_eq!(search("lisbon outcome:not_payable"), [ids[1].clone()], "intent words and an outcome");
    assert_eq!(search("grant:weather-research reason:over_per_request_cap"), [ids[2].clone(), ids[0].clone()]);
    assert_eq!(search("amount:>0.80"), [ids[2].clone()]);
    assert_eq!(search("host:127.0.0.1").len(), 3);
    let stats = p.cli_json(&["receipts", "stats", "", "--by", "outcome", "--json"]);
    assert_eq!(stats["total"]["receipts"], 3);
    assert!(p.cli(&["receipts", "verify"]).status.success());
}

//! Timeline tests over a fixture ledger: named search cases, totals against pages, pagination
//! while receipts arrive, aggregates (rollup and row paths agree), export round trips, flags,
//! chain verification against tampering, and archiving.

use super::export::{csv_records, export, verify_export, Format};
use super::*;
use crate::agent::{AgentInfo, AgentKind, ParentProcess};
use crate::grants::GrantSpec;
use crate::ledger::ChainReport;
use crate::receipt::{DecidedBy, Outcome, Receipt};
use chrono::TimeZone;

const A: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const B: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const C: &str = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const TX1: &str = "0xaaaa000000000000000000000000000000000000000000000000000000000001";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()
}

struct Spec {
    id: &'static str,
    time: &'static str,
    grant: usize,
    url: &'static str,
    outcome: Outcome,
    by: DecidedBy,
    reason: &'static str,
    usd: Option<&'static str>,
    payee: Option<&'static str>,
    network: Option<&'static str>,
    intent: Option<&'static str>,
}

fn fixture_specs() -> Vec<Spec> {
    use DecidedBy::*;
    use Outcome::*;
    let s = |id, time, grant, url, outcome, by, reason, usd, payee, network, intent| Spec { id, time, grant, url, outcome, by, reason, usd, payee, network, intent };
    vec![
        s("r01", "2026-11-01T09:00:00Z", 0, "https://api.weather.com/v1/forecast?city=paris", Paid, Auto, "paid", Some("0.01"), Some(A), Some("eip155:8453"), Some("paris weather for the trip")),
        s("r02", "2026-11-01T10:00:00Z", 0, "https://api.weather.com/v1/forecast?city=lisbon", Paid, Auto, "paid", Some("0.01"), Some(A), Some("eip155:8453"), None),
        s("r03", "2026-11-01T11:00:00Z", 0, "https://api.weather.com/v1/forecast", Paid, Auto, "paid", Some("0.012"), Some(A), Some("eip155:8453"), None),
        s("r04", "2026-11-02T08:00:00Z", 0, "https://api.weather.com/v1/forecast", Refused, Policy, "over_per_request_cap", Some("0.75"), Some(A), Some("eip155:8453"), None),
        s("r05", "2026-11-02T12:00:00Z", 1, "https://flights.example.io/search", Paid, User, "paid", Some("0.12"), Some(B), Some("eip155:84532"), Some("flights to lisbon")),
        s("r06", "2026-11-03T00:00:00Z", 1, "https://flights.example.io/search", Failed, User, "settlement_failed", Some("0.12"), Some(B), Some("eip155:84532"), None),
        s("r07", "2026-11-03T09:00:00Z", 0, "https://news.example.org/article/123", NotPayable, Policy, "not_payable", None, None, None, None),
        s("r08", "2026-11-04T09:00:00Z", 0, "https://api.weather.com/v1/forecast", Paid, Auto, "paid", Some("0.05"), Some(A), Some("eip155:8453"), None),
        s("r09", "2026-11-04T10:00:00Z", 0, "https://api.weather.com/v1/current", Paid, Auto, "paid", Some("0.01"), Some(C), Some("eip155:8453"), None),
        // Recorded last, but the request came in earlier (it waited for approval).
        s("r10", "2026-11-02T23:00:00Z", 1, "https://eu.flights.example.io/status/999", Refused, Timeout, "approval_timed_out", Some("0.30"), Some(B), Some("eip155:84532"), None),
    ]
}

fn receipt_of(s: &Spec, grants: &[crate::grants::Grant]) -> Receipt {
    let host = s.url.split('/').nth(2).unwrap();
    let mut r = Receipt::new(s.id.into(), at(s.time), "GET", s.url, host);
    r.set_grant(&grants[s.grant]);
    r.decide(s.outcome, s.by, crate::receipt::Reason::parse(s.reason).expect("a reason"), (s.reason == "settlement_failed").then_some("insufficient_funds"), format!("decision {}", s.id));
    r.intent = s.intent.map(str::to_string);
    let description = if s.url.contains("forecast") {
        "7-day forecast for a city"
    } else if s.url.contains("current") {
        "current conditions"
    } else {
        "flight offers"
    };
    r.challenge = Some(serde_json::json!({"x402Version": 2, "resource": {"url": s.url, "description": description}, "accepts": []}));
    if let Some(usd) = s.usd {
        let micros = crate::money::parse_usd(usd).unwrap();
        r.amount_atomic = Some(micros.to_string());
        r.amount_usd = Some(crate::money::micros_decimal(micros));
    }
    r.pay_to = s.payee.map(str::to_string);
    r.network = s.network.map(str::to_string);
    if s.id == "r01" {
        r.tx = Some(TX1.into());
    }
    r.agent = agent_of(s.id);
    r
}

/// Who asked: curl started by Claude Code (r05), a `purser run` labelled `Research` (r08) and
/// a Python script (r09), each under a bash; the other receipts have no agent.
fn agent_of(id: &str) -> Option<AgentInfo> {
    let parent = |pid, exe: Option<&str>, name: &str| ParentProcess { pid, exe: exe.map(str::to_string), name: name.into() };
    let bash = parent(100, Some("/usr/bin/bash"), "bash");
    let process =
        |pid, exe: &str, cmdline: &str, parents| AgentInfo { kind: AgentKind::Process, pid: Some(pid), exe: Some(exe.into()), cmdline: Some(cmdline.into()), parents, run_label: None, run_id: None };
    match id {
        "r05" => Some(process(300, "/usr/bin/curl", "curl -s https://flights.example.io/search", vec![parent(200, Some("/usr/bin/node"), "claude"), bash])),
        "r08" => Some(AgentInfo { kind: AgentKind::Run, run_label: Some("Research".into()), run_id: Some("run-1".into()), ..process(400, "/usr/bin/python3.11", "python3 agent.py", vec![bash]) }),
        "r09" => Some(process(500, "/usr/bin/python3.11", "python3 fetch.py", vec![bash])),
        _ => None,
    }
}

fn fixture() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(&dir.path().join("data")).unwrap();
    let mut grants = vec![];
    for (i, label) in ["research", "Travel"].iter().enumerate() {
        let spec = GrantSpec { label: (*label).into(), budget: "10.00".into(), expires: "30d".into(), hosts: vec!["*.example.io".into()], ..Default::default() };
        let (label, limits) = spec.validate(at("2026-11-01T00:00:00Z")).unwrap();
        grants.push(l.create_grant(&format!("g{i}"), &label, &limits, &format!("h{i}"), at("2026-11-01T00:00:00Z")).unwrap());
    }
    for s in fixture_specs() {
        l.record(&mut receipt_of(&s, &grants), at(s.time)).unwrap();
    }
    (dir, l)
}

fn ids(page: &SearchPage) -> Vec<String> {
    page.items.iter().map(|i| i.receipt.id.clone()).collect()
}

/// Every result of `q`, paging `per` at a time.
fn all_pages(l: &Ledger, q: &str, per: usize) -> (Vec<String>, u64) {
    let (mut out, mut cursor, mut total) = (vec![], None::<String>, None);
    loop {
        let p = search(l, q, per, cursor.as_deref(), now()).unwrap();
        assert!(total.is_none_or(|t| t == p.total), "{q}: total changed between pages");
        total = Some(p.total);
        out.extend(ids(&p));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (out, total.unwrap()),
        }
    }
}

#[test]
fn named_search_cases() {
    let (_d, l) = fixture();
    let cases: &[(&str, &str, &[&str])] = &[
        ("everything, newest first", "", &["r10", "r09", "r08", "r07", "r06", "r05", "r04", "r03", "r02", "r01"]),
        ("a host word", "weather", &["r09", "r08", "r04", "r03", "r02", "r01"]),
        ("a word of the intent (query strings are not indexed)", "lisbon", &["r05"]),
        ("a prefix over path and description", "fore*", &["r08", "r04", "r03", "r02", "r01"]),
        ("two words", "paris trip", &["r01"]),
        ("a grant by label", "grant:research", &["r09", "r08", "r07", "r04", "r03", "r02", "r01"]),
        ("a grant label ignores case", "grant:travel", &["r10", "r06", "r05"]),
        ("a grant by id", "grant:g1", &["r10", "r06", "r05"]),
        ("an outcome", "outcome:refused", &["r10", "r04"]),
        ("either outcome", "outcome:paid,failed", &["r09", "r08", "r06", "r05", "r03", "r02", "r01"]),
        ("repeated key means either", "outcome:paid outcome:failed", &["r09", "r08", "r06", "r05", "r03", "r02", "r01"]),
        ("not an outcome", "-outcome:paid", &["r10", "r07", "r06", "r04"]),
        ("who decided", "by:user", &["r06", "r05"]),
        ("an exact host", "host:flights.example.io", &["r06", "r05"]),
        ("subdomains, not the apex", "host:*.flights.example.io", &["r10"]),
        ("a wildcard host", "host:*.example.io", &["r10", "r06", "r05"]),
        ("a payee, any case", "payee:0x15D34AAF54267DB7D7C367839AAF71A00A2C6A65", &["r09"]),
        ("a network by name", "network:base-sepolia", &["r10", "r06", "r05"]),
        ("above an amount", "amount:>0.10", &["r10", "r06", "r05", "r04"]),
        ("an amount range, inclusive", "amount:0.01..0.012", &["r09", "r03", "r02", "r01"]),
        ("an exact amount", "amount:0.05", &["r08"]),
        ("below an amount skips receipts without one", "amount:<0.02", &["r09", "r03", "r02", "r01"]),
        ("since a day (by receipt time, not order)", "since:2026-11-03", &["r09", "r08", "r07", "r06"]),
        ("until a day includes it", "until:2026-11-02", &["r10", "r05", "r04", "r03", "r02", "r01"]),
        ("date-times to the second", "since:2026-11-02T12:00:00Z until:2026-11-03T00:00:00Z", &["r10", "r06", "r05"]),
        ("one day", "since:2026-11-02 until:2026-11-02", &["r10", "r05", "r04"]),
        ("a reason", "reason:settlement_failed", &["r06"]),
        ("reason words", "settlement failed", &["r06"]),
        ("a transaction hash", TX1, &["r01"]),
        ("price spikes", "flag:price_spike", &["r08", "r04"]),
        ("payee changes", "flag:new_payee", &["r09"]),
        ("any flag", "flag:any", &["r09", "r08", "r04"]),
        ("the issue's example", "weather grant:research outcome:refused amount:>0.10 since:2026-11-01", &["r04"]),
        ("a value nobody has", "host:nowhere.example.com", &[]),
        ("a word and not another", "weather -forecast", &["r09"]),
        ("a word and not a filter", "flights -outcome:failed", &["r10", "r05"]),
        ("a filter and a time edge", "grant:travel since:2026-11-02T23:00:00Z", &["r10", "r06"]),
        ("amount and date", "amount:>=0.12 until:2026-11-02", &["r10", "r05", "r04"]),
        ("above, off the grid", "amount:>0.011", &["r10", "r08", "r06", "r05", "r04", "r03"]),
        ("at least, off the grid", "amount:>=0.012", &["r10", "r08", "r06", "r05", "r04", "r03"]),
        ("below, on the grid", "amount:<0.05", &["r09", "r03", "r02", "r01"]),
        ("at most, on the grid", "amount:<=0.05", &["r09", "r08", "r03", "r02", "r01"]),
        ("at most, off the grid", "amount:<=0.011", &["r09", "r02", "r01"]),
        ("a range off the grid", "amount:0.011..0.3", &["r10", "r08", "r06", "r05", "r03"]),
        ("a range inside one cell", "amount:0.011..0.013", &["r03"]),
        ("a range on the grid", "amount:0.05..0.5", &["r10", "r08", "r06", "r05"]),
        ("above, on the grid, exclusive", "amount:>0.12", &["r10", "r04"]),
        ("an agent by its process name", "agent:curl", &["r05"]),
        ("an agent by a parent's name, any case", "agent:CLAUDE", &["r05"]),
        ("an agent by a parent's executable", "agent:node", &["r05"]),
        ("a parent of several agents", "agent:bash", &["r09", "r08", "r05"]),
        ("argv[0] and the executable's name", "agent:python3", &["r09", "r08"]),
        ("the executable's name", "agent:python3.11", &["r09", "r08"]),
        ("either agent", "agent:curl,python3", &["r09", "r08", "r05"]),
        ("not an agent keeps receipts without one", "-agent:bash", &["r10", "r07", "r06", "r04", "r03", "r02", "r01"]),
        ("an agent nobody was", "agent:wget", &[]),
        ("a run by label, any case", "run:research", &["r08"]),
        ("a run label as given", "run:Research", &["r08"]),
        ("a run label is not a grant label", "run:travel", &[]),
        ("a run label is not a process name", "agent:research", &[]),
        ("not a run", "-run:research agent:bash", &["r09", "r05"]),
        ("an agent, an outcome and an amount", "agent:bash outcome:paid amount:>0.04", &["r08", "r05"]),
        ("an agent and a word", "agent:python3 current", &["r09"]),
        ("an agent and a grant", "agent:bash grant:travel", &["r05"]),
        ("an agent over a time edge", "agent:bash since:2026-11-04T09:30:00Z", &["r09"]),
    ];
    for (name, q, want) in cases {
        let page = search(&l, q, 100, None, now()).unwrap_or_else(|e| panic!("{name}: {q}: {e}"));
        assert_eq!(ids(&page), *want, "{name}: {q}");
        assert_eq!(page.total, want.len() as u64, "{name}: total of {q}");
        assert!(page.next_cursor.is_none(), "{name}");
        assert_eq!(count(&l, q, now()).unwrap(), want.len() as u64, "{name}: count of {q}");
        let (paged, total) = all_pages(&l, q, 2);
        assert_eq!(paged, *want, "{name}: paging {q} two at a time");
        assert_eq!(total, want.len() as u64, "{name}");
    }
}

#[test]
fn items_carry_the_receipt_hash_and_flags() {
    let (_d, l) = fixture();
    let page = search(&l, "flag:any", 10, None, now()).unwrap();
    let listed = l.list_receipts(10).unwrap();
    for item in &page.items {
        let same = listed.iter().find(|r| r.id == item.receipt.id).unwrap();
        assert_eq!(&item.receipt, same, "search items are the listed receipts");
    }
    let v = serde_json::to_value(&page).unwrap();
    assert_eq!(v["items"][0]["flags"], serde_json::json!(["new_payee"]));
    assert_eq!(v["items"][1]["flags"], serde_json::json!(["price_spike"]));
    assert!(v["items"][0]["hash"].as_str().unwrap().len() == 64);
    assert_eq!(v["total"], 3);
    assert!(v["next_cursor"].is_null());
}

#[test]
fn bad_queries_and_cursors_are_errors_not_sql() {
    let (_d, l) = fixture();
    let e = search(&l, "weather colour:red", 10, None, now()).unwrap_err();
    assert_eq!(e.code(), "invalid_query");
    assert!(e.to_string().contains("colour:red"), "{e}");
    for bad in ["abc", "1.2.3", "5.3.10.deadbeef", "0.3.1.00000000"] {
        assert_eq!(search(&l, "", 10, Some(bad), now()).unwrap_err().code(), "invalid_cursor", "{bad}");
    }
    let first = search(&l, "weather", 2, None, now()).unwrap();
    let cur = first.next_cursor.unwrap();
    assert_eq!(search(&l, "flights", 2, Some(&cur), now()).unwrap_err().code(), "invalid_cursor", "a cursor belongs to its query");
    assert_eq!(search(&l, "", 0, None, now()).unwrap_err().code(), "invalid_limit");
    // FTS operators typed by a person are words, never FTS syntax.
    for q in ["NOT", "\"AND\"", "a OR b", "NEAR(x)", "x*y", "{doc}:x", "$a", "^weather", "\"\""] {
        let r = search(&l, q, 10, None, now());
        assert!(r.is_ok() || r.as_ref().unwrap_err().code() == "invalid_query", "{q}: {r:?}");
    }
    assert_eq!(search(&l, "$o0", 10, None, now()).unwrap().total, 0, "fact tokens are not reachable from text");
}

#[test]
fn pages_are_stable_while_receipts_arrive() {
    let (_d, l) = fixture();
    let first = search(&l, "", 3, None, now()).unwrap();
    assert_eq!(ids(&first), ["r10", "r09", "r08"]);
    let grants = l.list_grants().unwrap();
    let g = grants.iter().find(|g| g.label == "research").unwrap().clone();
    for i in 0..5 {
        let mut r = Receipt::new(format!("new{i}"), at("2026-11-05T00:00:00Z"), "GET", "https://api.weather.com/v1/forecast", "api.weather.com");
        r.set_grant(&g);
        r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::OverBudget, None, "no");
        l.record(&mut r, now()).unwrap();
    }
    let mut got = ids(&first);
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let p = search(&l, "", 3, Some(&c), now()).unwrap();
        assert_eq!(p.total, 10, "the total is the first page's");
        got.extend(ids(&p));
        cursor = p.next_cursor;
    }
    assert_eq!(got, ["r10", "r09", "r08", "r07", "r06", "r05", "r04", "r03", "r02", "r01"], "no repeats, no gaps");
    assert_eq!(search(&l, "", 3, None, now()).unwrap().total, 15, "a new search sees the new receipts");
    assert_eq!(ids(&search(&l, "", 2, None, now()).unwrap()), ["new4", "new3"]);
}

#[test]
fn aggregates_from_rollup_and_rows_agree() {
    let (_d, l) = fixture();
    let s = stats(&l, "", &[GroupBy::Day], None, now()).unwrap();
    assert_eq!(s.source, "counts");
    let days: Vec<(&str, u64, &str)> = s.groups.iter().map(|g| (g["day"].as_str().unwrap(), g["receipts"].as_u64().unwrap(), g["spend_usd"].as_str().unwrap())).collect();
    assert_eq!(days, [("2026-11-01", 3, "0.032"), ("2026-11-02", 3, "0.12"), ("2026-11-03", 2, "0.00"), ("2026-11-04", 2, "0.06")]);
    assert_eq!(s.total["receipts"], 10);
    assert_eq!(s.total["paid"], 6);
    assert_eq!(s.total["refused"], 2);
    assert_eq!(s.total["spend_usd"], "0.212");
    assert_eq!(s.total["spend_atomic"], "212000");
    // `-zzzz` matches everything but forces the row path: both must agree for every grouping.
    let all = [GroupBy::Day, GroupBy::Week, GroupBy::Grant, GroupBy::Host, GroupBy::Payee, GroupBy::Endpoint, GroupBy::Outcome, GroupBy::Decider, GroupBy::Network];
    for g in all {
        for q in [
            "",
            "grant:research",
            "outcome:paid,refused",
            "since:2026-11-02 until:2026-11-03",
            "-host:api.weather.com",
            "grant:travel -outcome:paid since:2026-11-02",
            "host:*.example.io",
            "amount:>0.10",
            "amount:<0.05 outcome:paid",
            "amount:0.01..0.05",
            "flag:any",
            "by:auto",
            "reason:paid,over_per_request_cap",
            "host:api.weather.com outcome:paid",
            "grant:research host:api.weather.com",
        ] {
            let a = stats(&l, q, &[g], None, now()).unwrap();
            let b = stats(&l, &format!("{q} -zzzz"), &[g], None, now()).unwrap();
            // Where neither pre-aggregate answers, a query without words can scan the facts.
            let c = stats_scanning_facts(&l, q, g);
            if a.source == "rows" {
                assert_eq!(c.source, "facts", "{q}");
            }
            assert_eq!((&c.groups, &c.total), (&b.groups, &b.total), "{g:?} over {q:?}, facts scan");
            if !q.contains("..") && matches!(g, GroupBy::Day | GroupBy::Week | GroupBy::Outcome) {
                assert_ne!(a.source, "rows", "{q} is pre-aggregated");
            }
            assert_eq!(b.source, "rows");
            assert_eq!((a.groups, a.total), (b.groups, b.total), "{g:?} over {q:?}");
        }
    }
    // No pre-aggregate answers these (an amount with other filters): the row walk and the facts
    // scan must agree, negations, reasons, flags and partial days included.
    for g in all {
        for q in [
            "-host:api.weather.com amount:>0.01",
            "grant:travel -outcome:paid amount:<1",
            "-reason:paid amount:>0",
            "reason:over_per_request_cap,approval_timed_out amount:>=0.12",
            "flag:any amount:>0",
            "-flag:any amount:0.01..0.2",
            "by:auto,timeout amount:>=0.01 since:2026-11-01T10:30:00Z",
            "host:*.example.io -by:user amount:<=0.30 until:2026-11-03T05:00:00Z",
            "network:base amount:0.011..0.05",
        ] {
            let b = stats(&l, &format!("{q} -zzzz"), &[g], None, now()).unwrap();
            let c = stats_scanning_facts(&l, q, g);
            assert_eq!((c.source, b.source), ("facts", "rows"), "{q}");
            assert_eq!((&c.groups, &c.total), (&b.groups, &b.total), "{g:?} over {q:?}, facts scan");
            assert!(b.total["receipts"].as_u64().unwrap() > 0 || q.contains("flag:any"), "{q} matches something: {:?}", b.total);
        }
    }
    let hosts = stats(&l, "outcome:paid", &[GroupBy::Endpoint], Some(1), now()).unwrap();
    assert_eq!(hosts.groups.len(), 1);
    assert_eq!(hosts.groups[0]["endpoint"], "flights.example.io/search", "top endpoint by spend");
    let two = stats(&l, "", &[GroupBy::Week, GroupBy::Grant], None, now()).unwrap();
    assert_eq!(two.groups[0]["week"], "2026-10-26");
    assert!(two.groups.iter().any(|g| g["grant_label"] == "Travel"));
    let text = stats(&l, "weather amount:>0.01", &[GroupBy::Outcome], None, now()).unwrap();
    assert_eq!(text.total["receipts"], 3);
    assert_eq!(text.total["spend_usd"], "0.062");
    // No pre-aggregate holds agents or runs: their aggregates walk the matching rows, even
    // where a query without words would otherwise scan the facts.
    for g in all {
        for (q, n, spend) in [("agent:bash", 3, "0.18"), ("agent:claude outcome:paid", 1, "0.12"), ("run:research", 1, "0.05"), ("-agent:bash", 7, "0.032")] {
            let a = stats(&l, q, &[g], None, now()).unwrap();
            let b = stats(&l, &format!("{q} -zzzz"), &[g], None, now()).unwrap();
            let c = stats_scanning_facts(&l, q, g);
            assert_eq!((a.source, c.source), ("rows", "rows"), "{q}");
            assert_eq!((&a.groups, &a.total), (&b.groups, &b.total), "{g:?} over {q:?}");
            assert_eq!((&c.groups, &c.total), (&b.groups, &b.total), "{g:?} over {q:?}");
            assert_eq!((a.total["receipts"].as_u64(), a.total["spend_usd"].as_str()), (Some(n), Some(spend)), "{q}");
        }
    }
    assert!(parse_group_by("day,grant,host").is_err());
    assert!(parse_group_by("month").is_err());
    assert_eq!(parse_group_by("week,grant").unwrap(), [GroupBy::Week, GroupBy::Grant]);
}

/// `stats` with the facts-scan threshold at 0 (other tests may run meanwhile: each path gives
/// the same answer, so they cannot tell).
fn stats_scanning_facts(l: &Ledger, q: &str, g: GroupBy) -> Stats {
    use crate::ledger::search::FACTS_SCAN_FROM;
    use std::sync::atomic::Ordering;
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let was = FACTS_SCAN_FROM.swap(0, Ordering::SeqCst);
    let s = stats(l, q, &[g], None, now());
    FACTS_SCAN_FROM.store(was, Ordering::SeqCst);
    s.unwrap()
}

#[test]
fn export_round_trips_and_verifies_without_the_database() {
    let (_d, l) = fixture();
    let want = search(&l, "", 100, None, now()).unwrap().items;
    let mut want_oldest = want.clone();
    want_oldest.reverse();

    let mut jsonl = vec![];
    let sum = export(&l, "", Format::Jsonl, true, &mut jsonl, now(), |_, _| {}).unwrap();
    assert_eq!(sum.rows, 10);
    assert_eq!(sum.bytes, jsonl.len() as u64);
    let lines: Vec<serde_json::Value> = jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    for (line, item) in lines.iter().zip(&want_oldest) {
        let mut mine = line.clone();
        let m = mine.as_object_mut().unwrap();
        assert_eq!(m.remove("flags").unwrap(), serde_json::to_value(item.flags).unwrap());
        m.remove("seq").unwrap();
        m.remove("body").unwrap();
        assert_eq!(mine, serde_json::to_value(&item.receipt).unwrap(), "JSONL line = the listed receipt");
    }
    let check = verify_export(&jsonl[..]).unwrap();
    assert_eq!((check.rows, check.links, check.first_seq, check.last_seq), (10, 9, Some(1), Some(10)));
    assert_eq!(check.head.as_deref(), Some(want[0].receipt.hash.as_str()));

    let mut csv = vec![];
    export(&l, "", Format::Csv, true, &mut csv, now(), |_, _| {}).unwrap();
    let recs: Vec<Vec<String>> = csv_records(&csv[..]).map(Result::unwrap).collect();
    let header = &recs[0];
    assert_eq!(header.len(), export::CSV_COLUMNS.len() + 3);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(recs.len(), 11);
    for (row, item) in recs[1..].iter().zip(&want_oldest) {
        let r = &item.receipt;
        assert_eq!(row[col("id")], r.id);
        assert_eq!(DateTime::parse_from_rfc3339(&row[col("time")]).unwrap(), r.time, "ISO 8601 UTC time");
        assert!(row[col("time")].ends_with('Z'));
        assert_eq!(row[col("url")], r.url);
        assert_eq!(row[col("intent")], r.intent.clone().unwrap_or_default());
        assert_eq!(row[col("amount_usd")], r.amount_usd.clone().unwrap_or_default());
        assert_eq!(row[col("grant_label")], r.grant.as_ref().unwrap().label);
        assert_eq!(row[col("flags")], item.flags.names().join(";"));
        assert_eq!(row[col("hash")], r.hash);
    }
    assert!(csv.windows(2).filter(|w| w == b"\r\n").count() >= 11, "CRLF line ends");
    assert_eq!(verify_export(&csv[..]).unwrap().rows, 10);

    // A filtered export verifies row by row; links only where seqs are consecutive.
    let mut part = vec![];
    export(&l, "grant:travel", Format::Jsonl, true, &mut part, now(), |_, _| {}).unwrap();
    let c = verify_export(&part[..]).unwrap();
    assert_eq!((c.rows, c.links), (3, 1));

    // Any edit of an exported row is caught.
    let text = String::from_utf8(jsonl.clone()).unwrap();
    let forged = text.replacen("\"amount_usd\":\"0.75\"", "\"amount_usd\":\"0.07\"", 1);
    assert_ne!(forged, text);
    assert_eq!(verify_export(forged.as_bytes()).unwrap_err().code(), "invalid_export");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(3, 4);
    assert!(verify_export(lines.join("\n").as_bytes()).is_err(), "reordered rows are caught");
    let mut missing: Vec<&str> = text.lines().collect();
    missing.remove(4);
    assert_eq!(verify_export(missing.join("\n").as_bytes()).unwrap().links, 7, "a missing row breaks a link");
}

#[test]
fn csv_quoting_is_rfc4180_with_a_formula_guard() {
    let mut out = vec![];
    for (s, text) in [("plain", true), ("a,b", false), ("say \"hi\"", false), ("two\nlines", false), ("=HYPERLINK(\"x\")", true), ("-1", false)] {
        export::csv_field(&mut out, s, text).unwrap();
        out.push(b',');
    }
    out.pop();
    out.extend_from_slice(b"\r\n");
    assert_eq!(String::from_utf8(out.clone()).unwrap(), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\",-1\r\n");
    let rec = csv_records(&out[..]).next().unwrap().unwrap();
    assert_eq!(rec, ["plain", "a,b", "say \"hi\"", "two\nlines", "=HYPERLINK(\"x\")", "-1"]);
}

fn broken_at(l: &Ledger) -> String {
    match l.verify_chain().unwrap() {
        ChainReport::Broken { id, .. } => id,
        ChainReport::Intact { .. } => "intact".into(),
    }
}

fn tamper(l: &Ledger, sql: &str) {
    l.with(|c| {
        c.execute_batch(&format!("DROP TRIGGER receipts_no_update; DROP TRIGGER receipts_no_delete; {sql}"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn verify_catches_modified_deleted_and_reordered_receipts() {
    let cases: &[(&str, &str, &str)] = &[
        ("modified body", "UPDATE receipts SET body = replace(body, '\"0.75\"', '\"0.07\"') WHERE id = 'r04'", "r04"),
        ("modified column", "UPDATE receipts SET reason = 'paid' WHERE id = 'r04'", "r04"),
        ("deleted in the middle", "DELETE FROM receipts WHERE id = 'r05'", "r06"),
        ("deleted at the end", "DELETE FROM receipts WHERE id = 'r10'", "#10"),
        ("deleted first", "DELETE FROM receipts WHERE id = 'r01'", "r02"),
        ("reordered", "UPDATE receipts SET seq = -1 WHERE id = 'r03'; UPDATE receipts SET seq = 3 WHERE id = 'r04'; UPDATE receipts SET seq = 4 WHERE id = 'r03' AND seq = -1;", "r04"),
    ];
    for (name, sql, want) in cases {
        let (_d, l) = fixture();
        assert_eq!(broken_at(&l), "intact", "{name}: before");
        tamper(&l, sql);
        assert_eq!(broken_at(&l), *want, "{name}");
    }
}

#[test]
fn archive_moves_a_prefix_and_both_files_stay_verifiable() {
    let (d, l) = fixture();
    let file = d.path().join("data").join("archive.db");
    let rep = l.archive_before(at("2026-11-03T00:00:00Z"), &file, now()).unwrap();
    assert_eq!((rep.moved, rep.first_seq, rep.last_seq), (5, Some(1), Some(5)), "stops at the first receipt at or after the date");
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 5, .. }), "{:?}", l.verify_chain());
    assert!(matches!(crate::ledger::verify_archive_file(&file).unwrap(), ChainReport::Intact { count: 5, ref head } if Some(head) == rep.anchor_hash.as_ref()));
    assert_eq!(ids(&search(&l, "", 100, None, now()).unwrap()), ["r10", "r09", "r08", "r07", "r06"]);
    assert_eq!(stats(&l, "", &[], None, now()).unwrap().total["receipts"], 5, "the rollup forgot them");
    assert_eq!(stats(&l, "-zzzz", &[], None, now()).unwrap().total["receipts"], 5);
    assert_eq!(ids(&search(&l, "until:2026-11-02", 100, None, now()).unwrap()), ["r10"]);
    // New receipts keep linking; archiving again continues the same file.
    let g = l.list_grants().unwrap()[0].clone();
    let mut r = Receipt::new("r11".into(), at("2026-11-06T00:00:00Z"), "GET", "https://api.weather.com/v1/forecast", "api.weather.com");
    r.set_grant(&g);
    r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::OverBudget, None, "no");
    l.record(&mut r, now()).unwrap();
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 6, .. }));
    let again = l.archive_before(at("2026-11-06T00:00:00Z"), &file, now()).unwrap();
    assert_eq!((again.moved, again.first_seq, again.last_seq), (5, Some(6), Some(10)));
    assert!(matches!(crate::ledger::verify_archive_file(&file).unwrap(), ChainReport::Intact { count: 10, .. }));
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 1, .. }));
    assert_eq!(l.archives().unwrap().len(), 2);
    // Nothing older left: a no-op.
    assert_eq!(l.archive_before(at("2026-11-01T00:00:00Z"), &file, now()).unwrap().moved, 0);
    // A different file can't continue a chain it does not hold.
    let other = d.path().join("other.db");
    let mut r = Receipt::new("r12".into(), at("2026-11-07T00:00:00Z"), "GET", "https://x.example.io/", "x.example.io");
    r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::OverBudget, None, "no");
    l.record(&mut r, now()).unwrap();
    let rep = l.archive_before(at("2026-11-08T00:00:00Z"), &other, now()).unwrap();
    assert_eq!(rep.moved, 2, "a new file starts at the anchor");
    assert!(matches!(crate::ledger::verify_archive_file(&other).unwrap(), ChainReport::Intact { count: 2, .. }));
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 0, .. }));
}

#[test]
fn a_ledger_from_before_the_index_is_backfilled() {
    let (_d, l) = fixture();
    // Simulate schema step 1 data: drop the index rows and mark them pending.
    l.with(|c| {
        c.execute_batch("DELETE FROM receipt_facts; INSERT INTO receipt_fts(receipt_fts) VALUES ('delete-all'); DELETE FROM receipt_rollup; DELETE FROM receipt_counts; DELETE FROM receipt_days; DELETE FROM price_memory; DELETE FROM payee_memory; UPDATE receipt_index_state SET backfill_below = 11;")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(ids(&search(&l, "flag:any", 10, None, now()).unwrap()), ["r09", "r08", "r04"]);
    assert_eq!(search(&l, "", 100, None, now()).unwrap().total, 10);
}

#[test]
fn seeding_writes_a_valid_chain_and_refuses_wallets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let l = Ledger::open_in(&data).unwrap();
    let opts = seed::SeedOptions { count: 3000, batch: 700, ..Default::default() };
    let rep = seed::seed(&l, &data, &opts, now(), |_, _| {}).unwrap();
    assert_eq!(rep.receipts, 3000);
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 3000, .. }));
    let s = stats(&l, "", &[GroupBy::Outcome], None, now()).unwrap();
    assert_eq!(s.groups.len(), 4, "every outcome appears");
    assert!(search(&l, "flag:price_spike", 10, None, now()).unwrap().total > 0, "spikes appear");
    assert!(search(&l, "paid outcome:paid", 10, None, now()).unwrap().total > 0);
    std::fs::write(data.join(crate::wallet::VAULT_FILE), "{}").unwrap();
    assert_eq!(seed::seed(&l, &data, &opts, now(), |_, _| {}).unwrap_err().code(), "wallet_present");
}

/// Amount filters against brute force, for bounds on, beside and between the grid's points,
/// every comparison form: totals, pages and aggregates agree with counting by hand. Words with
/// an amount are counted from the priced-word pairs, and for receipts without pairs (a combining
/// accent, a script the pairs leave out) from the amount cells: both must count exactly.
#[test]
fn amount_filters_agree_with_brute_force_on_and_off_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(&dir.path().join("data")).unwrap();
    let grid: Vec<u64> = crate::ledger::index::amount_grid().iter().copied().filter(|g| *g <= 5_000_000).collect();
    let mut amounts: Vec<u64> = grid.iter().flat_map(|g| [g.saturating_sub(1), *g, g + 1, g + g / 3 + 7]).collect();
    amounts.sort_unstable();
    amounts.dedup();
    // Intents by receipt (i % 5), and which words each one matches (FTS5 folds accents). The
    // last has too many words to pair: it is counted from the amount cells.
    let long: String = "prices".to_string() + &(0..70).map(|i| format!(" w{i}")).collect::<String>();
    let intents = [None, Some("Café prices in Zürich"), Some("cafe\u{301} prices"), Some("मौसम prices"), Some(long.as_str()), Some("ΟΔΟΣ prices")];
    let words: [(&str, [bool; 6]); 9] = [
        ("forecast", [true; 6]),
        ("prices", [false, true, true, true, true, true]),
        ("cafe", [false, true, true, false, false, false]),
        ("café", [false, true, true, false, false, false]),
        ("zurich", [false, true, false, false, false, false]),
        ("मौसम", [false, false, false, true, false, false]),
        ("w7", [false, false, false, false, true, false]),
        ("οδοσ", [false, false, false, false, false, true]),
        ("ΟΔΟΣ", [false, false, false, false, false, true]),
    ];
    for (i, a) in amounts.iter().enumerate() {
        let mut r = Receipt::new(format!("a{i:04}"), at("2026-11-05T00:00:00Z") + chrono::Duration::seconds(i as i64), "GET", "https://api.weather.com/v1/forecast", "api.weather.com");
        r.intent = intents[i % 6].map(str::to_string);
        r.decide(Outcome::Paid, DecidedBy::Auto, crate::receipt::Reason::Paid, None, "paid".to_string());
        r.amount_atomic = Some(a.to_string());
        r.amount_usd = Some(crate::money::micros_decimal(*a));
        l.record(&mut r, at("2026-11-05T00:00:00Z")).unwrap();
    }
    let usd = |m: u64| crate::money::micros_decimal(m).to_string();
    let bounds: Vec<u64> = amounts.iter().copied().step_by(3).collect();
    let mut checked = 0;
    let with_word = |w: &[bool; 6], keep: &dyn Fn(u64) -> bool| amounts.iter().enumerate().filter(|(i, a)| w[i % 6] && keep(**a)).count() as u64;
    // The table says what the plain word search finds (FTS5 folds case and accents, and cuts
    // मौसम in two); pairs must find the same.
    for (word, has) in &words {
        assert_eq!(count(&l, word, now()).unwrap(), with_word(has, &|_| true), "{word} alone");
    }
    for (i, lo) in bounds.iter().enumerate() {
        for hi in bounds[i..].iter().step_by(2) {
            let want = amounts.iter().filter(|a| **a >= *lo && **a <= *hi).count() as u64;
            let q = format!("amount:{}..{}", usd(*lo), usd(*hi));
            assert_eq!(count(&l, &q, now()).unwrap(), want, "{q}");
            for (word, has) in &words {
                let want = with_word(has, &|a| a >= *lo && a <= *hi);
                assert_eq!(search(&l, &format!("{q} {word}"), 5, None, now()).unwrap().total, want, "{q} {word}, page total");
                assert_eq!(count(&l, &format!("{word} {q} prices"), now()).unwrap(), with_word(&[false, has[1], has[2], has[3], has[4], has[5]], &|a| a >= *lo && a <= *hi), "{word} {q} prices");
            }
            checked += 1;
        }
        for (form, want) in [
            (">", amounts.iter().filter(|a| **a > *lo).count()),
            (">=", amounts.iter().filter(|a| **a >= *lo).count()),
            ("<", amounts.iter().filter(|a| **a < *lo).count()),
            ("<=", amounts.iter().filter(|a| **a <= *lo).count()),
        ] {
            if form == "<" && *lo == 0 {
                continue; // "nothing is below zero": an error, tested with the bad queries
            }
            let q = format!("amount:{form}{}", usd(*lo));
            assert_eq!(count(&l, &q, now()).unwrap(), want as u64, "{q}");
            // The row path (a word forces it) agrees too.
            assert_eq!(count(&l, &format!("{q} forecast"), now()).unwrap(), want as u64, "{q} forecast");
            let keep = |a: u64| match form {
                ">" => a > *lo,
                ">=" => a >= *lo,
                "<" => a < *lo,
                _ => a <= *lo,
            };
            for (word, has) in &words {
                assert_eq!(count(&l, &format!("{q} {word}"), now()).unwrap(), with_word(has, &keep), "{q} {word}");
            }
        }
    }
    // Both ends on the grid (answered from one family of cells plus the upper end's point).
    for (i, lo) in grid.iter().enumerate() {
        for hi in grid[i..].iter().step_by(2) {
            let want = amounts.iter().filter(|a| **a >= *lo && **a <= *hi).count() as u64;
            let q = format!("amount:{}..{}", usd(*lo), usd(*hi));
            assert_eq!(count(&l, &q, now()).unwrap(), want, "{q}");
            assert_eq!(count(&l, &format!("{q} forecast"), now()).unwrap(), want, "{q} forecast");
            // A page's total is counted from the index alone (no row check): it must be exact.
            assert_eq!(search(&l, &format!("{q} forecast"), 5, None, now()).unwrap().total, want, "{q} forecast, page total");
            for (word, has) in &words {
                assert_eq!(search(&l, &format!("{word} {q}"), 5, None, now()).unwrap().total, with_word(has, &|a| a >= *lo && a <= *hi), "{word} {q}, page total");
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} ranges");
    let (seen, total) = all_pages(&l, &format!("amount:{}..{}", usd(grid[5] + 1), usd(grid[20])), 7);
    assert_eq!(seen.len() as u64, total);
}

/// `host:*.<suffix>` is one parent-domain token in the index (not an OR over hosts): it must
/// match exactly the hosts that end in `.<suffix>`, on the FTS path (with a word) and the counts
/// path (filters only), and combined with other filters and negation.
#[test]
fn host_wildcards_agree_with_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open_in(&dir.path().join("data")).unwrap();
    let hosts = ["a.b.example.com", "b.example.com", "example.com", "xexample.com", "example.com.evil.io", "127.0.0.1:8080", "localhost", "API.Upper.Example.com"];
    let mut n = 0;
    for (i, h) in hosts.iter().enumerate() {
        for k in 0..=i {
            let mut r = Receipt::new(format!("h{n:03}"), at("2026-11-05T00:00:00Z") + chrono::Duration::seconds(n), "GET", &format!("https://{h}/v1/forecast"), h);
            r.decide(if k % 2 == 0 { Outcome::Paid } else { Outcome::Refused }, DecidedBy::Auto, crate::receipt::Reason::Paid, None, "x".to_string());
            l.record(&mut r, at("2026-11-05T00:00:00Z")).unwrap();
            n += 1;
        }
    }
    let weight = |h: &str| hosts.iter().position(|x| *x == h).unwrap() as u64 + 1;
    let paid = |h: &str| weight(h).div_ceil(2);
    let patterns =
        ["*.example.com", "*.com", "*.b.example.com", "*.0.1:8080", "*.0.0.1:8080", "*.1:8080", "*.io", "*.evil.io", "*.localhost", "*.m", "*.upper.example.com", "*.EXAMPLE.COM", "*.nothing.test"];
    for pat in patterns {
        let suffix = format!(".{}", pat[2..].to_ascii_lowercase());
        let matching: Vec<&str> = hosts.iter().copied().filter(|h| h.to_ascii_lowercase().ends_with(&suffix)).collect();
        let want: u64 = matching.iter().map(|h| weight(h)).sum();
        let want_paid: u64 = matching.iter().map(|h| paid(h)).sum();
        assert_eq!(count(&l, &format!("host:{pat}"), now()).unwrap(), want, "host:{pat} (counts)");
        assert_eq!(search(&l, &format!("forecast host:{pat}"), 3, None, now()).unwrap().total, want, "forecast host:{pat} (FTS)");
        assert_eq!(count(&l, &format!("forecast host:{pat} outcome:paid"), now()).unwrap(), want_paid, "forecast host:{pat} outcome:paid");
        assert_eq!(count(&l, &format!("forecast -host:{pat}"), now()).unwrap(), n as u64 - want, "forecast -host:{pat}");
        assert_eq!(count(&l, &format!("host:{pat},localhost"), now()).unwrap(), want + if matching.contains(&"localhost") { 0 } else { weight("localhost") }, "host:{pat},localhost");
        let (seen, total) = all_pages(&l, &format!("forecast host:{pat}"), 4);
        assert_eq!((seen.len() as u64, total), (want, want), "pages of forecast host:{pat}");
    }
}

/// A ledger from before schema step 8 (its FTS index without parent-domain tokens or prefix
/// indexes) or step 9 (without priced-word pairs) is rebuilt on open: every search answers as
/// before, wildcards, prefixes and words with amounts included.
#[test]
fn a_ledger_from_before_steps_8_and_9_is_reindexed() {
    for (version, prefix) in [(7, ""), (8, ", prefix='2 3 4 5 6'")] {
        let (dir, l) = fixture();
        let queries = [
            "host:*.example.io",
            "flight* host:*.example.io",
            "forec* host:*.com",
            "fl* -host:*.flights.example.io",
            "flag:any",
            "weather amount:>0.01",
            "weather amount:0.001..0.02",
            "",
            "agent:claude",
            "run:research -agent:curl",
        ];
        let before: Vec<(Vec<String>, u64)> = queries.iter().map(|q| all_pages(&l, q, 3)).collect();
        drop(l);
        // The old FTS table, its documents gone (so a search that skipped the rebuild would
        // find nothing), the old user_version.
        let c = rusqlite::Connection::open(dir.path().join("data").join(crate::ledger::DB_FILE)).unwrap();
        c.execute_batch(&format!(
            "DROP TABLE receipt_fts;
             CREATE VIRTUAL TABLE receipt_fts USING fts5(doc, content='', contentless_delete=1, detail=none{prefix}, tokenize=\"unicode61 remove_diacritics 2 tokenchars '$'\");
             PRAGMA user_version = {version};"
        ))
        .unwrap();
        drop(c);
        let l = Ledger::open_in(&dir.path().join("data")).unwrap();
        let after: Vec<(Vec<String>, u64)> = queries.iter().map(|q| all_pages(&l, q, 3)).collect();
        assert_eq!(after, before, "from step {version}");
        assert!(before[1].1 > 0 && before[2].1 > 0 && before[3].1 > 0 && before[5].1 > 0 && before[6].1 > 0, "the queries match something: {before:?}");
        assert_eq!((&before[8].0[..], &before[9].0[..]), (&["r05".to_string()][..], &["r08".to_string()][..]), "agents are reindexed");
        let fts: String = l.read(|c| Ok(c.query_row("SELECT sql FROM sqlite_master WHERE name = 'receipt_fts'", [], |r| r.get(0))?)).unwrap();
        assert!(fts.contains("prefix='2 3 4 5 6'"), "{fts}");
        let pairs: i64 = l.read(|c| Ok(c.query_row("SELECT count(*) FROM receipt_fts('\"$m\"*')", [], |r| r.get(0))?)).unwrap();
        assert!(pairs > 0, "no priced-word pairs after the rebuild from step {version}");
    }
}

/// The agent is left out of a receipt without one, so the hashed body of every receipt written
/// before agents were recorded is byte for byte what it was; with one, it follows the intent.
#[test]
fn an_agent_changes_no_other_receipts_bytes() {
    let (_d, l) = fixture();
    let listed = l.list_receipts(10).unwrap();
    let body = |id: &str| {
        let mut r = listed.iter().find(|r| r.id == id).unwrap().clone();
        r.hash.clear();
        serde_json::to_string(&r).unwrap()
    };
    assert!(!body("r01").contains("agent"), "{}", body("r01"));
    assert!(body("r05").contains(r#""intent":"flights to lisbon","agent":{"kind":"process","pid":300,"exe":"/usr/bin/curl","#), "{}", body("r05"));
    assert!(body("r08").contains(r#""run_label":"Research","run_id":"run-1"},"x402_version""#), "{}", body("r08"));
    // A body from before (no `agent` key) reads as no agent and writes back the same bytes.
    let old = body("r01");
    let back: Receipt = serde_json::from_str(&old).unwrap();
    assert_eq!(back.agent, None);
    assert_eq!(serde_json::to_string(&back).unwrap(), old);
    assert!(matches!(l.verify_chain().unwrap(), ChainReport::Intact { count: 10, .. }));
}

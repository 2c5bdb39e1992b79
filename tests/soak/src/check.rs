//! Owns the soak's end-of-run audit against the ledger and the chain: `receipts verify`, every
//! receipt id an agent got is in the ledger with the outcome its kind implies (and no receipt
//! is left unaccounted), counts by outcome agree, every grant balances (spent + reserved +
//! remaining = budget, nothing left reserved), and paid receipts equal what the payees received.

use std::collections::{BTreeMap, HashMap};

use purser_testkit::Purser;
use serde::Serialize;
use serde_json::Value;

use crate::kinds::{Agent, Kind};
use crate::traffic::Record;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Audit {
    pub verify_ok: bool,
    /// What `purser receipts verify` printed.
    pub verify_output: String,
    pub receipts_in_ledger: usize,
    /// `outcome/reason/decided_by` → count, as the agents saw it (from their kinds).
    pub agents: BTreeMap<String, u64>,
    /// The same key, counted in the ledger.
    pub ledger: BTreeMap<String, u64>,
    /// Sum of paid receipts' amounts (atomic).
    pub paid_atomic: u128,
    /// What the payees received on chain over the run (atomic).
    pub payee_delta_atomic: u128,
    /// Per grant label: (budget, spent, reserved, remaining) atomic.
    pub grants: BTreeMap<String, (u64, u64, u64, u64)>,
    pub problems: Vec<String>,
}

fn key(outcome: &str, reason: Option<&str>, by: Option<&str>) -> String {
    format!("{outcome}/{}/{}", reason.unwrap_or("-"), by.unwrap_or("-"))
}

fn num(v: &Value) -> Option<u128> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// Audits the ledger of `p` against the agents' `records` (blocking: runs the CLI).
pub fn audit(p: &Purser, agents: &[Agent], records: &[Record], payee_delta_atomic: u128) -> Audit {
    let mut a = Audit { payee_delta_atomic, ..Audit::default() };
    let v = p.cli(&["receipts", "verify"]);
    a.verify_ok = v.status.success();
    a.verify_output = format!("{}{}", String::from_utf8_lossy(&v.stdout).trim(), String::from_utf8_lossy(&v.stderr).trim());
    if !a.verify_ok {
        a.problems.push(format!("receipts verify failed: {}", a.verify_output));
    }

    let limit = (records.len() + 1000).to_string();
    let receipts = match p.cli_json(&["receipts", "list", "--json", "--limit", &limit]) {
        Value::Array(v) => v,
        other => {
            a.problems.push(format!("receipts list is not an array: {other}"));
            Vec::new()
        }
    };
    a.receipts_in_ledger = receipts.len();
    let by_id: HashMap<&str, &Value> = receipts.iter().filter_map(|r| Some((r["id"].as_str()?, r))).collect();
    let grant_kind: HashMap<&str, Kind> = agents.iter().map(|g| (g.grant_id.as_str(), g.kind)).collect();

    for r in &receipts {
        let reason = r["reason"].as_str().filter(|_| r["outcome"] != "paid");
        let by = r["decided_by"].as_str().filter(|b| *b == "user" || *b == "auto");
        *a.ledger.entry(key(r["outcome"].as_str().unwrap_or("?"), reason, by)).or_default() += 1;
        if r["outcome"] == "paid" {
            match num(&r["amount_atomic"]) {
                Some(n) => a.paid_atomic += n,
                None => a.problems.push(format!("paid receipt without amount_atomic: {r}")),
            }
        }
        if !r["grant_id"].as_str().is_some_and(|g| grant_kind.contains_key(g)) {
            a.problems.push(format!("receipt under no soak grant: {r}"));
        }
    }

    let mut seen = 0usize;
    for rec in records {
        let e = rec.kind.expect();
        let Some(outcome) = e.outcome else { continue };
        if rec.problem.is_some() {
            continue; // already a problem of its own
        }
        *a.agents.entry(key(outcome, e.reason, e.decided_by)).or_default() += 1;
        let Some(id) = rec.receipt.as_deref() else { continue };
        seen += 1;
        let Some(r) = by_id.get(id) else {
            a.problems.push(format!("{} answer's receipt {id} is not in the ledger", rec.kind.name()));
            continue;
        };
        let want_reason = e.reason.is_none_or(|w| r["reason"] == w);
        let want_by = e.decided_by.is_none_or(|w| r["decided_by"] == w);
        if r["outcome"] != outcome || !want_reason || !want_by {
            a.problems.push(format!("{} answer's receipt {id} says {}/{}/{}", rec.kind.name(), r["outcome"], r["reason"], r["decided_by"]));
        }
        if grant_kind.get(r["grant_id"].as_str().unwrap_or_default()) != Some(&rec.kind) {
            a.problems.push(format!("{} answer's receipt {id} is under grant {}", rec.kind.name(), r["grant_id"]));
        }
    }
    if seen != receipts.len() {
        a.problems.push(format!("the agents got {seen} receipt ids, the ledger holds {} receipts", receipts.len()));
    }
    if a.agents != a.ledger {
        a.problems.push(format!("counts differ: agents {:?}, ledger {:?}", a.agents, a.ledger));
    }
    if a.paid_atomic != payee_delta_atomic {
        a.problems.push(format!("paid receipts sum to {} atomic, the payees received {payee_delta_atomic}", a.paid_atomic));
    }

    for g in agents {
        let v = p.grant_show(&g.grant_id);
        let f = |k: &str| num(&v[k]).and_then(|n| u64::try_from(n).ok());
        let (Some(b), Some(s), Some(r), Some(m)) = (f("budget_atomic"), f("spent_atomic"), f("reserved_atomic"), f("remaining_atomic")) else {
            a.problems.push(format!("grant show lacks atomic amounts: {v}"));
            continue;
        };
        a.grants.insert(g.kind.name().to_string(), (b, s, r, m));
        if s.checked_add(r).and_then(|x| x.checked_add(m)) != Some(b) {
            a.problems.push(format!("grant {}: spent {s} + reserved {r} + remaining {m} != budget {b}", g.kind.name()));
        }
        if r != 0 {
            a.problems.push(format!("grant {}: {r} atomic still reserved after traffic stopped", g.kind.name()));
        }
    }
    a
}

//! Owns what the demo prints: one line per decision, made from the receipt the ledger recorded
//! (the truth, not the agent's view), the tally of those receipts, and the summary. Amounts are exact
//! micro-USD integers, shown with six decimals.

use crate::AutoAnswer;
use purser_core::money;
use purser_core::receipt::{DecidedBy, Outcome, Receipt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `$0.001000`: micro-USD with all six decimals (integer arithmetic, exact).
pub fn usd6(micros: u64) -> String {
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A receipt's price in micro-USD, when it has one.
fn micros(r: &Receipt) -> Option<u64> {
    r.amount_usd.as_deref().and_then(|a| money::parse_usd(a).ok())
}

fn snapshot_usd(v: Option<&String>) -> String {
    v.and_then(|s| s.parse::<u64>().ok()).map(money::format_usd).unwrap_or_else(|| "-".into())
}

/// The path (and query) of a receipt's URL, as the agent asked for it.
fn path_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// The line for one decision: `WORD  $AMOUNT  METHOD /path  (why)`. WORD is `paid`, `asked`
/// (a person or the auto-answer decided: the text after `→` says how), `refused`, `failed` or
/// `not_payable`.
pub fn decision_line(r: &Receipt) -> String {
    let amount = micros(r).map(usd6).unwrap_or_else(|| "-".into());
    let snap = r.grant.as_ref();
    let (word, why) = match (r.outcome, r.decided_by, r.reason.as_str()) {
        (Outcome::Paid, DecidedBy::Auto, _) => ("paid", format!("(auto: below {})", snapshot_usd(snap.map(|g| &g.auto_below_atomic)))),
        (Outcome::Paid, DecidedBy::Rule, _) => ("paid", "(your rule: this host without asking, within the grant)".to_string()),
        (Outcome::Paid, DecidedBy::User, _) => ("asked", "→ approved, paid".to_string()),
        (Outcome::Refused, DecidedBy::User, _) => ("asked", "→ denied, not paid".to_string()),
        (Outcome::Refused, DecidedBy::Timeout, _) => ("asked", "→ no answer in time, not paid".to_string()),
        (Outcome::Refused, _, "above_ask_tier") => ("refused", format!("(above the grant's ask ceiling {})", snapshot_usd(snap.and_then(|g| g.ask_below_atomic.as_ref())))),
        (Outcome::Refused, _, "over_budget") => {
            let left = r.ledger_after.as_ref().and_then(|a| a.remaining_atomic.parse::<u64>().ok()).map(usd6).unwrap_or_else(|| "-".into());
            ("refused", format!("(budget exhausted: {left} left of {})", snapshot_usd(snap.map(|g| &g.budget_atomic))))
        }
        (Outcome::Refused, _, "over_per_request_cap") => ("refused", format!("(over the grant's per-request cap {})", snapshot_usd(snap.and_then(|g| g.per_request_max_atomic.as_ref())))),
        (outcome, _, reason) => (outcome.as_str(), format!("({reason}: {})", r.message)),
    };
    format!("{word:<9} {amount:>10}  {} {}  {why}", r.method, path_of(&r.url))
}

/// Counts by outcome and by how each was decided, and the money paid, from the receipts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub decisions: usize,
    /// outcome (`paid`, `refused`, ...) → count.
    pub outcomes: BTreeMap<String, usize>,
    /// `outcome/why` (`paid/auto`, `paid/user`, `paid/rule`, `refused/user_denied`,
    /// `refused/above_ask_tier`, `refused/over_budget`, ...) → count.
    pub kinds: BTreeMap<String, usize>,
    /// Sum of the paid receipts' prices, micro-USD.
    pub paid_micros: u64,
    /// Sum of the paid receipts' amounts in the asset's atomic units.
    pub paid_atomic: u128,
}

impl Tally {
    pub fn add(&mut self, r: &Receipt) {
        self.decisions += 1;
        *self.outcomes.entry(r.outcome.as_str().to_string()).or_default() += 1;
        let why = match r.outcome {
            Outcome::Paid => serde_json::to_value(r.decided_by).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            _ => r.reason.clone(),
        };
        *self.kinds.entry(format!("{}/{why}", r.outcome.as_str())).or_default() += 1;
        if r.outcome == Outcome::Paid {
            self.paid_micros = self.paid_micros.saturating_add(micros(r).unwrap_or(0));
            let atomic = r.amount_atomic.as_deref().and_then(|a| a.parse::<u128>().ok()).unwrap_or(0);
            self.paid_atomic = self.paid_atomic.saturating_add(atomic);
        }
    }

    pub fn count(&self, outcome: &str) -> usize {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// `3 auto, 1 approved by you` / `1 user_denied, 1 above_ask_tier`: the kinds of one outcome.
    pub fn breakdown(&self, outcome: &str) -> String {
        let prefix = format!("{outcome}/");
        let parts: Vec<String> = self.kinds.iter().filter_map(|(k, n)| k.strip_prefix(&prefix).map(|why| format!("{n} {why}"))).collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// How the demo went (everything from the ledger and the chain).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    pub auto_answer: Option<AutoAnswer>,
    pub grant_id: String,
    pub tally: Tally,
    pub budget_micros: u64,
    pub spent_micros: u64,
    pub remaining_micros: u64,
    pub wallet: String,
    pub pay_to: String,
    /// What the payee's test USDC balance grew by while the agent ran (atomic units).
    pub payee_received_atomic: u128,
    /// The hash chain checked out, with this many receipts.
    pub receipts_verified: Option<u64>,
    pub agent_requests: usize,
    /// The receipts reconciliation checked against the chain, by state (`confirmed`, ...).
    pub reconciled: BTreeMap<String, usize>,
}

/// The summary, in lines.
pub fn summary_lines(s: &Summary) -> Vec<String> {
    let t = &s.tally;
    let chain = match s.receipts_verified {
        Some(n) => format!("{n} receipts, hash chain verified intact"),
        None => "hash chain BROKEN (see `receipts verify`)".into(),
    };
    let onchain = if s.payee_received_atomic == t.paid_atomic { "equal to the paid receipts" } else { "NOT equal to the paid receipts" };
    let d = s.dir.display();
    vec![
        format!("summary   {} decisions: {} paid, {} refused, {} failed", t.decisions, t.count("paid"), t.count("refused"), t.count("failed")),
        format!("          paid: {}; refused: {}", t.breakdown("paid"), t.breakdown("refused")),
        format!("spent     {} of the {} budget, {} left", usd6(s.spent_micros), usd6(s.budget_micros), usd6(s.remaining_micros)),
        format!("onchain   payee {} received {} test USDC atomic units ({onchain})", s.pay_to, s.payee_received_atomic),
        format!("receipts  {chain}"),
        format!(
            "reconcile {}",
            if s.reconciled.is_empty() {
                "nothing to check on chain".to_string()
            } else {
                s.reconciled.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ") + " (receipts checked against the chain)"
            }
        ),
        format!("data      {d} (demo data only; your real wallet and ledger were not touched)"),
        format!("browse    purser --data-dir {d} receipts list   (also: receipts search, receipts verify)"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_decimals_exact() {
        assert_eq!(usd6(0), "$0.000000");
        assert_eq!(usd6(1_000), "$0.001000");
        assert_eq!(usd6(2_000_000), "$2.000000");
        assert_eq!(usd6(953_000), "$0.953000");
    }

    fn receipt(path: &str, usd: &str, outcome: Outcome, by: DecidedBy, reason: &str) -> Receipt {
        let mut r = Receipt::new("r".into(), chrono::Utc::now(), "GET", &format!("http://127.0.0.1:9{path}"), "127.0.0.1");
        r.decide(outcome, by, purser_core::receipt::Reason::parse(reason).expect("a reason"), None, "the message");
        r.amount_usd = Some(usd.into());
        r.amount_atomic = Some((money::parse_usd(usd).unwrap()).to_string());
        r.grant = Some(purser_core::receipt::GrantSnapshot {
            label: "demo agent".into(),
            budget_atomic: "1000000".into(),
            spent_atomic: "0".into(),
            reserved_atomic: "0".into(),
            per_request_max_atomic: None,
            auto_below_atomic: "10000".into(),
            ask_below_atomic: Some("250000".into()),
            hosts: vec![],
            expires_at: chrono::Utc::now(),
        });
        r.ledger_after = Some(purser_core::receipt::LedgerAfter { spent_atomic: "953000".into(), reserved_atomic: "0".into(), remaining_atomic: "47000".into() });
        r
    }

    #[test]
    fn one_line_per_kind_of_decision() {
        let norm = |l: String| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let cases = [
            (receipt("/cheap", "0.001", Outcome::Paid, DecidedBy::Auto, "paid"), "paid $0.001000 GET /cheap (auto: below $0.01)"),
            (receipt("/mid", "0.05", Outcome::Paid, DecidedBy::User, "paid"), "asked $0.050000 GET /mid → approved, paid"),
            (receipt("/mid", "0.05", Outcome::Refused, DecidedBy::User, "user_denied"), "asked $0.050000 GET /mid → denied, not paid"),
            (receipt("/mid", "0.05", Outcome::Refused, DecidedBy::Timeout, "approval_timed_out"), "asked $0.050000 GET /mid → no answer in time, not paid"),
            (receipt("/pricey", "2", Outcome::Refused, DecidedBy::Policy, "above_ask_tier"), "refused $2.000000 GET /pricey (above the grant's ask ceiling $0.25)"),
            (receipt("/mid", "0.05", Outcome::Refused, DecidedBy::Policy, "over_budget"), "refused $0.050000 GET /mid (budget exhausted: $0.047000 left of $1.00)"),
            (receipt("/mid", "0.05", Outcome::Failed, DecidedBy::Rule, "settlement_failed"), "failed $0.050000 GET /mid (settlement_failed: the message)"),
        ];
        for (r, want) in cases {
            assert_eq!(norm(decision_line(&r)), want);
        }
    }

    #[test]
    fn the_tally_counts_outcomes_and_adds_only_what_was_paid() {
        let mut t = Tally::default();
        t.add(&receipt("/cheap", "0.001", Outcome::Paid, DecidedBy::Auto, "paid"));
        t.add(&receipt("/cheap", "0.001", Outcome::Paid, DecidedBy::Auto, "paid"));
        t.add(&receipt("/mid", "0.05", Outcome::Paid, DecidedBy::Rule, "paid"));
        t.add(&receipt("/pricey", "2", Outcome::Refused, DecidedBy::Policy, "above_ask_tier"));
        assert_eq!((t.decisions, t.count("paid"), t.count("refused"), t.count("failed")), (4, 3, 1, 0));
        assert_eq!((t.paid_micros, t.paid_atomic), (52_000, 52_000));
        assert_eq!(t.breakdown("paid"), "2 auto, 1 rule");
        assert_eq!(t.breakdown("refused"), "1 above_ask_tier");
        assert_eq!(t.breakdown("failed"), "none");
    }

    #[test]
    fn paths_keep_the_query() {
        assert_eq!(path_of("http://127.0.0.1:9/mid?x=1"), "/mid?x=1");
        assert_eq!(path_of("http://127.0.0.1:9/cheap"), "/cheap");
    }
}

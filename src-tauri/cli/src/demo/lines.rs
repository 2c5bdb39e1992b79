//! Owns what the demo prints: one line per decision, made from the receipt the ledger recorded
//! (the truth, not the agent's view), and the tally the summary is made of. Amounts are exact
//! micro-USD integers, shown with six decimals.

use purser_core::money;
use purser_core::receipt::{DecidedBy, Outcome, Receipt};
use serde::Serialize;
use std::collections::BTreeMap;

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

    #[test]
    fn paths_keep_the_query() {
        assert_eq!(path_of("http://127.0.0.1:9/mid?x=1"), "/mid?x=1");
        assert_eq!(path_of("http://127.0.0.1:9/cheap"), "/cheap");
    }
}

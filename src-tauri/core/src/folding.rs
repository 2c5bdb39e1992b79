//! Owns the receipt rate limit: how many receipts of routine decisions (nothing paid, nothing
//! reserved, nothing asked of the user) one grant writes a minute, and the one summary receipt
//! that records the rest of that grant's minute.
//!
//! Any host can answer 402 and an agent can ask it in a loop: without a limit, each refusal is a
//! receipt and the ledger grows without bound. Beyond [`RECEIPTS_PER_MINUTE`] such receipts of one
//! grant in one UTC minute (`PURSER_RECEIPTS_PER_MINUTE` overrides it), the decisions still
//! happen (the agent gets the same refusal), but they are counted, by outcome, reason, host and
//! method, into one summary receipt (`reason: receipts_folded`, with `folded`) written when the
//! minute ends, or when Purser stops. Their answers name that summary in `Purser-Receipt`.
//! A payment, a reservation, a user's decision or a prompt is never folded.

use crate::clock::new_id;
use crate::receipt::{DecidedBy, FoldedSummary, Outcome, Receipt};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Default receipts of routine decisions one grant writes a minute.
pub const RECEIPTS_PER_MINUTE: u32 = 60;
/// The reason of a summary receipt.
pub const REASON: &str = "receipts_folded";
/// Most hosts a summary names one by one (the rest are counted under `(other)`).
const MAX_HOSTS: usize = 20;

/// What to do with a routine receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Write it as usual.
    Write,
    /// Counted into the summary `summary_id`; `first` when it opened that summary (whoever gets
    /// it arranges for the summary to be written when its minute ends).
    Folded { summary_id: String, first: bool, minute_ends: DateTime<Utc> },
}

/// One grant's open summary: the receipt it will be, and its counts.
type Open = (Receipt, FoldedSummary);

#[derive(Default)]
struct State {
    /// Per grant: the current minute and the receipts written in it.
    written: HashMap<String, (i64, u32)>,
    /// Per (grant, minute): the summary of what was folded.
    folds: HashMap<(String, i64), Open>,
}

/// The per-grant minute windows of one engine.
pub struct Folding {
    per_minute: u32,
    state: Mutex<State>,
}

impl Default for Folding {
    fn default() -> Self {
        Folding::new(RECEIPTS_PER_MINUTE)
    }
}

impl Folding {
    pub fn new(per_minute: u32) -> Folding {
        Folding { per_minute: per_minute.max(1), state: Mutex::new(State::default()) }
    }

    /// The limit as the process's configuration says (`PURSER_RECEIPTS_PER_MINUTE`; see `config`).
    pub fn from_env() -> Folding {
        Folding::new(crate::config::Config::get().receipts_per_minute)
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// May this receipt be folded at all? Only a routine decision: nothing paid, signed or
    /// reserved, decided by policy or a rule, no prompt involved, under a grant.
    pub fn foldable(receipt: &Receipt, reserved: bool) -> bool {
        !reserved
            && receipt.grant_id.is_some()
            && receipt.outcome != Outcome::Paid
            && matches!(receipt.decided_by, DecidedBy::Policy | DecidedBy::Rule)
            && receipt.decided_via.is_none()
            && receipt.payload_hash.is_none()
            && receipt.reservation_id.is_none()
    }

    /// Counts a foldable receipt in its grant's minute (by the receipt's time): written while
    /// the grant has written fewer than the limit this minute, else folded into the summary.
    pub fn admit(&self, receipt: &Receipt) -> Admit {
        let Some(grant) = receipt.grant_id.clone() else { return Admit::Write };
        let minute = receipt.time.timestamp().div_euclid(60);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let w = st.written.entry(grant.clone()).or_insert((minute, 0));
        if w.0 != minute {
            *w = (minute, 0);
        }
        if w.1 < self.per_minute {
            w.1 += 1;
            return Admit::Write;
        }
        let minute_ends = Utc.timestamp_opt((minute + 1) * 60, 0).single().unwrap_or(receipt.time);
        let key = (grant, minute);
        let first = !st.folds.contains_key(&key);
        let (summary, counts) = st.folds.entry(key).or_insert_with(|| (summary_receipt(receipt), FoldedSummary::new(self.per_minute, receipt.time)));
        counts.add(receipt);
        Admit::Folded { summary_id: summary.id.clone(), first, minute_ends }
    }

    /// The summaries whose minute ended before `now` (every one when `now` is None: Purser is
    /// stopping), taken out, ready to record, oldest first.
    pub fn due(&self, now: Option<DateTime<Utc>>) -> Vec<Receipt> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ended = |minute: i64| now.is_none_or(|n| n.timestamp().div_euclid(60) > minute);
        let keys: Vec<(String, i64)> = st.folds.keys().filter(|(_, m)| ended(*m)).cloned().collect();
        let mut out: Vec<Receipt> = keys
            .into_iter()
            .filter_map(|k| st.folds.remove(&k))
            .map(|(mut r, counts)| {
                r.message = counts.message();
                r.outcome = counts.main_outcome();
                r.detail = counts.reasons.iter().max_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
                r.folded = Some(counts);
                r
            })
            .collect();
        st.written.retain(|_, (m, _)| !ended(*m));
        out.sort_by_key(|r| r.time);
        out
    }
}

/// The summary receipt, started from the first folded decision (its grant, agent and host).
fn summary_receipt(first: &Receipt) -> Receipt {
    let mut r = Receipt::new(new_id(), first.time, "*", &format!("{}://{}/", if first.url.starts_with("https:") { "https" } else { "http" }, first.host), &first.host);
    r.grant_id = first.grant_id.clone();
    r.grant = first.grant.clone();
    r.agent = first.agent.clone();
    r.decide(first.outcome, DecidedBy::Policy, crate::receipt::Reason::ReceiptsFolded, None, String::new());
    r
}

impl FoldedSummary {
    pub(crate) fn new(limit: u32, at: DateTime<Utc>) -> FoldedSummary {
        FoldedSummary { count: 0, limit, first_at: at, last_at: at, outcomes: BTreeMap::new(), reasons: BTreeMap::new(), hosts: BTreeMap::new(), methods: BTreeMap::new() }
    }

    fn add(&mut self, r: &Receipt) {
        self.count += 1;
        self.first_at = self.first_at.min(r.time);
        self.last_at = self.last_at.max(r.time);
        *self.outcomes.entry(r.outcome.as_str().to_string()).or_default() += 1;
        *self.reasons.entry(r.reason.clone()).or_default() += 1;
        *self.methods.entry(r.method.clone()).or_default() += 1;
        let host = if self.hosts.contains_key(&r.host) || self.hosts.len() < MAX_HOSTS { r.host.clone() } else { "(other)".to_string() };
        *self.hosts.entry(host).or_default() += 1;
    }

    fn main_outcome(&self) -> Outcome {
        let top = self.outcomes.iter().max_by_key(|(_, n)| **n).map(|(k, _)| k.as_str());
        match top {
            Some("not_payable") => Outcome::NotPayable,
            Some("failed") => Outcome::Failed,
            _ => Outcome::Refused,
        }
    }

    /// "312 more decisions of this grant between 10:01:02 and 10:01:59 …" in plain words.
    fn message(&self) -> String {
        let list = |m: &BTreeMap<String, u64>| {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        };
        format!(
            "{} more decisions of this grant between {} and {} (beyond its {} receipts a minute) are counted here rather than one by one; nothing was paid or reserved for any of them. By reason: {}. By host: {}",
            self.count,
            self.first_at.format("%H:%M:%S"),
            self.last_at.format("%H:%M:%S"),
            self.limit,
            list(&self.reasons),
            list(&self.hosts)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(grant: &str, at: &str, host: &str, reason: &str) -> Receipt {
        let mut r = Receipt::new(new_id(), at.parse().unwrap(), "GET", &format!("http://{host}/x"), host);
        r.grant_id = Some(grant.into());
        r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::parse(reason).expect("a reason"), None, "no");
        r
    }

    #[test]
    fn beyond_the_limit_a_minute_decisions_fold_into_one_summary() {
        let f = Folding::new(3);
        let t = "2026-12-08T10:01:05Z";
        let admits: Vec<Admit> = (0..10).map(|i| f.admit(&refusal("g", t, if i % 2 == 0 { "a.example" } else { "b.example" }, "host_not_allowed"))).collect();
        assert!(admits[..3].iter().all(|a| *a == Admit::Write));
        let ids: std::collections::HashSet<_> = admits[3..]
            .iter()
            .map(|a| match a {
                Admit::Folded { summary_id, .. } => summary_id.clone(),
                Admit::Write => panic!("written beyond the limit"),
            })
            .collect();
        assert_eq!(ids.len(), 1, "one summary per grant and minute");
        assert!(matches!(admits[3], Admit::Folded { first: true, .. }) && matches!(admits[4], Admit::Folded { first: false, .. }));
        // Another grant has its own limit.
        assert_eq!(f.admit(&refusal("h", t, "a.example", "over_budget")), Admit::Write);
        // Not due before the minute ends; due after.
        assert!(f.due(Some("2026-12-08T10:01:59Z".parse().unwrap())).is_empty());
        let due = f.due(Some("2026-12-08T10:02:00Z".parse().unwrap()));
        assert_eq!(due.len(), 1);
        let s = &due[0];
        assert_eq!((s.reason.as_str(), s.detail.as_deref(), s.outcome, s.grant_id.as_deref()), (REASON, Some("host_not_allowed"), Outcome::Refused, Some("g")));
        let counts = s.folded.as_ref().unwrap();
        assert_eq!((counts.count, counts.hosts["a.example"], counts.hosts["b.example"], counts.limit), (7, 3, 4, 3));
        assert!(s.message.starts_with("7 more decisions of this grant"), "{}", s.message);
        assert!(f.due(None).is_empty(), "taken once");
        // The next minute starts afresh.
        assert_eq!(f.admit(&refusal("g", "2026-12-08T10:02:01Z", "a.example", "host_not_allowed")), Admit::Write);
    }

    #[test]
    fn payments_prompts_and_reservations_are_never_foldable() {
        let base = refusal("g", "2026-12-08T10:01:05Z", "a.example", "host_not_allowed");
        assert!(Folding::foldable(&base, false));
        assert!(!Folding::foldable(&base, true), "reserved");
        let mut paid = base.clone();
        paid.outcome = Outcome::Paid;
        let mut user = base.clone();
        user.decided_by = DecidedBy::User;
        let mut prompted = base.clone();
        prompted.decided_via = Some(crate::approvals::Via::Notification);
        let mut signed = base.clone();
        signed.payload_hash = Some("ab".into());
        let mut no_grant = base.clone();
        no_grant.grant_id = None;
        for r in [paid, user, prompted, signed, no_grant] {
            assert!(!Folding::foldable(&r, false), "{r:?}");
        }
    }

    #[test]
    fn stopping_takes_every_open_summary_and_hosts_are_capped() {
        let f = Folding::new(1);
        for i in 0..30 {
            f.admit(&refusal("g", "2026-12-08T10:01:05Z", &format!("h{i}.example"), "not_payable"));
        }
        let due = f.due(None);
        let counts = due[0].folded.as_ref().unwrap();
        assert_eq!((counts.count, counts.hosts.len(), counts.hosts["(other)"]), (29, MAX_HOSTS + 1, 29 - MAX_HOSTS as u64));
    }
}

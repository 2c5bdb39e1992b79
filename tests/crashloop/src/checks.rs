//! The invariants, judged after every restart on facts read in this order: ledger, then chain,
//! then the peers' logs (a nonce is on disk before it can reach the facilitator or the chain, so
//! reading the ledger first never shows a false "signed without a record").

use crate::facts::{Chain, Ledger, PeerLogs};
use crate::traffic::Answer;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What one check found: figures and broken invariants.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub violations: Vec<String>,
    pub receipts: usize,
    pub paid_receipts: usize,
    pub paid_sum: u128,
    /// Receipts written at restart for payments a kill interrupted.
    pub interrupted: usize,
    /// Their reservations now: spent (the chain used the nonce), released (expired unused), still unknown.
    pub interrupted_spent: usize,
    pub interrupted_released: usize,
    pub interrupted_unknown: usize,
    /// Reservations still `unknown` (interrupted, or an unknown settlement).
    pub unknown: usize,
    /// Reservations spent without a paid receipt (decided later by nonce on chain).
    pub settled_late: usize,
    pub spent: u64,
    pub reserved: u64,
    pub chain_transfers: usize,
    pub chain_sum: u128,
    /// Most nonces the ledger holds for one logical request, and most paid retries the paywall saw.
    pub max_nonces_per_request: usize,
    pub max_paid_retries: usize,
    pub promised_checked: usize,
    /// Of those, receipt ids the ledger does not have.
    pub promised_missing: usize,
    /// `purser receipts verify` passed.
    pub verified: bool,
}

impl Findings {
    fn bad(&mut self, msg: String) {
        if self.violations.len() < 50 {
            self.violations.push(msg);
        } else if self.violations.len() == 50 {
            self.violations.push("… more violations left out".into());
        }
    }
}

/// Judges one snapshot. `settled`: no traffic is running and the chain has decided every open
/// authorization (the final check), so nothing may be left unknown and the ledger must equal the chain.
pub fn judge(l: &Ledger, chain: &Chain, logs: &PeerLogs, answers: &[Answer], settled: bool) -> Findings {
    let mut f = Findings { receipts: l.receipts.len(), ..Default::default() };
    let by_id: HashMap<&str, &crate::facts::ReceiptRow> = l.receipts.iter().map(|r| (r.id.as_str(), r)).collect();

    // 1. Every answer that carried a receipt id has that receipt, and it is this request's.
    for a in answers {
        let Some(id) = &a.receipt else { continue };
        f.promised_checked += 1;
        match by_id.get(id.as_str()) {
            None => {
                f.promised_missing += 1;
                f.bad(format!("request {} was answered {:?} with Purser-Receipt {id}, which the ledger does not have", a.req, a.status))
            }
            Some(r) if r.req != Some(a.req) => f.bad(format!("request {} got receipt {id}, which records request {:?}", a.req, r.req)),
            Some(_) => {}
        }
    }

    // 2. Budgets: spent and reserved are exactly the sums of the reservations, within the budget.
    let mut sums: HashMap<&str, (u64, u64)> = HashMap::new();
    for r in l.reservations.values() {
        let e = sums.entry(r.grant.as_str()).or_default();
        match r.state.as_str() {
            "settled" => e.0 += r.amount,
            "reserved" | "unknown" => e.1 += r.amount,
            _ => {}
        }
        if r.state == "reserved" {
            f.bad(format!("reservation {} is still `reserved` after the restart: recovery missed it", r.id));
        }
        if r.state == "unknown" {
            f.unknown += 1;
        }
    }
    for g in &l.grants {
        let (spent, reserved) = sums.get(g.id.as_str()).copied().unwrap_or_default();
        if (g.spent, g.reserved) != (spent, reserved) {
            f.bad(format!("grant {}: spent {} reserved {} but its reservations sum to spent {spent} reserved {reserved}", g.id, g.spent, g.reserved));
        }
        if g.spent + g.reserved > g.budget {
            f.bad(format!("grant {}: spent {} + reserved {} exceeds the budget {}", g.id, g.spent, g.reserved, g.budget));
        }
        f.spent += g.spent;
        f.reserved += g.reserved;
    }

    // 3. Each reservation has exactly one receipt, which agrees with how it ended.
    let mut receipts_of: HashMap<&str, Vec<&crate::facts::ReceiptRow>> = HashMap::new();
    for r in &l.receipts {
        if let Some(res) = &r.reservation {
            receipts_of.entry(res.as_str()).or_default().push(r);
        }
        if r.outcome == "paid" {
            f.paid_receipts += 1;
            f.paid_sum += r.amount;
        }
    }
    let mut nonces_of_req: BTreeMap<u64, HashSet<&str>> = BTreeMap::new();
    let mut receipts_of_req: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &l.receipts {
        if let Some(req) = r.req {
            *receipts_of_req.entry(req).or_default() += 1;
        }
    }
    for (req, n) in &receipts_of_req {
        if *n > 1 {
            f.bad(format!("request {req} has {n} receipts (one decision per logical request)"));
        }
    }
    for res in l.reservations.values() {
        let recs = receipts_of.get(res.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        if recs.len() != 1 {
            f.bad(format!("reservation {} ({}) has {} receipts, want 1", res.id, res.state, recs.len()));
            continue;
        }
        let rec = recs[0];
        if let (Some(req), Some(n)) = (rec.req, res.nonce.as_deref()) {
            nonces_of_req.entry(req).or_default().insert(n);
        }
        if rec.outcome == "paid" && res.state != "settled" {
            f.bad(format!("receipt {} is paid but its reservation {} is {}", rec.id, res.id, res.state));
        }
        if rec.outcome != "paid" && res.state == "settled" {
            f.settled_late += 1;
        }
        if rec.reason == "interrupted" {
            f.interrupted += 1;
            match res.state.as_str() {
                "settled" => f.interrupted_spent += 1,
                "released" => f.interrupted_released += 1,
                _ => f.interrupted_unknown += 1,
            }
            if rec.nonce.is_none() || rec.nonce != res.nonce {
                f.bad(format!("interrupted receipt {} does not carry its reservation's nonce", rec.id));
            }
        }
        if let (Some(a), Some(b)) = (&rec.nonce, &res.nonce) {
            if a != b {
                f.bad(format!("receipt {} names nonce {a} but its reservation recorded {b}", rec.id));
            }
        }
    }

    // 4. Never signed twice for one logical request: one nonce per request in the ledger, one
    //    paid retry per request at the paywall, and every nonce the facilitator saw is on disk.
    f.max_nonces_per_request = nonces_of_req.values().map(HashSet::len).max().unwrap_or(0);
    for (req, n) in &nonces_of_req {
        if n.len() > 1 {
            f.bad(format!("request {req} was given {} authorizations: {n:?}", n.len()));
        }
    }
    f.max_paid_retries = logs.paid_retries.values().copied().max().unwrap_or(0);
    for (req, n) in &logs.paid_retries {
        if *n > 1 {
            f.bad(format!("the paywall received {n} paid retries for request {req}"));
        }
    }
    let ledger_nonces: HashMap<&str, &crate::facts::ReservationRow> = l.reservations.values().filter_map(|r| r.nonce.as_deref().map(|n| (n, r))).collect();
    for n in &logs.facilitator_nonces {
        if !ledger_nonces.contains_key(n.as_str()) {
            f.bad(format!("the facilitator saw authorization {n}, which no reservation recorded before it was sent"));
        }
    }

    // 5. The chain: paid receipts never exceed the transfers; every used nonce is a reservation's,
    //    spent or still unknown (never released); everything spent was used on chain.
    f.chain_transfers = chain.transfers.len();
    f.chain_sum = chain.transfers.iter().sum();
    if f.paid_receipts > f.chain_transfers || f.paid_sum > f.chain_sum {
        f.bad(format!("{} paid receipts ({} atomic) but only {} transfers ({} atomic) on chain", f.paid_receipts, f.paid_sum, f.chain_transfers, f.chain_sum));
    }
    for n in &chain.used {
        match ledger_nonces.get(n.as_str()) {
            None => f.bad(format!("authorization {n} was used on chain but no reservation recorded it")),
            Some(r) if r.state == "released" || r.state == "reserved" => f.bad(format!("authorization {n} was used on chain but its reservation {} is {}", r.id, r.state)),
            Some(r) if settled && r.state != "settled" => f.bad(format!("authorization {n} was used on chain but its reservation {} is still {}", r.id, r.state)),
            Some(_) => {}
        }
    }
    for r in l.reservations.values().filter(|r| r.state == "settled") {
        if !r.nonce.as_ref().is_some_and(|n| chain.used.contains(n)) {
            f.bad(format!("reservation {} is spent but its authorization {:?} was never used on chain", r.id, r.nonce));
        }
    }
    if settled {
        if f.unknown > 0 {
            f.bad(format!("{} reservations are still unknown after the chain decided every authorization", f.unknown));
        }
        if u128::from(f.spent) != f.chain_sum {
            f.bad(format!("spent {} micro-USD in the ledger, {} atomic moved on chain (USDC: 1 atomic = 1 micro-USD)", f.spent, f.chain_sum));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    // Table-driven: each case is one tuple, spelled out where it is read.
    #![allow(clippy::type_complexity)]
    use super::*;
    use crate::facts::{GrantRow, ReceiptRow, ReservationRow};
    use crate::traffic::Route;

    fn res(id: &str, state: &str, nonce: &str) -> ReservationRow {
        ReservationRow { id: id.into(), grant: "g".into(), amount: 1000, state: state.into(), nonce: Some(nonce.into()) }
    }
    fn rec(id: &str, outcome: &str, reason: &str, res: &str, req: u64, nonce: &str) -> ReceiptRow {
        ReceiptRow { id: id.into(), outcome: outcome.into(), reason: reason.into(), detail: None, reservation: Some(res.into()), req: Some(req), nonce: Some(nonce.into()), amount: 1000 }
    }
    /// A consistent world: one paid request, one interrupted one the chain used (spent late).
    fn world() -> (Ledger, Chain, PeerLogs, Vec<Answer>) {
        let l = Ledger {
            grants: vec![GrantRow { id: "g".into(), budget: 10_000, spent: 2000, reserved: 0 }],
            reservations: [res("r1", "settled", "0x1"), res("r2", "settled", "0x2")].into_iter().map(|r| (r.id.clone(), r)).collect(),
            receipts: vec![rec("a", "paid", "paid", "r1", 1, "0x1"), rec("b", "failed", "interrupted", "r2", 2, "0x2")],
        };
        let chain = Chain { transfers: vec![1000, 1000], used: ["0x1".to_string(), "0x2".to_string()].into() };
        let logs = PeerLogs { facilitator_nonces: ["0x1".to_string(), "0x2".to_string()].into(), paid_retries: [(1, 1), (2, 1)].into() };
        let answers = vec![Answer { req: 1, route: Route::Cheap, grant: 0, status: Some(200), receipt: Some("a".into()), body_cut: false, refused_connect: false }];
        (l, chain, logs, answers)
    }

    #[test]
    fn a_consistent_world_passes() {
        let (l, c, g, a) = world();
        let f = judge(&l, &c, &g, &a, true);
        assert!(f.violations.is_empty(), "{:?}", f.violations);
        assert_eq!((f.interrupted, f.interrupted_spent, f.settled_late, f.paid_receipts), (1, 1, 1, 1));
    }

    #[test]
    fn each_broken_promise_is_caught() {
        let caught = |tweak: &dyn Fn(&mut Ledger, &mut Chain, &mut PeerLogs, &mut Vec<Answer>), want: &str| {
            let (mut l, mut c, mut g, mut a) = world();
            tweak(&mut l, &mut c, &mut g, &mut a);
            let f = judge(&l, &c, &g, &a, true);
            assert!(f.violations.iter().any(|v| v.contains(want)), "want a violation containing {want:?}, got {:?}", f.violations);
        };
        caught(&|_, _, _, a| a[0].receipt = Some("zz".into()), "does not have");
        caught(&|l, _, _, _| l.grants[0].spent = 1000, "reservations sum to");
        caught(&|l, _, _, _| l.reservations.get_mut("r2").unwrap().state = "reserved".into(), "recovery missed it");
        caught(&|l, _, _, _| l.receipts.push(rec("c", "failed", "interrupted", "r2", 2, "0x2")), "has 2 receipts");
        caught(
            &|l, _, _, _| {
                l.reservations.insert("r3".into(), res("r3", "released", "0x3"));
                l.receipts.push(rec("c", "refused", "insufficient_funds", "r3", 1, "0x3"));
            },
            "authorizations",
        );
        caught(
            &|_, _, g, _| {
                g.paid_retries.insert(1, 2);
            },
            "paid retries for request 1",
        );
        caught(
            &|_, _, g, _| {
                g.facilitator_nonces.insert("0x9".into());
            },
            "no reservation recorded before it was sent",
        );
        caught(
            &|_, c, _, _| {
                c.used.insert("0x9".into());
            },
            "no reservation recorded it",
        );
        caught(&|l, _, _, _| l.reservations.get_mut("r2").unwrap().state = "released".into(), "was used on chain but its reservation");
        caught(
            &|_, c, _, _| {
                c.used.remove("0x2");
                c.transfers.pop();
            },
            "never used on chain",
        );
        caught(&|_, c, _, _| c.transfers.clear(), "only 0 transfers");
        caught(
            &|l, _, _, _| {
                l.reservations.get_mut("r2").unwrap().state = "unknown".into();
                l.grants[0] = GrantRow { id: "g".into(), budget: 10_000, spent: 1000, reserved: 1000 };
            },
            "still unknown",
        );
    }
}

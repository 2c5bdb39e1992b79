//! Property tests of the budget arithmetic and the policy, over the real engine and ledger file:
//! any sequence of grants, top-ups, tier edits, revokes and undos, reservations (single, at the
//! exact edge, and many at once from several threads while others settle), settlements (spend,
//! release, keep unknown), reconciliation ends and clock moves keeps, after every step:
//! spent + reserved + remaining == budget and spent <= budget for every grant; each open
//! reservation counted once (their sum is the grant's `reserved`); a revoked or expired grant
//! never reserves; a reservation over the remaining budget by one unit is refused; an ended
//! reservation never ends twice; policy verdicts agree with the grant's thresholds for any amount;
//! the receipt chain verifies with one receipt per decision.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 64, about 20 s in a debug build);
//! a failure shrinks to a short list of `Op`s, printed as written below.

#[path = "budget_props/model.rs"]
mod model;

use alloy_primitives::{Address, U256};
use model::{ok, MState, World, R};
use proptest::prelude::*;
use purser_core::clock::new_id;
use purser_core::ledger::Settle;
use purser_core::policy::{self, Refusal, Tier};
use purser_core::receipt::Outcome;
use purser_core::x402::Requirement;

#[derive(Debug, Clone)]
enum Op {
    Create {
        budget: u64,
        per_request_max: Option<u64>,
        auto_below: u64,
        ask_extra: Option<u64>,
        expires_secs: u32,
    },
    TopUp {
        g: u8,
        micros: u64,
    },
    Edit {
        g: u8,
        per_request_max: Option<u64>,
        auto_below: u64,
        ask_extra: Option<u64>,
    },
    Revoke {
        g: u8,
    },
    Unrevoke {
        g: u8,
    },
    Reserve {
        g: u8,
        micros: u64,
        valid_secs: u16,
    },
    /// Reserve exactly what is left (`over: false`) or one unit more (`over: true`).
    ReserveEdge {
        g: u8,
        over: bool,
    },
    /// One thread per amount reserves on grant `g` while one thread per `settles` entry ends a
    /// distinct open reservation (of any grant), and others top `g` up or revoke it, all at once.
    Concurrent {
        g: u8,
        amounts: Vec<u64>,
        settles: Vec<(u8, Settle)>,
        top_up: Option<u64>,
        revoke: bool,
    },
    Settle {
        r: u8,
        how: Settle,
    },
    /// Tries to end an already ended reservation again.
    SettleAgain {
        r: u8,
    },
    /// The reconciler's answer for a reservation whose receipt is written.
    Reconcile {
        r: u8,
        used: bool,
    },
    Advance {
        secs: u32,
    },
    /// The policy's verdict on `micros`, and its choice between that and an `alt` option.
    Decide {
        g: u8,
        micros: u64,
        alt: u64,
        host_ok: bool,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..=600u64, 1 => 600..=5_000u64, 1 => any::<u64>()]
}

fn how() -> impl Strategy<Value = Settle> {
    prop_oneof![Just(Settle::Spend), Just(Settle::Release), Just(Settle::KeepUnknown)]
}

fn create() -> impl Strategy<Value = Op> {
    let expires = prop_oneof![10..=120u32, 3_600..=7_200u32];
    (0..=3_000u64, proptest::option::of(0..=800u64), 0..=400u64, proptest::option::of(0..=400u64), expires).prop_map(|(budget, per_request_max, auto_below, ask_extra, expires_secs)| Op::Create {
        budget,
        per_request_max,
        auto_below,
        ask_extra,
        expires_secs,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let g = || any::<u8>();
    let top_up = prop_oneof![4 => 0..=2_000u64, 1 => (i64::MAX as u64 - 5_000)..=(i64::MAX as u64)];
    let advance = prop_oneof![0..=12u32, 13..=400u32, 400..=8_000u32];
    prop_oneof![
        2 => create(),
        1 => (g(), top_up).prop_map(|(g, micros)| Op::TopUp { g, micros }),
        1 => (g(), proptest::option::of(0..=800u64), 0..=400u64, proptest::option::of(0..=400u64))
            .prop_map(|(g, per_request_max, auto_below, ask_extra)| Op::Edit { g, per_request_max, auto_below, ask_extra }),
        1 => g().prop_map(|g| Op::Revoke { g }),
        1 => g().prop_map(|g| Op::Unrevoke { g }),
        6 => (g(), amount(), 1..=300u16).prop_map(|(g, micros, valid_secs)| Op::Reserve { g, micros, valid_secs }),
        2 => (g(), any::<bool>()).prop_map(|(g, over)| Op::ReserveEdge { g, over }),
        2 => (g(), prop::collection::vec(0..=700u64, 2..=12), prop::collection::vec((any::<u8>(), how()), 0..=4), proptest::option::weighted(0.3, 0..=1_000u64), prop::bool::weighted(0.15))
            .prop_map(|(g, amounts, settles, top_up, revoke)| Op::Concurrent { g, amounts, settles, top_up, revoke }),
        4 => (any::<u8>(), how()).prop_map(|(r, how)| Op::Settle { r, how }),
        1 => any::<u8>().prop_map(|r| Op::SettleAgain { r }),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(r, used)| Op::Reconcile { r, used }),
        2 => advance.prop_map(|secs| Op::Advance { secs }),
        3 => (g(), amount(), amount(), prop::bool::weighted(0.9)).prop_map(|(g, micros, alt, host_ok)| Op::Decide { g, micros, alt, host_ok }),
    ]
}

/// A sequence always starts with a grant.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    (create(), prop::collection::vec(op(), 1..40)).prop_map(|(first, mut rest)| {
        rest.insert(0, first);
        rest
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn budget_and_policy_invariants_hold(ops in ops()) {
        run(&ops)?;
    }
}

/// Index `i` into the reservations whose model state passes `keep`.
fn pick(w: &World, i: u8, keep: impl Fn(&model::MRes) -> bool) -> Option<usize> {
    let idx: Vec<usize> = (0..w.res.len()).filter(|&k| keep(&w.res[k])).collect();
    (!idx.is_empty()).then(|| idx[i as usize % idx.len()])
}

fn run(ops: &[Op]) -> R<()> {
    let mut w = World::new()?;
    for (step, op) in ops.iter().enumerate() {
        apply(&mut w, op).map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
        w.check().map_err(|e| TestCaseError::fail(format!("after step {step} {op:?}: {e}")))?;
    }
    Ok(())
}

fn apply(w: &mut World, op: &Op) -> R<()> {
    let gi = |g: &u8| (!w.grants.is_empty()).then(|| *g as usize % w.grants.len());
    match op {
        Op::Create { budget, per_request_max, auto_below, ask_extra, expires_secs } => w.create(*budget, *per_request_max, *auto_below, ask_extra.map(|x| auto_below + x), *expires_secs),
        Op::TopUp { g, micros } => match gi(g) {
            Some(gi) => w.top_up(gi, *micros),
            None => Ok(()),
        },
        Op::Edit { g, per_request_max, auto_below, ask_extra } => match gi(g) {
            Some(gi) => w.edit(gi, *per_request_max, *auto_below, ask_extra.map(|x| auto_below + x)),
            None => Ok(()),
        },
        Op::Revoke { g } => match gi(g) {
            Some(gi) => {
                ok("revoke", w.engine.revoke_grant(&w.grants[gi].id))?;
                let now = w.now();
                w.grants[gi].revoked_at.get_or_insert(now);
                Ok(())
            }
            None => Ok(()),
        },
        Op::Unrevoke { g } => match gi(g) {
            Some(gi) => w.unrevoke(gi),
            None => Ok(()),
        },
        Op::Reserve { g, micros, valid_secs } => match gi(g) {
            Some(gi) => reserve(w, gi, *micros, *valid_secs as u64),
            None => Ok(()),
        },
        Op::ReserveEdge { g, over } => match gi(g) {
            Some(gi) => reserve(w, gi, w.grants[gi].remaining() + *over as u64, 120),
            None => Ok(()),
        },
        Op::Concurrent { g, amounts, settles, top_up, revoke } => match gi(g) {
            Some(gi) => concurrent(w, gi, amounts, settles, *top_up, *revoke),
            None => Ok(()),
        },
        Op::Settle { r, how } => match pick(w, *r, |m| m.state == MState::Reserved) {
            Some(ri) => w.settle(ri, *how),
            None => Ok(()),
        },
        Op::SettleAgain { r } => match pick(w, *r, |m| m.state == MState::Ended) {
            Some(ri) => w.settle(ri, Settle::Spend),
            None => Ok(()),
        },
        Op::Reconcile { r, used } => match pick(w, *r, |m| m.receipt.is_some()) {
            Some(ri) => w.reconcile(ri, *used),
            None => Ok(()),
        },
        Op::Advance { secs } => {
            w.advance(*secs);
            Ok(())
        }
        Op::Decide { g, micros, alt, host_ok } => match gi(g) {
            Some(gi) => decide(w, gi, *micros, *alt, *host_ok),
            None => Ok(()),
        },
    }
}

fn reserve(w: &mut World, gi: usize, micros: u64, valid_secs: u64) -> R<()> {
    let now = w.now();
    let want = w.grants[gi].budget_verdict(micros, now);
    let got = ok("reserve", w.ledger().reserve(&new_id(), &w.grants[gi].id, micros, now.timestamp() as u64 + valid_secs, now))?;
    match (want, got) {
        (Ok(()), Ok((r, g))) => {
            prop_assert_eq!((r.amount, g.reserved), (micros, w.grants[gi].reserved + micros));
            w.grants[gi].reserved += micros;
            w.res.push(model::MRes { r, state: MState::Reserved, receipt: None });
            Ok(())
        }
        (Err(want), Err(got)) if want == got => w.record_refusal(gi, got),
        (want, got) => Err(TestCaseError::fail(format!("reserve {micros}: want {want:?}, got {:?}", got.map(|(r, _)| r)))),
    }
}

fn concurrent(w: &mut World, gi: usize, amounts: &[u64], settles: &[(u8, Settle)], top_up: Option<u64>, revoke: bool) -> R<()> {
    let (now, before) = (w.now(), w.grants[gi].clone());
    let mut ends: Vec<(usize, Settle, purser_core::receipt::Receipt)> = Vec::new();
    for (i, how) in settles {
        if let Some(ri) = pick(w, *i, |m| m.state == MState::Reserved).filter(|ri| !ends.iter().any(|(k, ..)| k == ri)) {
            ends.push((ri, *how, w.settle_receipt(ri, *how)?));
        }
    }
    let refusal_rec = w.receipt(gi, Outcome::Refused, "over_budget")?;
    let ledger = w.ledger().clone();
    let vb = now.timestamp() as u64 + 300;
    let (engine, gid) = (&w.engine, before.id.as_str());
    let (reserved, settled, topped, revoked) = std::thread::scope(|s| {
        let topped = top_up.map(|t| s.spawn(move || engine.top_up(gid, &model::usd(t), Some(&purser_core::presence::Presence::app_click())).map(|_| t).map_err(|e| e.code().as_str())));
        let revoked = revoke.then(|| s.spawn(move || engine.revoke_grant(gid).map(|_| ()).map_err(|e| e.code())));
        let reserves: Vec<_> = amounts
            .iter()
            .map(|&a| {
                let (ledger, gid, mut rec) = (ledger.clone(), before.id.clone(), refusal_rec.clone());
                s.spawn(move || {
                    let got = ledger.reserve(&new_id(), &gid, a, vb, now)?;
                    if let Err(refusal) = &got {
                        // Refused: its receipt, written concurrently too.
                        (rec.id, rec.reason) = (new_id(), refusal.code().to_string());
                        ledger.record(&mut rec, now)?;
                    }
                    Ok::<_, purser_core::ledger::LedgerError>((a, got))
                })
            })
            .collect();
        let ends: Vec<_> = ends
            .iter()
            .map(|(ri, how, rec)| {
                let (ledger, r, mut rec, how) = (ledger.clone(), w.res[*ri].r.clone(), rec.clone(), *how);
                s.spawn(move || ledger.finish(Some((&r, how)), &mut rec, now).map(|()| rec.id))
            })
            .collect();
        (
            reserves.into_iter().map(|t| t.join().expect("reserve thread")).collect::<Vec<_>>(),
            ends.into_iter().map(|t| t.join().expect("settle thread")).collect::<Vec<_>>(),
            topped.map(|t| t.join().expect("top-up thread")),
            revoked.map(|t| t.join().expect("revoke thread")),
        )
    });
    if let Some(r) = revoked {
        prop_assert_eq!(r, Ok(()), "concurrent revoke");
        w.grants[gi].revoked_at.get_or_insert(now);
    }
    // A top-up racing a revocation may find it revoked; otherwise it lands (or overflows).
    let mut added = 0;
    if let (Some(t), Some(got)) = (top_up, topped) {
        let fits = before.budget.checked_add(t).is_some_and(|b| b <= i64::MAX as u64);
        match got {
            Ok(_) if before.revoked_at.is_none() && fits => added = t,
            Err("revoked") if before.revoked_at.is_some() || revoke => {}
            Err("amount_overflow") if !fits => {}
            other => return Err(TestCaseError::fail(format!("concurrent top-up of {t}: {other:?}"))),
        }
        w.grants[gi].budget += added;
    }
    let released: u64 = ends.iter().filter(|(ri, how, _)| *how == Settle::Release && w.res[*ri].r.grant_id == before.id).map(|(ri, ..)| w.res[*ri].r.amount).sum();
    for ((ri, how, _), got) in ends.iter().zip(settled) {
        let id = ok("concurrent finish", got)?;
        w.settled(*ri, *how, &id);
    }
    let mut accepted = 0u64;
    let mut refused = Vec::new();
    for got in reserved {
        match ok("concurrent reserve", got)? {
            (_, Ok((r, _))) => {
                accepted += r.amount;
                w.grants[gi].reserved += r.amount;
                w.res.push(model::MRes { r, state: MState::Reserved, receipt: None });
            }
            (a, Err(refusal)) => {
                refused.push((a, refusal));
                w.noted_receipt(gi);
            }
        }
    }
    let floor = before.remaining().saturating_sub(accepted);
    match before.budget_verdict(0, now) {
        // Already out of play: nothing reserves (a racing revocation may be the reason given).
        Err(why) => prop_assert!(accepted == 0 && refused.iter().all(|(_, r)| *r == why || (revoke && *r == Refusal::Revoked)), "a {:?} grant reserved: {:?}", why, refused),
        Ok(()) => {
            prop_assert!(accepted <= before.remaining() + released + added, "{} reserved concurrently, {} was left (+{} released, +{} topped up)", accepted, before.remaining(), released, added);
            for (a, refusal) in &refused {
                // Remaining never fell below `floor` during the race, so a refused amount exceeds it.
                let ok = (*refusal == Refusal::OverBudget && *a > floor) || (*refusal == Refusal::Revoked && revoke);
                prop_assert!(ok, "{} refused ({:?}) with at least {} left", a, refusal, floor);
            }
        }
    }
    Ok(())
}

fn decide(w: &World, gi: usize, micros: u64, alt: u64, host_ok: bool) -> R<()> {
    let (now, m) = (w.now(), &w.grants[gi]);
    let g = ok("grant", w.ledger().grant(&m.id))?;
    let net = purser_core::networks::by_name("base-sepolia").expect("base-sepolia in the registry");
    let req = |index: usize, micros: u64| Requirement {
        index,
        network: net,
        asset: &net.assets[0],
        amount: U256::from(micros),
        pay_to: Address::repeat_byte(0x11),
        max_timeout_seconds: 60,
        raw: serde_json::json!({}),
    };
    let host = if host_ok { "api.x.com" } else { "api.y.com" };
    let verdict = |micros: u64| policy::decide(&g, host, 443, &req(0, micros), micros, now);
    let want = m.budget_verdict(0, now).and_then(|()| match () {
        _ if !host_ok => Err(Refusal::HostNotAllowed),
        _ if m.per_request_max.is_some_and(|max| micros > max) => Err(Refusal::OverPerRequestCap),
        _ if m.ask_below.is_some_and(|ask| micros >= ask) => Err(Refusal::AboveAskTier),
        _ if micros > m.remaining() => Err(Refusal::OverBudget),
        _ if micros < m.auto_below => Ok(Tier::Auto),
        _ => Ok(Tier::Ask),
    });
    let got = verdict(micros);
    prop_assert_eq!(got, want, "decide {} on {:?}", micros, m);
    // A smaller price never gets a worse verdict: allowed stays allowed, ask may become auto.
    if let Ok(tier) = got {
        for smaller in [0, micros / 2, micros.saturating_sub(1)] {
            let t = verdict(smaller);
            prop_assert!(t == Ok(Tier::Auto) || (t == Ok(Tier::Ask) && tier == Tier::Ask), "{} is {:?} but {} is {:?}", micros, tier, smaller, t);
        }
    }
    // Of two options the cheapest allowed one is chosen; when none is, the cheapest with its refusal.
    let reqs = [req(0, micros), req(1, alt)];
    let c = policy::choose(&g, host, 443, &reqs, now);
    // A price past the ledger's range (i64::MAX micro-USD) is weighed as u64::MAX, never wrapped.
    let fit = |m: u64| if m > i64::MAX as u64 { u64::MAX } else { m };
    let (micros, alt) = (fit(micros), fit(alt));
    let allowed: Vec<(u64, usize)> = [(micros, 0), (alt, 1)].into_iter().filter(|(m, _)| verdict(*m).is_ok()).collect();
    let want = allowed.iter().min().copied().unwrap_or(if alt < micros { (alt, 1) } else { (micros, 0) });
    prop_assert_eq!((c.micros, c.requirement.index, c.verdict), (want.0, want.1, verdict(want.0)), "choose between {} and {}", micros, alt);
    Ok(())
}

// Named cases: the edges the properties guard, as readable sequences.

#[test]
fn one_unit_over_the_remaining_budget_is_refused() {
    let ops = [
        Op::Create { budget: 1_000, per_request_max: None, auto_below: 100, ask_extra: None, expires_secs: 60 },
        Op::Reserve { g: 0, micros: 999, valid_secs: 60 },
        Op::ReserveEdge { g: 0, over: true },
        Op::ReserveEdge { g: 0, over: false },
        Op::Concurrent { g: 0, amounts: vec![1, 1, 0], settles: vec![(0, Settle::Release), (1, Settle::Spend)], top_up: Some(1), revoke: false },
    ];
    run(&ops).unwrap();
}

#[test]
fn unknown_outcomes_hold_budget_until_reconciled() {
    let ops = [
        Op::Create { budget: 500, per_request_max: Some(300), auto_below: 100, ask_extra: Some(100), expires_secs: 3_600 },
        Op::Reserve { g: 0, micros: 300, valid_secs: 60 },
        Op::Settle { r: 0, how: Settle::KeepUnknown },
        Op::Reserve { g: 0, micros: 201, valid_secs: 60 },
        Op::Reconcile { r: 0, used: false },
        Op::Advance { secs: 60 },
        Op::Reconcile { r: 0, used: false },
        Op::Reconcile { r: 0, used: true },
        Op::SettleAgain { r: 0 },
        Op::Reserve { g: 0, micros: 500, valid_secs: 60 },
    ];
    run(&ops).unwrap();
}

#[test]
fn revoked_and_expired_grants_never_reserve() {
    let ops = [
        Op::Create { budget: 1_000, per_request_max: None, auto_below: 0, ask_extra: None, expires_secs: 30 },
        Op::Revoke { g: 0 },
        Op::Concurrent { g: 0, amounts: vec![1, 0], settles: vec![], top_up: Some(5), revoke: true },
        Op::Unrevoke { g: 0 },
        Op::Advance { secs: 30 },
        Op::Reserve { g: 0, micros: 0, valid_secs: 60 },
        Op::Decide { g: 0, micros: 0, alt: 1, host_ok: true },
        Op::TopUp { g: 0, micros: 1 },
        Op::Revoke { g: 0 },
        Op::TopUp { g: 0, micros: 1 },
    ];
    run(&ops).unwrap();
}

//! The world a budget property runs in: a real engine over a real ledger file (grant lifecycle
//! through the engine, reservations, settlements and reconciliation through the ledger calls the
//! pipeline and the reconciler make), a manual clock, and a plain in-memory model of what every
//! grant and reservation must hold. `check` compares the model with the ledger's own rows.

use chrono::{DateTime, Duration, Utc};
use proptest::test_runner::TestCaseError;
use purser_core::clock::{new_id, Clock, ManualClock, OsNonces};
use purser_core::engine::Engine;
use purser_core::grants::GrantSpec;
use purser_core::ipc::GrantPatch;
use purser_core::ledger::{ChainReport, Ledger, Reservation, Settle};
use purser_core::policy::Refusal;
use purser_core::receipt::{DecidedBy, Outcome, Receipt};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type R<T> = Result<T, TestCaseError>;

/// Turns any error into a failed case that names what was being done.
pub fn ok<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> R<T> {
    r.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

/// `m` micro-USD as the strict decimal string people type (`12.000345`).
pub fn usd(m: u64) -> String {
    format!("{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// What the model knows of one grant.
#[derive(Debug, Clone)]
pub struct MGrant {
    pub id: String,
    pub budget: u64,
    pub spent: u64,
    pub reserved: u64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub per_request_max: Option<u64>,
    pub auto_below: u64,
    pub ask_below: Option<u64>,
    /// Time of the newest receipt recorded under it (an undo is refused after one).
    pub last_receipt: Option<DateTime<Utc>>,
}

impl MGrant {
    pub fn remaining(&self) -> u64 {
        self.budget - self.spent - self.reserved
    }

    /// What `check_budget` must answer for `micros` at `now`.
    pub fn budget_verdict(&self, micros: u64, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.revoked_at.is_some() {
            Err(Refusal::Revoked)
        } else if now >= self.expires_at {
            Err(Refusal::Expired)
        } else if micros > self.remaining() {
            Err(Refusal::OverBudget)
        } else {
            Ok(())
        }
    }
}

/// Where a reservation stands in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MState {
    Reserved,
    Unknown,
    Ended,
}

#[derive(Debug, Clone)]
pub struct MRes {
    pub r: Reservation,
    pub state: MState,
    /// The receipt that recorded its last settlement step (what the reconciler is given).
    pub receipt: Option<String>,
}

pub struct World {
    _dir: tempfile::TempDir,
    pub engine: Engine,
    ledger: Ledger,
    pub clock: Arc<ManualClock>,
    pub grants: Vec<MGrant>,
    pub res: Vec<MRes>,
    pub receipts: u64,
}

impl World {
    pub fn new() -> R<World> {
        let dir = ok("tempdir", tempfile::tempdir())?;
        let start = ok("start time", "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>())?;
        let clock = Arc::new(ManualClock::new(start));
        let ledger = ok("open ledger", Ledger::open_in(&dir.path().join("data")))?;
        // The model drives the ledger's reservations itself, on the handle the engine shares.
        let engine = ok("engine", Engine::with_sources(ledger.clone(), None, clock.clone(), Arc::new(OsNonces)))?;
        Ok(World { _dir: dir, engine, ledger, clock, grants: Vec::new(), res: Vec::new(), receipts: 0 })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, secs: u32) {
        self.clock.advance(Duration::seconds(secs as i64));
    }

    /// Creates a grant through the engine (the user's typed spec, validated there).
    pub fn create(&mut self, budget: u64, per_request_max: Option<u64>, auto_below: u64, ask_below: Option<u64>, expires_secs: u32) -> R<()> {
        let spec = GrantSpec {
            label: format!("prop {}", self.grants.len()),
            budget: usd(budget),
            expires: format!("{expires_secs}s"),
            hosts: vec!["api.x.com".into()],
            per_request_max: per_request_max.map(usd),
            auto_below: Some(usd(auto_below)),
            ask_below: ask_below.map(usd),
            ..Default::default()
        };
        let g = ok("create grant", self.engine.create_grant(&spec, Some(&purser_core::presence::Presence::app_click())))?.grant;
        let now = self.now();
        self.grants.push(MGrant {
            id: g.id,
            budget,
            spent: 0,
            reserved: 0,
            revoked_at: None,
            expires_at: now + Duration::seconds(expires_secs as i64),
            per_request_max,
            auto_below,
            ask_below,
            last_receipt: None,
        });
        Ok(())
    }

    /// A top-up through the engine: refused on a revoked grant and past `i64::MAX` micro-USD.
    pub fn top_up(&mut self, gi: usize, micros: u64) -> R<()> {
        let m = &self.grants[gi];
        let want = match m.budget.checked_add(micros).filter(|b| *b <= i64::MAX as u64) {
            _ if m.revoked_at.is_some() => Err("revoked"),
            None => Err("amount_overflow"),
            Some(b) => Ok(b),
        };
        let got = self.engine.top_up(&m.id, &usd(micros), Some(&purser_core::presence::Presence::app_click()));
        proptest::prop_assert_eq!(got.as_ref().map(|_| ()).map_err(|e| e.code().as_str()), want.map(|_| ()), "top-up {} by {}", m.id, micros);
        if let Ok(b) = want {
            self.grants[gi].budget = b;
        }
        Ok(())
    }

    /// A tier edit through the engine (grant_edit): refused on a revoked grant.
    pub fn edit(&mut self, gi: usize, per_request_max: Option<u64>, auto_below: u64, ask_below: Option<u64>) -> R<()> {
        let opt = |v: Option<u64>| Some(v.map(usd).unwrap_or_default());
        let patch = GrantPatch { per_request_max: opt(per_request_max), auto_below: Some(usd(auto_below)), ask_below: opt(ask_below), ..Default::default() };
        let got = self.engine.update_grant(&self.grants[gi].id, &patch, Some(&purser_core::presence::Presence::app_click())).map(|_| ()).map_err(|e| e.code().as_str());
        let revoked = self.grants[gi].revoked_at.is_some();
        proptest::prop_assert_eq!(got, if revoked { Err("revoked") } else { Ok(()) });
        if !revoked {
            let m = &mut self.grants[gi];
            (m.per_request_max, m.auto_below, m.ask_below) = (per_request_max, auto_below, ask_below);
        }
        Ok(())
    }

    /// The undo of a revocation: only within 10 s and before any receipt under the grant.
    pub fn unrevoke(&mut self, gi: usize) -> R<()> {
        let (m, now) = (&self.grants[gi], self.now());
        let want = match m.revoked_at {
            None => Err("not_revoked"),
            Some(t) if !(0..=10_000).contains(&(now - t).num_milliseconds()) => Err("undo_too_late"),
            // A receipt at or after the revocation's time: someone saw the revocation (or might have).
            Some(t) if m.last_receipt.is_some_and(|r| r >= t) => Err("undo_after_decision"),
            Some(_) => Ok(()),
        };
        let got = self.engine.unrevoke_grant(&m.id, Some(&purser_core::presence::Presence::app_click())).map(|_| ()).map_err(|e| e.code().as_str());
        proptest::prop_assert_eq!(got, want, "undo revocation of {}", m.id);
        if want.is_ok() {
            self.grants[gi].revoked_at = None;
        }
        Ok(())
    }

    /// A receipt under grant `gi`, decided as the pipeline would, at the current time.
    pub fn receipt(&self, gi: usize, outcome: Outcome, reason: &str) -> R<Receipt> {
        let g = ok("load grant", self.ledger().grant(&self.grants[gi].id))?;
        let mut rec = Receipt::new(new_id(), self.now(), "GET", "https://api.x.com/p", "api.x.com");
        rec.set_grant(&g);
        rec.decide(outcome, DecidedBy::Auto, purser_core::receipt::Reason::parse(reason).expect("a reason"), None, reason.to_string());
        Ok(rec)
    }

    /// Records a policy refusal's receipt (every decision has one).
    pub fn record_refusal(&mut self, gi: usize, refusal: Refusal) -> R<()> {
        let mut rec = self.receipt(gi, Outcome::Refused, refusal.code().as_str())?;
        ok("record refusal", self.ledger().record(&mut rec, self.now()))?;
        self.noted_receipt(gi);
        Ok(())
    }

    pub fn noted_receipt(&mut self, gi: usize) {
        self.receipts += 1;
        self.grants[gi].last_receipt = Some(self.now());
    }

    pub fn grant_index(&self, id: &str) -> usize {
        self.grants.iter().position(|g| g.id == id).expect("a model grant")
    }

    /// The receipt that ends reservation `ri` as `how` says (not written yet).
    pub fn settle_receipt(&self, ri: usize, how: Settle) -> R<Receipt> {
        let r = &self.res[ri].r;
        let (outcome, reason) = match how {
            Settle::Spend => (Outcome::Paid, "paid"),
            Settle::Release => (Outcome::Failed, "settlement_failed"),
            Settle::KeepUnknown => (Outcome::Failed, "upstream_error"),
        };
        let mut rec = self.receipt(self.grant_index(&r.grant_id), outcome, reason)?;
        rec.reservation_id = Some(r.id.clone());
        rec.amount_atomic = Some(r.amount.to_string());
        rec.valid_before = Some(r.valid_before);
        rec.authorization_nonce = Some(format!("0x{}", r.id.replace('-', "")));
        Ok(rec)
    }

    /// Ends reservation `ri` with a receipt, as the pipeline's `finish` does.
    pub fn settle(&mut self, ri: usize, how: Settle) -> R<()> {
        let r = self.res[ri].r.clone();
        let mut rec = self.settle_receipt(ri, how)?;
        match (self.res[ri].state, self.ledger().finish(Some((&r, how)), &mut rec, self.now())) {
            // An ended reservation never ends twice: refused, and no receipt is written.
            (MState::Ended, Err(e)) => {
                proptest::prop_assert_eq!(e.code(), "ledger_corrupt", "{}", e);
                Ok(())
            }
            (MState::Ended, Ok(())) => Err(TestCaseError::fail(format!("reservation {} ended twice", r.id))),
            (_, Err(e)) => Err(TestCaseError::fail(format!("finish {how:?}: {e}"))),
            (_, Ok(())) => {
                self.settled(ri, how, &rec.id);
                Ok(())
            }
        }
    }

    /// The model's side of a settlement the ledger accepted (receipt `receipt_id` written).
    pub fn settled(&mut self, ri: usize, how: Settle, receipt_id: &str) {
        let amount = self.res[ri].r.amount;
        let gi = self.grant_index(&self.res[ri].r.grant_id);
        let g = &mut self.grants[gi];
        self.res[ri].state = match how {
            Settle::Spend => {
                g.reserved -= amount;
                g.spent += amount;
                MState::Ended
            }
            Settle::Release => {
                g.reserved -= amount;
                MState::Ended
            }
            Settle::KeepUnknown => MState::Unknown,
        };
        self.res[ri].receipt = Some(receipt_id.to_string());
        self.noted_receipt(gi);
    }

    /// The reconciler's verdict on reservation `ri`'s receipt: `used` on chain → spent; unused
    /// → released only once the chain's clock passed its `validBefore`, else it stays pending.
    pub fn reconcile(&mut self, ri: usize, used: bool) -> R<()> {
        let Some(receipt_id) = self.res[ri].receipt.clone() else { return Ok(()) };
        let r = self.res[ri].r.clone();
        let expired = self.now().timestamp() >= r.valid_before as i64;
        let (state, end) = match (used, expired) {
            (true, _) => ("confirmed", Some(Settle::Spend)),
            (false, true) => ("released", Some(Settle::Release)),
            (false, false) => ("pending", None),
        };
        let moved = ok("set_reconciliation", self.ledger().set_reconciliation(&receipt_id, state, "prop", end.map(|h| (r.id.as_str(), h)), self.now()))?;
        let want = (self.res[ri].state == MState::Unknown && end.is_some()).then_some(r.amount);
        proptest::prop_assert_eq!(moved, want, "reconcile {} ({:?}, used {})", r.id, self.res[ri].state, used);
        if want.is_some() {
            let gi = self.grant_index(&r.grant_id);
            let g = &mut self.grants[gi];
            g.reserved -= r.amount;
            if used {
                g.spent += r.amount;
            }
            self.res[ri].state = MState::Ended;
        }
        Ok(())
    }

    /// Every invariant, model against ledger: totals per grant, budget identity, open
    /// reservations each counted once, the hash chain intact with one receipt per decision.
    pub fn check(&self) -> R<()> {
        let open = ok("open reservations", self.ledger().open_reservations())?;
        let mut open_sum: BTreeMap<&str, u64> = BTreeMap::new();
        for (r, state) in &open {
            let m = self.res.iter().find(|m| m.r.id == r.id);
            let want = m.map(|m| match m.state {
                MState::Reserved => "reserved",
                MState::Unknown => "unknown",
                MState::Ended => "ended",
            });
            proptest::prop_assert_eq!(Some(state.as_str()), want, "open reservation {} in the ledger", r.id);
            proptest::prop_assert_eq!(m.map(|m| m.r.amount), Some(r.amount));
            *open_sum.entry(r.grant_id.as_str()).or_default() += r.amount;
        }
        let model_open = self.res.iter().filter(|m| m.state != MState::Ended).count();
        proptest::prop_assert_eq!(open.len(), model_open, "open reservations: ledger vs model");
        for m in &self.grants {
            let g = ok("grant", self.ledger().grant(&m.id))?;
            let got = (g.limits.budget, g.spent, g.reserved, g.revoked_at.is_some());
            proptest::prop_assert_eq!(got, (m.budget, m.spent, m.reserved, m.revoked_at.is_some()), "grant {} (budget, spent, reserved, revoked)", m.id);
            proptest::prop_assert!(g.spent <= g.limits.budget && g.spent + g.reserved <= g.limits.budget, "over budget: {:?}", got);
            proptest::prop_assert_eq!(g.spent + g.reserved + g.remaining(), g.limits.budget, "spent + reserved + remaining != budget");
            proptest::prop_assert_eq!(open_sum.get(m.id.as_str()).copied().unwrap_or(0), g.reserved, "open reservations vs grant.reserved");
            let tiers = (g.limits.auto_below, g.limits.ask_below, g.limits.per_request_max, g.limits.expires_at);
            proptest::prop_assert_eq!(tiers, (m.auto_below, m.ask_below, m.per_request_max, m.expires_at), "limits of {}", m.id);
        }
        match ok("verify chain", self.ledger().verify_chain())? {
            ChainReport::Intact { count, .. } => proptest::prop_assert_eq!(count, self.receipts, "one receipt per decision"),
            broken => return Err(TestCaseError::fail(format!("chain broken: {broken:?}"))),
        }
        Ok(())
    }
}

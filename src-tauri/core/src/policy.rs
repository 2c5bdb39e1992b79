//! Owns the decision: a pure function of (grant, request host, payment options, amount, clock)
//! to pay at once, ask the user, or refuse with a named reason. It touches no database.

use crate::grants::{Grant, GrantState};
use crate::money;
use crate::x402::Requirement;
use chrono::{DateTime, Utc};

/// Why a payment was refused by policy. `code()` is the receipt's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the grant was revoked")]
    Revoked,
    #[error("the grant has expired")]
    Expired,
    #[error("the grant does not cover this host")]
    HostNotAllowed,
    #[error("the grant does not cover this network")]
    NetworkNotAllowed,
    #[error("the grant does not allow this payee")]
    PayeeNotAllowed,
    #[error("the price is above the grant's per-request maximum")]
    OverPerRequestCap,
    #[error("the price is at or above the grant's ask tier")]
    AboveAskTier,
    #[error("the price is more than the grant has left")]
    OverBudget,
}

impl Refusal {
    /// The reason a receipt of this refusal carries (the same words as its code).
    pub fn reason(&self) -> crate::receipt::Reason {
        use crate::receipt::Reason;
        match self {
            Refusal::Revoked => Reason::Revoked,
            Refusal::Expired => Reason::Expired,
            Refusal::HostNotAllowed => Reason::HostNotAllowed,
            Refusal::NetworkNotAllowed => Reason::NetworkNotAllowed,
            Refusal::PayeeNotAllowed => Reason::PayeeNotAllowed,
            Refusal::OverPerRequestCap => Reason::OverPerRequestCap,
            Refusal::AboveAskTier => Reason::AboveAskTier,
            Refusal::OverBudget => Reason::OverBudget,
        }
    }

    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            Refusal::Revoked => crate::api::ErrorCode::Revoked,
            Refusal::Expired => crate::api::ErrorCode::Expired,
            Refusal::HostNotAllowed => crate::api::ErrorCode::HostNotAllowed,
            Refusal::NetworkNotAllowed => crate::api::ErrorCode::NetworkNotAllowed,
            Refusal::PayeeNotAllowed => crate::api::ErrorCode::PayeeNotAllowed,
            Refusal::OverPerRequestCap => crate::api::ErrorCode::OverPerRequestCap,
            Refusal::AboveAskTier => crate::api::ErrorCode::AboveAskTier,
            Refusal::OverBudget => crate::api::ErrorCode::OverBudget,
        }
    }
}

/// How a payment the policy allows goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Below the auto tier: pay at once.
    Auto,
    /// Between the auto and ask tiers: hold for the user.
    Ask,
}

/// The option chosen from a challenge and the verdict on it.
#[derive(Debug, Clone)]
pub struct Choice<'a> {
    pub requirement: &'a Requirement,
    /// Its price in ledger micro-USD (`u64::MAX` when it does not even fit the ledger).
    pub micros: u64,
    pub verdict: Result<Tier, Refusal>,
}

/// The grant's standing and remaining budget: re-checked inside the reservation transaction.
pub fn check_budget(grant: &Grant, micros: u64, now: DateTime<Utc>) -> Result<(), Refusal> {
    match grant.state(now) {
        GrantState::Revoked => Err(Refusal::Revoked),
        GrantState::Expired => Err(Refusal::Expired),
        GrantState::Active if micros > grant.remaining() => Err(Refusal::OverBudget),
        GrantState::Active => Ok(()),
    }
}

/// Decides one payment option for a request to `host:port`.
pub fn decide(grant: &Grant, host: &str, port: u16, req: &Requirement, micros: u64, now: DateTime<Utc>) -> Result<Tier, Refusal> {
    let l = &grant.limits;
    match grant.state(now) {
        GrantState::Revoked => return Err(Refusal::Revoked),
        GrantState::Expired => return Err(Refusal::Expired),
        GrantState::Active => {}
    }
    if !l.hosts.iter().any(|p| p.matches(host, port)) {
        return Err(Refusal::HostNotAllowed);
    }
    if !l.networks.is_empty() && !l.networks.iter().any(|n| n == req.network.caip2) {
        return Err(Refusal::NetworkNotAllowed);
    }
    if !l.payees.is_empty() && !l.payees.contains(&req.pay_to) {
        return Err(Refusal::PayeeNotAllowed);
    }
    if l.per_request_max.is_some_and(|max| micros > max) {
        return Err(Refusal::OverPerRequestCap);
    }
    if l.ask_below.is_some_and(|ask| micros >= ask) {
        return Err(Refusal::AboveAskTier);
    }
    check_budget(grant, micros, now)?;
    Ok(if micros < l.auto_below { Tier::Auto } else { Tier::Ask })
}

/// Picks the cheapest option the grant allows; when none is allowed, the cheapest option and
/// its refusal. `reqs` must not be empty (a parsed challenge never is).
pub fn choose<'a>(grant: &Grant, host: &str, port: u16, reqs: &'a [Requirement], now: DateTime<Utc>) -> Choice<'a> {
    let mut choices: Vec<Choice<'a>> = reqs
        .iter()
        .map(|r| {
            let micros = money::atomic_to_micros(r.amount, r.asset.decimals).unwrap_or(u64::MAX);
            Choice { requirement: r, micros, verdict: decide(grant, host, port, r, micros, now) }
        })
        .collect();
    choices.sort_by_key(|c| (c.verdict.is_err(), c.micros, c.requirement.index));
    choices.swap_remove(0)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

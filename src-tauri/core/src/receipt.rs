//! Owns what a receipt says: the record of one decision (paid, refused, failed or not payable)
//! with everything an auditor needs, and its JSON form. Storage and the hash chain are the
//! ledger's.

use crate::grants::Grant;
use crate::money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Paid,
    Refused,
    Failed,
    NotPayable,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Paid => "paid",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::NotPayable => "not_payable",
        }
    }
}

/// Who made the decision.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    Auto,
    User,
    Timeout,
    Policy,
    Rule,
}

/// The grant's limits and totals at decision time (amounts in micro-USD, as strings).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSnapshot {
    pub label: String,
    pub budget_atomic: String,
    pub spent_atomic: String,
    pub reserved_atomic: String,
    pub per_request_max_atomic: Option<String>,
    pub auto_below_atomic: String,
    pub ask_below_atomic: Option<String>,
    pub hosts: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

impl From<&Grant> for GrantSnapshot {
    fn from(g: &Grant) -> Self {
        let l = &g.limits;
        GrantSnapshot {
            label: g.label.clone(),
            budget_atomic: l.budget.to_string(),
            spent_atomic: g.spent.to_string(),
            reserved_atomic: g.reserved.to_string(),
            per_request_max_atomic: l.per_request_max.map(|v| v.to_string()),
            auto_below_atomic: l.auto_below.to_string(),
            ask_below_atomic: l.ask_below.map(|v| v.to_string()),
            hosts: l.hosts.iter().map(|h| h.to_string()).collect(),
            expires_at: l.expires_at,
        }
    }
}

/// The grant's totals right after the decision (micro-USD strings).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerAfter {
    pub spent_atomic: String,
    pub reserved_atomic: String,
    pub remaining_atomic: String,
}

impl From<&Grant> for LedgerAfter {
    fn from(g: &Grant) -> Self {
        LedgerAfter { spent_atomic: g.spent.to_string(), reserved_atomic: g.reserved.to_string(), remaining_atomic: g.remaining().to_string() }
    }
}

/// What a summary receipt counts (`reason: receipts_folded`): the routine decisions of one
/// grant's minute beyond its receipt limit (see `folding`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldedSummary {
    /// Decisions folded into this receipt.
    pub count: u64,
    /// The limit that applied (receipts a minute a grant).
    pub limit: u32,
    /// The first and the last folded decision.
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Counts by outcome, by reason, by host (at most 20, then `(other)`) and by method.
    pub outcomes: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    pub hosts: BTreeMap<String, u64>,
    pub methods: BTreeMap<String, u64>,
}

/// Why a receipt was written: every reason code a receipt carries, by construction (receipts are
/// decided only through [`Receipt::decide`], which takes one). The wire form is the snake_case
/// string, unchanged; old ledgers read the same (their reasons are all here: see the release
/// ledger test in `ledger::migrations`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Paid,
    OverBudget,
    OverPerRequestCap,
    AboveAskTier,
    Expired,
    Revoked,
    HostNotAllowed,
    PayeeNotAllowed,
    NetworkNotAllowed,
    UserDenied,
    ApprovalTimedOut,
    BlockedByRule,
    RequirementChanged,
    SpendingPaused,
    WalletLocked,
    InsufficientFunds,
    MalformedChallenge,
    NotPayable,
    UpstreamError,
    UpstreamTimeout,
    SettlementFailed,
    SignFailed,
    LedgerUnavailable,
    ShuttingDown,
    ClientGone,
    Interrupted,
    ReceiptsFolded,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::Paid,
        Reason::OverBudget,
        Reason::OverPerRequestCap,
        Reason::AboveAskTier,
        Reason::Expired,
        Reason::Revoked,
        Reason::HostNotAllowed,
        Reason::PayeeNotAllowed,
        Reason::NetworkNotAllowed,
        Reason::UserDenied,
        Reason::ApprovalTimedOut,
        Reason::BlockedByRule,
        Reason::RequirementChanged,
        Reason::SpendingPaused,
        Reason::WalletLocked,
        Reason::InsufficientFunds,
        Reason::MalformedChallenge,
        Reason::NotPayable,
        Reason::UpstreamError,
        Reason::UpstreamTimeout,
        Reason::SettlementFailed,
        Reason::SignFailed,
        Reason::LedgerUnavailable,
        Reason::ShuttingDown,
        Reason::ClientGone,
        Reason::Interrupted,
        Reason::ReceiptsFolded,
    ];

    /// The wire form: `over_budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Paid => "paid",
            Reason::OverBudget => "over_budget",
            Reason::OverPerRequestCap => "over_per_request_cap",
            Reason::AboveAskTier => "above_ask_tier",
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::PayeeNotAllowed => "payee_not_allowed",
            Reason::NetworkNotAllowed => "network_not_allowed",
            Reason::UserDenied => "user_denied",
            Reason::ApprovalTimedOut => "approval_timed_out",
            Reason::BlockedByRule => "blocked_by_rule",
            Reason::RequirementChanged => "requirement_changed",
            Reason::SpendingPaused => "spending_paused",
            Reason::WalletLocked => "wallet_locked",
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::MalformedChallenge => "malformed_challenge",
            Reason::NotPayable => "not_payable",
            Reason::UpstreamError => "upstream_error",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::SettlementFailed => "settlement_failed",
            Reason::SignFailed => "sign_failed",
            Reason::LedgerUnavailable => "ledger_unavailable",
            Reason::ShuttingDown => "shutting_down",
            Reason::ClientGone => "client_gone",
            Reason::Interrupted => "interrupted",
            Reason::ReceiptsFolded => "receipts_folded",
        }
    }

    /// The reason a wire string names, if any.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision. Serialised (without `hash`) it is the body the hash chain covers.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: String,
    pub time: DateTime<Utc>,
    pub grant_id: Option<String>,
    pub grant: Option<GrantSnapshot>,
    pub method: String,
    pub url: String,
    pub host: String,
    pub outcome: Outcome,
    /// Why: one of [`Reason`] (kept as its wire string, so every ledger reads the same).
    #[cfg_attr(feature = "ts", ts(as = "Reason"))]
    pub reason: String,
    /// A more specific code (`invalid_amount`, `domain_mismatch`, ...), when there is one.
    pub detail: Option<String>,
    /// The same in plain words.
    pub message: String,
    pub decided_by: DecidedBy,
    /// The rule that decided (`decided_by: rule`), or that a user's approval created.
    #[serde(default)]
    pub rule_id: Option<String>,
    /// Where the user decided (`notification`, `window`, `control`), when a user did.
    #[serde(default)]
    pub decided_via: Option<crate::approvals::Via>,
    /// What the agent said it was doing (`Purser-Intent`), sanitised: the agent's words.
    pub intent: Option<String>,
    /// Who asked: the local process behind the connection (or the `purser run` that started
    /// it), when identified. Absent from receipts written before it was recorded (and left out
    /// when None, so their hashed bytes stay what they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub agent: Option<crate::agent::AgentInfo>,
    /// `client_gone`: the agent left before its answer (the decision, and any payment, stand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub delivery: Option<String>,
    /// SHA-256 of the real URL when secrets were redacted from `url` (the same URL groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub url_hash: Option<String>,
    /// A summary receipt's counts (`reason: receipts_folded`): the routine decisions of one
    /// grant's minute beyond its receipt limit (see `folding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub folded: Option<FoldedSummary>,
    pub x402_version: Option<u8>,
    pub challenge: Option<Value>,
    pub requirement: Option<Value>,
    pub requirement_hash: Option<String>,
    /// In the asset's atomic units.
    pub amount_atomic: Option<String>,
    pub amount_usd: Option<String>,
    pub network: Option<String>,
    pub asset: Option<String>,
    pub pay_to: Option<String>,
    pub reservation_id: Option<String>,
    /// SHA-256 of the payment header sent (never the signature itself).
    pub payload_hash: Option<String>,
    pub valid_before: Option<u64>,
    /// The EIP-3009 authorization's nonce (0x-hex): public on chain once used; lets the
    /// reconciler ask `authorizationState` when the settlement's outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub authorization_nonce: Option<String>,
    /// The random 32 bytes (0x-hex) that, with `nonce_commits_to` and the receipt's id, make
    /// the authorization's nonce: `keccak256(commits_to ‖ id ‖ salt)` (see `anchor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub nonce_salt: Option<String>,
    /// The ledger's head hash as read when this payment was signed: the nonce commits to it, so
    /// the chain itself witnesses the ledger up to there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub nonce_commits_to: Option<String>,
    pub settlement: Option<Value>,
    pub tx: Option<String>,
    pub payer: Option<String>,
    pub upstream_status: Option<u16>,
    pub ledger_after: Option<LedgerAfter>,
    pub prev_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Receipt {
    /// A new receipt for a request, to be filled in by the pipeline.
    /// Secret-looking query parameters in `url` are redacted (see [`crate::redact`]); the real
    /// URL's hash is kept in `url_hash` when they were.
    pub fn new(id: String, time: DateTime<Utc>, method: &str, url: &str, host: &str) -> Receipt {
        let (shown, redacted) = crate::redact::url(url);
        let url_hash = redacted.then(|| crate::redact::url_hash(url));
        Receipt {
            id,
            time,
            grant_id: None,
            grant: None,
            method: method.to_string(),
            url: shown,
            host: host.to_string(),
            outcome: Outcome::Refused,
            reason: String::new(),
            detail: None,
            message: String::new(),
            decided_by: DecidedBy::Policy,
            rule_id: None,
            decided_via: None,
            intent: None,
            agent: None,
            delivery: None,
            url_hash,
            folded: None,
            x402_version: None,
            challenge: None,
            requirement: None,
            requirement_hash: None,
            amount_atomic: None,
            amount_usd: None,
            network: None,
            asset: None,
            pay_to: None,
            reservation_id: None,
            payload_hash: None,
            valid_before: None,
            authorization_nonce: None,
            nonce_salt: None,
            nonce_commits_to: None,
            settlement: None,
            tx: None,
            payer: None,
            upstream_status: None,
            ledger_after: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Sets the outcome, reason, detail and message in one go.
    pub fn decide(&mut self, outcome: Outcome, decided_by: DecidedBy, reason: Reason, detail: Option<&str>, message: impl Into<String>) {
        self.outcome = outcome;
        self.decided_by = decided_by;
        self.reason = reason.as_str().to_string();
        self.detail = detail.map(str::to_string);
        self.message = message.into();
    }

    /// Records the grant it was decided under (snapshot of its limits at this moment).
    pub fn set_grant(&mut self, g: &Grant) {
        self.grant_id = Some(g.id.clone());
        self.grant = Some(GrantSnapshot::from(g));
    }

    /// Records the chosen payment option.
    pub fn set_requirement(&mut self, req: &crate::x402::Requirement, micros: u64) {
        self.requirement = Some(req.raw.clone());
        self.requirement_hash = Some(req.hash());
        self.amount_atomic = Some(req.amount.to_string());
        self.amount_usd = (micros != u64::MAX).then(|| money::micros_decimal(micros));
        self.network = Some(req.network.caip2.to_string());
        self.asset = Some(req.asset.address.to_checksum(None));
        self.pay_to = Some(req.pay_to.to_checksum(None));
    }
}

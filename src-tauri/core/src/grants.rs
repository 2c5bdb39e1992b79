//! Owns what a grant is: its limits (budget, expiry, host/payee/network scope, tiers), host
//! patterns and their matching, and the parsing of a grant spec typed by a person. Storage is
//! the ledger's; decisions are the policy's.

use crate::money::{self, MoneyError};
use alloy_primitives::Address;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{field}: {source}")]
    Amount { field: &'static str, source: MoneyError },
    #[error("host pattern {0:?} is not valid (want host, host:port or *.domain)")]
    Host(String),
    #[error("payee {0:?} is not an address")]
    Payee(String),
    #[error("network {0:?} is not in the registry")]
    Network(String),
    #[error("duration {0:?} is not valid (want e.g. 90s, 30m, 2h, 7d)")]
    Duration(String),
    #[error("a grant needs at least one --host")]
    NoHosts,
    #[error("{0}")]
    Inconsistent(String),
    #[error("a grant may not pay on both a testnet and a mainnet ({0}) unless it allows mixing (--allow-mixed)")]
    MixedNetworks(String),
}

impl GrantError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            GrantError::Amount { .. } => crate::api::ErrorCode::InvalidAmount,
            GrantError::Host(_) | GrantError::NoHosts => crate::api::ErrorCode::InvalidHost,
            GrantError::Payee(_) => crate::api::ErrorCode::InvalidPayee,
            GrantError::Network(_) => crate::api::ErrorCode::InvalidNetwork,
            GrantError::Duration(_) => crate::api::ErrorCode::InvalidDuration,
            GrantError::Inconsistent(_) => crate::api::ErrorCode::InvalidGrant,
            GrantError::MixedNetworks(_) => crate::api::ErrorCode::MixedNetworks,
        }
    }
}

/// A host a grant may pay: `api.example.com`, `127.0.0.1:8080` (that port only), or
/// `*.example.org` (subdomains, not the apex). Without a port it covers every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    wildcard: bool,
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// (subdomains only, lower-case host without brackets, port): for checks outside this module.
    pub fn parts(&self) -> (bool, &str, Option<u16>) {
        (self.wildcard, &self.host, self.port)
    }

    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() + 1 && host.ends_with(&self.host) && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl HostPattern {
    /// Does this pattern name `host` itself (not through a wildcard)? What it takes to reach an
    /// address inside this machine or its networks (see `proxy::caller::check_target`).
    pub fn names_exactly(&self, host: &str, port: u16) -> bool {
        !self.wildcard && self.matches(host.trim_start_matches('[').trim_end_matches(']'), port)
    }
}

impl FromStr for HostPattern {
    type Err = GrantError;
    fn from_str(s: &str) -> Result<Self, GrantError> {
        let bad = || GrantError::Host(s.chars().take(100).collect());
        let t = s.trim().to_ascii_lowercase();
        let (wildcard, rest) = match t.strip_prefix("*.") {
            Some(r) => (true, r.to_string()),
            None => (false, t.clone()),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
                None if after.is_empty() => None,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad())?)),
                None => (rest, None),
            }
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'))
            && !host.starts_with('.')
            && !host.ends_with('.')
            && (!wildcard || !host.contains(':'));
        if !valid {
            return Err(bad());
        }
        Ok(HostPattern { wildcard, host, port })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.wildcard, self.port) {
            (true, Some(p)) => write!(f, "*.{host}:{p}"),
            (true, None) => write!(f, "*.{host}"),
            (false, Some(p)) => write!(f, "{host}:{p}"),
            (false, None) => write!(f, "{host}"),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A grant's limits, in ledger micro-USD. Valid by construction ([`GrantSpec::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub budget: u64,
    pub per_request_max: Option<u64>,
    /// Amounts strictly below this are paid without asking.
    pub auto_below: u64,
    /// Amounts from `auto_below` up to (not including) this are held for approval; at or
    /// above it they are refused. `None`: no upper tier (the per-request max still applies).
    pub ask_below: Option<u64>,
    pub hosts: Vec<HostPattern>,
    /// Empty: any payee.
    pub payees: Vec<Address>,
    /// CAIP-2 ids. New grants always name theirs (none given: the registry's testnets); an
    /// empty list only exists in grants stored before that rule, and means any registry network.
    pub networks: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub approval_timeout_secs: u64,
    /// Standard proxy mode: refuse traffic to hosts outside `hosts` instead of tunnelling it
    /// blind. Absent in grants stored before it existed (false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_listed_hosts: bool,
    /// The grant's own token is refused outside `purser run`: only runs (each with a token of
    /// its own, bound to its socket) spend it. Absent in older grants (false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_run: bool,
    /// Outside a run, the token works only for a client whose executable is this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_exe: Option<String>,
}

/// A grant as the user typed it, before validation.
#[derive(Debug, Clone, Default)]
pub struct GrantSpec {
    pub label: String,
    pub budget: String,
    pub expires: String,
    pub hosts: Vec<String>,
    pub payees: Vec<String>,
    pub networks: Vec<String>,
    pub per_request_max: Option<String>,
    pub auto_below: Option<String>,
    pub ask_below: Option<String>,
    pub approval_timeout: Option<String>,
    pub only_listed_hosts: bool,
    /// Allow a testnet and a mainnet in the same grant (never silently).
    pub allow_mixed_networks: bool,
    /// The token works only inside `purser run` (see [`Limits::only_run`]).
    pub only_run: bool,
    /// The token works only for this executable (an absolute path).
    pub only_exe: Option<String>,
}

/// Default time a held request waits for the user.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u64 = 60;

impl GrantSpec {
    /// Turns the typed spec into valid limits, relative to `now`.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(String, Limits), GrantError> {
        let usd = |field: &'static str, v: &str| money::parse_usd(v).map_err(|source| GrantError::Amount { field, source });
        let opt = |field: &'static str, v: &Option<String>| v.as_deref().map(|v| usd(field, v)).transpose();
        let label = self.label.trim().chars().filter(|c| !c.is_control()).take(100).collect::<String>();
        if label.is_empty() {
            return Err(GrantError::Inconsistent("a grant needs a --label".into()));
        }
        let budget = usd("budget", &self.budget)?;
        let per_request_max = opt("per-request-max", &self.per_request_max)?;
        let auto_below = opt("auto-below", &self.auto_below)?.unwrap_or(0);
        let ask_below = opt("ask-below", &self.ask_below)?;
        if let Some(ask) = ask_below {
            if ask < auto_below {
                return Err(GrantError::Inconsistent("ask-below must not be below auto-below".into()));
            }
        }
        if self.hosts.is_empty() {
            return Err(GrantError::NoHosts);
        }
        let hosts = self.hosts.iter().map(|h| h.parse()).collect::<Result<Vec<HostPattern>, _>>()?;
        let payees = self.payees.iter().map(|p| p.trim().parse::<Address>().map_err(|_| GrantError::Payee(p.clone()))).collect::<Result<Vec<_>, _>>()?;
        let networks = networks_rule(&self.networks, self.allow_mixed_networks)?;
        let expires_at = now + parse_duration(&self.expires)?;
        let approval_timeout_secs = match &self.approval_timeout {
            Some(t) => parse_duration(t)?.num_seconds() as u64,
            None => DEFAULT_APPROVAL_TIMEOUT_SECS,
        };
        let only_listed_hosts = self.only_listed_hosts;
        let only_exe = match self.only_exe.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.starts_with('/') && !p.chars().any(char::is_control) && p.len() <= 4096 => Some(p.to_string()),
            Some(p) => return Err(GrantError::Inconsistent(format!("--only-exe takes an absolute path, not {:?}", p.chars().take(60).collect::<String>()))),
        };
        let only_run = self.only_run;
        Ok((label, Limits { budget, per_request_max, auto_below, ask_below, hosts, payees, networks, expires_at, approval_timeout_secs, only_listed_hosts, only_run, only_exe }))
    }
}

/// The networks a new grant may pay on, stored explicitly: the ones named (deduplicated), or
/// every registry testnet when none is named, so a grant never reaches mainnet money unless the
/// user named a mainnet. A testnet and a mainnet together need `allow_mixed`.
pub fn networks_rule(names: &[String], allow_mixed: bool) -> Result<Vec<String>, GrantError> {
    let mut nets: Vec<&'static crate::networks::Network> = Vec::new();
    for name in names {
        let n = crate::networks::by_name(name.trim()).ok_or_else(|| GrantError::Network(name.chars().take(60).collect()))?;
        if !nets.iter().any(|x| x.caip2 == n.caip2) {
            nets.push(n);
        }
    }
    if nets.is_empty() {
        nets = crate::networks::REGISTRY.iter().filter(|n| n.testnet).collect();
    }
    if !allow_mixed && nets.iter().any(|n| n.testnet) && nets.iter().any(|n| !n.testnet) {
        return Err(GrantError::MixedNetworks(nets.iter().map(|n| n.v1_name).collect::<Vec<_>>().join(", ")));
    }
    Ok(nets.iter().map(|n| n.caip2.to_string()).collect())
}

/// `90s`, `30m`, `2h`, `7d` (a positive whole number and one unit).
pub fn parse_duration(s: &str) -> Result<Duration, GrantError> {
    let bad = || GrantError::Duration(s.chars().take(40).collect());
    let s = s.trim();
    // The unit is the last character, which need not be one byte (`1é`, found by fuzzing).
    let split = s.char_indices().last().map(|(i, _)| i).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) || (num.len() > 1 && num.starts_with('0')) {
        return Err(bad());
    }
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s > 0 && *s <= 10 * 365 * 86_400)
    .ok_or_else(bad)?;
    Ok(Duration::seconds(secs))
}

/// How long a revocation can be undone.
pub const UNDO_SECS: i64 = 10;

/// Why a grant edit (an undo of a revocation) cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("grant {0} is not revoked")]
    NotRevoked(String),
    #[error("grant {0} was revoked more than {UNDO_SECS} s ago; it cannot be undone (create a new grant)")]
    TooLate(String),
    #[error("a request under grant {0} was decided after it was revoked; the revocation cannot be undone")]
    Decided(String),
}

impl EditError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            EditError::NotRevoked(_) => crate::api::ErrorCode::NotRevoked,
            EditError::TooLate(_) => crate::api::ErrorCode::UndoTooLate,
            EditError::Decided(_) => crate::api::ErrorCode::UndoAfterDecision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_pattern_table() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("127.0.0.1", "127.0.0.1", 8080, true),
            ("127.0.0.1", "127.0.0.1", 1, true),
            ("127.0.0.1:8080", "127.0.0.1", 8080, true),
            ("127.0.0.1:8080", "127.0.0.1", 8081, false),
            ("api.example.com", "API.Example.com", 443, true),
            ("api.example.com", "api.example.com.", 443, true),
            ("api.example.com", "evil-api.example.com", 443, false),
            ("*.example.org", "a.example.org", 443, true),
            ("*.example.org", "a.b.example.org", 443, true),
            ("*.example.org", "example.org", 443, false),
            ("*.example.org", "badexample.org", 443, false),
            ("*.example.org:8443", "a.example.org", 443, false),
            ("[::1]:9", "::1", 9, true),
        ];
        for (pat, host, port, want) in cases {
            let p: HostPattern = pat.parse().unwrap();
            assert_eq!(p.matches(host, *port), *want, "{pat} vs {host}:{port}");
            assert_eq!(p.to_string().parse::<HostPattern>().unwrap(), p, "round trip {pat}");
        }
        for bad in ["", "*.", "a b", "host:99999", "host:", "*.[::1]", ".x", "x/y", "*"] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duration_with_a_multibyte_unit_is_an_error_not_a_panic() {
        // fuzz/regressions/timeline_query/since-multibyte-unit: `since:2026-11��` panicked in split_at.
        for s in ["1é", "2026-11\u{fffd}\u{fffd}", "\u{fffd}", "7日"] {
            assert_eq!(parse_duration(s).unwrap_err().code(), "invalid_duration", "{s:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2h").unwrap().num_seconds(), 7200);
        assert_eq!(parse_duration("90s").unwrap().num_seconds(), 90);
        for bad in ["", "h", "0s", "2", "2w", "-1h", "1.5h", "02h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spec_validation() {
        let now = Utc::now();
        let spec = GrantSpec {
            label: "research".into(),
            budget: "5.00".into(),
            expires: "2h".into(),
            hosts: vec!["api.example.com".into(), "*.example.org".into()],
            per_request_max: Some("0.50".into()),
            auto_below: Some("0.05".into()),
            ask_below: Some("1.00".into()),
            ..Default::default()
        };
        let (label, l) = spec.validate(now).unwrap();
        assert_eq!((label.as_str(), l.budget, l.per_request_max, l.auto_below, l.ask_below), ("research", 5_000_000, Some(500_000), 50_000, Some(1_000_000)));
        assert_eq!(l.approval_timeout_secs, 60);
        assert_eq!((l.expires_at - now).num_seconds(), 7200);
        let mut bad = spec.clone();
        bad.ask_below = Some("0.01".into());
        assert_eq!(bad.validate(now).unwrap_err().code(), "invalid_grant");
        let mut bad = spec.clone();
        bad.budget = "1e3".into();
        assert_eq!(bad.validate(now).unwrap_err().code(), "invalid_amount");
        let mut bad = spec.clone();
        bad.hosts.clear();
        assert_eq!(bad.validate(now).unwrap_err().code(), "invalid_host");
        // Networks: none named → the testnets, recorded; mixing needs allow_mixed_networks.
        assert_eq!(l.networks, vec!["eip155:84532".to_string()]);
        let mut mixed = spec.clone();
        mixed.networks = vec!["base".into(), "base-sepolia".into()];
        assert_eq!(mixed.validate(now).unwrap_err().code(), "mixed_networks");
        mixed.allow_mixed_networks = true;
        assert_eq!(mixed.validate(now).unwrap().1.networks, vec!["eip155:8453".to_string(), "eip155:84532".to_string()]);
        let mut main = spec;
        main.networks = vec!["eip155:8453".into(), "base".into()];
        assert_eq!(main.validate(now).unwrap().1.networks, vec!["eip155:8453".to_string()]);
        main.networks = vec!["eip155:1".into()];
        assert_eq!(main.validate(now).unwrap_err().code(), "invalid_network");
    }
}

/// A stored grant with its running totals (micro-USD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub limits: Limits,
    pub spent: u64,
    pub reserved: u64,
}

/// Where a grant stands at a moment.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    Active,
    Revoked,
    Expired,
}

impl Grant {
    /// What is left to spend: budget - spent - reserved.
    pub fn remaining(&self) -> u64 {
        self.limits.budget.saturating_sub(self.spent.saturating_add(self.reserved))
    }

    pub fn state(&self, now: DateTime<Utc>) -> GrantState {
        if self.revoked_at.is_some() {
            GrantState::Revoked
        } else if now >= self.limits.expires_at {
            GrantState::Expired
        } else {
            GrantState::Active
        }
    }
}

/// A grant as the CLI's `--json`, the control API and the app show it (amounts: micro-USD
/// strings; `*_usd`: decimal strings).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    pub id: String,
    pub label: String,
    pub state: GrantState,
    pub budget_atomic: String,
    pub spent_atomic: String,
    pub reserved_atomic: String,
    pub remaining_atomic: String,
    pub budget_usd: String,
    pub spent_usd: String,
    pub remaining_usd: String,
    pub per_request_max_atomic: Option<String>,
    pub auto_below_atomic: String,
    pub ask_below_atomic: Option<String>,
    pub hosts: Vec<String>,
    pub payees: Vec<String>,
    pub networks: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub approval_timeout_secs: u64,
    pub only_listed_hosts: bool,
    /// The token works only inside `purser run`.
    pub only_run: bool,
    /// The token works only for this executable.
    pub only_exe: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Grant {
    pub fn view(&self, now: DateTime<Utc>) -> GrantView {
        let l = &self.limits;
        GrantView {
            id: self.id.clone(),
            label: self.label.clone(),
            state: self.state(now),
            budget_atomic: l.budget.to_string(),
            spent_atomic: self.spent.to_string(),
            reserved_atomic: self.reserved.to_string(),
            remaining_atomic: self.remaining().to_string(),
            budget_usd: money::micros_decimal(l.budget),
            spent_usd: money::micros_decimal(self.spent),
            remaining_usd: money::micros_decimal(self.remaining()),
            per_request_max_atomic: l.per_request_max.map(|v| v.to_string()),
            auto_below_atomic: l.auto_below.to_string(),
            ask_below_atomic: l.ask_below.map(|v| v.to_string()),
            hosts: l.hosts.iter().map(|h| h.to_string()).collect(),
            payees: l.payees.iter().map(|p| p.to_checksum(None)).collect(),
            networks: l.networks.clone(),
            expires_at: l.expires_at,
            approval_timeout_secs: l.approval_timeout_secs,
            only_listed_hosts: l.only_listed_hosts,
            only_run: l.only_run,
            only_exe: l.only_exe.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

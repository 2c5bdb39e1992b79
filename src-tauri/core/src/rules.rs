//! Owns the user's standing answers on a grant, made from the approval window (or the CLI):
//! "auto-approve this host up to this price for N minutes" and "block this host". What a rule
//! is, when it is active (against an injected clock), and which rule, if any, decides a payment.
//! Rules never widen a grant: an allow rule only answers for the grant's ask tier, after every
//! limit of the grant has passed. Storage is the ledger's.

use crate::grants::{parse_duration, HostPattern};
use crate::money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest an allow rule may last.
pub const MAX_ALLOW_SECS: i64 = 7 * 86_400;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Pay ask-tier requests to the host up to `max_micros` without asking, until `expires_at`.
    Allow,
    /// Refuse every payment to the host under this grant (until removed).
    Block,
}

impl RuleKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleKind::Allow => "allow",
            RuleKind::Block => "block",
        }
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub grant_id: String,
    pub kind: RuleKind,
    pub host: HostPattern,
    /// Allow rules: the largest price they pay (micro-USD).
    pub max_micros: Option<u64>,
    /// Allow rules: when they stop. Block rules: `None` (until removed).
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The held request it was made from, if any.
    pub from_approval: Option<String>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl Rule {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.removed_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }

    /// "auto-approve 127.0.0.1:4021 up to $0.10 for 10 min", "block api.example.com".
    pub fn describe(&self) -> String {
        match self.kind {
            RuleKind::Allow => {
                let mins = self.expires_at.map(|t| ((t - self.created_at).num_seconds() + 59) / 60).unwrap_or(0);
                format!("auto-approve {} up to {} for {mins} min", self.host, money::format_usd(self.max_micros.unwrap_or(0)))
            }
            RuleKind::Block => format!("block {}", self.host),
        }
    }

    pub fn view(&self, now: DateTime<Utc>) -> RuleView {
        RuleView {
            id: self.id.clone(),
            grant_id: self.grant_id.clone(),
            kind: self.kind,
            host: self.host.to_string(),
            max_usd: self.max_micros.map(money::micros_decimal),
            max_atomic: self.max_micros.map(|m| m.to_string()),
            expires_at: self.expires_at,
            created_at: self.created_at,
            from_approval: self.from_approval.clone(),
            removed_at: self.removed_at,
            active: self.active(now),
            description: self.describe(),
        }
    }
}

/// A rule as the CLI's `--json`, the control API and the app show it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleView {
    pub id: String,
    pub grant_id: String,
    pub kind: RuleKind,
    pub host: String,
    pub max_usd: Option<String>,
    pub max_atomic: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub from_approval: Option<String>,
    pub removed_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub description: String,
}

/// What a rule says about one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ruling<'a> {
    Block(&'a Rule),
    Allow(&'a Rule),
}

impl Ruling<'_> {
    pub fn rule(&self) -> &Rule {
        match self {
            Ruling::Block(r) | Ruling::Allow(r) => r,
        }
    }
}

/// The rule that decides a payment of `micros` to `host:port` at `now`, if any. A block beats
/// any allow; among allow rules the one expiring last is named.
pub fn ruling<'a>(rules: &'a [Rule], host: &str, port: u16, micros: u64, now: DateTime<Utc>) -> Option<Ruling<'a>> {
    let live = || rules.iter().filter(move |r| r.active(now) && r.host.matches(host, port));
    if let Some(b) = live().find(|r| r.kind == RuleKind::Block) {
        return Some(Ruling::Block(b));
    }
    live().filter(|r| r.kind == RuleKind::Allow && r.max_micros.is_some_and(|m| micros <= m)).max_by_key(|r| r.expires_at).map(Ruling::Allow)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Grant(#[from] crate::grants::GrantError),
    #[error("{0}")]
    Invalid(String),
    #[error("no rule {0}")]
    NotFound(String),
}

impl RuleError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            RuleError::Grant(e) => e.code(),
            RuleError::Invalid(_) => crate::api::ErrorCode::InvalidRule,
            RuleError::NotFound(_) => crate::api::ErrorCode::NoSuchRule,
        }
    }
}

/// A rule as a person typed it (or the window filled it in), before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RuleSpec {
    pub kind: Option<RuleKind>,
    /// `api.example.com`, `127.0.0.1:4021`, `*.example.org`.
    pub host: String,
    /// Allow rules: the largest price (USD), e.g. `0.10`.
    pub up_to: Option<String>,
    /// Allow rules: how long, e.g. `10m`.
    pub duration: Option<String>,
}

/// A valid rule, not stored yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub kind: RuleKind,
    pub host: HostPattern,
    pub max_micros: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl RuleSpec {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<NewRule, RuleError> {
        let host: HostPattern = self.host.parse()?;
        match self.kind.unwrap_or(RuleKind::Allow) {
            RuleKind::Allow => {
                let up_to = self.up_to.as_deref().ok_or_else(|| RuleError::Invalid("an allow rule needs a price limit (up to, in USD)".into()))?;
                let max = money::parse_usd(up_to).map_err(|source| crate::grants::GrantError::Amount { field: "up-to", source })?;
                if max == 0 {
                    return Err(RuleError::Invalid("an allow rule's price limit must be above $0".into()));
                }
                let d = parse_duration(self.duration.as_deref().ok_or_else(|| RuleError::Invalid("an allow rule needs a duration, e.g. 10m".into()))?)?;
                if d.num_seconds() > MAX_ALLOW_SECS {
                    return Err(RuleError::Invalid("an allow rule lasts at most 7 days".into()));
                }
                Ok(NewRule { kind: RuleKind::Allow, host, max_micros: Some(max), expires_at: Some(now + d) })
            }
            RuleKind::Block => {
                if self.up_to.is_some() || self.duration.is_some() {
                    return Err(RuleError::Invalid("a block rule has no price limit or duration (remove it to unblock)".into()));
                }
                Ok(NewRule { kind: RuleKind::Block, host, max_micros: None, expires_at: None })
            }
        }
    }
}

/// The host pattern that names exactly the host and port a request went to.
pub fn exact_host(host: &str, port: u16) -> Result<HostPattern, RuleError> {
    let h = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok(h.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use chrono::Duration;

    fn rule(id: &str, spec: RuleSpec, now: DateTime<Utc>) -> Rule {
        let n = spec.validate(now).unwrap();
        Rule { id: id.into(), grant_id: "g".into(), kind: n.kind, host: n.host, max_micros: n.max_micros, expires_at: n.expires_at, created_at: now, from_approval: None, removed_at: None }
    }

    fn allow(host: &str, up_to: &str, d: &str) -> RuleSpec {
        RuleSpec { kind: Some(RuleKind::Allow), host: host.into(), up_to: Some(up_to.into()), duration: Some(d.into()) }
    }

    #[test]
    fn allow_rules_expire_on_the_injected_clock() {
        let clock = ManualClock::new(Utc::now());
        let rules = vec![rule("a", allow("127.0.0.1:4021", "0.10", "10m"), clock.now())];
        let at = |micros, port| ruling(&rules, "127.0.0.1", port, micros, clock.now()).map(|r| r.rule().id.clone());
        assert_eq!(at(50_000, 4021).as_deref(), Some("a"));
        assert_eq!(at(100_000, 4021).as_deref(), Some("a"), "up to and including the limit");
        assert_eq!(at(100_001, 4021), None, "above the limit it asks");
        assert_eq!(at(50_000, 4022), None, "another port is another host");
        clock.advance(Duration::minutes(10) - Duration::seconds(1));
        assert_eq!(at(50_000, 4021).as_deref(), Some("a"));
        clock.advance(Duration::seconds(1));
        assert_eq!(at(50_000, 4021), None, "expired at exactly 10 minutes");
        assert_eq!(rules[0].describe(), "auto-approve 127.0.0.1:4021 up to $0.10 for 10 min");
        assert!(!rules[0].view(clock.now()).active);
    }

    #[test]
    fn block_beats_allow_and_removal_ends_a_rule() {
        let now = Utc::now();
        let mut rules = vec![rule("a", allow("api.example.com", "1.00", "1h"), now), rule("b", RuleSpec { kind: Some(RuleKind::Block), host: "api.example.com".into(), ..Default::default() }, now)];
        assert!(matches!(ruling(&rules, "API.example.com", 443, 10, now), Some(Ruling::Block(r)) if r.id == "b"));
        assert!(matches!(ruling(&rules, "api.example.com", 443, 10_000_000, now), Some(Ruling::Block(_))), "a block ignores the price");
        rules[1].removed_at = Some(now);
        assert!(matches!(ruling(&rules, "api.example.com", 443, 10, now), Some(Ruling::Allow(r)) if r.id == "a"));
        assert_eq!(ruling(&rules, "other.example.com", 443, 10, now), None);
        assert_eq!(rules[1].describe(), "block api.example.com");
        assert_eq!(rules[1].expires_at, None);
    }

    #[test]
    fn specs_are_validated() {
        let now = Utc::now();
        let bad = [
            RuleSpec { host: "h".into(), up_to: Some("0.10".into()), ..Default::default() },
            RuleSpec { host: "h".into(), duration: Some("10m".into()), ..Default::default() },
            allow("h", "0", "10m"),
            allow("h", "0.10", "8d"),
            allow("h", "-1", "10m"),
            allow("a b", "0.10", "10m"),
            RuleSpec { kind: Some(RuleKind::Block), host: "h".into(), duration: Some("1m".into()), up_to: None },
        ];
        for spec in bad {
            assert!(spec.validate(now).is_err(), "{spec:?}");
        }
        assert_eq!(allow("h", "0", "10m").validate(now).unwrap_err().code(), "invalid_rule");
        assert_eq!(allow("a b", "0.1", "10m").validate(now).unwrap_err().code(), "invalid_host");
        assert_eq!(exact_host("::1", 8080).unwrap().to_string(), "[::1]:8080");
        assert_eq!(exact_host("127.0.0.1", 4021).unwrap().to_string(), "127.0.0.1:4021");
    }
}

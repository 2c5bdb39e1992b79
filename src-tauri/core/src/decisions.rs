//! Owns the engine operations behind the user's answers, shared by every front end (control
//! API and CLI, notifications, the desktop app's window): approve or deny a held request (with
//! "and auto-approve this host for N minutes" or "and block this host"), pause its countdown
//! while it is open in the window, the rules on a grant, payee names, and the approvals that
//! timed out while the user was away.

use crate::approvals::{ApprovalError, PendingApproval};
use crate::clock::new_id;
use crate::engine::{Engine, EngineError};
use crate::events::Event;
use crate::grants::GrantError;
use crate::ledger::MissedApprovals;
use crate::presence::{self, Answerer, Presence};
use crate::rules::{exact_host, RuleError, RuleKind, RuleSpec, RuleView};
use serde::{Deserialize, Serialize};

/// A user's answer to one held request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub approve: bool,
    /// Approve only if the request is still held for exactly this requirement.
    #[serde(default)]
    pub requirement_hash: Option<String>,
    /// Approve, and let this grant pay this host without asking for this long (`10m`).
    #[serde(default)]
    pub allow_for: Option<String>,
    /// With `allow_for`: the largest price (USD) the rule pays; default: this request's price.
    #[serde(default)]
    pub up_to: Option<String>,
    /// Deny, and refuse every payment to this host under this grant from now on.
    #[serde(default)]
    pub block_host: bool,
}

/// A decided request, and the rule the decision made, if any.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Decided {
    #[serde(flatten)]
    pub approval: PendingApproval,
    pub rule: Option<RuleView>,
}

/// Timed-out approvals the user has not been told about.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Missed {
    pub count: u64,
    /// "3 requests were denied while you were away." (absent when none)
    pub message: Option<String>,
    pub receipt_ids: Vec<String>,
    #[serde(skip)]
    pub up_to_seq: i64,
}

impl From<MissedApprovals> for Missed {
    fn from(m: MissedApprovals) -> Self {
        Missed { count: m.count, message: crate::prompt::missed(m.count), receipt_ids: m.receipt_ids, up_to_seq: m.up_to_seq }
    }
}

impl Engine {
    /// Decides the held request `id` as `d` says, answered by `who`. An approval (and the allow
    /// rule it may add) needs the user's presence; a denial does not. A rule is stored first and
    /// taken back if the request was decided in the meantime: an unknown, expired or decided id
    /// changes nothing.
    pub fn decide(&self, id: &str, d: &Decision, who: impl Into<Answerer>) -> Result<Decided, EngineError> {
        let who: Answerer = who.into();
        let view = self.approvals.get(id).ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if d.approve {
            who.presence("approving a held payment")?;
        }
        let via = who.via();
        if d.approve && d.requirement_hash.as_deref().is_some_and(|h| h != view.requirement_hash) {
            return Err(ApprovalError::HashMismatch(id.to_string()).into());
        }
        let now = self.clock.now();
        let host = || -> Result<String, RuleError> {
            let port = reqwest::Url::parse(&view.url).ok().and_then(|u| u.port_or_known_default()).unwrap_or(0);
            Ok(exact_host(&view.host, port)?.to_string())
        };
        let spec = match (d.approve, &d.allow_for, &d.up_to, d.block_host) {
            (_, None, None, false) => None,
            (true, Some(duration), up_to, false) => {
                Some(RuleSpec { kind: Some(RuleKind::Allow), host: host()?, up_to: Some(up_to.clone().unwrap_or_else(|| view.amount_usd.clone())), duration: Some(duration.clone()) })
            }
            (false, None, None, true) => Some(RuleSpec { kind: Some(RuleKind::Block), host: host()?, up_to: None, duration: None }),
            _ => return Err(RuleError::Invalid("allow_for (and up_to) go with an approval, block_host with a denial".into()).into()),
        };
        let rule = match spec {
            Some(s) => Some(self.ledger.add_rule(&new_id(), &view.grant_id, &s.validate(now)?, Some(id), now)?),
            None => None,
        };
        match self.approvals.decide_via(id, d.approve, d.requirement_hash.as_deref(), via) {
            Ok(approval) => {
                if let Some(r) = &rule {
                    tracing::info!(rule = %r.id, grant = %r.grant_id, what = %r.describe(), "rule added");
                    self.events.publish(Event::GrantChanged { id: r.grant_id.clone() });
                }
                Ok(Decided { approval, rule: rule.map(|r| r.view(now)) })
            }
            Err(e) => {
                if let Some(r) = &rule {
                    let _ = self.ledger.remove_rule(&r.id, now);
                }
                Err(e.into())
            }
        }
    }

    /// The approval window shows `id`: its countdown stands still until [`Engine::unview_approval`].
    pub fn view_approval(&self, id: &str) -> Result<PendingApproval, EngineError> {
        Ok(self.approvals.pause(id)?)
    }

    /// The approval window no longer shows `id`: its countdown runs on.
    pub fn unview_approval(&self, id: &str) -> Result<PendingApproval, EngineError> {
        Ok(self.approvals.resume(id)?)
    }

    /// Adds a rule to a grant by hand (the window's rule editor, `purser rules add`). An allow
    /// rule widens spending and needs the user's presence; a block rule does not.
    pub fn add_rule(&self, grant_id: &str, spec: &RuleSpec, presence: Option<&Presence>) -> Result<RuleView, EngineError> {
        let now = self.clock.now();
        let new = spec.validate(now)?;
        if new.kind == RuleKind::Allow {
            presence::require(presence, "adding an allow rule")?;
        }
        let rule = self.ledger.add_rule(&new_id(), grant_id, &new, None, now)?;
        self.events.publish(Event::GrantChanged { id: grant_id.to_string() });
        Ok(rule.view(now))
    }

    /// Rules, newest first: of one grant or all; removed ones only with `all`.
    pub fn rules(&self, grant_id: Option<&str>, all: bool) -> Result<Vec<RuleView>, EngineError> {
        if let Some(g) = grant_id {
            self.ledger.grant(g)?;
        }
        let now = self.clock.now();
        Ok(self.ledger.list_rules(grant_id)?.iter().map(|r| r.view(now)).filter(|r| all || r.removed_at.is_none()).collect())
    }

    pub fn remove_rule(&self, id: &str) -> Result<RuleView, EngineError> {
        let now = self.clock.now();
        let r = self.ledger.remove_rule(id, now)?.ok_or_else(|| RuleError::NotFound(id.to_string()))?;
        self.events.publish(Event::GrantChanged { id: r.grant_id.clone() });
        Ok(r.view(now))
    }

    /// Names a payee (shown next to its address in prompts); an empty name removes it.
    pub fn label_payee(&self, address: &str, label: &str) -> Result<PayeeLabel, EngineError> {
        let a: alloy_primitives::Address = address.trim().parse().map_err(|_| GrantError::Payee(address.chars().take(64).collect()))?;
        let label = crate::text::clean(label, crate::text::MAX_NAME);
        self.ledger.set_payee_label(&a.to_checksum(None), Some(label.as_str()).filter(|l| !l.is_empty()), self.clock.now())?;
        Ok(PayeeLabel { address: a.to_checksum(None), label: Some(label).filter(|l| !l.is_empty()) })
    }

    pub fn payee_labels(&self) -> Result<Vec<PayeeLabel>, EngineError> {
        Ok(self.ledger.payee_labels()?.into_iter().map(|(a, l)| PayeeLabel { address: a.parse::<alloy_primitives::Address>().map(|a| a.to_checksum(None)).unwrap_or(a), label: Some(l) }).collect())
    }

    /// Approvals that timed out since the user last looked.
    pub fn missed_approvals(&self) -> Result<Missed, EngineError> {
        Ok(self.ledger.missed_approvals()?.into())
    }

    /// The user has seen the missed approvals (up to the newest one now).
    pub fn ack_missed(&self) -> Result<Missed, EngineError> {
        let m = self.ledger.missed_approvals()?;
        self.ledger.ack_missed(m.up_to_seq)?;
        Ok(m.into())
    }
}

/// A payee's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayeeLabel {
    pub address: String,
    pub label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::{Verdict, Via};
    use crate::clock::{Clock, ManualClock, OsNonces};
    use crate::grants::GrantSpec;
    use crate::ledger::Ledger;
    use std::sync::Arc;
    use std::time::Duration;

    fn engine() -> (tempfile::TempDir, Engine, Arc<ManualClock>, String) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let e = Engine::with_sources(Ledger::open_in(&dir.path().join("d")).unwrap(), None, clock.clone(), Arc::new(OsNonces)).unwrap();
        let spec = GrantSpec { label: "t".into(), budget: "5".into(), expires: "2h".into(), hosts: vec!["127.0.0.1".into()], ..Default::default() };
        let g = e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap();
        (dir, e, clock, g.grant.id)
    }

    fn view(id: &str, grant: &str) -> PendingApproval {
        let mut v = crate::prompt::tests::view();
        v.id = id.into();
        v.grant_id = grant.into();
        v
    }

    #[tokio::test]
    async fn approve_with_a_rule_and_deny_with_a_block() {
        let (_d, e, clock, gid) = engine();
        let held = e.approvals.hold(view("a", &gid));
        let d = Decision { approve: true, requirement_hash: Some("h".into()), allow_for: Some("10m".into()), up_to: Some("0.10".into()), block_host: false };
        // Without presence an approval (and its rule) is refused and changes nothing.
        assert_eq!(e.decide("a", &d, Via::Terminal).unwrap_err().code(), "presence_required");
        assert!(e.approvals.get("a").is_some() && e.rules(Some(&gid), true).unwrap().is_empty());
        let out = e.decide("a", &d, Presence::app_click()).unwrap();
        assert_eq!(e.approvals.wait_decision(held, Duration::from_secs(1)).await, (Verdict::Approved, Some(Via::App)));
        let rule = out.rule.unwrap();
        assert_eq!((rule.kind, rule.host.as_str(), rule.max_usd.as_deref(), rule.from_approval.as_deref()), (RuleKind::Allow, "127.0.0.1:4021", Some("0.10"), Some("a")));
        assert_eq!(rule.description, "auto-approve 127.0.0.1:4021 up to $0.10 for 10 min");
        let lasts = rule.expires_at.unwrap() - clock.now();
        assert!((lasts - chrono::Duration::minutes(10)).num_milliseconds().abs() < 1, "{lasts}");

        let held = e.approvals.hold(view("b", &gid));
        let out = e.decide("b", &Decision { approve: false, block_host: true, ..Default::default() }, Via::App).unwrap();
        assert_eq!(e.approvals.wait(held, Duration::from_secs(1)).await, Verdict::Denied);
        assert_eq!(out.rule.unwrap().description, "block 127.0.0.1:4021");
        assert_eq!(e.rules(Some(&gid), false).unwrap().len(), 2);

        // Default price limit: this request's price.
        let held = e.approvals.hold(view("c", &gid));
        let out = e.decide("c", &Decision { approve: true, allow_for: Some("1m".into()), ..Default::default() }, Presence::app_click()).unwrap();
        let _ = e.approvals.wait(held, Duration::from_secs(1)).await;
        assert_eq!(out.rule.unwrap().max_atomic.as_deref(), Some("50000"));

        let removed = e.remove_rule(&rule.id).unwrap();
        assert!(!removed.active && removed.removed_at.is_some());
        assert_eq!(e.rules(Some(&gid), false).unwrap().len(), 2);
        assert_eq!(e.rules(Some(&gid), true).unwrap().len(), 3);
        assert_eq!(e.remove_rule("nope").unwrap_err().code(), "no_such_rule");
        assert_eq!(e.rules(Some("nope"), false).unwrap_err().code(), "no_such_grant");
    }

    #[tokio::test]
    async fn bad_decisions_change_nothing() {
        let (_d, e, _c, gid) = engine();
        let unknown = e.decide("nope", &Decision { approve: true, allow_for: Some("10m".into()), ..Default::default() }, Presence::app_click());
        assert_eq!(unknown.unwrap_err().code(), "no_such_approval");
        let held = e.approvals.hold(view("x", &gid));
        for (d, code) in [
            (Decision { approve: true, requirement_hash: Some("other".into()), ..Default::default() }, "requirement_changed"),
            (Decision { approve: true, block_host: true, ..Default::default() }, "invalid_rule"),
            (Decision { approve: false, allow_for: Some("10m".into()), ..Default::default() }, "invalid_rule"),
            (Decision { approve: true, up_to: Some("1".into()), ..Default::default() }, "invalid_rule"),
            (Decision { approve: true, allow_for: Some("forever".into()), ..Default::default() }, "invalid_duration"),
            (Decision { approve: true, allow_for: Some("1m".into()), up_to: Some("lots".into()), ..Default::default() }, "invalid_amount"),
        ] {
            assert_eq!(e.decide("x", &d, Presence::app_click()).unwrap_err().code(), code, "{d:?}");
        }
        assert!(e.approvals.get("x").is_some(), "still pending");
        assert!(e.rules(None, true).unwrap().is_empty(), "no rule stored");
        e.decide("x", &Decision::default(), Via::Terminal).unwrap();
        assert_eq!(e.approvals.wait(held, Duration::from_secs(1)).await, Verdict::Denied);
        assert_eq!(e.decide("x", &Decision::default(), Via::Terminal).unwrap_err().code(), "no_such_approval", "already decided");
    }

    #[test]
    fn payee_labels() {
        let (_d, e, _c, _g) = engine();
        let l = e.label_payee("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", "Acme\u{202E} API\n").unwrap();
        assert_eq!((l.address.as_str(), l.label.as_deref()), ("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", Some("Acme API")));
        assert_eq!(e.payee_labels().unwrap(), vec![l]);
        assert_eq!(e.label_payee("nope", "x").unwrap_err().code(), "invalid_payee");
        e.label_payee("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "").unwrap();
        assert!(e.payee_labels().unwrap().is_empty());
    }
}

//! Owns changes to grants after creation, as the app's grant screen makes them: editing a live
//! grant (label, hosts, per-request cap, tiers, approval timeout, a later expiry), revoking every
//! grant at once, and undoing a revocation. An undo is possible for [`UNDO_SECS`] after the
//! revocation and only if no request under the grant was decided since (no receipt: nothing
//! was refused, denied or settled under it), so the revocation had no effect anyone saw.

use crate::engine::{Engine, EngineError};
use crate::events::Event;
use crate::grants::{parse_duration, GrantError, GrantView, HostPattern, Limits};
pub use crate::grants::{EditError, UNDO_SECS};
use crate::ipc::GrantPatch;
use crate::ledger::Unrevoke;
use crate::money;
use crate::presence::Presence;

fn usd(field: &'static str, v: &str) -> Result<u64, GrantError> {
    money::parse_usd(v).map_err(|source| GrantError::Amount { field, source })
}

/// `""` removes an optional limit.
fn optional_usd(field: &'static str, v: &str) -> Result<Option<u64>, GrantError> {
    if v.is_empty() {
        Ok(None)
    } else {
        usd(field, v).map(Some)
    }
}

/// Does going from `old` to `new` let agents spend more, more often, or in more places?
/// (Conservative: any host not listed before counts, even one a wildcard already covered.)
pub fn widens(old: &Limits, new: &Limits) -> bool {
    let looser = |old: Option<u64>, new: Option<u64>| match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o,
        (None, _) => false,
    };
    let old_hosts: Vec<String> = old.hosts.iter().map(|h| h.to_string()).collect();
    looser(old.per_request_max, new.per_request_max)
        || new.auto_below > old.auto_below
        || looser(old.ask_below, new.ask_below)
        || new.budget > old.budget
        || new.expires_at > old.expires_at
        || new.hosts.iter().any(|h| !old_hosts.contains(&h.to_string()))
        || (old.only_listed_hosts && !new.only_listed_hosts)
        || (old.only_run && !new.only_run)
        || (old.only_exe.is_some() && new.only_exe != old.only_exe)
        || (!old.payees.is_empty() && (new.payees.is_empty() || new.payees.iter().any(|p| !old.payees.contains(p))))
        || (!old.networks.is_empty() && (new.networks.is_empty() || new.networks.iter().any(|n| !old.networks.contains(n))))
}

impl Engine {
    /// Applies `patch` to a live grant (see [`GrantPatch`]); a revoked grant is refused
    /// (`revoked`), and the result obeys the same rules as a new grant.
    /// A patch that raises any limit (a higher or removed per-request max or ask ceiling, a
    /// higher auto tier, more or wider hosts, a later expiry, a longer approval wait, no longer
    /// only the listed hosts) widens spending and needs the user's presence.
    pub fn update_grant(&self, id: &str, patch: &GrantPatch, presence: Option<&Presence>) -> Result<GrantView, EngineError> {
        let now = self.clock.now();
        let g = self.ledger.grant(id)?;
        let (mut label, mut l) = (g.label.clone(), g.limits.clone());
        if let Some(v) = &patch.label {
            label = v.trim().chars().filter(|c| !c.is_control()).take(100).collect();
            if label.is_empty() {
                return Err(GrantError::Inconsistent("a grant needs a label".into()).into());
            }
        }
        if let Some(hosts) = &patch.hosts {
            if hosts.is_empty() {
                return Err(GrantError::NoHosts.into());
            }
            l.hosts = hosts.iter().map(|h| h.parse::<HostPattern>()).collect::<Result<_, _>>()?;
        }
        if let Some(v) = &patch.per_request_max {
            l.per_request_max = optional_usd("per-request-max", v)?;
        }
        if let Some(v) = &patch.auto_below {
            l.auto_below = usd("auto-below", v)?;
        }
        if let Some(v) = &patch.ask_below {
            l.ask_below = optional_usd("ask-below", v)?;
        }
        if l.ask_below.is_some_and(|ask| ask < l.auto_below) {
            return Err(GrantError::Inconsistent("ask-below must not be below auto-below".into()).into());
        }
        if let Some(v) = &patch.approval_timeout {
            l.approval_timeout_secs = parse_duration(v)?.num_seconds() as u64;
        }
        if let Some(v) = &patch.extend_by {
            l.expires_at = l.expires_at.max(now) + parse_duration(v)?;
        }
        if let Some(v) = patch.only_listed_hosts {
            l.only_listed_hosts = v;
        }
        if widens(&g.limits, &l) {
            crate::presence::require(presence, "raising a grant's limits")?;
        }
        let g = self.ledger.update_grant(id, &label, &l)?;
        self.events.publish(Event::GrantChanged { id: id.to_string() });
        Ok(g.view(now))
    }

    /// Revokes every grant not revoked yet; returns those it revoked.
    pub fn revoke_all(&self) -> Result<Vec<GrantView>, EngineError> {
        let live: Vec<String> = self.ledger.list_grants()?.into_iter().filter(|g| g.revoked_at.is_none()).map(|g| g.id).collect();
        live.iter().map(|id| self.revoke_grant(id)).collect()
    }

    /// Undoes a revocation (see the module's rule); it widens spending, so it needs the user's
    /// presence.
    pub fn unrevoke_grant(&self, id: &str, presence: Option<&Presence>) -> Result<GrantView, EngineError> {
        crate::presence::require(presence, "undoing a revocation")?;
        let now = self.clock.now();
        let (result, g) = self.ledger.unrevoke_grant(id, now, chrono::Duration::seconds(UNDO_SECS))?;
        match result {
            Unrevoke::Done => {
                tracing::info!(grant = id, "revocation undone");
                self.events.publish(Event::GrantChanged { id: id.to_string() });
                Ok(g.view(now))
            }
            Unrevoke::NotRevoked => Err(EditError::NotRevoked(id.to_string()).into()),
            Unrevoke::TooLate => Err(EditError::TooLate(id.to_string()).into()),
            Unrevoke::Decided => Err(EditError::Decided(id.to_string()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock, OsNonces};
    use crate::grants::{GrantSpec, GrantState};
    use crate::ledger::Ledger;
    use crate::receipt::{DecidedBy, Outcome, Receipt};
    use std::sync::Arc;

    fn engine() -> (tempfile::TempDir, Engine, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let e = Engine::with_sources(Ledger::open_in(dir.path()).unwrap(), None, clock.clone(), Arc::new(OsNonces)).unwrap();
        (dir, e, clock)
    }

    fn grant(e: &Engine, label: &str) -> String {
        let spec = GrantSpec {
            label: label.into(),
            budget: "5".into(),
            expires: "2h".into(),
            hosts: vec!["api.x.com".into()],
            auto_below: Some("0.05".into()),
            ask_below: Some("1".into()),
            ..Default::default()
        };
        e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().grant.id
    }

    #[test]
    fn edits_apply_and_bad_edits_change_nothing() {
        let (_d, e, clock) = engine();
        let id = grant(&e, "research");
        let before = e.grant(&id).unwrap();
        let patch = GrantPatch {
            label: Some(" deep research\n".into()),
            hosts: Some(vec!["*.x.org".into(), "api.x.com:8443".into()]),
            per_request_max: Some("0.50".into()),
            ask_below: Some("".into()),
            extend_by: Some("1h".into()),
            ..Default::default()
        };
        let g = e.update_grant(&id, &patch, Some(&crate::presence::Presence::app_click())).unwrap();
        assert_eq!(
            (g.label.as_str(), g.hosts.clone(), g.per_request_max_atomic.as_deref(), g.ask_below_atomic.clone()),
            ("deep research", vec!["*.x.org".to_string(), "api.x.com:8443".to_string()], Some("500000"), None)
        );
        assert_eq!((g.expires_at - before.expires_at).num_seconds(), 3600);
        assert_eq!(g.budget_atomic, before.budget_atomic, "the budget changes by top-up only");
        for (p, code) in [
            (GrantPatch { label: Some("\n".into()), ..Default::default() }, "invalid_grant"),
            (GrantPatch { hosts: Some(vec![]), ..Default::default() }, "invalid_host"),
            (GrantPatch { hosts: Some(vec!["a b".into()]), ..Default::default() }, "invalid_host"),
            (GrantPatch { auto_below: Some("0.5".into()), ask_below: Some("0.1".into()), ..Default::default() }, "invalid_grant"),
            (GrantPatch { per_request_max: Some("1e3".into()), ..Default::default() }, "invalid_amount"),
            (GrantPatch { extend_by: Some("forever".into()), ..Default::default() }, "invalid_duration"),
        ] {
            assert_eq!(e.update_grant(&id, &p, Some(&crate::presence::Presence::app_click())).unwrap_err().code(), code, "{p:?}");
        }
        assert_eq!(e.grant(&id).unwrap(), g, "unchanged by refused edits");
        // An expired grant is extended from now.
        clock.advance(chrono::Duration::hours(4));
        assert_eq!(e.grant(&id).unwrap().state, GrantState::Expired);
        let g = e.update_grant(&id, &GrantPatch { extend_by: Some("30m".into()), ..Default::default() }, Some(&crate::presence::Presence::app_click())).unwrap();
        assert_eq!((g.state, (g.expires_at - clock.now()).num_seconds()), (GrantState::Active, 1800));
        e.revoke_grant(&id).unwrap();
        assert_eq!(e.update_grant(&id, &GrantPatch::default(), Some(&crate::presence::Presence::app_click())).unwrap_err().code(), "revoked");
        assert_eq!(e.update_grant("nope", &GrantPatch::default(), Some(&crate::presence::Presence::app_click())).unwrap_err().code(), "no_such_grant");
    }

    #[test]
    fn undo_only_soon_and_only_when_nothing_was_decided() {
        let (_d, e, clock) = engine();
        let (a, b, c) = (grant(&e, "a"), grant(&e, "b"), grant(&e, "c"));
        assert_eq!(e.unrevoke_grant(&a, Some(&crate::presence::Presence::app_click())).unwrap_err().code(), "not_revoked");
        e.revoke_grant(&a).unwrap();
        clock.advance(chrono::Duration::seconds(UNDO_SECS));
        let g = e.unrevoke_grant(&a, Some(&crate::presence::Presence::app_click())).unwrap();
        assert_eq!((g.state, g.revoked_at), (GrantState::Active, None));

        e.revoke_grant(&b).unwrap();
        clock.advance(chrono::Duration::seconds(UNDO_SECS + 1));
        assert_eq!(e.unrevoke_grant(&b, Some(&crate::presence::Presence::app_click())).unwrap_err().code(), "undo_too_late");

        e.revoke_grant(&c).unwrap();
        let mut r = Receipt::new(crate::clock::new_id(), clock.now(), "GET", "https://api.x.com/", "api.x.com");
        r.set_grant(&e.ledger.grant(&c).unwrap());
        r.decide(Outcome::Refused, DecidedBy::Policy, crate::receipt::Reason::Revoked, None, "revoked");
        e.ledger.record(&mut r, clock.now()).unwrap();
        assert_eq!(e.unrevoke_grant(&c, Some(&crate::presence::Presence::app_click())).unwrap_err().code(), "undo_after_decision");
        assert_eq!(e.grant(&c).unwrap().state, GrantState::Revoked);
    }

    #[test]
    fn revoke_all_revokes_the_live_ones() {
        let (_d, e, _c) = engine();
        let (a, b) = (grant(&e, "a"), grant(&e, "b"));
        e.revoke_grant(&a).unwrap();
        let done = e.revoke_all().unwrap();
        assert_eq!(done.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), [b.as_str()]);
        assert!(e.list_grants().unwrap().iter().all(|g| g.state == GrantState::Revoked));
        assert!(e.revoke_all().unwrap().is_empty());
    }
}

//! Rule rows (allow/block rules stored on a grant), payee labels, and the "seen" mark that says
//! which timed-out approvals the user has already been told about. Schema version 3.

use super::{grants::load, parse_ts, to_i64, ts, Ledger, LedgerError, Result};
use crate::rules::{NewRule, Rule, RuleKind};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

const COLS: &str = "id, grant_id, kind, host, max_amount, expires_at, created_at, from_approval, removed_at";
const MISSED_MARK: &str = "missed_seen_seq";
const TIMED_OUT: &str = "approval_timed_out";

/// A `rules` row as stored: id, grant, kind, host, max, expiry, created, from approval, removed.
type RuleRow = (String, String, String, String, Option<i64>, Option<String>, String, Option<String>, Option<String>);

fn row_to_rule(r: &Row<'_>) -> rusqlite::Result<Result<Rule>> {
    let (id, grant_id, kind, host, max, expires, created, from, removed): RuleRow = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?);
    Ok((|| {
        let bad = |what: &str| LedgerError::Corrupt(format!("rule {id}: {what}"));
        Ok(Rule {
            kind: match kind.as_str() {
                "allow" => RuleKind::Allow,
                "block" => RuleKind::Block,
                _ => return Err(bad("kind")),
            },
            host: host.parse().map_err(|_| bad("host"))?,
            max_micros: max.map(|m| u64::try_from(m).map_err(|_| bad("amount"))).transpose()?,
            expires_at: expires.as_deref().map(parse_ts).transpose()?,
            created_at: parse_ts(&created)?,
            from_approval: from,
            removed_at: removed.as_deref().map(parse_ts).transpose()?,
            grant_id,
            id,
        })
    })())
}

/// Which timed-out approvals the user has not been told about yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedApprovals {
    pub count: u64,
    /// Their receipts, newest first (at most 50).
    pub receipt_ids: Vec<String>,
    /// The newest receipt's sequence number: acknowledging up to it marks these as seen.
    pub up_to_seq: i64,
}

impl Ledger {
    /// Stores a rule on `grant_id` (which must exist and not be revoked).
    pub fn add_rule(&self, id: &str, grant_id: &str, rule: &NewRule, from_approval: Option<&str>, now: DateTime<Utc>) -> Result<Rule> {
        self.with(|c| {
            let g = load(c, grant_id)?;
            if g.revoked_at.is_some() {
                return Err(LedgerError::Revoked(grant_id.to_string()));
            }
            c.execute(
                &format!("INSERT INTO rules ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)"),
                params![id, grant_id, rule.kind.as_str(), rule.host.to_string(), rule.max_micros.map(to_i64).transpose()?, rule.expires_at.map(ts), ts(now), from_approval],
            )?;
            c.query_row(&format!("SELECT {COLS} FROM rules WHERE id = ?1"), [id], row_to_rule)?
        })
    }

    /// The rules of `grant_id` that are not removed (expired ones included; the caller's clock
    /// decides), oldest first.
    pub fn live_rules(&self, grant_id: &str) -> Result<Vec<Rule>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {COLS} FROM rules WHERE grant_id = ?1 AND removed_at IS NULL ORDER BY created_at, id"))?;
            let rows = st.query_map([grant_id], row_to_rule)?;
            rows.map(|r| r?).collect()
        })
    }

    /// Every rule (of one grant, or all), removed ones included, newest first.
    pub fn list_rules(&self, grant_id: Option<&str>) -> Result<Vec<Rule>> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM rules WHERE ?1 IS NULL OR grant_id = ?1 ORDER BY created_at DESC, id DESC"))?;
            let rows = st.query_map([grant_id], row_to_rule)?;
            rows.map(|r| r?).collect()
        })
    }

    pub fn rule(&self, id: &str) -> Result<Option<Rule>> {
        self.with(|c| c.query_row(&format!("SELECT {COLS} FROM rules WHERE id = ?1"), [id], row_to_rule).optional()?.transpose())
    }

    /// Removes a rule (kept, marked removed; idempotent: the first removal time is kept).
    pub fn remove_rule(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Rule>> {
        self.with(|c| {
            c.execute("UPDATE rules SET removed_at = COALESCE(removed_at, ?2) WHERE id = ?1", params![id, ts(now)])?;
            c.query_row(&format!("SELECT {COLS} FROM rules WHERE id = ?1"), [id], row_to_rule).optional()?.transpose()
        })
    }

    /// Names `address` (checksummed) as `label`; `None` removes the name.
    pub fn set_payee_label(&self, address: &str, label: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
            match label {
                Some(l) => c.execute(
                    "INSERT INTO payee_labels (address, label, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(address) DO UPDATE SET label = ?2, updated_at = ?3",
                    params![address.to_ascii_lowercase(), l, ts(now)],
                )?,
                None => c.execute("DELETE FROM payee_labels WHERE address = ?1", [address.to_ascii_lowercase()])?,
            };
            Ok(())
        })
    }

    pub fn payee_label(&self, address: &str) -> Result<Option<String>> {
        self.with(|c| Ok(c.query_row("SELECT label FROM payee_labels WHERE address = ?1", [address.to_ascii_lowercase()], |r| r.get(0)).optional()?))
    }

    /// Every payee label as (lowercase address, label), by address.
    pub fn payee_labels(&self) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT address, label FROM payee_labels ORDER BY address")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Approvals that timed out since the user last acknowledged them.
    pub fn missed_approvals(&self) -> Result<MissedApprovals> {
        self.with(|c| {
            let mark: i64 = c.query_row("SELECT value FROM marks WHERE name = ?1", [MISSED_MARK], |r| r.get(0)).optional()?.unwrap_or(0);
            let (count, up_to): (i64, Option<i64>) = c.query_row("SELECT COUNT(*), MAX(seq) FROM receipts WHERE seq > ?1 AND reason = ?2", params![mark, TIMED_OUT], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut st = c.prepare("SELECT id FROM receipts WHERE seq > ?1 AND reason = ?2 ORDER BY seq DESC LIMIT 50")?;
            let ids = st.query_map(params![mark, TIMED_OUT], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(MissedApprovals { count: count as u64, receipt_ids: ids, up_to_seq: up_to.unwrap_or(mark) })
        })
    }

    /// Marks the missed approvals up to receipt `seq` as seen (the mark never moves back).
    pub fn ack_missed(&self, seq: i64) -> Result<()> {
        self.with(|c| {
            c.execute("INSERT INTO marks (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = MAX(value, ?2)", params![MISSED_MARK, seq])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::GrantSpec;
    use crate::receipt::{DecidedBy, Outcome, Receipt};
    use crate::rules::RuleSpec;

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(&dir.path().join("data")).unwrap();
        let spec = GrantSpec { label: "t".into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["x.com".into()], ..Default::default() };
        let (label, limits) = spec.validate(Utc::now()).unwrap();
        l.create_grant("g1", &label, &limits, "hash1", Utc::now()).unwrap();
        (dir, l)
    }

    #[test]
    fn rules_round_trip_and_removal() {
        let (_d, l) = ledger();
        let now = Utc::now();
        let spec = RuleSpec { kind: None, host: "127.0.0.1:4021".into(), up_to: Some("0.10".into()), duration: Some("10m".into()) };
        let r = l.add_rule("r1", "g1", &spec.validate(now).unwrap(), Some("a1"), now).unwrap();
        assert_eq!((r.kind, r.max_micros, r.host.to_string(), r.from_approval.as_deref()), (RuleKind::Allow, Some(100_000), "127.0.0.1:4021".into(), Some("a1")));
        let block = RuleSpec { kind: Some(RuleKind::Block), host: "x.com".into(), ..Default::default() };
        l.add_rule("r2", "g1", &block.validate(now).unwrap(), None, now).unwrap();
        assert_eq!(l.live_rules("g1").unwrap().len(), 2);
        assert_eq!(l.live_rules("other").unwrap().len(), 0);
        let removed = l.remove_rule("r2", now).unwrap().unwrap();
        assert!(removed.removed_at.is_some());
        assert_eq!(l.live_rules("g1").unwrap().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1"]);
        assert_eq!(l.list_rules(Some("g1")).unwrap().len(), 2, "removed rules stay listed");
        assert_eq!(l.remove_rule("nope", now).unwrap(), None);
        assert_eq!(l.add_rule("r3", "nope", &block.validate(now).unwrap(), None, now).unwrap_err().code(), "no_such_grant");
        l.revoke_grant("g1", now).unwrap();
        assert_eq!(l.add_rule("r4", "g1", &block.validate(now).unwrap(), None, now).unwrap_err().code(), "revoked");
        assert_eq!(l.rule("r1").unwrap().unwrap().id, "r1");
    }

    #[test]
    fn payee_labels_are_case_blind() {
        let (_d, l) = ledger();
        let a = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
        l.set_payee_label(a, Some("Acme"), Utc::now()).unwrap();
        assert_eq!(l.payee_label(&a.to_ascii_lowercase()).unwrap().as_deref(), Some("Acme"));
        l.set_payee_label(a, Some("Acme 2"), Utc::now()).unwrap();
        assert_eq!(l.payee_labels().unwrap(), vec![(a.to_ascii_lowercase(), "Acme 2".to_string())]);
        l.set_payee_label(a, None, Utc::now()).unwrap();
        assert_eq!(l.payee_label(a).unwrap(), None);
    }

    #[test]
    fn missed_approvals_are_counted_until_acknowledged() {
        let (_d, l) = ledger();
        let add = |id: &str, reason: &str| {
            let mut r = Receipt::new(id.into(), Utc::now(), "GET", "http://x.com/", "x.com");
            r.decide(Outcome::Refused, DecidedBy::Timeout, crate::receipt::Reason::parse(reason).expect("a reason"), None, "m");
            l.record(&mut r, Utc::now()).unwrap();
        };
        add("t1", TIMED_OUT);
        add("d1", "user_denied");
        add("t2", TIMED_OUT);
        let m = l.missed_approvals().unwrap();
        assert_eq!((m.count, m.receipt_ids.clone()), (2, vec!["t2".to_string(), "t1".to_string()]));
        l.ack_missed(m.up_to_seq).unwrap();
        assert_eq!(l.missed_approvals().unwrap().count, 0);
        add("t3", TIMED_OUT);
        assert_eq!(l.missed_approvals().unwrap().receipt_ids, vec!["t3".to_string()]);
        l.ack_missed(0).unwrap();
        assert_eq!(l.missed_approvals().unwrap().count, 1, "the mark never moves back");
    }
}

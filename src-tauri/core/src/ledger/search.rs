//! Runs parsed queries against the search index: resolves filter values to interned ids, builds
//! one FTS5 expression (words and fact tokens), narrows date ranges to seq ranges with the
//! per-day bounds, and answers counts, keyset pages (newest first), aggregates (from the daily
//! rollup when the query allows, else from the matching rows) and ordered iteration for export.
//!
//! Amount and time filters are exact: the FTS expression selects a superset (whole amount
//! buckets, whole days) and the few rows at the edges are checked one by one.

use super::index::{self, dim, DAY, TOKEN_ALL, TOKEN_FLAGGED};
use super::{Ledger, LedgerError, Result};
use crate::search::flags::Flags;
use crate::search::query::{Key, Query, Value};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

/// A position in a result set: after `last` (exclusive, newest first), among receipts up to
/// `snapshot` (so receipts arriving while paging never shift pages), whose total was `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub last: i64,
    pub snapshot: i64,
    pub total: u64,
}

/// One matching receipt, raw: its seq, stored body (the hashed JSON) and hash, and its flags.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub seq: i64,
    pub body: String,
    pub hash: String,
    pub flags: Flags,
}

/// A page of raw rows, newest first.
#[derive(Debug, Clone)]
pub struct RawPage {
    pub rows: Vec<RawRow>,
    pub total: u64,
    pub next: Option<Cursor>,
}

/// What aggregates are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Day,
    Week,
    Grant,
    Host,
    Payee,
    Endpoint,
    Outcome,
    Decider,
    Network,
}

impl GroupBy {
    fn rollup_expr(&self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "(day + 3) / 7",
            GroupBy::Grant => "grant_dim",
            GroupBy::Host => "host",
            GroupBy::Payee => "payee",
            GroupBy::Endpoint => "endpoint",
            GroupBy::Outcome => "outcome",
            GroupBy::Decider => "decider",
            GroupBy::Network => "network",
        }
    }

    fn of(&self, f: &Facts) -> i64 {
        let day = f.t.div_euclid(DAY);
        match self {
            GroupBy::Day => day,
            GroupBy::Week => (day + 3).div_euclid(7),
            GroupBy::Grant => f.grant,
            GroupBy::Host => f.host,
            GroupBy::Payee => f.payee,
            GroupBy::Endpoint => f.endpoint,
            GroupBy::Outcome => f.outcome,
            GroupBy::Decider => f.decider,
            GroupBy::Network => f.network,
        }
    }
}

/// Counters of one aggregate group (spend in micro-USD, paid receipts only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub receipts: u64,
    pub by_outcome: [u64; 4],
    pub spend: u64,
}

impl Counters {
    fn add(&mut self, outcome: i64, n: u64, spend: u64) {
        self.receipts += n;
        if let Some(c) = self.by_outcome.get_mut(outcome as usize) {
            *c += n;
        }
        self.spend = self.spend.saturating_add(spend);
    }
}

/// Aggregate groups keyed by the raw group values (interned ids, day or week numbers).
#[derive(Debug, Clone, Default)]
pub struct RawStats {
    pub groups: Vec<(Vec<i64>, Counters)>,
    pub total: Counters,
    /// Whether the daily rollup answered (else the matching rows were read).
    pub from_rollup: bool,
}

#[derive(Debug, Clone, Copy)]
struct Facts {
    seq: i64,
    t: i64,
    grant: i64,
    outcome: i64,
    decider: i64,
    host: i64,
    endpoint: i64,
    payee: i64,
    network: i64,
    amount: Option<i64>,
    flags: u32,
}

const FACT_COLS: &str = "f.seq, f.t, f.grant_dim, f.outcome, f.decider, f.host, f.endpoint, f.payee, f.network, f.amount, f.flags";

fn facts(r: &rusqlite::Row<'_>) -> rusqlite::Result<Facts> {
    Ok(Facts {
        seq: r.get(0)?,
        t: r.get(1)?,
        grant: r.get(2)?,
        outcome: r.get(3)?,
        decider: r.get(4)?,
        host: r.get(5)?,
        endpoint: r.get(6)?,
        payee: r.get(7)?,
        network: r.get(8)?,
        amount: r.get(9)?,
        flags: r.get::<_, i64>(10)? as u32,
    })
}

/// A query resolved against this ledger.
#[derive(Debug, Clone)]
struct Plan {
    /// Matches nothing (a filter value that no receipt has).
    nothing: bool,
    /// FTS sub-expressions that must all match.
    must: Vec<String>,
    /// FTS sub-expressions that must not match.
    must_not: Vec<String>,
    /// Amount: inclusive bounds and the buckets fully inside / partly inside them.
    amount: Option<(u64, u64)>,
    full_buckets: Vec<usize>,
    partial_buckets: Vec<usize>,
    since: Option<i64>,
    until: Option<i64>,
    /// The WHERE clause over the daily rollup, when the query can be answered from it.
    rollup: Option<String>,
}

/// Seq ranges a query's time filter reduces to: all matches lie in `[lo, hi]`; those in
/// `(sure_lo, sure_hi)` are certainly inside the time range, the others need their time checked.
#[derive(Debug, Clone, Copy)]
struct Zones {
    lo: i64,
    hi: i64,
    sure_lo: i64,
    sure_hi: i64,
}

fn or_tokens(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" OR ")
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Plan {
    fn resolve(c: &Connection, q: &Query) -> Result<Plan> {
        let mut p = Plan { nothing: false, must: vec![], must_not: vec![], amount: q.amount, full_buckets: vec![], partial_buckets: vec![], since: q.since, until: q.until, rollup: None };
        let mut rollup_ok = q.terms.is_empty() && q.amount.is_none();
        let mut rollup_where: Vec<String> = vec![];
        for t in &q.terms {
            let n = t.words.len();
            let parts: Vec<String> = t.words.iter().enumerate().map(|(i, w)| if t.prefix && i == n - 1 { format!("\"{w}\"*") } else { format!("\"{w}\"") }).collect();
            let e = parts.join(" AND ");
            if t.negated { p.must_not.push(e) } else { p.must.push(e) }
        }
        for f in &q.facets {
            let (tokens, cond): (Vec<String>, Option<String>) = match f.key {
                Key::Outcome | Key::Decider => {
                    let (prefix, col) = if f.key == Key::Outcome { ('o', "outcome") } else { ('d', "decider") };
                    let codes: Vec<i64> = f.values.iter().filter_map(|v| if let Value::Code(c) = v { Some(*c) } else { None }).collect();
                    (codes.iter().map(|c| index::token(prefix, *c)).collect(), Some(format!("{col} IN ({})", id_list(&codes))))
                }
                Key::Flag => {
                    let mut toks = vec![];
                    let mut conds = vec![];
                    for v in &f.values {
                        match v {
                            Value::AnyFlag => {
                                toks.push(TOKEN_FLAGGED.to_string());
                                conds.push("flags != 0".to_string());
                            }
                            Value::Code(bit) => {
                                let tok = index::FLAG_TOKENS.iter().find(|(b, _)| *b as i64 == *bit).map(|(_, t)| t.to_string()).unwrap_or_default();
                                toks.push(tok);
                                conds.push(format!("(flags & {bit}) != 0"));
                            }
                            _ => {}
                        }
                    }
                    (toks, Some(conds.join(" OR ")))
                }
                _ => {
                    let (kind, prefix, col) = match f.key {
                        Key::Grant => (dim::GRANT, 'g', Some("grant_dim")),
                        Key::Host => (dim::HOST, 'h', Some("host")),
                        Key::Payee => (dim::PAYEE, 'p', Some("payee")),
                        Key::Network => (dim::NETWORK, 'n', Some("network")),
                        _ => (dim::REASON, 'r', None),
                    };
                    let mut ids = vec![];
                    for v in &f.values {
                        ids.extend(resolve_value(c, f.key, kind, v)?);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    let cond = col.map(|col| format!("{col} IN ({})", id_list(&ids)));
                    (ids.iter().map(|id| index::token(prefix, *id)).collect(), cond)
                }
            };
            match cond {
                Some(cond) => rollup_where.push(if f.negated { format!("NOT ({cond})") } else { format!("({cond})") }),
                None => rollup_ok = false,
            }
            if tokens.is_empty() {
                if !f.negated {
                    p.nothing = true;
                }
                continue;
            }
            let e = or_tokens(&tokens);
            if f.negated { p.must_not.push(e) } else { p.must.push(e) }
        }
        if let Some((lo, hi)) = q.amount {
            for b in 0..index::bucket_count() {
                let (blo, bhi) = index::bucket_range(b);
                if bhi < lo || blo > hi {
                    continue;
                }
                if blo >= lo && bhi <= hi { p.full_buckets.push(b) } else { p.partial_buckets.push(b) }
            }
            if p.full_buckets.is_empty() && p.partial_buckets.is_empty() {
                p.nothing = true;
            }
        }
        let aligned = |t: Option<i64>| t.is_none_or(|t| t.rem_euclid(DAY) == 0);
        if rollup_ok && aligned(q.since) && aligned(q.until) {
            if let Some(s) = q.since {
                rollup_where.push(format!("day >= {}", s.div_euclid(DAY)));
            }
            if let Some(u) = q.until {
                rollup_where.push(format!("day < {}", u.div_euclid(DAY)));
            }
            p.rollup = Some(if rollup_where.is_empty() { "1".into() } else { rollup_where.join(" AND ") });
        }
        Ok(p)
    }

    fn bucket_expr(buckets: &[usize]) -> String {
        or_tokens(&buckets.iter().map(|b| index::token('m', *b as i64)).collect::<Vec<_>>())
    }

    /// The FTS expression for the query with this amount part (None: no amount condition).
    fn expr(&self, amount: Option<&[usize]>) -> String {
        let mut pos: Vec<String> = self.must.clone();
        if let Some(b) = amount {
            pos.push(Self::bucket_expr(b));
        }
        let mut e = if pos.is_empty() { format!("\"{TOKEN_ALL}\"") } else { pos.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" AND ") };
        for n in &self.must_not {
            e = format!("({e}) NOT ({n})");
        }
        e
    }

    /// Every candidate: whole buckets and whole days.
    fn superset(&self) -> String {
        match self.amount {
            Some(_) => {
                let mut all = self.full_buckets.clone();
                all.extend(&self.partial_buckets);
                self.expr(Some(&all))
            }
            None => self.expr(None),
        }
    }

    fn admits(&self, t: i64, amount: Option<i64>) -> bool {
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
            return false;
        }
        match (self.amount, amount) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((lo, hi)), Some(a)) => a >= 0 && (a as u64) >= lo && (a as u64) <= hi,
        }
    }

    /// Narrows the time filter to seq ranges, with `snapshot` as the newest seq considered.
    fn zones(&self, c: &Connection, snapshot: i64) -> Result<Option<Zones>> {
        if self.since.is_none() && self.until.is_none() {
            return Ok(Some(Zones { lo: 1, hi: snapshot, sure_lo: 0, sure_hi: i64::MAX }));
        }
        let since = self.since.unwrap_or(i64::MIN / 2);
        let until = self.until.unwrap_or(i64::MAX / 2);
        let first_day = since.div_euclid(DAY);
        let last_day = (until - 1).div_euclid(DAY);
        let (lo, hi): (Option<i64>, Option<i64>) = c
            .prepare_cached("SELECT min(min_seq), max(max_seq) FROM receipt_days WHERE day >= ?1 AND day <= ?2")?
            .query_row(params![first_day, last_day], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(None) };
        // Days that may hold receipts before `since` end at or before sure_lo; days that may
        // hold receipts at or after `until` start at or after sure_hi.
        let before_full_day = (since + DAY - 1).div_euclid(DAY);
        let sure_lo: Option<i64> = c.prepare_cached("SELECT max(max_seq) FROM receipt_days WHERE day < ?1")?.query_row([before_full_day], |r| r.get(0))?;
        let sure_hi: Option<i64> = c.prepare_cached("SELECT min(min_seq) FROM receipt_days WHERE day >= ?1")?.query_row([until.div_euclid(DAY)], |r| r.get(0))?;
        Ok(Some(Zones { lo, hi: hi.min(snapshot), sure_lo: sure_lo.unwrap_or(0), sure_hi: sure_hi.unwrap_or(i64::MAX) }))
    }
}

fn resolve_value(c: &Connection, key: Key, kind: i64, v: &Value) -> Result<Vec<i64>> {
    let mut ids = vec![];
    match (key, v) {
        (Key::Grant, Value::Text(g)) => {
            let mut st = c.prepare_cached("SELECT id FROM receipt_dims WHERE kind = ?1 AND (value = ?2 OR label = ?2 COLLATE NOCASE)")?;
            for id in st.query_map(params![dim::GRANT, g], |r| r.get(0))? {
                ids.push(id?);
            }
            let mut st = c.prepare_cached("SELECT d.id FROM grants g JOIN receipt_dims d ON d.kind = ?1 AND d.value = g.id WHERE g.label = ?2 COLLATE NOCASE")?;
            for id in st.query_map(params![dim::GRANT, g], |r| r.get(0))? {
                ids.push(id?);
            }
        }
        (_, Value::Suffix(s)) => {
            let esc = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let mut st = c.prepare_cached("SELECT id FROM receipt_dims WHERE kind = ?1 AND value LIKE ?2 ESCAPE '\\'")?;
            for id in st.query_map(params![kind, format!("%.{esc}")], |r| r.get(0))? {
                ids.push(id?);
            }
        }
        (_, Value::Text(t)) => ids.extend(index::find_dim(c, kind, t)?),
        _ => {}
    }
    Ok(ids)
}

fn fts_count(c: &Connection, expr: &str, lo: i64, hi: i64) -> Result<u64> {
    if lo > hi {
        return Ok(0);
    }
    let n: i64 = c.prepare_cached("SELECT count(*) FROM receipt_fts WHERE receipt_fts MATCH ?1 AND rowid >= ?2 AND rowid <= ?3")?.query_row(params![expr, lo, hi], |r| r.get(0))?;
    Ok(n as u64)
}

/// Calls `f` for each candidate of `expr` in `[lo, hi]` that the plan admits, in seq order.
fn each_fact(c: &Connection, p: &Plan, expr: &str, lo: i64, hi: i64, desc: bool, mut f: impl FnMut(Facts) -> Result<bool>) -> Result<()> {
    if lo > hi {
        return Ok(());
    }
    let order = if desc { "DESC" } else { "ASC" };
    let sql = format!("SELECT {FACT_COLS} FROM receipt_fts CROSS JOIN receipt_facts f ON f.seq = receipt_fts.rowid WHERE receipt_fts MATCH ?1 AND receipt_fts.rowid >= ?2 AND receipt_fts.rowid <= ?3 ORDER BY receipt_fts.rowid {order}");
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(params![expr, lo, hi])?;
    while let Some(r) = rows.next()? {
        let fa = facts(r)?;
        if p.admits(fa.t, fa.amount) && !f(fa)? {
            break;
        }
    }
    Ok(())
}

fn count_rows(c: &Connection, p: &Plan, z: &Zones) -> Result<u64> {
    let mut n = 0u64;
    let check = |c: &Connection, expr: &str, lo: i64, hi: i64| -> Result<u64> {
        let mut k = 0;
        each_fact(c, p, expr, lo, hi, false, |_| {
            k += 1;
            Ok(true)
        })?;
        Ok(k)
    };
    // Seqs certainly inside the time range.
    let (slo, shi) = (z.lo.max(z.sure_lo.saturating_add(1)), z.hi.min(z.sure_hi.saturating_sub(1)));
    match p.amount {
        None => n += fts_count(c, &p.expr(None), slo, shi)?,
        Some(_) => {
            if !p.full_buckets.is_empty() {
                n += fts_count(c, &p.expr(Some(&p.full_buckets)), slo, shi)?;
            }
            if !p.partial_buckets.is_empty() {
                n += check(c, &p.expr(Some(&p.partial_buckets)), slo, shi)?;
            }
        }
    }
    // The edges, receipt by receipt.
    if slo <= shi {
        n += check(c, &p.superset(), z.lo, slo - 1)?;
        n += check(c, &p.superset(), shi + 1, z.hi)?;
    } else {
        n += check(c, &p.superset(), z.lo, z.hi)?;
    }
    Ok(n)
}

fn rollup_counters(c: &Connection, where_: &str, by: &[GroupBy]) -> Result<(Vec<(Vec<i64>, Counters)>, Counters)> {
    let keys: Vec<&str> = by.iter().map(|b| b.rollup_expr()).collect();
    let mut cols = keys.clone();
    cols.extend(["outcome", "sum(n)", "sum(spend)"]);
    let mut group = keys.clone();
    group.push("outcome");
    let sql = format!("SELECT {} FROM receipt_rollup WHERE {where_} GROUP BY {}", cols.join(", "), group.join(", "));
    let mut st = c.prepare(&sql)?;
    let mut rows = st.query([])?;
    let mut groups: HashMap<Vec<i64>, Counters> = HashMap::new();
    let mut total = Counters::default();
    while let Some(r) = rows.next()? {
        let key: Vec<i64> = (0..keys.len()).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
        let outcome: i64 = r.get(keys.len())?;
        let n: i64 = r.get(keys.len() + 1)?;
        let spend: i64 = r.get(keys.len() + 2)?;
        groups.entry(key).or_default().add(outcome, n as u64, spend.max(0) as u64);
        total.add(outcome, n as u64, spend.max(0) as u64);
    }
    Ok((groups.into_iter().collect(), total))
}

fn max_seq(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM receipts", [], |r| r.get(0))?)
}

fn load_row(c: &Connection, seq: i64, flags: u32) -> Result<RawRow> {
    let (body, hash): (String, String) = c
        .prepare_cached("SELECT body, hash FROM receipts WHERE seq = ?1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| LedgerError::Corrupt(format!("indexed receipt #{seq} is missing")))?;
    Ok(RawRow { seq, body, hash, flags: Flags::from_bits(flags) })
}

impl Ledger {
    /// The receipts matching `q`, newest first: `limit` of them after `cursor`, the total and
    /// the cursor of the next page.
    pub fn search_page(&self, q: &Query, limit: usize, cursor: Option<Cursor>) -> Result<RawPage> {
        self.with(|c| {
            index::backfill_pending_now(c)?;
            let tx = c.transaction()?;
            let snapshot = match cursor {
                Some(cur) => cur.snapshot,
                None => max_seq(&tx)?,
            };
            let p = Plan::resolve(&tx, q)?;
            let zones = if p.nothing { None } else { p.zones(&tx, snapshot)? };
            let Some(z) = zones else { return Ok(RawPage { rows: vec![], total: 0, next: None }) };
            // The rollup is read in the same transaction, so it counts exactly up to `snapshot`.
            let total = match (cursor, &p.rollup) {
                (Some(cur), _) => cur.total,
                (None, Some(w)) => rollup_counters(&tx, w, &[])?.1.receipts,
                (None, None) => count_rows(&tx, &p, &z)?,
            };
            let upper = match cursor {
                Some(cur) => z.hi.min(cur.last - 1),
                None => z.hi,
            };
            let mut found: Vec<(i64, u32)> = Vec::with_capacity(limit + 1);
            each_fact(&tx, &p, &p.superset(), z.lo, upper, true, |f| {
                found.push((f.seq, f.flags));
                Ok(found.len() <= limit)
            })?;
            let more = found.len() > limit;
            found.truncate(limit);
            let rows = found.iter().map(|(seq, flags)| load_row(&tx, *seq, *flags)).collect::<Result<Vec<_>>>()?;
            let next = if more { rows.last().map(|r| Cursor { last: r.seq, snapshot, total }) } else { None };
            Ok(RawPage { rows, total, next })
        })
    }

    /// How many receipts match `q`.
    pub fn search_count(&self, q: &Query) -> Result<u64> {
        Ok(self.search_stats(q, &[])?.total.receipts)
    }

    /// Aggregates of the receipts matching `q`, grouped by `by` (none: the totals only).
    pub fn search_stats(&self, q: &Query, by: &[GroupBy]) -> Result<RawStats> {
        self.with(|c| {
            index::backfill_pending_now(c)?;
            let tx = c.transaction()?;
            let p = Plan::resolve(&tx, q)?;
            if p.nothing {
                return Ok(RawStats::default());
            }
            if let Some(w) = &p.rollup {
                let (groups, total) = rollup_counters(&tx, w, by)?;
                return Ok(RawStats { groups, total, from_rollup: true });
            }
            let snapshot = max_seq(&tx)?;
            let Some(z) = p.zones(&tx, snapshot)? else { return Ok(RawStats::default()) };
            let mut groups: HashMap<Vec<i64>, Counters> = HashMap::new();
            let mut total = Counters::default();
            each_fact(&tx, &p, &p.superset(), z.lo, z.hi, false, |f| {
                let spend = if f.outcome == 0 { f.amount.unwrap_or(0).max(0) as u64 } else { 0 };
                total.add(f.outcome, 1, spend);
                if !by.is_empty() {
                    groups.entry(by.iter().map(|b| b.of(&f)).collect()).or_default().add(f.outcome, 1, spend);
                }
                Ok(true)
            })?;
            Ok(RawStats { groups: groups.into_iter().collect(), total, from_rollup: false })
        })
    }

    /// Streams every receipt matching `q`, oldest first, to `f` (after `start(total)`), inside
    /// one read transaction: memory stays flat whatever the size.
    pub fn search_each(&self, q: &Query, start: impl FnOnce(u64), mut f: impl FnMut(RawRow) -> Result<()>) -> Result<u64> {
        self.with(|c| {
            index::backfill_pending_now(c)?;
            let tx = c.transaction()?;
            let snapshot = max_seq(&tx)?;
            let p = Plan::resolve(&tx, q)?;
            let zones = if p.nothing { None } else { p.zones(&tx, snapshot)? };
            let Some(z) = zones else {
                start(0);
                return Ok(0);
            };
            let total = match &p.rollup {
                Some(w) => rollup_counters(&tx, w, &[])?.1.receipts,
                None => count_rows(&tx, &p, &z)?,
            };
            start(total);
            let mut n = 0u64;
            if q.is_empty() {
                let mut st = tx.prepare("SELECT r.seq, r.body, r.hash, coalesce(f.flags, 0) FROM receipts r LEFT JOIN receipt_facts f ON f.seq = r.seq WHERE r.seq <= ?1 ORDER BY r.seq")?;
                let mut rows = st.query([snapshot])?;
                while let Some(r) = rows.next()? {
                    f(RawRow { seq: r.get(0)?, body: r.get(1)?, hash: r.get(2)?, flags: Flags::from_bits(r.get::<_, i64>(3)? as u32) })?;
                    n += 1;
                }
                return Ok(n);
            }
            let mut err = None;
            each_fact(&tx, &p, &p.superset(), z.lo, z.hi, false, |fa| {
                match load_row(&tx, fa.seq, fa.flags).and_then(&mut f) {
                    Ok(()) => {
                        n += 1;
                        Ok(true)
                    }
                    Err(e) => {
                        err = Some(e);
                        Ok(false)
                    }
                }
            })?;
            match err {
                Some(e) => Err(e),
                None => Ok(n),
            }
        })
    }

    /// The value and label of interned ids (for showing aggregate groups).
    pub fn dim_names(&self, ids: &[i64]) -> Result<HashMap<i64, (String, Option<String>)>> {
        self.with(|c| {
            let mut out = HashMap::new();
            let mut st = c.prepare_cached("SELECT value, label FROM receipt_dims WHERE id = ?1")?;
            for id in ids {
                if let Some(v) = st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional()? {
                    out.insert(*id, v);
                }
            }
            Ok(out)
        })
    }
}

//! Runs query plans (`ledger::plan`) against the search index and answers counts, keyset pages
//! (newest first), aggregates (from the per-day counts or rollup when the query allows, else
//! from the matching rows) and ordered iteration for export.
//!
//! Amount and time filters are exact: the FTS expression selects a superset (whole amount
//! cells, whole days) and the few rows at the edges are checked one by one. A word with an
//! amount range is counted from the word's priced-word pairs (`ledger::priced_words`).

use super::index::{self, dim, DAY};
use super::par_count::{count_all, CountJob};
use super::plan::{id_list, or_tokens, CountsPlan, Plan, Zones};
use super::priced_words;
use super::{BodyCodec, Ledger, LedgerError, Result};
use crate::query::flags::Flags;
use crate::query::Query;
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

    /// The same grouping over `receipt_facts` (times in seconds, days from the epoch).
    fn facts_expr(&self) -> &'static str {
        match self {
            GroupBy::Day => "t / 86400",
            GroupBy::Week => "(t / 86400 + 3) / 7",
            other => other.rollup_expr(),
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
    /// What answered: `counts` (per-day counts of one dimension), `rollup` (the daily rollup
    /// of all dimensions), `facts` (one pass over `receipt_facts`) or `rows` (each match of the
    /// search index was read).
    pub source: &'static str,
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

/// From this many matches on, a query without words is aggregated by scanning the facts (a
/// variable only so that tests can send small ledgers down that path).
pub(crate) static FACTS_SCAN_FROM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(40_000);

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

/// Counters per group (its key values) and for all groups together.
type Groups = (Vec<(Vec<i64>, Counters)>, Counters);

/// Aggregates from `receipt_counts`, or None when the grouping needs another kind of row.
fn counts_counters(c: &Connection, cp: &CountsPlan, by: &[GroupBy]) -> Result<Option<Groups>> {
    let kind_of = |g: &GroupBy| match g {
        GroupBy::Grant => Some(dim::GRANT),
        GroupBy::Host => Some(dim::HOST),
        GroupBy::Endpoint => Some(dim::ENDPOINT),
        GroupBy::Payee => Some(dim::PAYEE),
        GroupBy::Network => Some(dim::NETWORK),
        GroupBy::Decider => Some(index::count_kind::DECIDER),
        GroupBy::Day | GroupBy::Week | GroupBy::Outcome => None,
    };
    let group_kinds: Vec<i64> = by.iter().filter_map(kind_of).collect();
    if group_kinds.len() > 1 {
        return Ok(None);
    }
    let (kind, values) = match (&cp.filter, group_kinds.first()) {
        (Some((k, v)), None) => (*k, Some(v)),
        (Some((k, v)), Some(g)) if k == g => (*k, Some(v)),
        (Some(_), Some(_)) => return Ok(None),
        (None, Some(g)) => (*g, None),
        (None, None) => (index::count_kind::ALL, None),
    };
    let mut conds = vec![format!("kind = {kind}")];
    if let Some(v) = values {
        conds.push(format!("value IN ({})", id_list(v)));
    }
    if let Some(d) = cp.since_day {
        conds.push(format!("day >= {d}"));
    }
    if let Some(d) = cp.until_day {
        conds.push(format!("day < {d}"));
    }
    conds.extend(cp.outcome.iter().cloned());
    let keys: Vec<&str> = by
        .iter()
        .map(|g| match g {
            GroupBy::Day => "day",
            GroupBy::Week => "(day + 3) / 7",
            GroupBy::Outcome => "outcome",
            _ => "value",
        })
        .collect();
    let mut cols = keys.clone();
    cols.extend(["outcome", "sum(n)", "sum(spend)"]);
    let mut group = keys.clone();
    group.push("outcome");
    let sql = format!("SELECT {} FROM receipt_counts WHERE {} GROUP BY {}", cols.join(", "), conds.join(" AND "), group.join(", "));
    Ok(Some(sum_groups(c, &sql, keys.len())?))
}

/// Runs an aggregate whose rows are `keys..., outcome, n, spend` into counters per key.
fn sum_groups(c: &Connection, sql: &str, nkeys: usize) -> Result<Groups> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query([])?;
    let mut groups: HashMap<Vec<i64>, Counters> = HashMap::new();
    let mut total = Counters::default();
    while let Some(r) = rows.next()? {
        let key: Vec<i64> = (0..nkeys).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
        let outcome: i64 = r.get(nkeys)?;
        let n: i64 = r.get(nkeys + 1)?;
        let spend: i64 = r.get(nkeys + 2)?;
        groups.entry(key).or_default().add(outcome, n as u64, spend.max(0) as u64);
        total.add(outcome, n as u64, spend.max(0) as u64);
    }
    Ok((groups.into_iter().collect(), total))
}

/// The rowid conditions for `[lo, hi]` (`col`: the FTS rowid column), leaving out a bound that
/// excludes nothing: seqs start at 1 and none is above `top`. FTS5 walks a match up to 3x
/// slower with a rowid bound (a count of 132k matches at 1M: 7 ms without, 18 ms with both).
/// Returns the SQL (placeholders from `?2` on, so the statement stays cached) and its values.
fn rowid_bounds(col: &str, lo: i64, hi: i64, top: i64) -> (String, Vec<i64>) {
    let (mut s, mut v) = (String::new(), vec![]);
    if lo > 1 {
        v.push(lo);
        s += &format!(" AND {col} >= ?{}", v.len() + 1);
    }
    if hi < top {
        v.push(hi);
        s += &format!(" AND {col} <= ?{}", v.len() + 1);
    }
    (s, v)
}

/// `expr` and the bound values as statement parameters.
fn match_params(expr: &str, bounds: &[i64]) -> Vec<rusqlite::types::Value> {
    std::iter::once(rusqlite::types::Value::Text(expr.to_string())).chain(bounds.iter().map(|b| rusqlite::types::Value::Integer(*b))).collect()
}

pub(super) fn fts_count(c: &Connection, expr: &str, lo: i64, hi: i64, top: i64) -> Result<u64> {
    if lo > hi {
        return Ok(0);
    }
    let (bounds, values) = rowid_bounds("rowid", lo, hi, top);
    let sql = format!("SELECT count(*) FROM receipt_fts WHERE receipt_fts MATCH ?1{bounds}");
    let n: i64 = c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(match_params(expr, &values)), |r| r.get(0))?;
    Ok(n as u64)
}

/// Calls `f` for each candidate of `expr` in `[lo, hi]` that the plan admits, in seq order.
fn each_fact(c: &Connection, p: &Plan, expr: &str, lo: i64, hi: i64, desc: bool, mut f: impl FnMut(Facts) -> Result<bool>) -> Result<()> {
    if lo > hi {
        return Ok(());
    }
    let order = if desc { "DESC" } else { "ASC" };
    let (bounds, values) = rowid_bounds("receipt_fts.rowid", lo, hi, p.top);
    let sql = format!("SELECT {FACT_COLS} FROM receipt_fts CROSS JOIN receipt_facts f ON f.seq = receipt_fts.rowid WHERE receipt_fts MATCH ?1{bounds} ORDER BY receipt_fts.rowid {order}");
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(match_params(expr, &values)))?;
    while let Some(r) = rows.next()? {
        let fa = facts(r)?;
        if p.admits(fa.t, fa.amount) && !f(fa)? {
            break;
        }
    }
    Ok(())
}

fn count_rows(c: &Connection, p: &Plan, z: &Zones, par: Option<&Ledger>) -> Result<u64> {
    let mut n = 0u64;
    // Index-only counts, made together at the end (on two connections when large).
    let mut jobs: Vec<CountJob> = vec![];
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
    let job = |expr: String| CountJob { expr, lo: slo, hi: shi };
    let cells = |p: &Plan, jobs: &mut Vec<CountJob>| -> Result<u64> {
        let mut n = 0;
        if let Some(sure) = &p.amount_sure {
            jobs.push(job(p.expr(sure)));
        }
        if let Some(partial) = &p.amount_partial {
            // Candidates in a cell the range only partly covers (the sure part excludes them).
            let mut groups = p.amount_superset.clone();
            groups.push(partial.clone());
            n += check(c, &p.expr(&groups), slo, shi)?;
        }
        Ok(n)
    };
    match (&p.paired, p.amount) {
        (Some(pw), Some((lo, hi))) => {
            // Receipts with priced-word tokens: the word's pairs with the codes inside the
            // range, and those of the codes only partly inside, checked row by row.
            let (mut sure, mut partly) = priced_words::codes(lo, hi);
            // Codes of amount cells no receipt has are left out (FTS5 looks up each term).
            let cells_used: Vec<usize> = c
                .prepare_cached("SELECT DISTINCT value FROM receipt_counts WHERE kind = ?1")?
                .query_map([index::count_kind::LOWER_CELL], |r| r.get::<_, i64>(0))?
                .map(|v| v.map(|v| v as usize))
                .collect::<rusqlite::Result<_>>()?;
            sure.retain(|code| cells_used.contains(&(code / 2)));
            partly.retain(|code| cells_used.contains(&(code / 2)));
            let with = |codes: &[usize]| {
                let mut pos = pw.must.clone();
                pos.push(or_tokens(&codes.iter().map(|code| priced_words::paired(*code, &pw.word)).collect::<Vec<_>>()));
                p.expr_of(&pos)
            };
            if pw.must.is_empty() && p.must_not.is_empty() {
                // The word alone: each pair's doclist counted on its own (a receipt has one
                // code), which skips FTS5's OR (its cost grows with the number of codes: "the"
                // in 40 codes, 316k matches at 1M, 61 ms as one OR).
                jobs.extend(sure.iter().map(|code| job(with(&[*code]))));
            } else if !sure.is_empty() {
                jobs.push(job(with(&sure)));
            }
            if !partly.is_empty() {
                n += check(c, &with(&partly), slo, shi)?;
            }
            // Priced receipts without them, by amount cells.
            let mut unpaired = p.clone();
            unpaired.must.push(format!("\"{}\"", priced_words::TOKEN_UNPAIRED));
            n += cells(&unpaired, &mut jobs)?;
        }
        _ => n += cells(p, &mut jobs)?,
    }
    n += count_all(par, c, jobs, p.top)?;
    // The edges, receipt by receipt.
    if slo <= shi {
        n += check(c, &p.superset(), z.lo, slo - 1)?;
        n += check(c, &p.superset(), shi + 1, z.hi)?;
    } else {
        n += check(c, &p.superset(), z.lo, z.hi)?;
    }
    Ok(n)
}

fn rollup_counters(c: &Connection, where_: &str, by: &[GroupBy]) -> Result<Groups> {
    let keys: Vec<&str> = by.iter().map(|b| b.rollup_expr()).collect();
    let mut cols = keys.clone();
    cols.extend(["outcome", "sum(n)", "sum(spend)"]);
    let mut group = keys.clone();
    group.push("outcome");
    sum_groups(c, &format!("SELECT {} FROM receipt_rollup WHERE {where_} GROUP BY {}", cols.join(", "), group.join(", ")), keys.len())
}

/// The exact number of matches, the cheapest way the plan allows.
fn total_of(c: &Connection, p: &Plan, z: &Zones, par: Option<&Ledger>) -> Result<u64> {
    if let Some(cp) = &p.counts {
        if let Some((_, t)) = counts_counters(c, cp, &[])? {
            return Ok(t.receipts);
        }
    }
    count_rows(c, p, z, par)
}

fn max_seq(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM receipts", [], |r| r.get(0))?)
}

fn load_row(c: &Connection, codec: &BodyCodec, seq: i64, flags: u32) -> Result<RawRow> {
    let (body, hash): (rusqlite::types::Value, String) = c
        .prepare_cached("SELECT body, hash FROM receipts WHERE seq = ?1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| LedgerError::Corrupt(format!("indexed receipt #{seq} is missing")))?;
    Ok(RawRow { seq, body: codec.text(c, (&body).into())?, hash, flags: Flags::from_bits(flags) })
}

/// Aggregates of a word-less query in one pass over `receipt_facts` (`w`: its exact conditions),
/// reading only the grouping columns and grouping here (SQLite's GROUP BY sorts: 150 ms
/// against 100 ms for 150k of 1M rows). At most three groupings.
fn facts_scan(c: &Connection, w: &str, z: &Zones, by: &[GroupBy]) -> Result<Groups> {
    let mut cols: Vec<&str> = by.iter().map(GroupBy::facts_expr).collect();
    let nkeys = cols.len();
    cols.extend(["outcome", "amount"]);
    // Not cached: the conditions hold this query's ids and values.
    let mut st = c.prepare(&format!("SELECT {} FROM receipt_facts WHERE seq >= ?1 AND seq <= ?2 AND {w}", cols.join(", ")))?;
    let mut rows = st.query(params![z.lo, z.hi])?;
    let mut groups: HashMap<[i64; 3], Counters> = HashMap::new();
    let mut total = Counters::default();
    while let Some(r) = rows.next()? {
        let mut key = [0i64; 3];
        for (i, k) in key.iter_mut().enumerate().take(nkeys) {
            *k = r.get(i)?;
        }
        let outcome: i64 = r.get(nkeys)?;
        let spend = if outcome == 0 { r.get::<_, Option<i64>>(nkeys + 1)?.unwrap_or(0).max(0) as u64 } else { 0 };
        total.add(outcome, 1, spend);
        if nkeys > 0 {
            groups.entry(key).or_default().add(outcome, 1, spend);
        }
    }
    Ok((groups.into_iter().map(|(k, c)| (k[..nkeys].to_vec(), c)).collect(), total))
}

impl Ledger {
    /// The receipts matching `q`, newest first: `limit` of them after `cursor`, the total and
    /// the cursor of the next page.
    pub fn search_page(&self, q: &Query, limit: usize, cursor: Option<Cursor>) -> Result<RawPage> {
        self.with(index::backfill_pending_now)?;
        self.read(|c| {
            let tx = c.transaction()?;
            let snapshot = match cursor {
                Some(cur) => cur.snapshot,
                None => max_seq(&tx)?,
            };
            let mut p = Plan::resolve(&tx, q)?;
            p.top = if cursor.is_some() { max_seq(&tx)? } else { snapshot };
            let zones = if p.nothing { None } else { p.zones(&tx, snapshot)? };
            let Some(z) = zones else { return Ok(RawPage { rows: vec![], total: 0, next: None }) };
            // Counts are read in the same transaction, so they are exact up to `snapshot`.
            let total = match cursor {
                Some(cur) => cur.total,
                None => total_of(&tx, &p, &z, Some(self))?,
            };
            if total == 0 {
                // Nothing matches up to the snapshot: no need to walk the index a second time.
                return Ok(RawPage { rows: vec![], total, next: None });
            }
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
            let rows = found.iter().map(|(seq, flags)| load_row(&tx, &self.codec, *seq, *flags)).collect::<Result<Vec<_>>>()?;
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
        self.with(index::backfill_pending_now)?;
        self.read(|c| {
            let tx = c.transaction()?;
            let mut p = Plan::resolve(&tx, q)?;
            if p.nothing {
                return Ok(RawStats::default());
            }
            if let Some(cp) = &p.counts {
                if let Some((groups, total)) = counts_counters(&tx, cp, by)? {
                    return Ok(RawStats { groups, total, source: "counts" });
                }
            }
            if let Some(w) = &p.rollup {
                let (groups, total) = rollup_counters(&tx, w, by)?;
                return Ok(RawStats { groups, total, source: "rollup" });
            }
            let snapshot = max_seq(&tx)?;
            p.top = snapshot;
            let Some(z) = p.zones(&tx, snapshot)? else { return Ok(RawStats::default()) };
            // Many matches and no words: one pass over the facts beats a facts lookup per FTS
            // match (amount:>0.10 per host at 1M: 142-153 ms against 229-260 ms).
            if let Some(w) = &p.facts_where {
                if by.len() <= 3 && total_of(&tx, &p, &z, Some(self))? >= FACTS_SCAN_FROM.load(std::sync::atomic::Ordering::Relaxed) {
                    let (groups, total) = facts_scan(&tx, w, &z, by)?;
                    return Ok(RawStats { groups, total, source: "facts" });
                }
            }
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
            Ok(RawStats { groups: groups.into_iter().collect(), total, source: "rows" })
        })
    }

    /// Streams every receipt matching `q`, oldest first, to `f` (after `start(total)`), inside
    /// one read transaction: memory stays flat whatever the size.
    pub fn search_each(&self, q: &Query, start: impl FnOnce(u64), mut f: impl FnMut(RawRow) -> Result<()>) -> Result<u64> {
        self.with(index::backfill_pending_now)?;
        self.read(|c| {
            let tx = c.transaction()?;
            let snapshot = max_seq(&tx)?;
            let mut p = Plan::resolve(&tx, q)?;
            p.top = snapshot;
            let zones = if p.nothing { None } else { p.zones(&tx, snapshot)? };
            let Some(z) = zones else {
                start(0);
                return Ok(0);
            };
            let total = total_of(&tx, &p, &z, Some(self))?;
            start(total);
            let mut n = 0u64;
            if q.is_empty() {
                let mut st = tx.prepare("SELECT r.seq, r.body, r.hash, coalesce(f.flags, 0) FROM receipts r LEFT JOIN receipt_facts f ON f.seq = r.seq WHERE r.seq <= ?1 ORDER BY r.seq")?;
                let mut rows = st.query([snapshot])?;
                while let Some(r) = rows.next()? {
                    f(RawRow { seq: r.get(0)?, body: self.codec.text(&tx, r.get_ref(1)?)?, hash: r.get(2)?, flags: Flags::from_bits(r.get::<_, i64>(3)? as u32) })?;
                    n += 1;
                }
                return Ok(n);
            }
            let mut err = None;
            each_fact(&tx, &p, &p.superset(), z.lo, z.hi, false, |fa| match load_row(&tx, &self.codec, fa.seq, fa.flags).and_then(&mut f) {
                Ok(()) => {
                    n += 1;
                    Ok(true)
                }
                Err(e) => {
                    err = Some(e);
                    Ok(false)
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
        self.read(|c| {
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

//! Runs parsed queries against the search index: resolves filter values to interned ids, builds
//! one FTS5 expression (words and fact tokens), narrows date ranges to seq ranges with the
//! per-day bounds, and answers counts, keyset pages (newest first), aggregates (from the daily
//! rollup when the query allows, else from the matching rows) and ordered iteration for export.
//!
//! Amount and time filters are exact: the FTS expression selects a superset (whole amount
//! buckets, whole days) and the few rows at the edges are checked one by one.

use super::index::{self, dim, DAY, TOKEN_ALL, TOKEN_FLAGGED};
use super::{BodyCodec, Ledger, LedgerError, Result};
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

/// A query resolved against this ledger.
#[derive(Debug, Clone)]
struct Plan {
    /// Matches nothing (a filter value that no receipt has).
    nothing: bool,
    /// FTS sub-expressions that must all match.
    must: Vec<String>,
    /// FTS sub-expressions that must not match.
    must_not: Vec<String>,
    /// Amount: inclusive bounds; the OR groups of cell tokens every candidate matches (all
    /// AND-ed); the groups of the cells certainly inside (None: no cell is); the OR group of the
    /// cells only partly inside (None: the range is exact on the grid).
    amount: Option<(u64, u64)>,
    amount_superset: Vec<String>,
    amount_sure: Option<Vec<String>>,
    amount_partial: Option<String>,
    /// The plan over `receipt_counts`, when the query can be answered from it.
    counts: Option<CountsPlan>,
    since: Option<i64>,
    until: Option<i64>,
    /// The WHERE clause over the daily rollup, when the query can be answered from it.
    rollup: Option<String>,
    /// The WHERE clause over `receipt_facts` alone, when the query has no words (every filter is
    /// a facts column): large aggregates scan the facts instead of joining each FTS match.
    facts_where: Option<String>,
    /// The newest seq this transaction sees (`i64::MAX`: unknown). A range that reaches it needs
    /// no upper rowid bound in SQL (FTS5 counts up to 3x slower with a rowid bound).
    top: i64,
}

/// A query answered from `receipt_counts`: one kind of row (a filter's, else a grouping's, else
/// every receipt), whole days, outcome conditions.
#[derive(Debug, Clone)]
struct CountsPlan {
    filter: Option<(i64, Vec<i64>)>,
    outcome: Vec<String>,
    since_day: Option<i64>,
    until_day: Option<i64>,
}

/// Aggregates from `receipt_counts`, or None when the grouping needs another kind of row.
fn counts_counters(c: &Connection, cp: &CountsPlan, by: &[GroupBy]) -> Result<Option<(Vec<(Vec<i64>, Counters)>, Counters)>> {
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
fn sum_groups(c: &Connection, sql: &str, nkeys: usize) -> Result<(Vec<(Vec<i64>, Counters)>, Counters)> {
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

/// The amount range `[lo, hi]` as cell ranges: one or two `((family, cells), edge)`, family `l`
/// (lower-closed cells) or `u` (upper-closed), `edge` the one cell only partly inside (None:
/// exact). Bounds on the grid are exact: `>= g` and `< g` with lower-closed cells, `> g` and
/// `<= g` with upper-closed ones. Two sides of the same family merge into one range.
#[allow(clippy::type_complexity)]
fn amount_sides(lo: u64, hi: u64) -> Vec<((char, std::ops::RangeInclusive<usize>), Option<usize>)> {
    let grid = index::amount_grid();
    let on_grid = |x: u64| grid.binary_search(&x).is_ok();
    let last_l = grid.len() - 1;
    let last_u = grid.len();
    let lower = if on_grid(lo) {
        (('l', index::lower_cell(lo)..=last_l), None)
    } else if on_grid(lo - 1) {
        (('u', index::upper_cell(lo - 1) + 1..=last_u), None)
    } else {
        let c = index::lower_cell(lo);
        (('l', c..=last_l), Some(c))
    };
    if hi == u64::MAX {
        return vec![lower];
    }
    let upper = if on_grid(hi) {
        (('u', 0..=index::upper_cell(hi)), None)
    } else if hi < u64::MAX && on_grid(hi + 1) {
        // Cells [g[i], g[i+1]) with g[i+1] <= hi + 1.
        let end = index::lower_cell(hi + 1);
        if end == 0 {
            (('l', 1..=0), None)
        } else {
            (('l', 0..=end - 1), None)
        }
    } else {
        let c = index::upper_cell(hi);
        (('u', 0..=c), Some(c))
    };
    let ((fl, rl), el) = lower;
    let ((fu, ru), eu) = upper;
    if fl == fu {
        let r = *rl.start().max(ru.start())..=*rl.end().min(ru.end());
        let keep = |e: Option<usize>| e.filter(|c| r.contains(c));
        // Both edges may fall in one merged range; an edge outside it is no longer partial.
        match (keep(el), keep(eu)) {
            (Some(a), Some(b)) if a != b => vec![((fl, r.clone()), Some(a)), ((fu, r), Some(b))],
            (a, b) => vec![((fl, r), a.or(b))],
        }
    } else {
        // Two families: clip each side to the cells that meet [lo, hi] at all (the other side
        // rules the rest out anyway), so FTS ORs a few cells, not every cell above or below.
        let clip = |f: char, r: std::ops::RangeInclusive<usize>| {
            let (a, b) = if f == 'l' { (index::lower_cell(lo), index::lower_cell(hi)) } else { (index::upper_cell(lo), index::upper_cell(hi)) };
            *r.start().max(&a)..=*r.end().min(&b)
        };
        vec![((fl, clip(fl, rl)), el), ((fu, clip(fu, ru)), eu)]
    }
}

impl Plan {
    fn resolve(c: &Connection, q: &Query) -> Result<Plan> {
        let mut p = Plan { nothing: false, must: vec![], must_not: vec![], amount: q.amount, amount_superset: vec![], amount_sure: Some(vec![]), amount_partial: None, counts: None, since: q.since, until: q.until, rollup: None, facts_where: None, top: i64::MAX };
        // receipt_counts answers: no words, whole days, outcome filters, and at most one other
        // positive filter (or one exact amount bound).
        let mut counts_ok = q.terms.is_empty();
        let mut counts_filter: Option<(i64, Vec<i64>)> = None;
        let mut outcome_conds: Vec<String> = vec![];
        let mut rollup_ok = q.terms.is_empty() && q.amount.is_none();
        let mut rollup_where: Vec<String> = vec![];
        let mut facts_where: Vec<String> = vec![];
        for t in &q.terms {
            let n = t.words.len();
            let parts: Vec<String> = t.words.iter().enumerate().map(|(i, w)| if t.prefix && i == n - 1 { format!("\"{w}\"*") } else { format!("\"{w}\"") }).collect();
            let e = parts.join(" AND ");
            if t.negated { p.must_not.push(e) } else { p.must.push(e) }
        }
        for f in &q.facets {
            // FTS tokens, the SQL condition over facts/rollup, and the interned ids (for counts).
            let mut ids: Vec<i64> = vec![];
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
                    let mut toks = vec![];
                    for v in &f.values {
                        let found = resolve_value(c, f.key, kind, v)?;
                        match (f.key, v) {
                            // `*.example.com`: the one parent-domain token (every receipt of a
                            // matching host carries it), not an OR over the hosts.
                            (Key::Host, Value::Suffix(suffix)) => toks.extend(index::find_dim(c, dim::HOST_SUFFIX, suffix)?.map(|id| index::token('s', id))),
                            _ => toks.extend(found.iter().map(|id| index::token(prefix, *id))),
                        }
                        ids.extend(found);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    toks.sort_unstable();
                    toks.dedup();
                    let cond = col.map(|col| format!("{col} IN ({})", id_list(&ids)));
                    (toks, cond)
                }
            };
            // The reason is a facts column, not a rollup one.
            let fcond = cond.clone().or_else(|| (f.key == Key::Reason).then(|| format!("reason IN ({})", id_list(&ids))));
            if let Some(fc) = fcond {
                facts_where.push(if f.negated { format!("NOT ({fc})") } else { format!("({fc})") });
            }
            match &cond {
                Some(cond) => rollup_where.push(if f.negated { format!("NOT ({cond})") } else { format!("({cond})") }),
                None => rollup_ok = false,
            }
            if f.key == Key::Outcome {
                if let Some(cond) = &cond {
                    outcome_conds.push(if f.negated { format!("NOT ({cond})") } else { format!("({cond})") });
                }
            } else if f.negated || counts_filter.is_some() {
                counts_ok = false;
            } else {
                let kind = match f.key {
                    Key::Grant => dim::GRANT,
                    Key::Host => dim::HOST,
                    Key::Payee => dim::PAYEE,
                    Key::Network => dim::NETWORK,
                    Key::Reason => dim::REASON,
                    Key::Decider => index::count_kind::DECIDER,
                    _ => index::count_kind::FLAG,
                };
                let values: Vec<i64> = match f.key {
                    Key::Decider => f.values.iter().filter_map(|v| if let Value::Code(c) = v { Some(*c) } else { None }).collect(),
                    Key::Flag => f.values.iter().map(|v| if let Value::Code(c) = v { *c } else { index::count_kind::ANY_FLAG }).collect(),
                    _ => ids.clone(),
                };
                counts_filter = Some((kind, values));
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
            let sides = amount_sides(lo, hi);
            let group = |(family, r): &(char, std::ops::RangeInclusive<usize>)| or_tokens(&r.clone().map(|i| index::token(*family, i as i64)).collect::<Vec<_>>());
            // Candidates match every side's cells; a side that is not exact leaves its edge cell
            // (the first or last of its range) to be checked row by row.
            p.amount_superset = sides.iter().map(|(s, _)| group(s)).collect();
            let sure: Vec<Option<(char, std::ops::RangeInclusive<usize>)>> = sides
                .iter()
                .map(|((f, r), edge)| match edge {
                    None => Some((*f, r.clone())),
                    Some(e) if *e == *r.start() && r.start() < r.end() => Some((*f, r.start() + 1..=*r.end())),
                    Some(e) if *e == *r.end() && r.start() < r.end() => Some((*f, *r.start()..=r.end() - 1)),
                    Some(_) => None,
                })
                .collect();
            p.amount_sure = sure.iter().all(Option::is_some).then(|| sure.iter().flatten().map(group).collect());
            let partial: Vec<String> = sides.iter().filter_map(|((f, _), edge)| edge.map(|e| index::token(*f, e as i64))).collect();
            p.amount_partial = (!partial.is_empty()).then(|| or_tokens(&partial));
            // `lo..hi` with both ends on the grid: the lower-closed cells from lo up to hi, and hi
            // itself (its lower-closed AND its upper-closed cell): one family to merge, not two.
            if let [(('l', rl), None), (('u', _), None)] = sides.as_slice() {
                let j = index::lower_cell(hi);
                debug_assert_eq!(index::amount_grid()[j], hi);
                let mut parts: Vec<String> = (*rl.start()..j).map(|i| format!("\"{}\"", index::token('l', i as i64))).collect();
                parts.push(format!("(\"{}\" AND \"{}\")", index::token('l', j as i64), index::token('u', index::upper_cell(hi) as i64)));
                let one = parts.join(" OR ");
                p.amount_superset = vec![one.clone()];
                p.amount_sure = Some(vec![one]);
                p.amount_partial = None;
            }
            if sides.iter().any(|((_, r), _)| r.is_empty()) {
                p.nothing = true;
            }
            // An exact range over one family of cells can be counted from receipt_counts.
            match sides.as_slice() {
                [((f, r), None)] if counts_filter.is_none() => {
                    let kind = if *f == 'l' { index::count_kind::LOWER_CELL } else { index::count_kind::UPPER_CELL };
                    counts_filter = Some((kind, r.clone().map(|i| i as i64).collect()));
                }
                _ => counts_ok = false,
            }
        }
        if q.terms.is_empty() && facts_where.len() == q.facets.len() {
            if let Some((lo, hi)) = q.amount {
                facts_where.push(format!("(amount >= {} AND amount <= {})", i64::try_from(lo).unwrap_or(i64::MAX), i64::try_from(hi).unwrap_or(i64::MAX)));
            }
            if let Some(s) = q.since {
                facts_where.push(format!("t >= {s}"));
            }
            if let Some(u) = q.until {
                facts_where.push(format!("t < {u}"));
            }
            p.facts_where = Some(if facts_where.is_empty() { "1".into() } else { facts_where.join(" AND ") });
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
        if counts_ok && aligned(q.since) && aligned(q.until) && !(q.amount.is_some() && q.facets.iter().any(|f| f.key != Key::Outcome)) {
            p.counts = Some(CountsPlan { filter: counts_filter, outcome: outcome_conds, since_day: q.since.map(|s| s.div_euclid(DAY)), until_day: q.until.map(|u| u.div_euclid(DAY)) });
        }
        Ok(p)
    }

    /// The FTS expression for the query with these amount groups AND-ed in.
    fn expr(&self, amount: &[String]) -> String {
        let mut pos: Vec<String> = self.must.clone();
        pos.extend(amount.iter().cloned());
        let mut e = if pos.is_empty() { format!("\"{TOKEN_ALL}\"") } else { pos.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" AND ") };
        for n in &self.must_not {
            e = format!("({e}) NOT ({n})");
        }
        e
    }

    /// Every candidate: whole amount cells and whole days.
    fn superset(&self) -> String {
        self.expr(&self.amount_superset)
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

fn fts_count(c: &Connection, expr: &str, lo: i64, hi: i64, top: i64) -> Result<u64> {
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
    if let Some(sure) = &p.amount_sure {
        n += fts_count(c, &p.expr(sure), slo, shi, p.top)?;
    }
    if let Some(partial) = &p.amount_partial {
        // Candidates in a cell the range only partly covers (the sure part excludes them).
        let mut groups = p.amount_superset.clone();
        groups.push(partial.clone());
        n += check(c, &p.expr(&groups), slo, shi)?;
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
    sum_groups(c, &format!("SELECT {} FROM receipt_rollup WHERE {where_} GROUP BY {}", cols.join(", "), group.join(", ")), keys.len())
}

/// The exact number of matches, the cheapest way the plan allows.
fn total_of(c: &Connection, p: &Plan, z: &Zones) -> Result<u64> {
    if let Some(cp) = &p.counts {
        if let Some((_, t)) = counts_counters(c, cp, &[])? {
            return Ok(t.receipts);
        }
    }
    count_rows(c, p, z)
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
fn facts_scan(c: &Connection, w: &str, z: &Zones, by: &[GroupBy]) -> Result<(Vec<(Vec<i64>, Counters)>, Counters)> {
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
                None => total_of(&tx, &p, &z)?,
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
                if by.len() <= 3 && total_of(&tx, &p, &z)? >= FACTS_SCAN_FROM.load(std::sync::atomic::Ordering::Relaxed) {
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
            let total = total_of(&tx, &p, &z)?;
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
            each_fact(&tx, &p, &p.superset(), z.lo, z.hi, false, |fa| {
                match load_row(&tx, &self.codec, fa.seq, fa.flags).and_then(&mut f) {
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

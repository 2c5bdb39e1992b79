//! Plans queries against the search index: resolves a parsed query's filter values to interned
//! ids and its words to FTS5 tokens, and says how to answer it: one FTS5 expression (words and
//! fact tokens) with the amount cells or the priced-word pairs (`ledger::priced_words`) an
//! amount filter needs, the per-day counts or rollup when no word is involved, and the seq
//! ranges a date filter reduces to. `agent:` and `run:` are FTS tokens only (no facts, rollup
//! or counts column), so a query with them is answered from the index's matches. `ledger::search`
//! runs the plans.

use super::index::{self, dim, DAY, TOKEN_ALL, TOKEN_FLAGGED};
use super::priced_words;
use super::Result;
use crate::query::{Key, Query, Value};
use rusqlite::{params, Connection};

/// A query resolved against this ledger.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Matches nothing (a filter value that no receipt has).
    pub(super) nothing: bool,
    /// FTS sub-expressions that must all match.
    pub(super) must: Vec<String>,
    /// FTS sub-expressions that must not match.
    pub(super) must_not: Vec<String>,
    /// Amount: inclusive bounds; the OR groups of cell tokens every candidate matches (all
    /// AND-ed); the groups of the cells certainly inside (None: no cell is); the OR group of the
    /// cells only partly inside (None: the range is exact on the grid).
    pub(super) amount: Option<(u64, u64)>,
    pub(super) amount_superset: Vec<String>,
    pub(super) amount_sure: Option<Vec<String>>,
    pub(super) amount_partial: Option<String>,
    /// A word whose priced-word tokens count word + amount matches (see [`Paired`]).
    pub(super) paired: Option<Paired>,
    /// The plan over `receipt_counts`, when the query can be answered from it.
    pub(super) counts: Option<CountsPlan>,
    pub(super) since: Option<i64>,
    pub(super) until: Option<i64>,
    /// The WHERE clause over the daily rollup, when the query can be answered from it.
    pub(super) rollup: Option<String>,
    /// The WHERE clause over `receipt_facts` alone, when the query has no words (every filter is
    /// a facts column): large aggregates scan the facts instead of joining each FTS match.
    pub(super) facts_where: Option<String>,
    /// The newest seq this transaction sees (`i64::MAX`: unknown). A range that reaches it needs
    /// no upper rowid bound in SQL (FTS5 counts up to 3x slower with a rowid bound).
    pub(super) top: i64,
}

/// Word + amount, counted from the priced-word tokens (`ledger::priced_words`): `must` is the
/// plan's positive expressions without `word`, which the pairs of the range's codes stand for.
#[derive(Debug, Clone)]
pub(super) struct Paired {
    pub(super) must: Vec<String>,
    pub(super) word: String,
}

/// A query answered from `receipt_counts`: one kind of row (a filter's, else a grouping's, else
/// every receipt), whole days, outcome conditions.
#[derive(Debug, Clone)]
pub(super) struct CountsPlan {
    pub(super) filter: Option<(i64, Vec<i64>)>,
    pub(super) outcome: Vec<String>,
    pub(super) since_day: Option<i64>,
    pub(super) until_day: Option<i64>,
}

/// Seq ranges a query's time filter reduces to: all matches lie in `[lo, hi]`; those in
/// `(sure_lo, sure_hi)` are certainly inside the time range, the others need their time checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Zones {
    pub(super) lo: i64,
    pub(super) hi: i64,
    pub(super) sure_lo: i64,
    pub(super) sure_hi: i64,
}

pub(super) fn or_tokens(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" OR ")
}

pub(super) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// The amount range `[lo, hi]` as cell ranges: one or two `((family, cells), edge)`, family `l`
/// (lower-closed cells) or `u` (upper-closed), `edge` the one cell only partly inside (None:
/// exact). Bounds on the grid are exact: `>= g` and `< g` with lower-closed cells, `> g` and
/// `<= g` with upper-closed ones. Two sides of the same family merge into one range.
#[allow(clippy::type_complexity)]
pub(super) fn amount_sides(lo: u64, hi: u64) -> Vec<((char, std::ops::RangeInclusive<usize>), Option<usize>)> {
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
            // No cell: an empty range (nothing is below zero).
            (('l', std::ops::RangeInclusive::new(1, 0)), None)
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
    pub(super) fn resolve(c: &Connection, q: &Query) -> Result<Plan> {
        let mut p = Plan {
            nothing: false,
            must: vec![],
            must_not: vec![],
            amount: q.amount,
            amount_superset: vec![],
            amount_sure: Some(vec![]),
            amount_partial: None,
            paired: None,
            counts: None,
            since: q.since,
            until: q.until,
            rollup: None,
            facts_where: None,
            top: i64::MAX,
        };
        // receipt_counts answers: no words, whole days, outcome filters, and at most one other
        // positive filter (or one exact amount bound).
        let mut counts_ok = q.terms.is_empty();
        let mut counts_filter: Option<(i64, Vec<i64>)> = None;
        let mut outcome_conds: Vec<String> = vec![];
        let mut rollup_ok = q.terms.is_empty() && q.amount.is_none();
        let mut rollup_where: Vec<String> = vec![];
        let mut facts_where: Vec<String> = vec![];
        // The first whole word of a positive term, for counting with an amount: its position in
        // `must` and what stays of its term without it.
        let mut pair_with: Option<(usize, String, Option<String>)> = None;
        for t in &q.terms {
            // Each word as FTS5 cuts it, quoted (a star on the prefix), with the token unless
            // it is the prefix (a prefix has no pairs).
            let mut pieces: Vec<(String, Option<String>)> = vec![];
            for (i, w) in t.words.iter().enumerate() {
                let tokens = if priced_words::pairable(w) { vec![w.clone()] } else { priced_words::fts_cut_word(w)? };
                let k = tokens.len();
                for (j, tok) in tokens.into_iter().enumerate() {
                    let prefix = t.prefix && i + 1 == t.words.len() && j + 1 == k;
                    pieces.push((format!("\"{tok}\"{}", if prefix { "*" } else { "" }), (!prefix).then_some(tok)));
                }
            }
            if pieces.is_empty() {
                // Only marks FTS5 drops: nothing can match it.
                if !t.negated {
                    p.nothing = true;
                }
                continue;
            }
            if !t.negated && pair_with.is_none() && q.amount.is_some() {
                if let Some(i) = pieces.iter().position(|(_, w)| w.is_some()) {
                    let rest: Vec<&str> = pieces.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, (e, _))| e.as_str()).collect();
                    pair_with = Some((p.must.len(), pieces[i].1.clone().unwrap_or_default(), (!rest.is_empty()).then(|| rest.join(" AND "))));
                }
            }
            let e = pieces.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>().join(" AND ");
            if t.negated {
                p.must_not.push(e)
            } else {
                p.must.push(e)
            }
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
                        // Tokens only: a receipt has many names, and no facts column holds them.
                        Key::Agent => (dim::AGENT, 'w', None),
                        Key::Run => (dim::RUN, 'j', None),
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
            } else if f.negated || counts_filter.is_some() || matches!(f.key, Key::Agent | Key::Run) {
                // receipt_counts has no rows by agent or run.
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
            if f.negated {
                p.must_not.push(e)
            } else {
                p.must.push(e)
            }
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
            if lo == hi {
                // One price: the exact-amount token, no cells and no row checks.
                match i64::try_from(lo) {
                    Ok(v) => {
                        let point = format!("\"{}\"", index::token('v', v));
                        p.amount_superset = vec![point.clone()];
                        p.amount_sure = Some(vec![point]);
                        p.amount_partial = None;
                    }
                    Err(_) => p.nothing = true,
                }
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
        // Pairs help ranges; one price is a short doclist already.
        if let Some((at, word, rest)) = pair_with.filter(|_| q.amount.is_some_and(|(lo, hi)| lo != hi)) {
            let mut must = p.must.clone();
            match rest {
                Some(r) => must[at] = r,
                None => {
                    must.remove(at);
                }
            }
            p.paired = Some(Paired { must, word });
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
    pub(super) fn expr(&self, amount: &[String]) -> String {
        let mut pos: Vec<String> = self.must.clone();
        pos.extend(amount.iter().cloned());
        self.expr_of(&pos)
    }

    /// The FTS expression: all of `pos` (every receipt if none), none of the plan's exclusions.
    pub(super) fn expr_of(&self, pos: &[String]) -> String {
        let mut e = if pos.is_empty() { format!("\"{TOKEN_ALL}\"") } else { pos.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" AND ") };
        for n in &self.must_not {
            e = format!("({e}) NOT ({n})");
        }
        e
    }

    /// Every candidate: whole amount cells and whole days.
    pub(super) fn superset(&self) -> String {
        self.expr(&self.amount_superset)
    }

    pub(super) fn admits(&self, t: i64, amount: Option<i64>) -> bool {
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
    pub(super) fn zones(&self, c: &Connection, snapshot: i64) -> Result<Option<Zones>> {
        if self.since.is_none() && self.until.is_none() {
            return Ok(Some(Zones { lo: 1, hi: snapshot, sure_lo: 0, sure_hi: i64::MAX }));
        }
        let since = self.since.unwrap_or(i64::MIN / 2);
        let until = self.until.unwrap_or(i64::MAX / 2);
        let first_day = since.div_euclid(DAY);
        let last_day = (until - 1).div_euclid(DAY);
        let (lo, hi): (Option<i64>, Option<i64>) =
            c.prepare_cached("SELECT min(min_seq), max(max_seq) FROM receipt_days WHERE day >= ?1 AND day <= ?2")?.query_row(params![first_day, last_day], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(None) };
        // Days that may hold receipts before `since` end at or before sure_lo; days that may
        // hold receipts at or after `until` start at or after sure_hi.
        let before_full_day = (since + DAY - 1).div_euclid(DAY);
        let sure_lo: Option<i64> = c.prepare_cached("SELECT max(max_seq) FROM receipt_days WHERE day < ?1")?.query_row([before_full_day], |r| r.get(0))?;
        let sure_hi: Option<i64> = c.prepare_cached("SELECT min(min_seq) FROM receipt_days WHERE day >= ?1")?.query_row([until.div_euclid(DAY)], |r| r.get(0))?;
        Ok(Some(Zones { lo, hi: hi.min(snapshot), sure_lo: sure_lo.unwrap_or(0), sure_hi: sure_hi.unwrap_or(i64::MAX) }))
    }
}

pub(super) fn resolve_value(c: &Connection, key: Key, kind: i64, v: &Value) -> Result<Vec<i64>> {
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

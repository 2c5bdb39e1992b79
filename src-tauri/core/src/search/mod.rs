//! Owns the receipt timeline: the query language ([`query`]), search with keyset pagination and
//! totals, aggregates for charts and summaries, streaming export to CSV and JSON Lines
//! ([`export`]), the price-memory flags ([`flags`]) and the demo/benchmark seeder ([`seed`]).
//! The SQL behind it is the ledger's (`ledger::search`, `ledger::index`).

pub mod export;
pub use crate::query;
pub use crate::query::flags;
pub mod seed;

use crate::ledger::{Counters, Cursor, GroupBy, Ledger, LedgerError};
use crate::money;
pub use crate::query::{Flags, Query, QueryError};
use crate::receipt::Receipt;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// Why a timeline operation failed; `code()` is the stable snake_case code.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cursor {0:?} is not valid for this query (start again without --cursor)")]
    Cursor(String),
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    Limit,
    #[error("{0}")]
    GroupBy(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the data dir holds a wallet ({0}); seed receipts only into a data dir without one")]
    WalletPresent(String),
    #[error("export line {line}: {why}")]
    BadExport { line: u64, why: String },
    #[error("seeding failed: {0}")]
    Seed(String),
}

impl SearchError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            SearchError::Query(_) => crate::api::ErrorCode::InvalidQuery,
            SearchError::Cursor(_) => crate::api::ErrorCode::InvalidCursor,
            SearchError::Limit => crate::api::ErrorCode::InvalidLimit,
            SearchError::GroupBy(_) => crate::api::ErrorCode::InvalidGroupBy,
            SearchError::Ledger(e) => e.code(),
            SearchError::Io(_) => crate::api::ErrorCode::IoError,
            SearchError::WalletPresent(_) => crate::api::ErrorCode::WalletPresent,
            SearchError::BadExport { .. } => crate::api::ErrorCode::InvalidExport,
            SearchError::Seed(_) => crate::api::ErrorCode::SeedFailed,
        }
    }
}

/// A search result: the receipt (as `receipts list --json` shows it, with its hash) and flags.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct SearchItem {
    #[serde(flatten)]
    pub receipt: Receipt,
    /// Flag names (`price_spike`, `new_payee`).
    #[cfg_attr(feature = "ts", ts(as = "Vec<String>"))]
    pub flags: Flags,
}

/// One page of results, newest first.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub items: Vec<SearchItem>,
    pub total: u64,
    pub next_cursor: Option<String>,
}

fn query_tag(text: &str) -> String {
    hex::encode(&Sha256::digest(text.trim().as_bytes())[..4])
}

fn encode_cursor(c: &Cursor, text: &str) -> String {
    format!("{}.{}.{}.{}", c.last, c.snapshot, c.total, query_tag(text))
}

fn decode_cursor(s: &str, text: &str) -> Result<Cursor, SearchError> {
    let bad = || SearchError::Cursor(s.chars().take(80).collect());
    let parts: Vec<&str> = s.split('.').collect();
    let [last, snapshot, total, tag] = parts.as_slice() else { return Err(bad()) };
    if *tag != query_tag(text) {
        return Err(bad());
    }
    let (last, snapshot, total) = (last.parse::<i64>().map_err(|_| bad())?, snapshot.parse::<i64>().map_err(|_| bad())?, total.parse::<u64>().map_err(|_| bad())?);
    if last < 1 || snapshot < last {
        return Err(bad());
    }
    Ok(Cursor { last, snapshot, total })
}

/// Searches the receipts: `limit` results newest first after `cursor`, the total, and the cursor
/// of the next page (`None` on the last page). The cursor pins the result set as of the first
/// page, so receipts arriving meanwhile never shift or repeat results.
pub fn search(ledger: &Ledger, text: &str, limit: usize, cursor: Option<&str>, now: DateTime<Utc>) -> Result<SearchPage, SearchError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(SearchError::Limit);
    }
    let q = Query::parse(text, now)?;
    let cur = cursor.map(|c| decode_cursor(c, text)).transpose()?;
    let page = ledger.search_page(&q, limit, cur)?;
    let items = page
        .rows
        .into_iter()
        .map(|row| {
            let mut receipt: Receipt = serde_json::from_str(&row.body).map_err(|e| LedgerError::Corrupt(format!("receipt #{}: {e}", row.seq)))?;
            receipt.hash = row.hash;
            Ok(SearchItem { receipt, flags: row.flags })
        })
        .collect::<Result<Vec<_>, SearchError>>()?;
    Ok(SearchPage { items, total: page.total, next_cursor: page.next.map(|c| encode_cursor(&c, text)) })
}

/// Parses `day`, `week,grant`, ... (at most two dimensions).
pub fn parse_group_by(s: &str) -> Result<Vec<GroupBy>, SearchError> {
    let mut out = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let g = match part.to_ascii_lowercase().as_str() {
            "day" => GroupBy::Day,
            "week" => GroupBy::Week,
            "grant" => GroupBy::Grant,
            "host" => GroupBy::Host,
            "payee" => GroupBy::Payee,
            "endpoint" => GroupBy::Endpoint,
            "outcome" => GroupBy::Outcome,
            "decider" | "decided_by" => GroupBy::Decider,
            "network" => GroupBy::Network,
            other => return Err(SearchError::GroupBy(format!("cannot group by {other:?} (want day, week, grant, host, payee, endpoint, outcome, decider or network)"))),
        };
        if out.contains(&g) {
            return Err(SearchError::GroupBy(format!("{part} is repeated")));
        }
        out.push(g);
    }
    if out.len() > 2 {
        return Err(SearchError::GroupBy("group by at most two dimensions (e.g. week,grant)".into()));
    }
    Ok(out)
}

/// Aggregates for charts and summaries.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub query: String,
    pub by: Vec<String>,
    pub groups: Vec<Value>,
    pub total: Value,
    /// What answered: `counts` or `rollup` (pre-aggregated per day), `facts` (one pass over the
    /// per-receipt facts) or `rows` (each match of the search index).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub source: &'static str,
}

fn counters_json(c: &Counters, into: &mut Map<String, Value>) {
    into.insert("receipts".into(), json!(c.receipts));
    for (i, name) in crate::query::OUTCOMES.iter().enumerate() {
        into.insert((*name).into(), json!(c.by_outcome[i]));
    }
    into.insert("spend_atomic".into(), json!(c.spend.to_string()));
    into.insert("spend_usd".into(), json!(money::micros_decimal(c.spend)));
}

fn day_string(day: i64) -> String {
    DateTime::from_timestamp(day * crate::query::DAY, 0).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Aggregates the receipts matching `text`, grouped by `by` (spend per day/week, per grant,
/// host, payee or endpoint; counts by outcome...). Time groups come oldest first; others by
/// spend, then count, largest first; `top` keeps the first N groups.
pub fn stats(ledger: &Ledger, text: &str, by: &[GroupBy], top: Option<usize>, now: DateTime<Utc>) -> Result<Stats, SearchError> {
    let q = Query::parse(text, now)?;
    let raw = ledger.search_stats(&q, by)?;
    let mut ids: Vec<i64> = vec![];
    for (key, _) in &raw.groups {
        for (g, v) in by.iter().zip(key) {
            if matches!(g, GroupBy::Grant | GroupBy::Host | GroupBy::Payee | GroupBy::Endpoint | GroupBy::Network) {
                ids.push(*v);
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let names = ledger.dim_names(&ids)?;
    let mut groups = raw.groups;
    let time_first = matches!(by.first(), Some(GroupBy::Day | GroupBy::Week));
    groups.sort_by(|(ka, a), (kb, b)| if time_first { ka.cmp(kb) } else { b.spend.cmp(&a.spend).then(b.receipts.cmp(&a.receipts)).then(ka.cmp(kb)) });
    if let Some(n) = top {
        groups.truncate(n);
    }
    let groups = groups
        .iter()
        .map(|(key, c)| {
            let mut m = Map::new();
            for (g, v) in by.iter().zip(key) {
                let name = |id: &i64| names.get(id).map(|(v, _)| v.clone());
                match g {
                    GroupBy::Day => {
                        m.insert("day".into(), json!(day_string(*v)));
                    }
                    GroupBy::Week => {
                        m.insert("week".into(), json!(day_string(v * 7 - 3)));
                    }
                    GroupBy::Grant => {
                        m.insert("grant_id".into(), json!(name(v)));
                        m.insert("grant_label".into(), json!(names.get(v).and_then(|(_, l)| l.clone())));
                    }
                    GroupBy::Host => {
                        m.insert("host".into(), json!(name(v)));
                    }
                    GroupBy::Payee => {
                        m.insert("payee".into(), json!(name(v)));
                    }
                    GroupBy::Endpoint => {
                        m.insert("endpoint".into(), json!(name(v)));
                    }
                    GroupBy::Network => {
                        m.insert("network".into(), json!(name(v)));
                    }
                    GroupBy::Outcome => {
                        m.insert("outcome".into(), json!(crate::query::OUTCOMES.get(*v as usize)));
                    }
                    GroupBy::Decider => {
                        m.insert("decided_by".into(), json!(crate::query::DECIDERS.get(*v as usize)));
                    }
                }
            }
            counters_json(c, &mut m);
            Value::Object(m)
        })
        .collect();
    let mut total = Map::new();
    counters_json(&raw.total, &mut total);
    let by_names = by.iter().map(|g| format!("{g:?}").to_lowercase()).collect();
    Ok(Stats { query: text.to_string(), by: by_names, groups, total: Value::Object(total), source: raw.source })
}

/// How many receipts match `text`.
pub fn count(ledger: &Ledger, text: &str, now: DateTime<Utc>) -> Result<u64, SearchError> {
    Ok(ledger.search_count(&Query::parse(text, now)?)?)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

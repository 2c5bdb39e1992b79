//! The receipt search index, written in the same transaction as the receipt it describes (so it
//! never drifts): per-receipt facts, a contentless FTS5 index holding the searchable words and
//! one token per filterable fact, a per-day rollup for aggregates and counts, per-day seq bounds
//! for date ranges, and the price memory behind the `price_spike` / `new_payee` flags.
//!
//! Derived data only: every row here can be rebuilt from the receipts table.

use super::{LedgerError, Result};
use crate::query::flags::{self, Flags};
use crate::receipt::{DecidedBy, Outcome, Receipt};
use rusqlite::{params, Connection, OptionalExtension};

/// The FTS5 tokenizer of `receipt_fts`, as its schema steps spell it.
pub const TOKENIZER: &str = "tokenize=\"unicode61 remove_diacritics 2 tokenchars '$'\"";

/// Kinds of interned values (`receipt_dims.kind`).
pub mod dim {
    pub const GRANT: i64 = 1;
    pub const HOST: i64 = 2;
    pub const ENDPOINT: i64 = 3;
    pub const PAYEE: i64 = 4;
    pub const NETWORK: i64 = 5;
    pub const REASON: i64 = 6;
    /// What follows a dot in a host (`*.example.com` matches the hosts carrying `example.com`).
    pub const HOST_SUFFIX: i64 = 11;
    /// A name of the agent's process or of one of its parents, lowercased (`agent:`).
    pub const AGENT: i64 = 12;
    /// A `purser run` label, lowercased; the label as given in `label` (`run:`).
    pub const RUN: i64 = 13;
}

/// The parent domains of a host, as `host:*.<suffix>` names them: what follows each dot
/// (`a.b.com` gives `b.com` and `com`). Exactly the hosts `LIKE '%.<suffix>'` matches.
pub fn host_suffixes(host: &str) -> impl Iterator<Item = &str> {
    host.char_indices().filter(|(i, ch)| *ch == '.' && i + 1 < host.len()).map(move |(i, _)| &host[i + 1..])
}

/// Kinds of `receipt_counts` rows beyond the interned ones (grant, host, ... reason: by id).
pub mod count_kind {
    /// Every receipt (value 0).
    pub const ALL: i64 = 0;
    /// Who decided (value: decider code).
    pub const DECIDER: i64 = 7;
    /// Flags (value: a flag bit, or 3 for any).
    pub const FLAG: i64 = 8;
    /// Amounts by lower-closed grid cell (value: cell).
    pub const LOWER_CELL: i64 = 9;
    /// Amounts by upper-closed grid cell (value: cell).
    pub const UPPER_CELL: i64 = 10;
    /// "Any flag", as a FLAG value.
    pub const ANY_FLAG: i64 = 3;
}

/// Seconds in a day (days are UTC, numbered from the Unix epoch).
pub use crate::query::DAY;

pub fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Paid => 0,
        Outcome::Refused => 1,
        Outcome::Failed => 2,
        Outcome::NotPayable => 3,
    }
}

pub fn decider_code(d: DecidedBy) -> i64 {
    match d {
        DecidedBy::Auto => 0,
        DecidedBy::User => 1,
        DecidedBy::Timeout => 2,
        DecidedBy::Policy => 3,
        DecidedBy::Rule => 4,
    }
}

/// The FTS token every indexed receipt carries (the base of queries with no positive term).
pub const TOKEN_ALL: &str = "$a";

/// FTS tokens for facts: `$` is a token character only for these (it is stripped from text).
pub fn token(prefix: char, code: i64) -> String {
    format!("${prefix}{code}")
}
pub const FLAG_TOKENS: [(u32, &str); 2] = [(flags::PRICE_SPIKE, "$fs"), (flags::NEW_PAYEE, "$fp")];
pub const TOKEN_FLAGGED: &str = "$ff";

/// The amount grid (micro-USD): 0, 1, 2, 5, then 1, 2, 2.5 and 5 times each power of ten up
/// to $50M. Every priced receipt carries two FTS tokens: its lower-closed cell `$l<i>`
/// (`grid[i] <= a < grid[i+1]`) and its upper-closed cell `$u<j>` (`grid[j-1] < a <= grid[j]`),
/// so any amount range whose ends lie on the grid (`>0.10`, `>=1`, `<0.05`, `0.01..0.50`) is an
/// exact token expression; other ends leave one cell to check row by row. It also carries its
/// exact amount (`$v<micro-USD>`, for `amount:0.0123`) and its words paired with its amount
/// code (`ledger::priced_words`, for a word with a range).
pub fn amount_grid() -> &'static [u64] {
    static GRID: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    GRID.get_or_init(|| {
        let mut v = vec![0, 1, 2, 5];
        let mut p = 10u64;
        for _ in 0..13 {
            v.extend([p, 2 * p, 5 * p / 2, 5 * p]);
            p *= 10;
        }
        v
    })
}

/// The lower-closed cell of an amount: the last `i` with `grid[i] <= a`.
pub fn lower_cell(a: u64) -> usize {
    amount_grid().partition_point(|g| *g <= a) - 1
}

/// The upper-closed cell of an amount: the first `j` with `a <= grid[j]` (`grid.len()` beyond).
pub fn upper_cell(a: u64) -> usize {
    amount_grid().partition_point(|g| *g < a)
}

/// The interned id of `(kind, value)`, created when new. 0 stands for "none".
pub(crate) fn dim_id(c: &Connection, kind: i64, value: Option<&str>, label: Option<&str>) -> Result<i64> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(0) };
    let found: Option<i64> = c.prepare_cached("SELECT id FROM receipt_dims WHERE kind = ?1 AND value = ?2")?.query_row(params![kind, value], |r| r.get(0)).optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    c.prepare_cached("INSERT INTO receipt_dims (kind, value, label) VALUES (?1, ?2, ?3)")?.execute(params![kind, value, label])?;
    Ok(c.last_insert_rowid())
}

/// Looks up an interned id without creating it.
pub(crate) fn find_dim(c: &Connection, kind: i64, value: &str) -> Result<Option<i64>> {
    Ok(c.prepare_cached("SELECT id FROM receipt_dims WHERE kind = ?1 AND value = ?2")?.query_row(params![kind, value], |r| r.get(0)).optional()?)
}

/// Micro-USD of a receipt's price, when it has one (`amount_usd` is an exact decimal string).
pub fn amount_micros(r: &Receipt) -> Option<u64> {
    r.amount_usd.as_deref().and_then(|s| crate::money::parse_usd(s).ok())
}

/// The lowercased payee address.
fn payee_of(r: &Receipt) -> Option<String> {
    r.pay_to.as_deref().map(str::to_ascii_lowercase)
}

/// What the challenge says the resource is (v2 `resource.description`, v1 the option's).
pub fn description_of(r: &Receipt) -> Option<String> {
    let from = |v: Option<&serde_json::Value>| v.and_then(|v| v.get("description")).and_then(|d| d.as_str()).map(str::to_string);
    from(r.requirement.as_ref())
        .or_else(|| from(r.challenge.as_ref().and_then(|c| c.get("resource"))))
        .or_else(|| from(r.challenge.as_ref().and_then(|c| c.get("accepts")).and_then(|a| a.get(0))))
        .filter(|s| !s.trim().is_empty())
}

/// The searchable words of a receipt: host, path, description, intent, grant label, payee,
/// reason and detail, transaction. `$` is removed so text can never forge a fact token.
fn words_of(r: &Receipt) -> String {
    let cap = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let mut parts: Vec<String> = vec![cap(&r.host, 255), cap(flags::url_path(&r.url), 300)];
    if let Some(d) = description_of(r) {
        parts.push(cap(&d, 300));
    }
    if let Some(i) = &r.intent {
        parts.push(cap(i, 300));
    }
    if let Some(g) = &r.grant {
        parts.push(cap(&g.label, 100));
    }
    if let Some(p) = &r.pay_to {
        parts.push(cap(p, 100));
    }
    parts.push(cap(&r.reason, 100));
    if let Some(d) = &r.detail {
        parts.push(cap(d, 100));
    }
    if let Some(tx) = &r.tx {
        parts.push(cap(tx, 100));
    }
    parts.join(" ").replace('$', " ")
}

/// The tokens of who asked: `$w<id>` per name of the agent's process and parents
/// ([`AgentInfo::search_names`](crate::agent::AgentInfo::search_names)), `$j<id>` for a run's
/// label. Receipts without an agent (all those written before it was recorded) carry none, so
/// the index of an older ledger needs no rebuild.
fn agent_tokens(c: &Connection, r: &Receipt) -> Result<Vec<String>> {
    let Some(a) = &r.agent else { return Ok(vec![]) };
    let mut out = vec![];
    for name in a.search_names() {
        out.push(token('w', dim_id(c, dim::AGENT, Some(&name), None)?));
    }
    if let Some(label) = a.run_label.as_deref().filter(|l| !l.is_empty()) {
        out.push(token('j', dim_id(c, dim::RUN, Some(&label.to_lowercase()), Some(label))?));
    }
    Ok(out)
}

/// Indexes one receipt (already inserted with this `seq`) inside the caller's transaction.
pub(crate) fn index_receipt(c: &Connection, seq: i64, r: &Receipt) -> Result<()> {
    backfill_if_pending(c)?;
    index_one(c, seq, r)
}

fn index_one(c: &Connection, seq: i64, r: &Receipt) -> Result<()> {
    let t = r.time.timestamp();
    let day = t.div_euclid(DAY);
    let grant_label = r.grant.as_ref().map(|g| g.label.as_str());
    let grant = dim_id(c, dim::GRANT, r.grant_id.as_deref(), grant_label)?;
    let host_name = r.host.to_ascii_lowercase();
    let host = dim_id(c, dim::HOST, Some(&host_name), None)?;
    let endpoint_name = flags::endpoint_of(&host_name, &r.url);
    let endpoint = dim_id(c, dim::ENDPOINT, Some(&endpoint_name), Some(&host_name))?;
    let payee = dim_id(c, dim::PAYEE, payee_of(r).as_deref(), None)?;
    let network = dim_id(c, dim::NETWORK, r.network.as_deref(), None)?;
    let reason = dim_id(c, dim::REASON, Some(&r.reason), None)?;
    let outcome = outcome_code(r.outcome);
    let decider = decider_code(r.decided_by);
    let amount = amount_micros(r);

    // Price memory: flag against what was paid before, then learn from this one if paid.
    let memory: Option<(i64, String)> = c.prepare_cached("SELECT paid, recent FROM price_memory WHERE endpoint = ?1")?.query_row([endpoint], |x| Ok((x.get(0)?, x.get(1)?))).optional()?;
    let mut recent = memory.as_ref().map(|(_, s)| flags::parse_recent(s)).unwrap_or_default();
    let known_payee: Option<i64> = c.prepare_cached("SELECT payee FROM payee_memory WHERE host = ?1")?.query_row([host], |x| x.get(0)).optional()?;
    let flags = Flags::judge(amount, &recent, payee, known_payee);
    if r.outcome == Outcome::Paid {
        if let Some(a) = amount {
            flags::remember(&mut recent, a);
            let paid = memory.map(|(n, _)| n).unwrap_or(0) + 1;
            c.prepare_cached("INSERT INTO price_memory (endpoint, paid, recent) VALUES (?1, ?2, ?3) ON CONFLICT(endpoint) DO UPDATE SET paid = excluded.paid, recent = excluded.recent")?
                .execute(params![endpoint, paid, flags::format_recent(&recent)])?;
        }
        if payee != 0 {
            c.prepare_cached("INSERT INTO payee_memory (host, payee) VALUES (?1, ?2) ON CONFLICT(host) DO UPDATE SET payee = excluded.payee")?.execute(params![host, payee])?;
        }
    }

    let amount_i = amount.map(|a| i64::try_from(a).map_err(|_| LedgerError::Overflow)).transpose()?;
    c.prepare_cached(
        "INSERT INTO receipt_facts (seq, t, grant_dim, outcome, decider, host, endpoint, payee, network, reason, amount, flags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![seq, t, grant, outcome, decider, host, endpoint, payee, network, reason, amount_i, flags.bits()])?;

    let mut doc = vec![TOKEN_ALL.to_string(), token('o', outcome), token('d', decider), token('h', host), token('r', reason)];
    for suffix in host_suffixes(&host_name) {
        doc.push(token('s', dim_id(c, dim::HOST_SUFFIX, Some(suffix), None)?));
    }
    for (prefix, id) in [('g', grant), ('p', payee), ('n', network)] {
        if id != 0 {
            doc.push(token(prefix, id));
        }
    }
    doc.extend(agent_tokens(c, r)?);
    if let (Some(a), Some(exact)) = (amount, amount_i) {
        doc.push(token('l', lower_cell(a) as i64));
        doc.push(token('u', upper_cell(a) as i64));
        doc.push(token('v', exact));
    }
    for (bit, tok) in FLAG_TOKENS {
        if flags.bits() & bit != 0 {
            doc.push(tok.to_string());
        }
    }
    if flags.bits() != 0 {
        doc.push(TOKEN_FLAGGED.to_string());
    }
    let words = words_of(r);
    doc.extend(super::priced_words::tokens(c, &words, amount)?);
    doc.push(words);
    c.prepare_cached("INSERT INTO receipt_fts (rowid, doc) VALUES (?1, ?2)")?.execute(params![seq, doc.join(" ")])?;

    let spend = if r.outcome == Outcome::Paid { amount_i.unwrap_or(0) } else { 0 };
    c.prepare_cached(
        "INSERT INTO receipt_rollup (day, grant_dim, endpoint, host, payee, network, outcome, decider, flags, n, spend) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10)
         ON CONFLICT(day, grant_dim, endpoint, payee, network, outcome, decider, flags) DO UPDATE SET n = n + 1, spend = spend + excluded.spend",
    )?
    .execute(params![day, grant, endpoint, host, payee, network, outcome, decider, flags.bits(), spend])?;
    let mut counts = vec![
        (count_kind::ALL, 0),
        (dim::GRANT, grant),
        (dim::HOST, host),
        (dim::ENDPOINT, endpoint),
        (dim::PAYEE, payee),
        (dim::NETWORK, network),
        (dim::REASON, reason),
        (count_kind::DECIDER, decider),
    ];
    for (bit, _) in FLAG_TOKENS {
        if flags.bits() & bit != 0 {
            counts.push((count_kind::FLAG, bit as i64));
        }
    }
    if flags.bits() != 0 {
        counts.push((count_kind::FLAG, count_kind::ANY_FLAG));
    }
    if let Some(a) = amount {
        counts.push((count_kind::LOWER_CELL, lower_cell(a) as i64));
        counts.push((count_kind::UPPER_CELL, upper_cell(a) as i64));
    }
    let mut upsert = c.prepare_cached(
        "INSERT INTO receipt_counts (kind, value, day, outcome, n, spend) VALUES (?1, ?2, ?3, ?4, 1, ?5)
         ON CONFLICT(kind, value, day, outcome) DO UPDATE SET n = n + 1, spend = spend + excluded.spend",
    )?;
    for (kind, value) in counts {
        upsert.execute(params![kind, value, day, outcome, spend])?;
    }
    c.prepare_cached(
        "INSERT INTO receipt_days (day, min_seq, max_seq) VALUES (?1, ?2, ?2) ON CONFLICT(day) DO UPDATE SET min_seq = min(min_seq, excluded.min_seq), max_seq = max(max_seq, excluded.max_seq)",
    )?
    .execute(params![day, seq])?;
    Ok(())
}

/// Indexes receipts written before the index existed (schema step 2 on an older ledger), in seq
/// order so the price memory learns them in order. Runs once; a body that does not parse is
/// skipped (verification reports it).
pub(crate) fn backfill_if_pending(c: &Connection) -> Result<()> {
    let below: i64 = c.prepare_cached("SELECT backfill_below FROM receipt_index_state WHERE id = 1")?.query_row([], |r| r.get(0)).optional()?.unwrap_or(0);
    if below <= 1 {
        return Ok(());
    }
    c.execute("UPDATE receipt_index_state SET backfill_below = 0 WHERE id = 1", [])?;
    // One codec for the whole backfill (its dictionary cache is loaded once, not per row); the
    // receipts are read a chunk at a time, so memory stays flat at any size.
    let codec = super::BodyCodec::default();
    let (mut after, mut indexed) = (0i64, 0u64);
    loop {
        let rows: Vec<(i64, rusqlite::types::Value)> = {
            let mut st =
                c.prepare_cached("SELECT seq, body FROM receipts WHERE seq > ?1 AND seq < ?2 AND seq NOT IN (SELECT seq FROM receipt_facts WHERE seq > ?1 AND seq < ?2) ORDER BY seq LIMIT 5000")?;
            let rows = st.query_map([after, below], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        for (seq, body) in rows {
            let Ok(body) = codec.text(c, (&body).into()) else { continue };
            if let Ok(rec) = serde_json::from_str::<Receipt>(&body) {
                index_one(c, seq, &rec)?;
                indexed += 1;
            }
        }
    }
    // A large rebuild leaves the FTS index in many segments: merge them (searches walk one
    // b-tree per segment), as the seeder does after a bulk load.
    if indexed >= 10_000 {
        c.execute_batch("INSERT INTO receipt_fts(receipt_fts) VALUES ('optimize')")?;
    }
    Ok(())
}

/// Removes the index entries of receipts `seq <= last` (they were archived) and recomputes the
/// rollup and day bounds of the days they touched.
pub(crate) fn forget_through(c: &Connection, last: i64) -> Result<()> {
    let (min_day, max_day): (Option<i64>, Option<i64>) = c.query_row("SELECT min(t), max(t) FROM receipt_facts WHERE seq <= ?1", [last], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(min_t), Some(max_t)) = (min_day, max_day) else { return Ok(()) };
    let (d0, d1) = (min_t.div_euclid(DAY), max_t.div_euclid(DAY));
    c.execute("DELETE FROM receipt_fts WHERE rowid IN (SELECT seq FROM receipt_facts WHERE seq <= ?1)", [last])?;
    c.execute("DELETE FROM receipt_facts WHERE seq <= ?1", [last])?;
    c.execute("DELETE FROM receipt_rollup WHERE day BETWEEN ?1 AND ?2", [d0, d1])?;
    c.execute(
        "INSERT INTO receipt_rollup (day, grant_dim, endpoint, host, payee, network, outcome, decider, flags, n, spend)
         SELECT t / 86400, grant_dim, endpoint, host, payee, network, outcome, decider, flags, count(*), sum(CASE WHEN outcome = 0 THEN coalesce(amount, 0) ELSE 0 END)
         FROM receipt_facts WHERE t >= ?1 * 86400 AND t < (?2 + 1) * 86400 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
        [d0, d1],
    )?;
    c.execute("DELETE FROM receipt_counts WHERE day BETWEEN ?1 AND ?2", [d0, d1])?;
    let spend = "sum(CASE WHEN outcome = 0 THEN coalesce(amount, 0) ELSE 0 END)";
    let range = "t >= ?1 * 86400 AND t < (?2 + 1) * 86400";
    for (kind, value) in [("0", "0"), ("1", "grant_dim"), ("2", "host"), ("3", "endpoint"), ("4", "payee"), ("5", "network"), ("6", "reason"), ("7", "decider")] {
        c.execute(
            &format!(
                "INSERT INTO receipt_counts (kind, value, day, outcome, n, spend) SELECT {kind}, {value}, t / 86400, outcome, count(*), {spend} FROM receipt_facts WHERE {range} GROUP BY 2, 3, 4"
            ),
            [d0, d1],
        )?;
    }
    for (bit, cond) in [(1, "(flags & 1) != 0"), (2, "(flags & 2) != 0"), (3, "flags != 0")] {
        c.execute(
            &format!(
                "INSERT INTO receipt_counts (kind, value, day, outcome, n, spend) SELECT 8, {bit}, t / 86400, outcome, count(*), {spend} FROM receipt_facts WHERE {range} AND {cond} GROUP BY 3, 4"
            ),
            [d0, d1],
        )?;
    }
    // Amount cells: computed in Rust (the grid is not SQL).
    let cells: Vec<(i64, i64, i64, i64)> = {
        let mut st = c.prepare(&format!("SELECT amount, t / 86400, outcome, count(*) FROM receipt_facts WHERE {range} AND amount IS NOT NULL GROUP BY 1, 2, 3"))?;
        let rows = st.query_map([d0, d1], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut upsert = c.prepare_cached(
        "INSERT INTO receipt_counts (kind, value, day, outcome, n, spend) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(kind, value, day, outcome) DO UPDATE SET n = n + excluded.n, spend = spend + excluded.spend",
    )?;
    for (amount, day, outcome, n) in cells {
        let a = amount.max(0) as u64;
        let spend = if outcome == 0 { amount * n } else { 0 };
        upsert.execute(params![count_kind::LOWER_CELL, lower_cell(a) as i64, day, outcome, n, spend])?;
        upsert.execute(params![count_kind::UPPER_CELL, upper_cell(a) as i64, day, outcome, n, spend])?;
    }
    c.execute("DELETE FROM receipt_days WHERE day BETWEEN ?1 AND ?2", [d0, d1])?;
    c.execute("INSERT INTO receipt_days (day, min_seq, max_seq) SELECT t / 86400, min(seq), max(seq) FROM receipt_facts WHERE t >= ?1 * 86400 AND t < (?2 + 1) * 86400 GROUP BY 1", [d0, d1])?;
    Ok(())
}

/// Runs a pending backfill in its own write transaction (search entry points call this).
pub(crate) fn backfill_pending_now(c: &mut Connection) -> Result<()> {
    let below: i64 = c.query_row("SELECT backfill_below FROM receipt_index_state WHERE id = 1", [], |r| r.get(0)).optional()?.unwrap_or(0);
    if below <= 1 {
        return Ok(());
    }
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    backfill_if_pending(&tx)?;
    tx.commit()?;
    Ok(())
}

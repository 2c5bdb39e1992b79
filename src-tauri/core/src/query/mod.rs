//! Owns the query language shared by the CLI and the UI (a leaf below the ledger, which runs
//! it, and search, which serves it), parsed strictly into a typed [`Query`]:
//!
//! ```text
//! weather grant:research outcome:refused amount:>0.10 since:2026-11-01
//! ```
//!
//! Words are full-text terms (all must match; `weath*` is a prefix, `-word` excludes). `key:value`
//! filters: the same key repeated (or `a,b`) means either, different keys mean both, and a
//! leading `-` excludes. Values with spaces go in double quotes. A token that means nothing is an
//! error naming it, never a silent miss.

pub mod flags;
pub use flags::Flags;

use crate::money;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// One day in seconds (the index's day buckets).
pub const DAY: i64 = 86_400;
/// The outcomes and deciders a query names, in their index codes' order.
pub const OUTCOMES: [&str; 4] = ["paid", "refused", "failed", "not_payable"];
pub const DECIDERS: [&str; 5] = ["auto", "user", "timeout", "policy", "rule"];

/// A malformed query: which token, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query token `{token}`: {why}")]
pub struct QueryError {
    pub token: String,
    pub why: String,
}

/// Filterable facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Grant,
    Outcome,
    Decider,
    Host,
    Payee,
    Network,
    Reason,
    Flag,
    /// The agent's process or one of its parents, by name (`agent:curl`, `agent:claude`).
    Agent,
    /// A `purser run`, by label.
    Run,
}

/// A filter value, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An outcome, decider or flag code.
    Code(i64),
    /// A grant id or label, host, payee address, network, reason; an agent name or run label
    /// (lowercased).
    Text(String),
    /// `host:*.example.com`: the subdomains of `example.com`.
    Suffix(String),
    /// `flag:any`: any flag.
    AnyFlag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facet {
    pub key: Key,
    /// Any of these (OR).
    pub values: Vec<Value>,
    pub negated: bool,
}

/// A full-text term: its words must all match (the last may be a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
    pub negated: bool,
}

/// A parsed query. Times are whole seconds: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
    pub facets: Vec<Facet>,
    /// Inclusive micro-USD bounds.
    pub amount: Option<(u64, u64)>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Filter keys and their aliases.
const KEYS: &[(&str, Key)] = &[
    ("grant", Key::Grant),
    ("outcome", Key::Outcome),
    ("decider", Key::Decider),
    ("by", Key::Decider),
    ("decided_by", Key::Decider),
    ("host", Key::Host),
    ("payee", Key::Payee),
    ("pay_to", Key::Payee),
    ("network", Key::Network),
    ("reason", Key::Reason),
    ("flag", Key::Flag),
    ("agent", Key::Agent),
    ("run", Key::Run),
];

/// Most terms and filter values one query may hold.
pub const MAX_PARTS: usize = 64;

impl Query {
    /// Parses `text` relative to `now` (for `since:7d`).
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<Query, QueryError> {
        let mut q = Query::default();
        let mut parts = 0usize;
        for raw in lex(text)? {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(QueryError { token: raw.text, why: format!("a query holds at most {MAX_PARTS} terms and filters") });
            }
            q.add(raw, now)?;
        }
        if let (Some(s), Some(u)) = (q.since, q.until) {
            if s >= u {
                return Err(QueryError { token: text.trim().chars().take(80).collect(), why: "since: is not before until:".into() });
            }
        }
        Ok(q)
    }

    /// Whether the query has no filter at all.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.facets.is_empty() && self.amount.is_none() && self.since.is_none() && self.until.is_none()
    }

    fn add(&mut self, raw: RawToken, now: DateTime<Utc>) -> Result<(), QueryError> {
        let err = |why: String| QueryError { token: raw.text.clone(), why };
        let Some(key) = raw.key.as_deref() else {
            return self.add_term(&raw);
        };
        let key = key.to_ascii_lowercase();
        let value = raw.value.as_str();
        if value.is_empty() {
            return Err(err(format!("{key}: needs a value")));
        }
        match key.as_str() {
            "amount" => {
                if raw.negated {
                    return Err(err("amount: cannot be negated; use amount:<X or amount:>X".into()));
                }
                let (lo, hi) = parse_amount(value).map_err(err)?;
                let (plo, phi) = self.amount.unwrap_or((0, u64::MAX));
                let (lo, hi) = (lo.max(plo), hi.min(phi));
                if lo > hi {
                    return Err(err("this amount range leaves nothing (check the other amount: filters)".into()));
                }
                self.amount = Some((lo, hi));
            }
            "since" | "until" => {
                if raw.negated {
                    return Err(err(format!("{key}: cannot be negated")));
                }
                let (start, end) = parse_time(value, now).map_err(err)?;
                if key == "since" {
                    self.since = Some(self.since.map_or(start, |s| s.max(start)));
                } else {
                    self.until = Some(self.until.map_or(end, |u| u.min(end)));
                }
            }
            _ => {
                let Some(k) = KEYS.iter().find(|(n, _)| *n == key).map(|(_, k)| *k) else {
                    let known = "grant, outcome, decider (by), host, payee, network, reason, flag, agent, run, amount, since, until";
                    return Err(err(format!("unknown filter {key:?} (known: {known}); to search for text with a colon, put it in double quotes")));
                };
                let mut values = Vec::new();
                let items: Vec<&str> = if raw.quoted { vec![value] } else { value.split(',').collect() };
                for v in items {
                    values.push(parse_value(k, v.trim()).map_err(&err)?);
                }
                // The same key again means either value (exclusions stay separate: none of them).
                match self.facets.iter_mut().find(|f| f.key == k && !f.negated && !raw.negated) {
                    Some(f) => f.values.extend(values),
                    None => self.facets.push(Facet { key: k, values, negated: raw.negated }),
                }
            }
        }
        Ok(())
    }

    fn add_term(&mut self, raw: &RawToken) -> Result<(), QueryError> {
        let (text, prefix) = match raw.value.strip_suffix('*') {
            Some(t) if !raw.quoted => (t, true),
            _ => (raw.value.as_str(), false),
        };
        let words = words(text);
        if words.is_empty() {
            return Err(QueryError { token: raw.text.clone(), why: "there is nothing searchable in it (letters or digits)".into() });
        }
        if prefix && text.ends_with(|c: char| !c.is_alphanumeric()) {
            return Err(QueryError { token: raw.text.clone(), why: "a prefix search needs letters or digits right before the *".into() });
        }
        self.terms.push(Term { words, prefix, negated: raw.negated });
        Ok(())
    }
}

/// Splits text into the words the full-text index holds (runs of letters and digits).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect()
}

fn parse_value(k: Key, v: &str) -> Result<Value, String> {
    let one_of = |names: &[&str], v: &str| names.iter().position(|n| *n == v.to_ascii_lowercase()).map(|i| Value::Code(i as i64));
    if v.is_empty() {
        return Err("empty value in a list".into());
    }
    match k {
        Key::Outcome => one_of(&OUTCOMES, v).ok_or_else(|| format!("outcome must be one of {}", OUTCOMES.join(", "))),
        Key::Decider => one_of(&DECIDERS, v).ok_or_else(|| format!("decider must be one of {}", DECIDERS.join(", "))),
        Key::Flag => match v.to_ascii_lowercase().as_str() {
            "any" => Ok(Value::AnyFlag),
            other => flags::NAMES.iter().find(|(_, n)| *n == other).map(|(b, _)| Value::Code(*b as i64)).ok_or_else(|| "flag must be price_spike, new_payee or any".into()),
        },
        Key::Grant => Ok(Value::Text(v.to_string())),
        Key::Host => {
            let h = v.to_ascii_lowercase();
            let (suffix, name) = match h.strip_prefix("*.") {
                Some(rest) => (true, rest.to_string()),
                None => (false, h.clone()),
            };
            let ok = !name.is_empty() && name.len() <= 253 && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
            if !ok {
                return Err("host must be a host name (api.example.com, 127.0.0.1:8080) or *.domain".into());
            }
            Ok(if suffix { Value::Suffix(name) } else { Value::Text(name) })
        }
        Key::Payee => {
            let a = v.to_ascii_lowercase();
            let ok = a.len() == 42 && a.starts_with("0x") && a[2..].bytes().all(|c| c.is_ascii_hexdigit());
            if ok {
                Ok(Value::Text(a))
            } else {
                Err("payee must be a 0x address (40 hex digits)".into())
            }
        }
        Key::Network => match crate::networks::by_name(v) {
            Some(n) => Ok(Value::Text(n.caip2.to_string())),
            None => {
                let ok = v
                    .split_once(':')
                    .is_some_and(|(ns, id)| !ns.is_empty() && ns.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) && !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric()));
                if ok {
                    Ok(Value::Text(v.to_string()))
                } else {
                    Err("network must be a registry name (base, base-sepolia) or a CAIP-2 id (eip155:8453)".into())
                }
            }
        },
        Key::Reason => {
            let ok = v.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if ok {
                Ok(Value::Text(v.to_string()))
            } else {
                Err("reason must be a snake_case code such as over_budget".into())
            }
        }
        // Names and labels are matched without regard to case (the index holds them lowercased).
        Key::Agent | Key::Run => {
            let what = if k == Key::Agent { "agent: takes a process name (curl, claude)" } else { "run: takes a run's label" };
            if v.chars().count() > 255 || v.chars().any(char::is_control) {
                return Err(format!("{what}, at most 255 characters and no control characters"));
            }
            Ok(Value::Text(v.to_lowercase()))
        }
    }
}

/// `>0.10`, `>=0.10`, `<1`, `<=1`, `0.05` (exactly), `0.05..0.50` (inclusive): USD, strictly
/// parsed, as inclusive micro-USD bounds.
fn parse_amount(v: &str) -> Result<(u64, u64), String> {
    let usd = |s: &str| money::parse_usd(s).map_err(|e| format!("{e}"));
    if let Some((a, b)) = v.split_once("..") {
        let (lo, hi) = (usd(a)?, usd(b)?);
        if lo > hi {
            return Err("the range's low end is above its high end".into());
        }
        return Ok((lo, hi));
    }
    let (op, num) = ["<=", ">=", "<", ">", "="].iter().find_map(|op| v.strip_prefix(op).map(|rest| (*op, rest))).unwrap_or(("=", v));
    let x = usd(num)?;
    match op {
        ">" => x.checked_add(1).map(|lo| (lo, u64::MAX)).ok_or_else(|| "nothing is above that".into()),
        ">=" => Ok((x, u64::MAX)),
        "<" => x.checked_sub(1).map(|hi| (0, hi)).ok_or_else(|| "nothing is below zero".into()),
        "<=" => Ok((0, x)),
        _ => Ok((x, x)),
    }
}

/// A date (`2026-11-01`: the whole UTC day), a date-time (`2026-11-01T10:00:00Z`, offsets
/// allowed, no offset means UTC: that second) or an age (`7d`, `24h`, `30m`: from then to
/// now). Returns `[start, end)` in Unix seconds.
fn parse_time(v: &str, now: DateTime<Utc>) -> Result<(i64, i64), String> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let start = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).ok_or("bad date")?).timestamp();
        return Ok((start, start + DAY));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        let s = t.timestamp();
        return Ok((s, s + 1));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            let s = Utc.from_utc_datetime(&t).timestamp();
            return Ok((s, s + 1));
        }
    }
    if let Ok(d) = crate::grants::parse_duration(v) {
        return Ok(((now - d).timestamp(), now.timestamp() + 1));
    }
    Err("want a date (2026-11-01), a UTC date-time (2026-11-01T10:00:00Z) or an age (7d, 24h, 30m)".into())
}

/// One token of the query as typed.
#[derive(Debug, Clone)]
struct RawToken {
    /// As typed (for errors).
    text: String,
    negated: bool,
    key: Option<String>,
    value: String,
    /// The value was in double quotes.
    quoted: bool,
}

/// Splits on whitespace outside double quotes: `-`, an optional `key:` and a value (bare or
/// quoted). An unterminated quote is an error.
fn lex(text: &str) -> Result<Vec<RawToken>, QueryError> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut negated = false;
        if chars[i] == '-' && i + 1 < chars.len() && !chars[i + 1].is_whitespace() {
            negated = true;
            i += 1;
        }
        // key: a run of [a-z_] followed by ':' (and not "://", which is a URL).
        let mut key = None;
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_alphabetic() || chars[j] == '_') {
            j += 1;
        }
        if j > i && j < chars.len() && chars[j] == ':' && !(chars.get(j + 1) == Some(&'/') && chars.get(j + 2) == Some(&'/')) {
            key = Some(chars[i..j].iter().collect::<String>());
            i = j + 1;
        }
        let (value, quoted) = if i < chars.len() && chars[i] == '"' {
            let close = chars[i + 1..].iter().position(|c| *c == '"').map(|p| p + i + 1);
            let Some(close) = close else {
                return Err(QueryError { token: chars[start..].iter().collect(), why: "this quote is never closed".into() });
            };
            let v: String = chars[i + 1..close].iter().collect();
            i = close + 1;
            if i < chars.len() && !chars[i].is_whitespace() {
                let end = chars[i..].iter().position(|c| c.is_whitespace()).map(|p| p + i).unwrap_or(chars.len());
                return Err(QueryError { token: chars[start..end].iter().collect(), why: "put a space after the closing quote".into() });
            }
            (v, true)
        } else {
            let end = chars[i..].iter().position(|c| c.is_whitespace()).map(|p| p + i).unwrap_or(chars.len());
            let v: String = chars[i..end].iter().collect();
            i = end;
            if v.contains('"') {
                return Err(QueryError { token: chars[start..end].iter().collect(), why: "a quote inside a word; quote the whole value".into() });
            }
            (v, false)
        };
        out.push(RawToken { text: chars[start..i].iter().collect(), negated, key, value, quoted });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap().timestamp()
    }

    #[test]
    fn parses_the_issue_example() {
        let q = Query::parse("weather grant:research outcome:refused amount:>0.10 since:2026-11-01", now()).unwrap();
        assert_eq!(q.terms, vec![Term { words: vec!["weather".into()], prefix: false, negated: false }]);
        assert_eq!(q.facets, vec![Facet { key: Key::Grant, values: vec![Value::Text("research".into())], negated: false }, Facet { key: Key::Outcome, values: vec![Value::Code(1)], negated: false }]);
        assert_eq!(q.amount, Some((100_001, u64::MAX)));
        assert_eq!(q.since, Some(day(2026, 11, 1)));
        assert_eq!(q.until, None);
    }

    #[test]
    fn table_of_good_queries() {
        let cases: &[(&str, &str)] = &[
            ("empty", ""),
            ("prefix", "weath*"),
            ("negated word", "-weather"),
            ("quoted words", "\"paris weather\""),
            ("quoted grant", "grant:\"travel plans\""),
            ("either outcome", "outcome:paid,failed"),
            ("aliases", "by:user decided_by:auto pay_to:0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            ("wildcard host", "host:*.example.com"),
            ("host with port", "host:127.0.0.1:8080"),
            ("network names", "network:base-sepolia network:eip155:8453"),
            ("ranges", "amount:0.01..0.05 amount:<=1 amount:>=0.001 amount:0.05"),
            ("times", "since:2026-11-01T10:00:00Z until:2026-11-02"),
            ("an age", "since:7d"),
            ("flags", "flag:price_spike flag:any -flag:new_payee"),
            ("url words", "\"https://api.x.com/v1\" api.x.com/v1"),
            ("reason", "reason:over_budget -reason:paid"),
            ("agents and runs", "agent:curl agent:Claude,node -agent:bash run:research run:\"deep dive\""),
        ];
        for (name, q) in cases {
            assert!(Query::parse(q, now()).is_ok(), "{name}: {q} -> {:?}", Query::parse(q, now()));
        }
        let q = Query::parse("amount:<=1 amount:>0.5 until:2026-11-02 since:2026-11-01T10:00:00+01:00", now()).unwrap();
        assert_eq!(q.amount, Some((500_001, 1_000_000)));
        assert_eq!(q.until, Some(day(2026, 11, 3)), "until a date includes that day");
        assert_eq!(q.since, Some(day(2026, 11, 1) + 9 * 3600));
        let q = Query::parse("over_budget api.x.com/v1 weath*", now()).unwrap();
        assert_eq!(q.terms[0].words, ["over", "budget"]);
        assert_eq!(q.terms[1].words, ["api", "x", "com", "v1"]);
        assert!(q.terms[2].prefix);
        assert_eq!(Query::parse("since:7d", now()).unwrap().since, Some(now().timestamp() - 7 * 86_400));
        let q = Query::parse("agent:Claude,python3.11 run:\"Deep Dive\" -agent:bash", now()).unwrap();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            q.facets,
            vec![
                Facet { key: Key::Agent, values: vec![text("claude"), text("python3.11")], negated: false },
                Facet { key: Key::Run, values: vec![text("deep dive")], negated: false },
                Facet { key: Key::Agent, values: vec![text("bash")], negated: true },
            ],
            "names and labels lowercased"
        );
    }

    #[test]
    fn bad_tokens_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("unknown key", "weather colour:red", "colour:red"),
            ("bad outcome", "outcome:won", "outcome:won"),
            ("float amount", "amount:>0.1.0", "amount:>0.1.0"),
            ("too many decimals", "amount:0.0000001", "amount:0.0000001"),
            ("negative amount", "amount:-1", "amount:-1"),
            ("scientific", "amount:1e3", "amount:1e3"),
            ("bad range", "amount:2..1", "amount:2..1"),
            ("empty value", "host:", "host:"),
            ("bad date", "since:2026-13-01", "since:2026-13-01"),
            ("bad payee", "payee:bob", "payee:bob"),
            ("bad network", "network:moon", "network:moon"),
            ("open quote", "grant:\"abc", "grant:\"abc"),
            ("no words", "--", "--"),
            ("lonely star", "*", "*"),
            ("negated amount", "-amount:>1", "-amount:>1"),
            ("bad flag", "flag:odd", "flag:odd"),
            ("since after until", "since:2026-11-02 until:2026-11-01", "since:2026-11-02 until:2026-11-01"),
            ("nothing below zero", "amount:<0", "amount:<0"),
            ("quote in word", "ab\"c", "ab\"c"),
            ("contradiction", "amount:>1 amount:<0.5", "amount:<0.5"),
            ("empty agent in a list", "agent:curl,", "agent:curl,"),
            ("control character in a run", "run:\"a\u{7}b\"", "run:\"a\u{7}b\""),
            ("overlong agent", &format!("agent:{}", "x".repeat(256)), &format!("agent:{}", "x".repeat(256))),
        ];
        for (name, q, token) in cases {
            let e = Query::parse(q, now()).expect_err(name);
            assert_eq!(e.token, *token, "{name}: {e}");
            assert!(e.to_string().contains(token), "{name}: {e}");
        }
    }
}

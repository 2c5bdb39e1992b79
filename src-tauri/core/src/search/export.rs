//! Export of any result set, streamed oldest first (memory stays flat whatever the size):
//!
//! - JSON Lines: each line is the receipt as `receipts list --json` shows it (its hashed body,
//!   then `hash`), plus `flags` and `seq`; with `chain`, also `body`: the exact text that was
//!   hashed.
//! - CSV (RFC 4180: CRLF, quoted when needed, UTF-8): one flat row per receipt; with `chain`,
//!   also `prev_hash`, `hash` and `body`.
//!
//! Amounts are exact decimals (never floats), times ISO 8601 in UTC. With the chain columns a
//! reviewer checks an export without Purser's database: `sha256(body) == hash` on every row,
//! and on consecutive seqs `body.prev_hash` equals the previous row's `hash` ([`verify_export`]
//! does exactly that).

use super::{Query, SearchError};
use crate::ledger::{Ledger, RawRow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::{BufRead, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(format!("format {other:?} is not csv or jsonl")),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub rows: u64,
    pub bytes: u64,
}

/// CSV columns, in order (the chain columns follow when asked for).
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "id",
    "time",
    "grant_id",
    "grant_label",
    "method",
    "url",
    "host",
    "outcome",
    "reason",
    "detail",
    "decided_by",
    "intent",
    "amount_usd",
    "amount_atomic",
    "network",
    "asset",
    "pay_to",
    "tx",
    "payer",
    "upstream_status",
    "flags",
    "message",
];
pub const CSV_CHAIN_COLUMNS: &[&str] = &["prev_hash", "hash", "body"];

/// The fields of a stored body that CSV shows (the rest is skipped unparsed).
#[derive(Deserialize)]
struct Lite<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    grant_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    grant: Option<LiteGrant<'a>>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    host: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    decided_by: Cow<'a, str>,
    #[serde(borrow)]
    intent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    amount_atomic: Option<Cow<'a, str>>,
    #[serde(borrow)]
    amount_usd: Option<Cow<'a, str>>,
    #[serde(borrow)]
    network: Option<Cow<'a, str>>,
    #[serde(borrow)]
    asset: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pay_to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tx: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payer: Option<Cow<'a, str>>,
    upstream_status: Option<u16>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
}

#[derive(Deserialize)]
struct LiteGrant<'a> {
    #[serde(borrow)]
    label: Cow<'a, str>,
}

/// Writes one CSV field (RFC 4180). Text that a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@` first) gets a leading `'`, as OWASP advises: agents write some of these fields.
pub fn csv_field(out: &mut impl Write, s: &str, text: bool) -> std::io::Result<()> {
    let guard = text && s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if guard || s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        out.write_all(if guard { b"\"'" } else { b"\"" })?;
        for (i, part) in s.split('"').enumerate() {
            if i > 0 {
                out.write_all(b"\"\"")?;
            }
            out.write_all(part.as_bytes())?;
        }
        out.write_all(b"\"")
    } else {
        out.write_all(s.as_bytes())
    }
}

fn csv_row(out: &mut impl Write, row: &RawRow, chain: bool) -> Result<(), SearchError> {
    let bad = |e: serde_json::Error| crate::ledger::LedgerError::Corrupt(format!("receipt #{}: {e}", row.seq));
    let r: Lite<'_> = serde_json::from_str(&row.body).map_err(bad)?;
    fn o<'a>(v: &'a Option<Cow<'_, str>>) -> &'a str {
        v.as_deref().unwrap_or("")
    }
    let names = row.flags.names();
    let flags = if names.len() == 1 { Cow::Borrowed(names[0]) } else { Cow::Owned(names.join(";")) };
    let status = r.upstream_status.map(|s| s.to_string()).unwrap_or_default();
    write!(out, "{},", row.seq)?;
    let label = r.grant.as_ref().map(|g| g.label.as_ref()).unwrap_or("");
    let fields: [(&str, bool); 22] = [
        (&r.id, false),
        (&r.time, false),
        (o(&r.grant_id), false),
        (label, true),
        (&r.method, false),
        (&r.url, true),
        (&r.host, false),
        (&r.outcome, false),
        (&r.reason, false),
        (o(&r.detail), true),
        (&r.decided_by, false),
        (o(&r.intent), true),
        (o(&r.amount_usd), false),
        (o(&r.amount_atomic), false),
        (o(&r.network), false),
        (o(&r.asset), false),
        (o(&r.pay_to), false),
        (o(&r.tx), false),
        (o(&r.payer), false),
        (&status, false),
        (&flags, false),
        (&r.message, true),
    ];
    for (i, (v, text)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        csv_field(out, v, *text)?;
    }
    if chain {
        for v in [r.prev_hash.as_ref(), row.hash.as_str(), row.body.as_str()] {
            out.write_all(b",")?;
            csv_field(out, v, false)?;
        }
    }
    out.write_all(b"\r\n")?;
    Ok(())
}

fn jsonl_row(out: &mut impl Write, row: &RawRow, chain: bool) -> Result<(), SearchError> {
    let body = row.body.trim_end();
    let Some(inner) = body.strip_suffix('}').filter(|_| body.starts_with('{')) else {
        return Err(crate::ledger::LedgerError::Corrupt(format!("receipt #{} body is not a JSON object", row.seq)).into());
    };
    out.write_all(inner.as_bytes())?;
    write!(out, ",\"hash\":\"{}\",\"flags\":[", row.hash)?;
    for (i, name) in row.flags.names().iter().enumerate() {
        write!(out, "{}\"{name}\"", if i > 0 { "," } else { "" })?;
    }
    write!(out, "],\"seq\":{}", row.seq)?;
    if chain {
        out.write_all(b",\"body\":")?;
        serde_json::to_writer(&mut *out, &row.body).map_err(std::io::Error::other)?;
    }
    out.write_all(b"}\n")?;
    Ok(())
}

/// Counts bytes written.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the receipts matching `text` to `out`, oldest first. `progress(done, total)` is
/// called at the start, every few thousand rows and at the end.
pub fn export(ledger: &Ledger, text: &str, format: Format, chain: bool, out: impl Write, now: DateTime<Utc>, mut progress: impl FnMut(u64, u64)) -> Result<ExportSummary, SearchError> {
    let q = Query::parse(text, now)?;
    let mut out = Counting { inner: std::io::BufWriter::with_capacity(1 << 16, out), bytes: 0 };
    if format == Format::Csv {
        let mut cols: Vec<&str> = CSV_COLUMNS.to_vec();
        if chain {
            cols.extend(CSV_CHAIN_COLUMNS);
        }
        out.write_all(cols.join(",").as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    // Two threads: one reads (SQLite, decompression), this one formats and writes; batches of
    // rows go between them through a bounded channel, so memory stays flat whatever the size.
    enum Msg {
        Total(u64),
        Rows(Vec<RawRow>),
    }
    const BATCH: usize = 256;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(8);
    let (mut done, mut total) = (0u64, 0u64);
    let mut failed: Option<SearchError> = None;
    let result = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let stopped = || crate::ledger::LedgerError::Task("the export stopped writing".into());
            let start_tx = tx.clone();
            let mut batch = Vec::with_capacity(BATCH);
            ledger.search_each(
                &q,
                |t| {
                    let _ = start_tx.send(Msg::Total(t));
                },
                |row| {
                    batch.push(row);
                    if batch.len() == BATCH {
                        tx.send(Msg::Rows(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).map_err(|_| stopped())?;
                    }
                    Ok(())
                },
            )?;
            if !batch.is_empty() {
                tx.send(Msg::Rows(batch)).map_err(|_| stopped())?;
            }
            Ok::<_, crate::ledger::LedgerError>(())
        });
        'recv: for msg in rx {
            match msg {
                Msg::Total(t) => {
                    total = t;
                    progress(0, t);
                }
                Msg::Rows(rows) => {
                    for row in rows {
                        let r = match format {
                            Format::Csv => csv_row(&mut out, &row, chain),
                            Format::Jsonl => jsonl_row(&mut out, &row, chain),
                        };
                        if let Err(e) = r {
                            failed = Some(e);
                            break 'recv; // dropping the receiver stops the reader
                        }
                        done += 1;
                        if done % 4096 == 0 {
                            progress(done, total);
                        }
                    }
                }
            }
        }
        reader.join().unwrap_or_else(|_| Err(crate::ledger::LedgerError::Task("the export's reader panicked".into())))
    });
    if let Some(e) = failed {
        return Err(e);
    }
    result?;
    out.flush()?;
    progress(done, total);
    Ok(ExportSummary { rows: done, bytes: out.bytes })
}

/// What [`verify_export`] found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportCheck {
    pub rows: u64,
    /// Pairs of consecutive seqs whose link was checked.
    pub links: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash of the last row.
    pub head: Option<String>,
}

/// Checks an export made with `chain` (CSV or JSONL, told apart by the first byte): each row's
/// body hashes to its hash, its shown fields agree with the body, and consecutive seqs link.
/// Needs nothing but the file.
pub fn verify_export(input: impl std::io::Read) -> Result<ExportCheck, SearchError> {
    let mut rd = std::io::BufReader::new(input);
    let first = rd.fill_buf()?.first().copied();
    let mut check = ExportCheck { rows: 0, links: 0, first_seq: None, last_seq: None, head: None };
    let mut prev: Option<(i64, String)> = None;
    let mut step = |line: u64, seq: i64, hash: &str, body: &str, shown: &dyn Fn(&serde_json::Value) -> Result<(), String>| -> Result<(), SearchError> {
        let bad = |why: String| SearchError::BadExport { line, why };
        if hex::encode(Sha256::digest(body.as_bytes())) != hash {
            return Err(bad(format!("receipt #{seq}: its body does not hash to {hash}")));
        }
        let v: serde_json::Value = serde_json::from_str(body).map_err(|e| bad(format!("receipt #{seq}: body is not JSON: {e}")))?;
        shown(&v).map_err(|w| bad(format!("receipt #{seq}: {w}")))?;
        let prev_hash = v.get("prev_hash").and_then(|p| p.as_str()).unwrap_or("");
        if let Some((ps, ph)) = &prev {
            if seq <= *ps {
                return Err(bad(format!("receipt #{seq} comes after #{ps}: rows are out of order")));
            }
            if seq == ps + 1 {
                if prev_hash != ph {
                    return Err(bad(format!("receipt #{seq} does not link to #{ps} (prev_hash {prev_hash}, previous hash {ph})")));
                }
                check.links += 1;
            }
        }
        check.rows += 1;
        check.first_seq.get_or_insert(seq);
        check.last_seq = Some(seq);
        check.head = Some(hash.to_string());
        prev = Some((seq, hash.to_string()));
        Ok(())
    };
    if first == Some(b'{') {
        for (i, line) in rd.lines().enumerate() {
            let line = line?;
            let n = i as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| SearchError::BadExport { line: n, why: format!("not JSON: {e}") })?;
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let (Some(hash), Some(body), Some(seq)) = (field("hash"), field("body"), v.get("seq").and_then(|s| s.as_i64())) else {
                return Err(SearchError::BadExport { line: n, why: "no hash, body and seq: export with --chain".into() });
            };
            let shown = |b: &serde_json::Value| {
                let mut mine = v.clone();
                if let Some(m) = mine.as_object_mut() {
                    for k in ["hash", "flags", "seq", "body"] {
                        m.remove(k);
                    }
                }
                if &mine == b {
                    Ok(())
                } else {
                    Err("its fields differ from its hashed body".to_string())
                }
            };
            step(n, seq, &hash, &body, &shown)?;
        }
    } else {
        let mut records = csv_records(rd);
        let header = records.next().transpose()?.unwrap_or_default();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(ci_seq), Some(ci_hash), Some(ci_body)) = (col("seq"), col("hash"), col("body")) else {
            return Err(SearchError::BadExport { line: 1, why: "no seq, hash and body columns: export with --chain".into() });
        };
        let checked: Vec<(usize, &str)> = ["id", "time", "outcome", "reason", "amount_usd", "amount_atomic", "pay_to", "tx"].iter().filter_map(|k| col(k).map(|i| (i, *k))).collect();
        for (i, rec) in records.enumerate() {
            let rec = rec?;
            let n = i as u64 + 2;
            let get = |c: usize| rec.get(c).map(String::as_str).unwrap_or("");
            let seq: i64 = get(ci_seq).parse().map_err(|_| SearchError::BadExport { line: n, why: "seq is not a number".into() })?;
            let shown = |b: &serde_json::Value| {
                for (c, k) in &checked {
                    let want = b.get(*k).and_then(|x| x.as_str()).unwrap_or("");
                    if get(*c) != want {
                        return Err(format!("its {k} differs from its hashed body"));
                    }
                }
                Ok(())
            };
            step(n, seq, get(ci_hash), get(ci_body), &shown)?;
        }
    }
    Ok(check)
}

/// Reads RFC 4180 records (quoted fields may hold commas, quotes and line breaks), undoing the
/// formula guard of [`csv_field`].
pub fn csv_records(rd: impl BufRead) -> impl Iterator<Item = Result<Vec<String>, SearchError>> {
    let mut bytes = rd.bytes().peekable();
    std::iter::from_fn(move || {
        bytes.peek()?;
        let mut rec = vec![];
        let mut field = Vec::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let b = match bytes.next() {
                None => break,
                Some(Err(e)) => return Some(Err(e.into())),
                Some(Ok(b)) => b,
            };
            if quoted {
                if b == b'"' {
                    if matches!(bytes.peek(), Some(Ok(b'"'))) {
                        bytes.next();
                        field.push(b'"');
                    } else {
                        quoted = false;
                    }
                } else {
                    field.push(b);
                }
                continue;
            }
            match b {
                b'"' if field.is_empty() => {
                    quoted = true;
                    was_quoted = true;
                }
                b',' => rec.push(take_field(&mut field, &mut was_quoted)),
                b'\r' if matches!(bytes.peek(), Some(Ok(b'\n'))) => {}
                b'\n' => break,
                _ => field.push(b),
            }
        }
        rec.push(take_field(&mut field, &mut was_quoted));
        Some(Ok(rec))
    })
}

fn take_field(field: &mut Vec<u8>, was_quoted: &mut bool) -> String {
    let mut s = String::from_utf8_lossy(field).into_owned();
    if *was_quoted && s.starts_with('\'') && s[1..].starts_with(['=', '+', '-', '@', '\t', '\r']) {
        s.remove(0);
    }
    field.clear();
    *was_quoted = false;
    s
}

//! Owns how a receipt's hashed body is stored. The hash chain is over the body's exact JSON
//! text; storing that text as is spends about 2.2 KB a receipt, mostly the same field names,
//! assets and challenge shapes again and again. So once a ledger holds enough receipts to learn
//! from, it trains a zstd dictionary on its own latest receipts (on a background thread, off the
//! payment path), keeps it in `body_dicts` (append-only, like the receipts) and stores each
//! later body as a blob: `[1][dictionary row id, u32 LE][zstd frame with its content size and checksum]`,
//! about 300 bytes. Text bodies (before the first dictionary, from older versions, or if
//! compression ever fails) stay text: every reader goes through [`BodyCodec::text`], which
//! gives back the exact bytes that were hashed, or a named error, never a guess.
//!
//! A ledger trains its first dictionary at [`TRAIN_AFTER`] receipts and a new one each time it
//! grows tenfold since the last (10k, 100k, 1M): a handful of 32 KiB dictionaries in all.

use super::{ts, LedgerError, Result};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zstd::zstd_safe::{self, CCtx, CDict, DCtx, DDict};

/// The first dictionary is trained once the ledger reaches this many receipts.
pub const TRAIN_AFTER: i64 = 1_000;
/// A new dictionary each time the ledger grows this many times over since the last one.
const GROWTH: i64 = 10;
/// How many of the latest bodies a dictionary learns from.
const SAMPLES: i64 = 1_000;
/// A dictionary's size.
const DICT_BYTES: usize = 32 * 1024;
/// zstd level: with a dictionary, 3 is within 4% of level 9's size at a fifth of the time.
const LEVEL: i32 = 3;
/// The blob format tag.
const TAG: u8 = 1;
/// No stored body is larger (the challenge parser caps a 402 document at 64 KiB).
const MAX_BODY: u64 = 4 << 20;

/// The dictionary new bodies are compressed with: its row, zstd's own id for it, and the
/// receipt count it was trained at.
struct Encoder {
    row: i64,
    zstd_id: i64,
    trained_at: i64,
    cdict: CDict<'static>,
    cctx: CCtx<'static>,
}

#[derive(Default)]
struct Writer {
    encoder: Option<Encoder>,
    /// A trained dictionary not yet stored (the next append stores it, in its transaction).
    trained: Option<Trained>,
    training: bool,
    /// After a failed training, no new attempt before this receipt count.
    retry_at: i64,
}

struct Trained {
    dict: Vec<u8>,
    at_seq: i64,
    samples: i64,
}

/// Encodes and decodes stored bodies for one ledger file (its dictionaries are cached).
#[derive(Default)]
pub struct BodyCodec {
    writer: Mutex<Writer>,
    ddicts: Mutex<HashMap<i64, Arc<DDict<'static>>>>,
    dctxs: Mutex<Vec<DCtx<'static>>>,
}

impl BodyCodec {
    /// The body's exact text, from a `receipts.body` value.
    pub fn text(&self, c: &Connection, v: ValueRef<'_>) -> Result<String> {
        match v {
            ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|_| corrupt("a stored body is not UTF-8")),
            ValueRef::Blob(b) => self.decode(c, b),
            _ => Err(corrupt("a stored body is neither text nor a compressed blob")),
        }
    }

    fn decode(&self, c: &Connection, b: &[u8]) -> Result<String> {
        let (&tag, rest) = b.split_first().ok_or_else(|| corrupt("an empty compressed body"))?;
        if tag != TAG || rest.len() < 4 {
            return Err(corrupt(&format!("a compressed body has an unknown format ({tag})")));
        }
        let row = i64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        let frame = &rest[4..];
        let size = match zstd_safe::get_frame_content_size(frame) {
            Ok(Some(n)) if n <= MAX_BODY => n as usize,
            _ => return Err(corrupt("a compressed body has no valid size")),
        };
        let mut dctx = self.dctxs.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(DCtx::create);
        let mut out = Vec::with_capacity(size);
        let mut result = self.ddict(c, row, false).and_then(|d| dctx.decompress_using_ddict(&mut out, frame, &d).map_err(|e| zerr("decompress", e)));
        if result.is_err() {
            // The cached dictionary may be stale (a row id reused after a rolled-back write).
            out.clear();
            result = self.ddict(c, row, true).and_then(|d| dctx.decompress_using_ddict(&mut out, frame, &d).map_err(|e| zerr("decompress", e)));
        }
        self.dctxs.lock().unwrap_or_else(|p| p.into_inner()).push(dctx);
        result?;
        if out.len() != size {
            return Err(corrupt("a compressed body is shorter than its recorded size"));
        }
        String::from_utf8(out).map_err(|_| corrupt("a decompressed body is not UTF-8"))
    }

    fn ddict(&self, c: &Connection, row: i64, reload: bool) -> Result<Arc<DDict<'static>>> {
        if !reload {
            if let Some(d) = self.ddicts.lock().unwrap_or_else(|p| p.into_inner()).get(&row) {
                return Ok(d.clone());
            }
        }
        let has_table: bool = c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'body_dicts'", [], |r| r.get::<_, i64>(0))? > 0;
        let bytes: Option<Vec<u8>> = if has_table { c.prepare_cached("SELECT dict FROM body_dicts WHERE id = ?1")?.query_row([row], |r| r.get(0)).optional()? } else { None };
        let bytes = bytes.ok_or_else(|| corrupt(&format!("a compressed body needs dictionary #{row}, which this file does not hold")))?;
        let d = Arc::new(DDict::try_create(&bytes).ok_or_else(|| corrupt(&format!("dictionary #{row} cannot be loaded")))?);
        self.ddicts.lock().unwrap_or_else(|p| p.into_inner()).insert(row, d.clone());
        Ok(d)
    }

    /// The value to store for `body`, the receipt that will get sequence number `seq`, inside
    /// the writer's transaction `c`. Stores a freshly trained dictionary first (in the same
    /// transaction, so a rollback takes both), and starts training when the ledger has grown
    /// enough. Falls back to text whenever compression is not possible.
    pub(super) fn store(self: &Arc<Self>, c: &Connection, seq: i64, body: &str) -> Result<Value> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = w.trained.take() {
            let newer = latest(c)?.is_none_or(|(_, _, at)| t.at_seq > at);
            if let (true, Some(zid)) = (newer, zstd_safe::get_dict_id_from_dict(&t.dict)) {
                c.prepare_cached("INSERT INTO body_dicts (zstd_id, trained_at_seq, samples, dict, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![
                    i64::from(zid.get()),
                    t.at_seq,
                    t.samples,
                    t.dict,
                    ts(chrono::Utc::now())
                ])?;
            }
        }
        let head = latest(c)?;
        if w.encoder.as_ref().map(|e| (e.row, e.zstd_id)) != head.map(|(row, zid, _)| (row, zid)) {
            w.encoder = match head {
                Some((row, zstd_id, trained_at)) => {
                    let dict: Vec<u8> = c.prepare_cached("SELECT dict FROM body_dicts WHERE id = ?1")?.query_row([row], |r| r.get(0))?;
                    CCtx::try_create().map(|cctx| Encoder { row, zstd_id, trained_at, cdict: CDict::create(&dict, LEVEL), cctx })
                }
                None => None,
            };
        }
        let next = w.encoder.as_ref().map_or(TRAIN_AFTER, |e| e.trained_at.saturating_mul(GROWTH)).max(w.retry_at);
        if seq >= next && !w.training && w.trained.is_none() {
            let samples = self.samples(c)?;
            if samples.len() as i64 >= SAMPLES / 2 {
                w.training = true;
                let me = self.clone();
                let spawned = std::thread::Builder::new().name("purser-body-dict".into()).spawn(move || me.train(samples, seq));
                if spawned.is_err() {
                    w.training = false;
                    w.retry_at = seq + TRAIN_AFTER;
                }
            }
        }
        let Some(e) = w.encoder.as_mut() else { return Ok(Value::Text(body.to_string())) };
        let Ok(row) = u32::try_from(e.row) else { return Ok(Value::Text(body.to_string())) };
        // (zstd writes a Vec from its start: the frame is made apart, then prefixed.)
        let mut frame = Vec::with_capacity(zstd_safe::compress_bound(body.len()));
        // A content checksum (4 bytes): a damaged blob is an error, never a different body.
        let ready = e.cctx.ref_cdict(&e.cdict).and_then(|_| e.cctx.set_parameter(zstd_safe::CParameter::ChecksumFlag(true)));
        match ready.and_then(|_| e.cctx.compress2(&mut frame, body.as_bytes())) {
            Ok(_) => {
                let mut out = Vec::with_capacity(5 + frame.len());
                out.push(TAG);
                out.extend_from_slice(&row.to_le_bytes());
                out.extend_from_slice(&frame);
                Ok(Value::Blob(out))
            }
            Err(code) => {
                tracing::warn!(error = zstd_safe::get_error_name(code), "a receipt body could not be compressed; stored as text");
                Ok(Value::Text(body.to_string()))
            }
        }
    }

    /// The latest bodies, as text, for training.
    fn samples(&self, c: &Connection) -> Result<Vec<Vec<u8>>> {
        let mut st = c.prepare_cached("SELECT body FROM receipts ORDER BY seq DESC LIMIT ?1")?;
        let mut rows = st.query([SAMPLES])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            if let Ok(t) = self.text(c, r.get_ref(0)?) {
                out.push(t.into_bytes());
            }
        }
        Ok(out)
    }

    fn train(&self, samples: Vec<Vec<u8>>, at_seq: i64) {
        let started = std::time::Instant::now();
        let result = zstd::dict::from_samples(&samples, DICT_BYTES);
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.training = false;
        match result {
            Ok(dict) if zstd_safe::get_dict_id_from_dict(&dict).is_some() => {
                tracing::info!(at_seq, samples = samples.len(), bytes = dict.len(), ms = started.elapsed().as_millis() as u64, "trained a receipt compression dictionary");
                w.trained = Some(Trained { dict, at_seq, samples: samples.len() as i64 });
            }
            other => {
                tracing::warn!(error = ?other.err(), at_seq, "could not train a receipt compression dictionary; bodies stay as they are");
                w.retry_at = at_seq + TRAIN_AFTER;
            }
        }
    }

    /// Waits (up to `limit`) for a training in progress to end; true when none is running.
    pub fn wait_for_training(&self, limit: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        loop {
            if !self.writer.lock().unwrap_or_else(|p| p.into_inner()).training {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The newest stored dictionary: (row, zstd id, trained at).
fn latest(c: &Connection) -> Result<Option<(i64, i64, i64)>> {
    Ok(c.prepare_cached("SELECT id, zstd_id, trained_at_seq FROM body_dicts ORDER BY id DESC LIMIT 1")?.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?)
}

fn corrupt(why: &str) -> LedgerError {
    LedgerError::Corrupt(why.to_string())
}

fn zerr(what: &str, code: usize) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {}", zstd_safe::get_error_name(code)))
}

/// Reads one stored body with a codec of its own (for tools and tests that open a ledger file
/// directly; a [`super::Ledger`] keeps one codec and its cache).
pub fn read_body(c: &Connection, v: ValueRef<'_>) -> Result<String> {
    BodyCodec::default().text(c, v)
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;

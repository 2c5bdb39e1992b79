//! The ledger's audit beyond its hash links: where the chain ends (`receipts head`), whether a
//! head kept outside is still in it, whether the archives its anchors name exist and join up
//! from genesis, whether each grant's spent total is what its receipts paid, and whether each
//! payment's nonce commits to a receipt earlier in the chain. What the chain says is `anchor`'s.

use super::bulk::chain_start;
use super::receipts::{verify_walk, ChainReport, GENESIS_HASH};
use super::{BodyCodec, Ledger, Result};
use crate::receipt::{Outcome, Receipt};
use alloy_primitives::{keccak256, B256};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// What a payment's nonce commits to: `keccak256(head ‖ receipt_id ‖ salt)`, the ledger's head
/// as read when it was signed and 32 random bytes as their bytes, the id as its UTF-8 text. The
/// chain witnesses the ledger through it (see `anchor`).
pub fn commit(head: &B256, receipt_id: &str, salt: &B256) -> B256 {
    let mut pre = Vec::with_capacity(64 + receipt_id.len());
    pre.extend_from_slice(head.as_slice());
    pre.extend_from_slice(receipt_id.as_bytes());
    pre.extend_from_slice(salt.as_slice());
    keccak256(pre)
}

/// A receipt whose authorization was signed: what the chain can be asked about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFact {
    pub id: String,
    pub seq: i64,
    pub time: DateTime<Utc>,
    pub paid: bool,
    pub nonce: String,
    pub network: Option<String>,
    pub asset: Option<String>,
}

/// What the audit found. `problems` empty means every check passed.
#[derive(Debug, Clone)]
pub struct Audit {
    /// The main file's hash chain.
    pub chain: ChainReport,
    /// Receipts ever appended up to the head (archived ones included), and the head's hash.
    pub count: u64,
    pub head: String,
    pub problems: Vec<String>,
    /// Receipts (archived ones included) whose signed nonce the chain can witness.
    pub signed: Vec<SignedFact>,
    /// The signed checkpoints (their signatures are checked by `anchor`, against the vault).
    pub checkpoints: Vec<super::Checkpoint>,
    /// Nonces of payments still in flight (reserved or unknown): no receipt yet, not a problem.
    pub in_flight: Vec<String>,
}

/// `(count, head)`: the seq and hash of the last receipt, or where the chain starts if empty.
pub(super) fn head_conn(c: &Connection) -> Result<(u64, String)> {
    let last: Option<(i64, String)> = c.query_row("SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    let (seq, hash) = match last {
        Some(l) => l,
        None => chain_start(c)?,
    };
    Ok((seq.max(0) as u64, hash))
}

fn key(hash: &str) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(hash.trim_start_matches("0x"), &mut k).ok()?;
    Some(k)
}

/// What the walk over every file collects.
#[derive(Default)]
pub(super) struct Walk {
    /// Receipt hash → seq (genesis is 0).
    seen: HashMap<[u8; 32], i64>,
    problems: Vec<String>,
    signed: Vec<SignedFact>,
    committed_before: bool,
    /// Reservations a receipt accounts for: id → (paid, the paid micros).
    accounted: HashMap<String, (bool, Option<u64>)>,
}

impl Walk {
    pub(super) fn visit(&mut self, seq: i64, r: &Receipt) -> Result<()> {
        if let Some(k) = key(&r.hash) {
            self.seen.insert(k, seq);
        }
        if let Some(rid) = &r.reservation_id {
            if r.outcome == Outcome::Paid {
                let micros = r.amount_usd.as_deref().and_then(|a| crate::money::parse_usd(a).ok());
                self.accounted.insert(rid.clone(), (true, micros));
            } else {
                self.accounted.entry(rid.clone()).or_insert((false, None));
            }
        }
        let Some(nonce) = &r.authorization_nonce else { return Ok(()) };
        match (&r.nonce_salt, &r.nonce_commits_to) {
            (Some(salt), Some(to)) => {
                self.committed_before = true;
                let b32 = |v: &str| v.trim_start_matches("0x").parse::<B256>().ok();
                match (b32(to), b32(salt)) {
                    (Some(h), Some(s)) => {
                        let n = commit(&h, &r.id, &s);
                        if !n.to_string().eq_ignore_ascii_case(nonce) {
                            self.problems.push(format!("receipt {} (#{seq}): its nonce {nonce} is not the commitment {n} its salt and head make: the receipt was rewritten", r.id));
                        }
                    }
                    _ => self.problems.push(format!("receipt {} (#{seq}): its nonce commitment cannot be read: nonce_commits_to and nonce_salt must be 32-byte hex", r.id)),
                }
                match key(to).and_then(|k| self.seen.get(&k)) {
                    Some(s) if *s < seq => {}
                    _ => self
                        .problems
                        .push(format!("receipt {} (#{seq}): its nonce commits to head {to}, which is not a receipt earlier in this chain: receipts before it were rewritten or removed", r.id)),
                }
            }
            _ if self.committed_before && r.outcome == Outcome::Paid => {
                self.problems.push(format!("receipt {} (#{seq}) was paid with a nonce that commits to no head, after receipts whose nonces do: it was rewritten", r.id))
            }
            _ => {}
        }
        self.signed.push(SignedFact { id: r.id.clone(), seq, time: r.time, paid: r.outcome == Outcome::Paid, nonce: nonce.clone(), network: r.network.clone(), asset: r.asset.clone() });
        Ok(())
    }
}

impl Ledger {
    /// `(count, head)`: how many receipts were ever appended up to the head, and its hash.
    pub fn head(&self) -> Result<(u64, String)> {
        self.read(|c| head_conn(c))
    }

    /// Checks the whole ledger (see the module doc); `expect_head`: a head kept from before,
    /// which must still be a receipt of the chain.
    pub fn audit(&self, expect_head: Option<&str>) -> Result<Audit> {
        let codec = self.codec.clone();
        // One read transaction: a snapshot, even while the daemon writes.
        self.read(|c| {
            let tx = c.transaction()?;
            audit_conn(&tx, &codec, expect_head)
        })
    }
}

fn audit_conn(c: &Connection, codec: &BodyCodec, expect_head: Option<&str>) -> Result<Audit> {
    let mut w = Walk::default();
    w.seen.insert([0u8; 32], 0);
    archives(c, &mut w)?;
    let chain = verify_walk(c, codec, &mut |seq, r| w.visit(seq, r))?;
    if let ChainReport::Broken { id, seq, why, .. } = &chain {
        w.problems.insert(0, format!("the chain is broken at receipt {id} (#{seq}): {why}"));
    }
    grant_totals(c, &mut w)?;
    let (count, head) = head_conn(c)?;
    if let Some(h) = expect_head {
        if !key(h).is_some_and(|k| w.seen.contains_key(&k)) {
            w.problems.push(format!("the expected head {h} is not a receipt of this chain (its head is #{count} {head}): receipts up to it were removed or rewritten"));
        }
    }
    // Each checkpoint's head must be the receipt at its position: the chain extends it.
    let checkpoints = super::checkpoints::checkpoints_conn(c)?;
    for cp in &checkpoints {
        let at = key(&cp.head).and_then(|k| w.seen.get(&k)).copied();
        if at != Some(cp.count as i64) {
            w.problems.push(format!(
                "checkpoint #{} (signed {}) names head {}, which is not receipt #{} of this chain (it ends at #{count}): receipts were removed or rewritten",
                cp.count, cp.time, cp.head, cp.count
            ));
        }
    }
    let mut st = c.prepare("SELECT nonce FROM reservations WHERE state IN ('reserved', 'unknown') AND nonce IS NOT NULL")?;
    let in_flight = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(Audit { chain, count, head, problems: w.problems, signed: w.signed, checkpoints, in_flight })
}

/// Each archive the anchors name must exist, verify, and join the one before (from genesis);
/// the last must end where the main chain starts. Their receipts count in the walk.
fn archives(c: &Connection, w: &mut Walk) -> Result<()> {
    let mut st = c.prepare("SELECT file, max(last_seq), min(first_seq) FROM receipt_archives GROUP BY file ORDER BY max(last_seq)")?;
    let files: Vec<(String, i64, i64)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut end = (0i64, GENESIS_HASH.to_string());
    for (file, last_seq, _) in files {
        let path = PathBuf::from(&file);
        if !path.exists() {
            w.problems.push(format!("archive anchor #{last_seq} names {file}, which does not exist: the receipts before the chain's start cannot be checked"));
            return Ok(());
        }
        let a = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let start = chain_start(&a)?;
        if start != end {
            w.problems.push(format!("archive {file} starts after #{} {}, but the chain before it ends at #{} {}", start.0, start.1, end.0, end.1));
        }
        let recorded: String = c.query_row("SELECT last_hash FROM receipt_archives WHERE file = ?1 AND last_seq = ?2", rusqlite::params![file, last_seq], |r| r.get(0))?;
        let report = verify_walk(&a, &BodyCodec::default(), &mut |seq, r| if seq <= last_seq { w.visit(seq, r) } else { Ok(()) })?;
        if let ChainReport::Broken { id, seq, why, .. } = report {
            w.problems.push(format!("archive {file} is broken at receipt {id} (#{seq}): {why}"));
        }
        let held: Option<String> = a.query_row("SELECT hash FROM receipts WHERE seq = ?1", [last_seq], |r| r.get(0)).optional()?;
        if held.as_deref() != Some(recorded.as_str()) {
            w.problems.push(format!("archive {file} does not hold receipt #{last_seq} {recorded} as the ledger's anchor records"));
        }
        end = (last_seq, recorded);
    }
    let main_start = chain_start(c)?;
    if main_start != end {
        w.problems.push(format!("the chain starts after #{} {}, but its archives end at #{} {}", main_start.0, main_start.1, end.0, end.1));
    }
    Ok(())
}

/// Each grant's `spent` must be the sum of its spent reservations and `reserved` that of its
/// open ones; every spent reservation must be a receipt's in the chain (paid, or not paid and
/// later shown used on chain), a paid one for exactly its amount. (Receipts naming no
/// reservation the ledger holds, imported or seeded, move no grant's totals.)
fn grant_totals(c: &Connection, w: &mut Walk) -> Result<()> {
    let usd = crate::money::format_usd;
    let (mut spent, mut open): (BTreeMap<String, u64>, BTreeMap<String, u64>) = Default::default();
    let mut st = c.prepare("SELECT id, grant_id, amount, state FROM reservations ORDER BY created_at")?;
    let rows: Vec<(String, String, i64, String)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<rusqlite::Result<_>>()?;
    for (id, gid, amount, state) in &rows {
        let amount = *amount as u64;
        match (state.as_str(), w.accounted.get(id)) {
            ("reserved" | "unknown", _) => *open.entry(gid.clone()).or_default() += amount,
            ("settled", Some((true, micros))) if *micros != Some(amount) => {
                let says = micros.map(usd).unwrap_or_else(|| "nothing".into());
                w.problems.push(format!("reservation {id} of grant {gid} spent {} but its paid receipt says {says}: the receipt's amount was changed", usd(amount)));
            }
            ("settled", Some(_)) => {}
            ("settled", None) => w.problems.push(format!("reservation {id} of grant {gid} spent {} but no receipt in the chain records it: receipts were removed", usd(amount))),
            (_, Some((true, _))) => w.problems.push(format!("a paid receipt names reservation {id} of grant {gid}, which the ledger holds as {state}, not spent")),
            _ => {}
        }
        if state == "settled" {
            *spent.entry(gid.clone()).or_default() += amount;
        }
    }
    let mut st = c.prepare("SELECT id, spent, reserved FROM grants ORDER BY id")?;
    let grants: Vec<(String, i64, i64)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    for (gid, g_spent, g_reserved) in grants {
        let (want, held) = (spent.remove(&gid).unwrap_or(0), open.remove(&gid).unwrap_or(0));
        if g_spent as u64 != want {
            w.problems.push(format!("grant {gid} has spent {} but its spent reservations sum to {}", usd(g_spent as u64), usd(want)));
        }
        if g_reserved as u64 != held {
            w.problems.push(format!("grant {gid} holds {} reserved but its open reservations sum to {}", usd(g_reserved as u64), usd(held)));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) fn tests_walk() -> Walk {
    let mut w = Walk::default();
    w.seen.insert([0u8; 32], 0);
    w
}

#[cfg(test)]
pub(super) fn tests_problems(w: Walk) -> Vec<String> {
    w.problems
}

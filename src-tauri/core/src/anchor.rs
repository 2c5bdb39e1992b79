//! Owns what ties the ledger to the chain: each payment's EIP-3009 nonce commits to the
//! ledger's head as read when it was signed (`keccak256(head ‖ receipt id ‖ salt)`), and the
//! chain's witness for `receipts verify`: the wallet's `AuthorizationUsed` events on each
//! token, against the nonces the receipts hold; and checkpoints `{count, head, time}` signed
//! (EIP-191) by the wallet's key, which the ledger file never holds. The offline audit is the
//! ledger's.

use crate::chain::{http_client, ChainError, Rpc};
use crate::clock::NonceSource;
use crate::ledger::{commit, Audit, Checkpoint, Ledger, SignedFact, GENESIS_HASH};
use crate::networks::{self, NetworkConfig};
use crate::receipt::Receipt;
use crate::wallet::Wallet;
use alloy_primitives::{Address, Signature, B256};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("{what} {value:?} is not 32 bytes of hex")]
    NotHash { what: &'static str, value: String },
    #[error(transparent)]
    Network(#[from] networks::NetworkError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Wallet(#[from] crate::wallet::WalletError),
}

pub type Result<T> = std::result::Result<T, AnchorError>;

/// Blocks one `eth_getLogs` call reads (public RPCs cap ranges; 10 000 is widely accepted).
const LOG_CHUNK: u64 = 10_000;
/// A chain no longer than this is read from block 0 (a local chain); a longer one from the
/// block before the first signed receipt, less this margin of seconds.
const SCAN_FROM_ZERO_BELOW: u64 = 200_000;
const TIME_MARGIN_SECS: u64 = 3_600;

fn bytes32(what: &'static str, value: &str) -> Result<B256> {
    value.trim_start_matches("0x").parse::<B256>().map_err(|_| AnchorError::NotHash { what, value: value.chars().take(80).collect() })
}

/// The nonce a receipt's commitment makes (see `ledger::commit`), from the receipt's hex fields.
pub fn commitment(commits_to: &str, receipt_id: &str, salt: &str) -> Result<B256> {
    Ok(commit(&bytes32("nonce_commits_to", commits_to)?, receipt_id, &bytes32("nonce_salt", salt)?))
}

/// A nonce drawn for one payment, with what it commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub nonce: B256,
    pub salt: B256,
    pub commits_to: String,
}

impl Committed {
    /// Records the salt and head in `receipt` (its `authorization_nonce` is the caller's).
    pub fn stamp(&self, receipt: &mut Receipt) {
        receipt.nonce_salt = Some(self.salt.to_string());
        receipt.nonce_commits_to = Some(self.commits_to.clone());
    }
}

/// Draws the nonce of the payment `receipt_id`: a random salt from `nonces`, committed with the
/// ledger's head as read now (genesis when it cannot be read: a true if weaker commitment).
pub fn committed_nonce(nonces: &dyn NonceSource, ledger: &Ledger, receipt_id: &str) -> Committed {
    let salt = B256::from(nonces.nonce());
    let head = match ledger.head() {
        Ok((_, h)) => h,
        Err(err) => {
            tracing::warn!(error = %err, "ledger head unreadable: the nonce commits to genesis");
            GENESIS_HASH.to_string()
        }
    };
    let (head, commits_to) = match bytes32("head", &head) {
        Ok(b) => (b, head),
        Err(_) => (B256::ZERO, GENESIS_HASH.to_string()),
    };
    Committed { nonce: commit(&head, receipt_id, &salt), salt, commits_to }
}

/// What the chain said (or why it could not say) about one network and token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Witness {
    /// `network token`: read, with how many authorizations the wallet used there.
    pub read: Vec<(String, usize)>,
    /// Networks whose RPC could not be read (nothing is concluded about them).
    pub unreachable: Vec<String>,
    /// Authorizations used on chain that no receipt (nor payment in flight) explains.
    pub problems: Vec<String>,
    /// Paid receipts whose authorization the chain has not seen used (the server said paid).
    pub unconfirmed: Vec<String>,
}

/// Asks each network the receipts name (and any whose RPC the user set) for every
/// `AuthorizationUsed` event by `wallet` on its tokens, and compares them with the receipts.
pub async fn witness(dir: &Path, audit: &Audit, wallet: Address) -> Result<Witness> {
    let cfg = NetworkConfig::load(dir)?;
    let mut groups: BTreeMap<(&'static str, Address), Vec<&SignedFact>> = BTreeMap::new();
    for f in &audit.signed {
        let (Some(net), Some(token)) = (f.network.as_deref().and_then(networks::by_name), f.asset.as_deref().and_then(|a| a.parse::<Address>().ok())) else { continue };
        groups.entry((net.caip2, token)).or_default().push(f);
    }
    for n in networks::REGISTRY {
        if cfg.info(n).rpc_overridden {
            for a in n.assets {
                groups.entry((n.caip2, a.address)).or_default();
            }
        }
    }
    let first_time = audit.signed.iter().map(|f| f.time.timestamp().max(0) as u64).min();
    let known: HashSet<B256> = audit.signed.iter().filter_map(|f| f.nonce.parse().ok()).chain(audit.in_flight.iter().filter_map(|n| n.parse().ok())).collect();
    let mut out = Witness::default();
    let http = http_client();
    let mut rpcs: BTreeMap<&'static str, Option<Rpc>> = BTreeMap::new();
    for ((caip2, token), facts) in groups {
        let Some(net) = networks::by_name(caip2) else { continue };
        if !rpcs.contains_key(caip2) {
            let rpc = Rpc::connect(http.clone(), net, cfg.rpc_url(net)).await;
            if let Err(e) = &rpc {
                out.unreachable.push(format!("{}: {e}", net.v1_name));
            }
            rpcs.insert(caip2, rpc.ok());
        }
        let Some(rpc) = rpcs[caip2].clone() else { continue };
        let used = match used_nonces(&rpc, token, wallet, first_time).await {
            Ok(u) => u,
            Err(e) => {
                out.unreachable.push(format!("{}: {e}", net.v1_name));
                rpcs.insert(caip2, None);
                continue;
            }
        };
        let Some(used) = used else {
            out.unreachable.push(format!("{}: no receipt dates where to start reading its long chain", net.v1_name));
            continue;
        };
        out.read.push((format!("{} {}", net.v1_name, token.to_checksum(None)), used.len()));
        for f in facts.iter().filter(|f| f.paid) {
            if !f.nonce.parse().is_ok_and(|n: B256| used.contains(&n)) {
                out.unconfirmed.push(format!(
                    "paid receipt {} (#{}): its authorization {} is not used on {} (the server said paid; `purser wallet reconcile` checks its transaction)",
                    f.id, f.seq, f.nonce, net.v1_name
                ));
            }
        }
        for n in used.iter().filter(|n| !known.contains(*n)) {
            out.problems.push(format!("the wallet's authorization {n} was used on {} ({}) but no receipt explains it: receipts were removed or rewritten", net.v1_name, token.to_checksum(None)));
        }
    }
    Ok(out)
}

/// The nonces `wallet` used on `token`, read from the block before `first_time` (less a margin),
/// or from block 0 on a short (local) chain; `None` if a long chain has no time to start from.
async fn used_nonces(rpc: &Rpc, token: Address, wallet: Address, first_time: Option<u64>) -> std::result::Result<Option<HashSet<B256>>, ChainError> {
    let (latest, _) = rpc.latest_block().await?;
    let from = if latest < SCAN_FROM_ZERO_BELOW {
        0
    } else {
        match first_time {
            Some(t) => block_before(rpc, latest, t.saturating_sub(TIME_MARGIN_SECS)).await?,
            None => return Ok(None),
        }
    };
    Ok(Some(rpc.authorizations_used_by(token, wallet, from, latest, LOG_CHUNK).await?.into_iter().collect()))
}

/// The last block stamped at or before `t` (0 if none), by bisection.
async fn block_before(rpc: &Rpc, latest: u64, t: u64) -> std::result::Result<u64, ChainError> {
    let (mut lo, mut hi) = (0u64, latest);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match rpc.block(mid).await? {
            Some((_, ts)) if ts <= t => lo = mid,
            _ => hi = mid - 1,
        }
    }
    Ok(lo)
}

/// A checkpoint is written once the chain has grown this many receipts past the last one (and
/// at shutdown).
pub const CHECKPOINT_EVERY: u64 = 100;

/// The text a checkpoint's signature covers.
pub fn checkpoint_message(count: u64, head: &str, time: DateTime<Utc>) -> String {
    format!("Purser ledger checkpoint\ncount: {count}\nhead: {head}\ntime: {}", time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// Signs and stores a checkpoint of the ledger's head if it has grown `every` receipts past the
/// last checkpoint (`None`: if it has grown at all, as at shutdown). Returns it, if written.
pub fn checkpoint(ledger: &Ledger, wallet: &Wallet, now: DateTime<Utc>, every: Option<u64>) -> Result<Option<Checkpoint>> {
    let (count, head) = ledger.head()?;
    let last = ledger.checkpoints()?.last().map(|c| c.count);
    let due = match (last, every) {
        (Some(l), Some(n)) => count >= l.saturating_add(n.max(1)),
        (Some(l), None) => count > l,
        (None, Some(n)) => count >= n.max(1),
        (None, None) => count > 0,
    };
    if !due {
        return Ok(None);
    }
    // Stored to the microsecond: the signed text must be what is read back.
    let time = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let sig = wallet.sign_personal(checkpoint_message(count, &head, time).as_bytes())?;
    let cp = Checkpoint { count, head, time, signer: wallet.address().to_checksum(None), signature: format!("0x{}", hex::encode(sig)) };
    ledger.store_checkpoint(&cp)?;
    Ok(Some(cp))
}

/// Problems with checkpoints' signatures: each must recover to `wallet` (the vault's address).
/// Where each sits in the chain is the audit's check.
pub fn check_signatures(checkpoints: &[Checkpoint], wallet: Address) -> Vec<String> {
    let mut out = Vec::new();
    for cp in checkpoints {
        let msg = checkpoint_message(cp.count, &cp.head, cp.time);
        let signer = hex::decode(cp.signature.trim_start_matches("0x")).ok().and_then(|b| Signature::try_from(b.as_slice()).ok()).and_then(|s| s.recover_address_from_msg(msg.as_bytes()).ok());
        if signer != Some(wallet) {
            out.push(format!("checkpoint #{} (head {}) is not signed by the wallet {}: it was forged or changed", cp.count, cp.head, wallet.to_checksum(None)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_the_hash_of_head_id_and_salt_and_bad_hex_is_named() {
        let (head, salt) = ("11".repeat(32), format!("0x{}", "22".repeat(32)));
        let mut pre = vec![0x11u8; 32];
        pre.extend_from_slice(b"r-1");
        pre.extend_from_slice(&[0x22u8; 32]);
        assert_eq!(commitment(&head, "r-1", &salt).unwrap(), alloy_primitives::keccak256(&pre));
        assert_ne!(commitment(&head, "r-2", &salt).unwrap(), alloy_primitives::keccak256(&pre), "the id is committed");
        assert_eq!(commitment(GENESIS_HASH, "r-1", &salt).unwrap(), commit(&B256::ZERO, "r-1", &B256::repeat_byte(0x22)));
        let err = commitment("beef", "r-1", &salt).unwrap_err().to_string();
        assert!(err.contains("nonce_commits_to") && err.contains("beef"), "{err}");
    }

    #[test]
    fn a_checkpoint_signature_recovers_to_its_signer_only_for_its_own_text() {
        let w = Wallet::from_key_hex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d").unwrap();
        let time = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let msg = checkpoint_message(7, &"ab".repeat(32), time);
        assert_eq!(msg, format!("Purser ledger checkpoint\ncount: 7\nhead: {}\ntime: 2027-01-15T08:00:00.123456Z", "ab".repeat(32)));
        let sig = format!("0x{}", hex::encode(w.sign_personal(msg.as_bytes()).unwrap()));
        let cp = Checkpoint { count: 7, head: "ab".repeat(32), time, signer: String::new(), signature: sig };
        assert!(check_signatures(std::slice::from_ref(&cp), w.address()).is_empty());
        let moved = Checkpoint { count: 6, ..cp.clone() };
        assert_eq!(check_signatures(&[moved], w.address()).len(), 1);
        let garbage = Checkpoint { signature: "0x00".into(), ..cp };
        assert_eq!(check_signatures(&[garbage], w.address()).len(), 1);
    }
}

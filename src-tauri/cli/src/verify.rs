//! `purser receipts verify` and `purser receipts head`: the ledger's audit (hash links,
//! archives, grant totals, nonce commitments, a head kept from before) and the chain's witness.

use anyhow::Result;
use purser_core::ledger::{ChainReport, Ledger};
use serde_json::json;
use std::path::Path;

/// `receipts head [--json]`: `{count, head}`.
pub fn head(ledger: &Ledger, json: bool) -> Result<()> {
    let (count, head) = ledger.head()?;
    if json {
        return crate::print_json(&json!({"count": count, "head": head}));
    }
    println!("head #{count} {head}");
    Ok(())
}

/// `receipts verify [--json] [--expect-head HEAD] [--offline]`: exits 2 naming every problem.
pub fn verify(dir: &Path, ledger: &Ledger, json: bool, expect_head: Option<&str>, offline: bool) -> Result<()> {
    // The wallet's address from its vault file, never from the ledger being checked.
    let wallet = purser_core::wallet::Wallet::address_of(dir).ok();
    let ask_chain = |audit: &purser_core::ledger::Audit| match (offline, wallet) {
        (true, _) => Err("not consulted (--offline)".to_string()),
        (false, None) => Err("not consulted: no wallet in this data dir".to_string()),
        (false, Some(w)) => {
            let run = purser_core::anchor::witness(dir, audit, w);
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run)).map_err(|e| format!("not consulted: {e}"))
        }
    };
    let mut audit = ledger.audit(expect_head)?;
    let mut witness = ask_chain(&audit);
    // A payment reserved and settled between the ledger's snapshot and the chain's read (the
    // daemon running) looks unexplained once: look again with a fresh snapshot.
    if witness.as_ref().is_ok_and(|w| !w.problems.is_empty()) {
        audit = ledger.audit(expect_head)?;
        witness = ask_chain(&audit);
    }
    let mut problems = audit.problems.clone();
    match wallet {
        Some(w) => problems.extend(purser_core::anchor::check_signatures(&audit.checkpoints, w)),
        None if !audit.checkpoints.is_empty() => problems.push("the ledger holds signed checkpoints but this data dir has no wallet to check them against".into()),
        None => {}
    }
    if let Ok(w) = &witness {
        problems.extend(w.problems.iter().cloned());
    }
    let ok = problems.is_empty();
    let file_count = match &audit.chain {
        ChainReport::Intact { count, .. } => *count,
        ChainReport::Broken { checked, .. } => *checked,
    };
    if json {
        let mut v = json!({"ok": ok, "count": file_count, "head": audit.head, "position": audit.count, "problems": problems, "checkpoints": audit.checkpoints.len()});
        match &witness {
            Ok(w) => v["chain"] = serde_json::to_value(w)?,
            Err(why) => v["chain"] = json!({"skipped": why}),
        }
        if let ChainReport::Broken { id, seq, why, checked } = &audit.chain {
            for (k, x) in [("broken_id", json!(id)), ("seq", json!(seq)), ("why", json!(why)), ("checked", json!(checked))] {
                v[k] = x;
            }
        }
        crate::print_json(&v)?;
    } else {
        match &audit.chain {
            ChainReport::Intact { count, head } if ok => println!("ok: {count} receipts, chain intact (head {head})"),
            ChainReport::Intact { .. } => {}
            ChainReport::Broken { id, seq, why, checked } => println!("BROKEN at receipt {id} (#{seq}): {why}; {checked} receipts before it are intact"),
        }
        for p in problems.iter().filter(|p| !p.starts_with("the chain is broken at")) {
            println!("FAILED: {p}");
        }
        if let Some(cp) = audit.checkpoints.last() {
            println!("checkpoints: {}, the last at #{} ({})", audit.checkpoints.len(), cp.count, cp.time);
        }
        match &witness {
            Ok(w) => {
                if w.read.is_empty() && w.unreachable.is_empty() {
                    println!("chain: nothing to ask (no signed payment names a network)");
                }
                for (what, n) in &w.read {
                    println!("chain: {n} authorizations used by the wallet on {what}");
                }
                for u in &w.unreachable {
                    println!("chain: not read for {u}");
                }
                for u in &w.unconfirmed {
                    println!("note: {u}");
                }
            }
            Err(why) => println!("chain: {why}"),
        }
    }
    if !ok {
        std::process::exit(2);
    }
    Ok(())
}

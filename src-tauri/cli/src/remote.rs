//! Talks to a running daemon (or desktop app) over its control socket (approvals live in its
//! memory). Approving asks for the wallet passphrase at the terminal: the daemon checks it.

use crate::args::ApprovalsCmd;
use anyhow::{Context, Result};
use purser_core::control::ControlFile;
use serde_json::Value;
use std::path::Path;

/// The daemon's control file, if a daemon is serving this data dir.
pub fn daemon(dir: &Path) -> Option<ControlFile> {
    let c = ControlFile::read(dir)?;
    Path::new(&format!("/proc/{}", c.pid)).exists().then_some(c)
}

/// Calls a control route; a `{code, message}` error becomes a coded error.
pub async fn call(c: &ControlFile, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
    let (status, v) = purser_core::control::client::call(&c.socket, method, path, body.as_ref()).await.map_err(|e| crate::presence::Coded::error(e.code().as_str(), e.to_string()))?;
    if !status.is_success() {
        return Err(crate::presence::Coded::error(v["code"].as_str().unwrap_or("unknown"), v["message"].as_str().unwrap_or("error")));
    }
    Ok(v)
}

fn need_daemon(dir: &Path) -> Result<ControlFile> {
    daemon(dir).with_context(|| format!("no purser daemon is serving {} (start `purser serve`)", dir.display()))
}

pub async fn approvals(dir: &Path, cmd: ApprovalsCmd) -> Result<()> {
    // Held payments live in the daemon: with none running, nothing is waiting.
    if let (ApprovalsCmd::List { json }, None) = (&cmd, daemon(dir)) {
        if *json {
            return crate::print_json(&serde_json::json!([]));
        }
        println!("No purser daemon is serving {}, so no payment is waiting.", dir.display());
        return Ok(());
    }
    let c = need_daemon(dir)?;
    match cmd {
        ApprovalsCmd::List { json } => {
            let v = call(&c, reqwest::Method::GET, "approvals", None).await?;
            if json {
                return crate::print_json(&v);
            }
            // "3 requests were denied while you were away": told once, then marked seen.
            let missed = call(&c, reqwest::Method::POST, "approvals/missed/ack", None).await?;
            if let Some(m) = missed["message"].as_str() {
                println!("{m} (purser receipts list shows them)");
            }
            let items = v.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("No payments are waiting for you.");
            }
            for a in items {
                println!(
                    "{}  ${}  {} {}  to {}  (grant {}, denied at {})",
                    a["id"].as_str().unwrap_or(""),
                    a["amount_usd"].as_str().unwrap_or(""),
                    a["method"].as_str().unwrap_or(""),
                    a["url"].as_str().unwrap_or(""),
                    a["pay_to"].as_str().unwrap_or(""),
                    a["grant_label"].as_str().unwrap_or(""),
                    a["expires_at"].as_str().unwrap_or("")
                );
                if let Some(i) = a["intent"].as_str() {
                    println!("    the agent says: \"{i}\"");
                }
            }
            Ok(())
        }
        ApprovalsCmd::Approve { id, requirement_hash, allow_for, up_to, json } => {
            let pass = crate::presence::typed(dir, "approving a held payment")?;
            let body = serde_json::json!({"requirement_hash": requirement_hash, "allow_for": allow_for, "up_to": up_to, "passphrase": pass.as_str()});
            let v = call(&c, reqwest::Method::POST, &format!("approvals/{id}/approve"), Some(body)).await?;
            if json {
                crate::print_json(&v)
            } else {
                println!("Approved {id}.{}", rule_note(&v));
                Ok(())
            }
        }
        ApprovalsCmd::Deny { id, block_host, json } => {
            let body = serde_json::json!({"block_host": block_host});
            let v = call(&c, reqwest::Method::POST, &format!("approvals/{id}/deny"), Some(body)).await?;
            if json {
                crate::print_json(&v)
            } else {
                println!("Denied {id}.{}", rule_note(&v));
                Ok(())
            }
        }
        ApprovalsCmd::Missed { json } => {
            let v = call(&c, reqwest::Method::POST, "approvals/missed/ack", None).await?;
            if json {
                return crate::print_json(&v);
            }
            println!("{}", v["message"].as_str().unwrap_or("No request was denied while you were away."));
            for id in v["receipt_ids"].as_array().into_iter().flatten().filter_map(|i| i.as_str()) {
                println!("    receipt {id}");
            }
            Ok(())
        }
    }
}

/// " Rule <id>: auto-approve ... (remove: purser rules remove <id>)" when a decision made one.
fn rule_note(v: &Value) -> String {
    match (v["rule"]["id"].as_str(), v["rule"]["description"].as_str()) {
        (Some(id), Some(d)) => format!(" Rule {id}: {d} (remove: purser rules remove {id})."),
        _ => String::new(),
    }
}

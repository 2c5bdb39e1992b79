//! `purser wallet balance|fund|reconcile` and `purser network list|set-rpc`: the wallet's funds
//! read from the chain, how to fund it, on-chain reconciliation of receipts, and the RPC URL of
//! each network. Printing only; the work is `purser_core::chain`'s.

use crate::args::{NetworkCmd, WalletCmd};
use anyhow::{anyhow, Result};
use purser_core::chain::{funds, reconcile};
use purser_core::clock::SystemClock;
use purser_core::ledger::Ledger;
use purser_core::networks::{self, NetworkConfig};
use purser_core::wallet::Wallet;
use std::path::Path;

fn coded(code: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e} ({code})")
}

fn nets(ledger: &Ledger, names: &[String]) -> Result<Vec<&'static networks::Network>> {
    if names.is_empty() {
        return funds::default_networks(ledger, chrono::Utc::now()).map_err(|e| coded(e.code().as_str(), &e));
    }
    names.iter().map(|n| networks::by_name(n.trim()).ok_or_else(|| coded("unknown_network", format!("network {n:?} is not in the registry")))).collect()
}

/// `wallet balance`, `wallet fund`, `wallet reconcile`.
pub async fn wallet(dir: &Path, cmd: WalletCmd) -> Result<()> {
    let ledger = Ledger::open_in(dir).map_err(|e| coded(e.code().as_str(), &e))?;
    match cmd {
        WalletCmd::Balance { json, refresh, networks } => {
            let address = Wallet::address_of(dir).map_err(|e| coded(e.code().as_str(), &e))?;
            let nets = nets(&ledger, &networks)?;
            let started = std::time::Instant::now();
            let f = funds::funds(&ledger, dir, address, &nets, refresh, chrono::Utc::now()).await.map_err(|e| coded(e.code().as_str(), &e))?;
            if json {
                return crate::print_json(&f);
            }
            println!("Wallet {}", f.address);
            for n in &f.networks {
                println!("{} ({}{}) {} {}", n.network_name, n.network, if n.testnet { ", testnet" } else { "" }, n.symbol, n.asset);
                match (&n.balance, &n.read_at) {
                    (Some(b), Some(t)) => println!("  balance    {b} {} (read {})", n.symbol, t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    _ => println!("  balance    unknown (never read; payments are not checked against it)"),
                }
                if let Some(e) = &n.refresh_error {
                    println!("  refresh    failed: {} ({})", e.message, e.code);
                }
                println!("  grants     could still spend {} {}", n.allocated, n.symbol);
                if n.over_allocated {
                    if let Some(w) = &n.warning {
                        println!("  warning    {w}");
                    }
                }
            }
            if refresh {
                println!("(read from the chain in {} ms)", started.elapsed().as_millis());
            }
            Ok(())
        }
        WalletCmd::Fund { json, networks } => {
            let address = Wallet::address_of(dir).map_err(|e| coded(e.code().as_str(), &e))?;
            let nets = nets(&ledger, &networks)?;
            let f = funds::funds(&ledger, dir, address, &nets, false, chrono::Utc::now()).await.map_err(|e| coded(e.code().as_str(), &e))?;
            if json {
                return crate::print_json(&f);
            }
            println!("Fund the wallet {}:", f.address);
            for n in &f.networks {
                println!("\n{} ({}):\n  {}\n  payment URI (for a wallet app or a QR code): {}", n.network_name, n.network, n.instructions, n.fund_uri);
            }
            println!("\nThen `purser wallet balance --refresh` reads the new balance.");
            Ok(())
        }
        WalletCmd::Reconcile { json } => {
            let report = reconcile::reconcile_once(&ledger, dir, &SystemClock).await.map_err(|e| coded(e.code().as_str(), &e))?;
            // Every receipt the chain contradicts, this pass or an earlier one.
            let flagged = ledger.reconciliations(None, true, 1000).map_err(|e| coded(e.code().as_str(), &e))?;
            if json {
                let mut v = serde_json::to_value(&report)?;
                v["flagged_receipts"] = serde_json::to_value(&flagged)?;
                return crate::print_json(&v);
            }
            for c in &report.checked {
                let res = c.reservation.map(|r| format!(" [reservation {r}: {}]", purser_core::money::format_usd(c.micros))).unwrap_or_default();
                println!("{}  {} -> {}: {}{res}", c.receipt_id, c.outcome, c.state, c.detail);
            }
            for e in &report.errors {
                println!("{}: not checked: {} ({})", e.network, e.error.message, e.error.code);
            }
            for f in &flagged {
                println!("flagged: {} {} ({}): {}", f.receipt_id, f.state, f.checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), f.detail);
            }
            println!(
                "{} checked ({} newly queued), {} flagged, in {} ms ({:.1} ms per receipt)",
                report.checked.len(),
                report.queued,
                report.flagged,
                report.elapsed_ms,
                report.per_receipt_us as f64 / 1000.0
            );
            Ok(())
        }
        _ => Err(anyhow!("not a chain command")),
    }
}

/// `network list`, `network set-rpc`.
pub fn network(dir: &Path, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::List { json } => {
            let cfg = NetworkConfig::load(dir).map_err(|e| coded(e.code().as_str(), &e))?;
            let list = cfg.list();
            if json {
                return crate::print_json(&list);
            }
            for n in list {
                println!(
                    "{:<14} {:<14} chain {:<6} {:<8} {}{}  {}",
                    n.name,
                    n.caip2,
                    n.chain_id,
                    if n.testnet { "testnet" } else { "mainnet" },
                    n.rpc,
                    if n.rpc_overridden { " (yours)" } else { "" },
                    n.assets.join(", ")
                );
            }
            Ok(())
        }
        NetworkCmd::SetRpc { network, url, default, json } => {
            let url = match (url, default) {
                (Some(u), false) => Some(u),
                (None, true) => None,
                _ => return Err(coded("invalid_rpc_url", "give a URL, or --default to go back to the registry's")),
            };
            let info = NetworkConfig::set_rpc(dir, &network, url.as_deref()).map_err(|e| coded(e.code().as_str(), &e))?;
            if json {
                return crate::print_json(&info);
            }
            println!("{} ({}) is read through {}{}", info.name, info.caip2, info.rpc, if info.rpc_overridden { "" } else { " (the default)" });
            Ok(())
        }
    }
}

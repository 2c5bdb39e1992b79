//! The background chain task `purser serve` (and the app) run: refreshes the wallet's balances
//! and reconciles receipts on an interval and right after each decision that moved money, off
//! the payment's critical path. A failed RPC is logged and retried on the next round.

use super::reconcile;
use crate::engine::Engine;
use crate::events::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default interval between rounds (`PURSER_CHAIN_INTERVAL_SECS` overrides it for `serve`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// One round: refresh the balances of the networks active grants pay on, then reconcile.
pub async fn round(engine: &Engine, dir: &std::path::Path) {
    match engine.wallet_funds(true).await {
        Ok(f) => {
            for n in f.networks.iter().filter_map(|n| n.refresh_error.as_ref().map(|e| (n, e))) {
                tracing::warn!(network = %n.0.network_name, code = %n.1.code, error = %n.1.message, "balance not refreshed");
            }
        }
        Err(e) => tracing::debug!(error = %e, "no balance refresh"),
    }
    match reconcile::reconcile_once(&engine.ledger, dir, engine.clock.as_ref()).await {
        Ok(report) => {
            for c in &report.checked {
                if c.state != "pending" {
                    engine.events.publish(Event::Reconciled { id: c.receipt_id.clone(), state: c.state.clone() });
                }
                if c.reservation.is_some() {
                    if let Ok(Some(r)) = engine.ledger.receipt(&c.receipt_id) {
                        if let Some(g) = r.grant_id {
                            engine.events.publish(Event::GrantChanged { id: g });
                        }
                    }
                }
                if c.state == "mismatch" || c.state == "missing" {
                    tracing::warn!(receipt = %c.receipt_id, state = %c.state, detail = %c.detail, "receipt flagged by reconciliation");
                }
            }
            for e in &report.errors {
                tracing::warn!(network = %e.network, code = %e.error.code, error = %e.error.message, "reconciliation skipped a network");
            }
        }
        Err(e) => tracing::warn!(code = e.code(), error = %e, "reconciliation failed"),
    }
}

/// Spawns the task: a round at start, every `interval`, and shortly after each new receipt.
pub fn spawn(engine: Arc<Engine>, dir: PathBuf, interval: Duration) -> tokio::task::JoinHandle<()> {
    let mut events = engine.events.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                ev = events.recv() => match ev {
                    Ok(Event::ReceiptAdded { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Let a burst of settlements land, then one round covers them all.
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        while events.try_recv().is_ok() {}
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
            round(&engine, &dir).await;
        }
    })
}

/// The interval `serve` uses.
pub fn interval_from_env() -> Duration {
    std::env::var("PURSER_CHAIN_INTERVAL_SECS").ok().and_then(|v| v.parse::<u64>().ok()).filter(|s| *s > 0).map(Duration::from_secs).unwrap_or(DEFAULT_INTERVAL)
}

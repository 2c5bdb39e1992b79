//! Owns the daemon's background work off the payment path: the chain task `purser serve` (and
//! the app) run, which refreshes the wallet's balances
//! and reconciles receipts on an interval and right after each decision that moved money, off
//! the payment's critical path. A failed RPC is logged and retried on the next round; while a
//! chain is unreachable, the rounds new receipts trigger back off (5 s, doubling up to the
//! interval) instead of running after every receipt: each round reads the pending receipts
//! before it learns the RPC is down, so at a steady stream of receipts the unbacked-off rounds
//! churned memory for nothing (the one-hour soak's `--unreachable-rpc` run found it).

use crate::chain::reconcile;
use crate::engine::Engine;
use crate::events::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default interval between rounds (`PURSER_CHAIN_INTERVAL_SECS` overrides it for `serve`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The first wait after a round that could not reach a chain.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// When receipt-triggered rounds may run again after rounds that could not reach a chain.
#[derive(Debug, Clone)]
pub struct Backoff {
    max: Duration,
    /// The current wait and the moment it ends; `None` while chains answer.
    state: Option<(Duration, Instant)>,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff { max, state: None }
    }

    /// A round reached every chain it needed: no wait.
    pub fn reached(&mut self) {
        self.state = None;
    }

    /// A round could not reach a chain: wait `FIRST_BACKOFF`, then twice the last wait, at most `max`.
    pub fn unreachable(&mut self, now: Instant) {
        let wait = self.state.map(|(w, _)| w.saturating_mul(2)).unwrap_or(FIRST_BACKOFF).min(self.max);
        self.state = Some((wait, now + wait));
    }

    /// May a receipt-triggered round run at `now`? (Interval rounds always run.)
    pub fn allows(&self, now: Instant) -> bool {
        self.state.is_none_or(|(_, until)| now >= until)
    }

    /// When the current wait ends (`None` while chains answer).
    pub fn until(&self) -> Option<Instant> {
        self.state.map(|(_, until)| until)
    }
}

/// Sleeps until `t`, or forever when there is nothing to wait for.
async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// One round: refresh the balances of the networks active grants pay on, then reconcile.
/// Answers whether every chain it needed answered (no wallet or nothing to do counts as yes).
pub async fn round(engine: &Engine, dir: &std::path::Path) -> bool {
    let mut reached = true;
    // No request leaves the machine for a network the user never chose: with no active grant,
    // no balance is read (the wallet screen still reads them when the user asks).
    let active = crate::chain::funds::active_networks(&engine.ledger, engine.clock.now()).map(|n| !n.is_empty()).unwrap_or(false);
    if !active {
        tracing::debug!("no active grant: no balance read");
    } else {
        match engine.wallet_funds(true).await {
            Ok(f) => {
                for n in f.networks.iter().filter_map(|n| n.refresh_error.as_ref().map(|e| (n, e))) {
                    reached = false;
                    tracing::warn!(network = %n.0.network_name, code = %n.1.code, error = %n.1.message, "balance not refreshed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "no balance refresh"),
        }
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
                reached = false;
                tracing::warn!(network = %e.network, code = %e.error.code, error = %e.error.message, "reconciliation skipped a network");
            }
        }
        Err(e) => {
            reached = false;
            tracing::warn!(code = %e.code(), error = %e, "reconciliation failed");
        }
    }
    // Every CHECKPOINT_EVERY receipts, a checkpoint signed by the wallet's key.
    checkpoint_engine(engine, Some(crate::anchor::CHECKPOINT_EVERY)).await;
    reached
}

/// Spawns the task: a round at start, every `interval`, and shortly after each new receipt
/// (while a chain is unreachable, at the end of its backoff instead: a receipt is never left to
/// wait for the interval).
pub fn spawn(engine: Arc<Engine>, dir: PathBuf, interval: Duration) -> tokio::task::JoinHandle<()> {
    let mut events = engine.events.subscribe();
    tokio::spawn(async move {
        let mut backoff = Backoff::new(interval);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A receipt arrived during a backoff: one round is owed when it ends.
        let mut owed = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = sleep_until(backoff.until().filter(|_| owed)) => {}
                ev = events.recv() => match ev {
                    Ok(Event::ReceiptAdded { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Let a burst of settlements land, then one round covers them all.
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        while events.try_recv().is_ok() {}
                        if !backoff.allows(Instant::now()) {
                            owed = true;
                            continue;
                        }
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
            owed = false;
            if round(&engine, &dir).await {
                backoff.reached();
            } else {
                backoff.unreachable(Instant::now());
            }
        }
    })
}

/// The interval `serve` uses.
pub fn interval_from_env() -> Duration {
    crate::config::Config::get().chain_interval
}

/// [`checkpoint`] for the running daemon, off the async threads; does nothing while the wallet
/// is locked, and only logs a failure (a checkpoint never holds up anything).
pub async fn checkpoint_engine(engine: &Engine, every: Option<u64>) {
    let Some(wallet) = engine.wallet() else { return };
    let now = engine.clock.now();
    match engine.ledger.blocking(move |l| crate::anchor::checkpoint(l, &wallet, now, every)).await {
        Ok(Ok(Some(cp))) => tracing::info!(count = cp.count, head = %cp.head, "ledger checkpoint signed"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "no ledger checkpoint"),
        Err(e) => tracing::warn!(error = %e, "no ledger checkpoint"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_chains_back_off_doubling_up_to_the_interval_and_reset_once_reached() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(60));
        assert!(b.allows(t0), "no wait while chains answer");
        b.unreachable(t0);
        assert!(!b.allows(t0 + Duration::from_secs(4)));
        assert!(b.allows(t0 + FIRST_BACKOFF));
        assert_eq!(b.until(), Some(t0 + FIRST_BACKOFF), "an owed round runs when the wait ends");
        let waits: Vec<u64> = (0..6)
            .map(|_| {
                b.unreachable(t0);
                b.state.unwrap().0.as_secs()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 60, 60, 60], "doubling, capped at the interval");
        assert!(!b.allows(t0 + Duration::from_secs(59)));
        b.reached();
        assert!(b.allows(t0), "a round that reached its chains ends the wait");
        let mut short = Backoff::new(Duration::from_secs(2));
        short.unreachable(t0);
        assert!(short.allows(t0 + Duration::from_secs(2)), "never longer than the interval");
    }
}

//! Owns the change notifications the core publishes (the app turns them into UI events; the UI
//! then refetches: the ledger stays the truth).

use serde::Serialize;
use tokio::sync::broadcast;

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    ReceiptAdded {
        id: String,
    },
    ApprovalPending {
        id: String,
    },
    ApprovalResolved {
        id: String,
    },
    GrantChanged {
        id: String,
    },
    /// The wallet was locked or unlocked.
    WalletChanged {
        locked: bool,
    },
    /// "Pause all spending" was switched on or off.
    PauseChanged {
        paused: bool,
    },
    /// The wallet's balances were read from the chain again.
    FundsChanged,
    /// A receipt's reconciliation with the chain changed (`confirmed`, `mismatch`, `missing`, `released`).
    Reconciled {
        id: String,
        state: String,
    },
    /// The desktop shell's own: the app switched to or from a demo session's data (the UI
    /// refetches everything).
    DemoChanged,
    /// The desktop shell's own: the demo printed a line of progress.
    DemoLine,
    /// The desktop shell's own: the UI fell behind a burst of events; it refetches everything.
    Resync,
}

/// A cheap, cloneable publisher. Publishing never blocks and never fails for lack of listeners.
#[derive(Debug, Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Events(broadcast::channel(1024).0)
    }
}

impl Events {
    pub fn publish(&self, e: Event) {
        let _ = self.0.send(e);
    }
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

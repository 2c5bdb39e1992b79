//! Owns "pause all spending": one switch, stored in the ledger's settings so a restart keeps it,
//! under which the pipeline refuses every payment (`spending_paused`, with a receipt) until it
//! is turned off. Requests that need no payment still pass; nothing else about a grant changes.

use crate::engine::{Engine, EngineError};
use crate::events::Event;
use crate::ledger::PAUSED;
use crate::presence::Presence;
use std::sync::atomic::Ordering;

/// The reason code of a payment refused while spending is paused.
pub const REASON: &str = "spending_paused";

impl Engine {
    /// Spending is paused: every payment is refused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Pauses (`true`) or resumes all spending. Stored durably before it takes effect; publishes
    /// `Event::PauseChanged`. Returns the new state. Resuming widens spending and needs the
    /// user's presence; pausing never does.
    pub fn set_paused(&self, paused: bool, presence: Option<&Presence>) -> Result<bool, EngineError> {
        if !paused {
            crate::presence::require(presence, "resuming spending")?;
        }
        self.ledger.set_setting(PAUSED, if paused { "1" } else { "0" }, self.clock.now())?;
        let was = self.paused.swap(paused, Ordering::SeqCst);
        if was != paused {
            tracing::info!(paused, "spending {}", if paused { "paused" } else { "resumed" });
        }
        self.events.publish(Event::PauseChanged { paused });
        Ok(paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    #[test]
    fn the_switch_survives_a_restart_and_is_announced() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap();
        assert!(!e.paused(), "off by default");
        let mut rx = e.events.subscribe();
        assert!(e.set_paused(true, None).unwrap());
        assert!(e.paused());
        assert_eq!(rx.try_recv().unwrap(), Event::PauseChanged { paused: true });
        drop(e);
        let e = Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap();
        assert!(e.paused(), "still paused after a restart");
        assert_eq!(e.set_paused(false, None).unwrap_err().code(), "presence_required", "resuming needs the user");
        assert!(e.paused(), "a refused resume changes nothing");
        assert!(!e.set_paused(false, Some(&Presence::app_click())).unwrap());
        let e = Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap();
        assert!(!e.paused());
    }
}

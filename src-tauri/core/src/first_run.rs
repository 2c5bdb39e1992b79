//! Owns the first run: whether the app shows its welcome (no wallet, no grant, no receipt, and
//! not dismissed — the dismissal is a ledger setting, so it survives restarts), setting up the
//! wallet from the app (the same `Wallet::create` / `Wallet::import` as `purser wallet
//! new|import`, then unlocked at once), and the IPC shape of the app's demo session.

use crate::engine::{ApiError, Engine, EngineError};
use crate::wallet::custody::WalletStatus;
use crate::wallet::Wallet;
use serde::Serialize;

/// The settings key recording that the user dismissed the welcome (`1`).
pub const WELCOME_DISMISSED: &str = "welcome_dismissed";

/// Why a first-run request is refused.
#[derive(Debug, thiserror::Error)]
pub enum FirstRunError {
    #[error("the two passphrases differ")]
    PassphrasesDiffer,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl FirstRunError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            FirstRunError::PassphrasesDiffer => crate::api::ErrorCode::PassphrasesDiffer,
            FirstRunError::Engine(e) => e.code(),
        }
    }
}

impl From<FirstRunError> for ApiError {
    fn from(e: FirstRunError) -> ApiError {
        ApiError { code: e.code(), message: e.to_string() }
    }
}

/// What the welcome needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WelcomeState {
    /// Show the welcome: a first run (nothing set up, nothing recorded) not dismissed.
    pub show: bool,
    pub has_wallet: bool,
    pub has_grants: bool,
    pub has_receipts: bool,
    pub dismissed: bool,
}

/// Where the app's demo session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum DemoPhase {
    /// No demo: the app shows the real data.
    Idle,
    /// Starting the chain, paywall and proxy (still the real data).
    Starting,
    /// The sample agent is running; the app shows the demo's data.
    Running,
    /// The agent is done; the demo's data stays on screen (and its chain up) until Stop demo.
    Finished,
    /// Stopping everything the demo started.
    Stopping,
}

/// The demo's counts once the agent is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DemoOutcome {
    pub paid: u32,
    pub refused: u32,
    /// Spent under the demo grant, exact USD (`"$0.953"`).
    pub spent_usd: String,
    pub budget_usd: String,
}

/// The demo session, for the banner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DemoStatus {
    pub phase: DemoPhase,
    /// Every screen shows the demo's engine (its own ledger and wallet), not the real one.
    pub showing_demo: bool,
    /// The demo's data dir (`<data dir>/demo`).
    pub dir: String,
    /// The latest line of the demo's progress (one per step and per decision).
    pub progress: String,
    /// The last lines (oldest first, at most 40).
    pub lines: Vec<String>,
    /// The last demo's failure, if it failed (cleared by the next start).
    pub error: Option<ApiError>,
    pub outcome: Option<DemoOutcome>,
}

/// Counts a front end shows for a finished demo.
pub fn demo_outcome(paid: usize, refused: usize, spent_micros: u64, budget_micros: u64) -> DemoOutcome {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    DemoOutcome { paid: n(paid), refused: n(refused), spent_usd: crate::money::format_usd(spent_micros), budget_usd: crate::money::format_usd(budget_micros) }
}

impl Engine {
    /// Whether this is a first run, and whether the welcome was dismissed.
    pub fn welcome_state(&self) -> Result<WelcomeState, EngineError> {
        let has_wallet = self.wallet_status().address.is_some();
        let has_grants = !self.ledger.list_grants()?.is_empty();
        let has_receipts = !self.ledger.list_receipts(1)?.is_empty();
        let dismissed = self.ledger.setting(WELCOME_DISMISSED)?.as_deref() == Some("1");
        Ok(WelcomeState { show: !has_wallet && !has_grants && !has_receipts && !dismissed, has_wallet, has_grants, has_receipts, dismissed })
    }

    /// "Not now": the welcome is not shown again.
    pub fn dismiss_welcome(&self) -> Result<WelcomeState, EngineError> {
        self.ledger.set_setting(WELCOME_DISMISSED, "1", self.clock.now())?;
        self.welcome_state()
    }

    /// A new random key sealed with `passphrase` in the data dir (as `purser wallet new`), then
    /// unlocked (and remembered by the OS keychain with `remember`).
    pub fn create_wallet(&self, passphrase: &str, confirm: &str, remember: bool) -> Result<WalletStatus, FirstRunError> {
        if passphrase != confirm {
            return Err(FirstRunError::PassphrasesDiffer);
        }
        Wallet::create(&self.data_dir()?, passphrase).map_err(EngineError::from)?;
        Ok(self.unlock_wallet(passphrase, remember)?)
    }

    /// A 0x-hex private key sealed with `passphrase` (as `purser wallet import --key-file`),
    /// then unlocked.
    pub fn import_wallet_key(&self, key_hex: &str, passphrase: &str, confirm: &str, remember: bool) -> Result<WalletStatus, FirstRunError> {
        if passphrase != confirm {
            return Err(FirstRunError::PassphrasesDiffer);
        }
        Wallet::import(&self.data_dir()?, key_hex, passphrase).map_err(EngineError::from)?;
        Ok(self.unlock_wallet(passphrase, remember)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(dir: &std::path::Path) -> Engine {
        let e = Engine::new(crate::ledger::Ledger::open_in(dir).unwrap(), None).unwrap();
        e.set_data_dir(dir);
        e
    }

    #[test]
    fn the_welcome_shows_on_a_first_run_until_dismissed_or_set_up() {
        let tmp = tempfile::tempdir().unwrap();
        let e = engine(tmp.path());
        let s = e.welcome_state().unwrap();
        assert!(s.show && !s.has_wallet && !s.has_grants && !s.has_receipts && !s.dismissed, "{s:?}");
        let s = e.dismiss_welcome().unwrap();
        assert!(!s.show && s.dismissed, "{s:?}");
        assert!(engine(tmp.path()).welcome_state().unwrap().dismissed, "the dismissal is stored in the ledger");

        let tmp = tempfile::tempdir().unwrap();
        let e = engine(tmp.path());
        let err = e.create_wallet("one passphrase", "another", false).unwrap_err();
        assert_eq!(err.code(), "passphrases_differ");
        assert!(!Wallet::exists(tmp.path()), "nothing written when they differ");
        assert_eq!(e.create_wallet("", "", false).unwrap_err().code(), "empty_passphrase");
        let status = e.create_wallet("a long passphrase", "a long passphrase", false).unwrap();
        assert!(!status.locked, "unlocked at once");
        assert_eq!(status.address, Some(Wallet::address_of(tmp.path()).unwrap().to_checksum(None)));
        let s = e.welcome_state().unwrap();
        assert!(!s.show && s.has_wallet, "{s:?}");
        assert_eq!(e.create_wallet("x", "x", false).unwrap_err().code(), "wallet_exists");
    }

    #[test]
    fn a_key_is_imported_sealed_and_unlocked() {
        let tmp = tempfile::tempdir().unwrap();
        let e = engine(tmp.path());
        assert_eq!(e.import_wallet_key("0x1234", "pass", "pass", false).unwrap_err().code(), "bad_key");
        // anvil's first account
        let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let status = e.import_wallet_key(key, "pass", "pass", false).unwrap();
        assert_eq!(status.address.as_deref(), Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
        assert!(!status.locked);
    }

    #[test]
    fn demo_outcome_is_exact() {
        let o = demo_outcome(22, 2, 953_000, 1_000_000);
        assert_eq!((o.paid, o.refused, o.spent_usd.as_str(), o.budget_usd.as_str()), (22, 2, "$0.953", "$1.00"));
    }
}

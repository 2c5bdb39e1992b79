//! Owns the wallet's custody state inside the engine: which data dir holds the vault, whether the
//! keychain remembers it and why not, and the status every front end shows. The operations that
//! change it (unlock, lock, remember) are the engine's (`crate::custody`). While locked, the
//! pipeline refuses every payment with `wallet_locked`.

use super::keychain::KeychainState;
use super::WalletError;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;

/// The engine's custody state (the unlocked key itself is `Engine::wallet`).
#[derive(Debug, Default)]
pub struct Custody {
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) remembered: bool,
    pub(crate) keychain: KeychainState,
    pub(crate) keychain_message: Option<String>,
}

/// What the app and `purser wallet status` show.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WalletStatus {
    /// The wallet's address (readable while locked); `None` when there is no wallet yet.
    pub address: Option<String>,
    /// No key in memory: every payment is refused with `wallet_locked`.
    pub locked: bool,
    /// The keychain holds this wallet's unlocking secret ("remember on this computer").
    pub remembered: bool,
    pub keychain: KeychainState,
    /// Why the keychain could not be used, when it could not.
    pub keychain_message: Option<String>,
}

impl Custody {
    pub(crate) fn get(&self) -> State {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub(crate) fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
    }
    pub(crate) fn keychain_result<T>(&self, r: Result<T, WalletError>) -> Option<T> {
        match r {
            Ok(v) => {
                self.update(|s| {
                    s.keychain = KeychainState::Available;
                    s.keychain_message = None;
                });
                Some(v)
            }
            Err(e) => {
                tracing::warn!(error = %e, "keychain unavailable; falling back to the passphrase");
                self.update(|s| {
                    s.keychain = KeychainState::Unavailable;
                    s.keychain_message = Some(e.to_string());
                    s.remembered = false;
                });
                None
            }
        }
    }
}

/// How `unlock_from_keychain` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeychainUnlock {
    Unlocked,
    /// The keychain answered but holds nothing for this wallet.
    NotRemembered,
    /// The remembered secret no longer opens the vault (it was re-sealed).
    Stale(String),
    /// No keychain: the message says why.
    Unavailable(String),
    NoWallet,
}

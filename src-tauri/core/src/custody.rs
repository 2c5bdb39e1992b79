//! Owns the engine's wallet operations: where the vault lives, unlocking (with the passphrase,
//! or with the key the OS keychain remembers), locking (the key, and the local CA's sealed with
//! it, leave memory), the status every front end shows, and the wallet's funds. The custody
//! state itself is `wallet::custody`'s, a leaf the engine holds.

use crate::chain::funds::{default_networks, funds, Funds};
use crate::chain::ChainError;
use crate::engine::{Engine, EngineError};
use crate::events::Event;
use crate::wallet::custody::{KeychainUnlock, WalletStatus};
use crate::wallet::keychain;
use crate::wallet::{Wallet, WalletError};
use std::path::{Path, PathBuf};

impl Engine {
    /// Tells the engine where the vault lives (the daemon and the app call this once at start).
    pub fn set_data_dir(&self, dir: &Path) {
        self.custody.update(|s| s.data_dir = Some(dir.to_path_buf()));
    }

    pub(crate) fn data_dir(&self) -> Result<PathBuf, EngineError> {
        self.custody.get().data_dir.ok_or_else(|| EngineError::Wallet(WalletError::Io("the engine has no data dir".into())))
    }

    pub fn wallet_status(&self) -> WalletStatus {
        let s = self.custody.get();
        let unlocked = self.wallet();
        let address = match &unlocked {
            Some(w) => Some(w.address()),
            None => s.data_dir.as_deref().and_then(|d| Wallet::address_of(d).ok()),
        };
        WalletStatus { address: address.map(|a| a.to_checksum(None)), locked: unlocked.is_none(), remembered: s.remembered, keychain: s.keychain, keychain_message: s.keychain_message }
    }

    fn changed(&self) -> WalletStatus {
        let status = self.wallet_status();
        self.events.publish(Event::WalletChanged { locked: status.locked });
        status
    }

    /// Unlocks with the passphrase; with `remember`, also keeps the unlocking secret in the OS
    /// keychain (when the keychain is unavailable the wallet still unlocks, and the status says
    /// why nothing was remembered).
    pub fn unlock_wallet(&self, passphrase: &str, remember: bool) -> Result<WalletStatus, EngineError> {
        let dir = self.data_dir()?;
        let (wallet, kek) = Wallet::open(&dir, passphrase)?;
        let address = wallet.address();
        self.set_wallet(Some(wallet));
        if remember && self.custody.keychain_result(keychain::store(&dir, address, &kek)).is_some() {
            self.custody.update(|s| s.remembered = true);
        }
        tracing::info!(%address, remember, "wallet unlocked");
        Ok(self.changed())
    }

    /// [`Engine::unlock_wallet`] with a passphrase typed for it, which also shows the user's
    /// presence: one key derivation for both.
    pub fn unlock_wallet_present(&self, passphrase: &str, remember: bool) -> Result<(WalletStatus, crate::presence::Presence), EngineError> {
        let status = self.unlock_wallet(passphrase, remember)?;
        Ok((status, crate::presence::Presence::vault_opened()))
    }

    /// Unlocks with the secret the keychain remembers for this wallet, if any (at start).
    pub fn unlock_from_keychain(&self) -> KeychainUnlock {
        let Ok(dir) = self.data_dir() else { return KeychainUnlock::NoWallet };
        let Ok(address) = Wallet::address_of(&dir) else { return KeychainUnlock::NoWallet };
        let kek = match keychain::load(&dir, address) {
            Ok(k) => self.custody.keychain_result(Ok(k)).flatten(),
            Err(e) => {
                let msg = e.to_string();
                self.custody.keychain_result::<()>(Err(e));
                return KeychainUnlock::Unavailable(msg);
            }
        };
        let Some(kek) = kek else {
            self.custody.update(|s| s.remembered = false);
            return KeychainUnlock::NotRemembered;
        };
        match Wallet::unlock_with_kek(&dir, &kek) {
            Ok(w) => {
                self.set_wallet(Some(w));
                self.custody.update(|s| s.remembered = true);
                self.changed();
                KeychainUnlock::Unlocked
            }
            Err(e) => KeychainUnlock::Stale(e.to_string()),
        }
    }

    /// Locks: the key leaves memory (zeroised as the last reference drops; a payment already
    /// signing finishes with its own). With `forget`, the keychain's secret is deleted too.
    pub fn lock_wallet(&self, forget: bool) -> WalletStatus {
        let address = self.wallet().map(|w| w.address());
        self.set_wallet(None);
        if forget {
            let dir = self.custody.get().data_dir;
            let address = address.or_else(|| dir.as_deref().and_then(|d| Wallet::address_of(d).ok()));
            if let (Some(dir), Some(address)) = (dir, address) {
                if self.custody.keychain_result(keychain::forget(&dir, address)).is_some() {
                    self.custody.update(|s| s.remembered = false);
                }
            }
        }
        tracing::info!(forget, "wallet locked");
        self.changed()
    }
}

impl Engine {
    /// The wallet's funds on the networks active grants may pay on (all when none), for the
    /// app's wallet screen; `refresh` reads the chain first and publishes `FundsChanged`.
    pub async fn wallet_funds(&self, refresh: bool) -> std::result::Result<Funds, EngineError> {
        let dir = self.ledger.path().parent().map(Path::to_path_buf).unwrap_or_default();
        let address = match self.wallet() {
            Some(w) => w.address(),
            None => crate::wallet::Wallet::address_of(&dir).map_err(|_| ChainError::NoWallet)?,
        };
        let now = self.clock.now();
        let nets = default_networks(&self.ledger, now)?;
        let f = funds(&self.ledger, &dir, address, &nets, refresh, now).await?;
        if refresh {
            self.events.publish(crate::events::Event::FundsChanged);
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[tokio::test]
    async fn lock_and_unlock_change_the_status_and_publish() {
        let dir = tempfile::tempdir().unwrap();
        let addr = Wallet::import(dir.path(), KEY, "pw").unwrap();
        let engine = Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap();
        let mut events = engine.events.subscribe();
        assert!(engine.unlock_wallet("pw", false).is_err(), "no data dir yet");
        engine.set_data_dir(dir.path());
        let s = engine.wallet_status();
        assert_eq!((s.address.as_deref(), s.locked, s.remembered), (Some(addr.to_checksum(None).as_str()), true, false));
        let e = engine.unlock_wallet("wrong", false).unwrap_err();
        assert_eq!(e.code(), "wallet_unlock_failed");
        assert!(engine.wallet().is_none());
        let s = engine.unlock_wallet("pw", false).unwrap();
        assert!(!s.locked);
        assert_eq!(engine.wallet().unwrap().address(), addr);
        assert_eq!(events.recv().await.unwrap(), Event::WalletChanged { locked: false });
        let held = engine.wallet().unwrap();
        let s = engine.lock_wallet(false);
        assert!(s.locked && engine.wallet().is_none());
        assert_eq!(events.recv().await.unwrap(), Event::WalletChanged { locked: true });
        // The only remaining reference is the one this test holds; dropping it frees the key.
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
    }
}

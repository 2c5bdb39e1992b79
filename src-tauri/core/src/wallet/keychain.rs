//! Owns "remember on this computer": the vault's key-encryption key (derived from the
//! passphrase by Argon2id, never the passphrase itself) kept in the OS keychain through the
//! `keyring` crate (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows),
//! one entry per data dir and wallet address. When no keychain answers (no Secret Service on
//! the session bus, a locked store), every call says so with `keychain_unavailable` and the
//! passphrase stays the way in.

use super::vault::Kek;
use super::WalletError;
use alloy_primitives::Address;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// The keychain service every Purser entry is stored under.
pub const SERVICE: &str = "purser";

/// What Purser last learnt about the OS keychain.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeychainState {
    /// Not asked yet.
    #[default]
    Unknown,
    /// It answered (with or without an entry for this wallet).
    Available,
    /// It did not answer; the passphrase is needed at every unlock.
    Unavailable,
}

/// The entry's user name: the wallet's address and a hash of the data dir's absolute path, so
/// two data dirs holding the same key never share (or delete) each other's entry.
pub fn account(dir: &Path, address: Address) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let digest = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    format!("wallet-{}-{}", hex::encode(address), &hex::encode(digest)[..16])
}

fn unavailable(e: keyring::Error) -> WalletError {
    let why = match &e {
        keyring::Error::NoStorageAccess(inner) => format!("no access to the secret store: {inner}"),
        keyring::Error::PlatformFailure(inner) => format!("no secret service answered: {inner}"),
        other => other.to_string(),
    };
    WalletError::Keychain(why)
}

/// On Linux the Secret Service lives on the session bus. With no bus to reach (no
/// `DBUS_SESSION_BUS_ADDRESS`, no `$XDG_RUNTIME_DIR/bus`), say so at once rather than let libdbus
/// autolaunch a bus of its own (which would outlive Purser).
fn session_bus() -> Result<(), WalletError> {
    if !cfg!(target_os = "linux") || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return Ok(());
    }
    match std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("bus")) {
        Some(bus) if bus.exists() => Ok(()),
        _ => Err(WalletError::Keychain("no D-Bus session bus, so no Secret Service".into())),
    }
}

fn entry(dir: &Path, address: Address) -> Result<keyring::Entry, WalletError> {
    session_bus()?;
    keyring::Entry::new(SERVICE, &account(dir, address)).map_err(unavailable)
}

/// Stores the key-encryption key for the wallet in `dir`.
pub fn store(dir: &Path, address: Address, kek: &Kek) -> Result<(), WalletError> {
    let hex = Zeroizing::new(hex::encode(kek.as_ref()));
    entry(dir, address)?.set_password(&hex).map_err(unavailable)
}

/// The remembered key-encryption key, if the keychain holds one for this wallet.
pub fn load(dir: &Path, address: Address) -> Result<Option<Kek>, WalletError> {
    let secret = match entry(dir, address)?.get_password() {
        Ok(s) => Zeroizing::new(s),
        Err(keyring::Error::NoEntry) => return Ok(None),
        Err(e) => return Err(unavailable(e)),
    };
    let mut kek = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(secret.as_bytes(), kek.as_mut()).map_err(|_| WalletError::Keychain("the remembered secret is malformed".into()))?;
    Ok(Some(kek))
}

/// Deletes the remembered key-encryption key; `false` when there was none.
pub fn forget(dir: &Path, address: Address) -> Result<bool, WalletError> {
    match entry(dir, address)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_differ_per_data_dir_and_address() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let x = Address::repeat_byte(1);
        assert_ne!(account(a.path(), x), account(b.path(), x));
        assert_ne!(account(a.path(), x), account(a.path(), Address::repeat_byte(2)));
        assert_eq!(account(a.path(), x), account(&a.path().join("."), x));
        assert!(account(a.path(), x).starts_with("wallet-0101"));
    }

    #[test]
    fn with_no_bus_at_all_nothing_is_autolaunched() {
        if std::env::var_os("PURSER_KEYCHAIN_CHILD").is_some() {
            let e = load(Path::new("/nonexistent"), Address::repeat_byte(1)).unwrap_err();
            assert_eq!(e.to_string(), "the OS keychain is unavailable (no D-Bus session bus, so no Secret Service); the passphrase is needed at every unlock");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "wallet::keychain::tests::with_no_bus_at_all_nothing_is_autolaunched", "--nocapture"])
            .env("PURSER_KEYCHAIN_CHILD", "1")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", "/nonexistent")
            .env("DISPLAY", ":99")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn without_a_session_bus_the_keychain_is_unavailable() {
        // The real Secret Service is exercised end to end (tests/e2e/vault.rs, under a private
        // bus with gnome-keyring); here the bus address points nowhere, in a child process so
        // this test's environment stays untouched.
        if std::env::var_os("PURSER_KEYCHAIN_CHILD").is_some() {
            let dir = tempfile::tempdir().unwrap();
            let e = store(dir.path(), Address::repeat_byte(1), &Zeroizing::new([1u8; 32])).unwrap_err();
            assert_eq!(e.code(), "keychain_unavailable");
            assert!(e.to_string().contains("the passphrase is needed"), "{e}");
            assert_eq!(load(dir.path(), Address::repeat_byte(1)).unwrap_err().code(), "keychain_unavailable");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", "wallet::keychain::tests::without_a_session_bus_the_keychain_is_unavailable", "--nocapture"])
            .env("PURSER_KEYCHAIN_CHILD", "1")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/purser-test-bus")
            .env_remove("DISPLAY")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    }
}

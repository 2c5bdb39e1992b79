//! Owns the user's key: sealed at rest in the data dir's vault (Argon2id + XChaCha20-Poly1305,
//! [`vault`]), opened into memory only (zeroised when dropped), optionally remembered in the OS
//! keychain ([`keychain`]), locked and unlocked at runtime by the engine ([`custody`]), and
//! EIP-3009 `TransferWithAuthorization` signatures made with it via alloy. It never signs
//! anything else.

pub mod custody;
pub mod keychain;
pub mod vault;

use crate::x402::{Authorization, Requirement};
use alloy_primitives::{Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{sol, Eip712Domain, SolStruct};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

sol! {
    /// EIP-3009's signed message.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// File name of the vault inside the data dir.
pub const VAULT_FILE: &str = "wallet.vault";
/// The keystore file earlier versions wrote (scrypt + AES-128-CTR); upgraded to the vault at
/// its first unlock, then removed.
pub const LEGACY_KEYSTORE_FILE: &str = "wallet.json";

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("no wallet in {0}: run `purser wallet new` or `purser wallet import`")]
    Missing(PathBuf),
    #[error("a wallet already exists at {0}; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("the private key is not 32 bytes of hex (or not a valid secp256k1 key)")]
    BadKey,
    #[error("wrong passphrase (or the wallet file was altered)")]
    Unlock,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the wallet file is damaged: {0}")]
    Corrupt(String),
    #[error("the wallet file's key derivation parameters {found} are below the floor {floor}; refusing to unlock it")]
    WeakKdf { found: String, floor: String },
    #[error("could not read the keystore: {0}")]
    Keystore(String),
    #[error("the OS keychain is unavailable ({0}); the passphrase is needed at every unlock")]
    Keychain(String),
    #[error("wallet I/O failed: {0}")]
    Io(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

impl WalletError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            WalletError::Missing(_) => crate::api::ErrorCode::WalletMissing,
            WalletError::Exists(_) => crate::api::ErrorCode::WalletExists,
            WalletError::BadKey => crate::api::ErrorCode::BadKey,
            WalletError::Unlock => crate::api::ErrorCode::WalletUnlockFailed,
            WalletError::EmptyPassphrase => crate::api::ErrorCode::EmptyPassphrase,
            WalletError::Corrupt(_) => crate::api::ErrorCode::WalletCorrupt,
            WalletError::WeakKdf { .. } => crate::api::ErrorCode::WeakKdfParams,
            WalletError::Keystore(_) => crate::api::ErrorCode::KeystoreUnreadable,
            WalletError::Keychain(_) => crate::api::ErrorCode::KeychainUnavailable,
            WalletError::Io(_) => crate::api::ErrorCode::WalletIo,
            WalletError::Sign(_) => crate::api::ErrorCode::SignFailed,
        }
    }
}

fn io(e: std::io::Error) -> WalletError {
    WalletError::Io(e.to_string())
}

/// An unlocked wallet. The key lives only in memory and is zeroised on drop (k256's signing key
/// zeroises itself); it is neither `Clone` nor serialisable.
pub struct Wallet {
    signer: PrivateKeySigner,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").field("address", &self.address()).finish_non_exhaustive()
    }
}

/// The file holding the wallet in `dir` (the vault, or an earlier version's keystore), if any.
pub fn wallet_file(dir: &Path) -> Option<PathBuf> {
    [vault_path(dir), legacy_path(dir)].into_iter().find(|p| p.exists())
}

fn vault_path(dir: &Path) -> PathBuf {
    dir.join(VAULT_FILE)
}

fn legacy_path(dir: &Path) -> PathBuf {
    dir.join(LEGACY_KEYSTORE_FILE)
}

fn check_new(dir: &Path, passphrase: &str) -> Result<(), WalletError> {
    if passphrase.is_empty() {
        return Err(WalletError::EmptyPassphrase);
    }
    for path in [vault_path(dir), legacy_path(dir)] {
        if path.exists() {
            return Err(WalletError::Exists(path));
        }
    }
    Ok(())
}

fn signer_of(secret: &[u8; 32]) -> Result<PrivateKeySigner, WalletError> {
    PrivateKeySigner::from_slice(secret).map_err(|_| WalletError::BadKey)
}

/// Seals `secret` into a new vault in `dir` (0600, written atomically).
fn seal_into(dir: &Path, secret: &[u8; 32], passphrase: &str) -> Result<Address, WalletError> {
    let address = signer_of(secret)?.address();
    let (v, _) = vault::Vault::seal(secret, address, passphrase, vault::new_params())?;
    crate::datadir::write_private(&vault_path(dir), &v.to_bytes()).map_err(io)?;
    Ok(address)
}

fn read_vault(dir: &Path) -> Result<vault::Vault, WalletError> {
    let path = vault_path(dir);
    match std::fs::read(&path) {
        Ok(b) => vault::Vault::parse(&b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(WalletError::Missing(path)),
        Err(e) => Err(io(e)),
    }
}

/// Overwrites a file with zeros, syncs it and removes it (best effort against recovery: a
/// journaling or copy-on-write file system may keep older blocks).
fn shred(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let len = std::fs::metadata(path)?.len() as usize;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; len])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)
}

/// Decrypts a standard eth keystore file into a 32-byte secret.
fn keystore_secret(path: &Path, passphrase: &str) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let signer = PrivateKeySigner::decrypt_keystore(path, passphrase).map_err(|e| match e {
        alloy_signer_local::LocalSignerError::EthKeystoreError(k) => match k.to_string() {
            s if s.contains("Mac Mismatch") => WalletError::Unlock,
            s => WalletError::Keystore(s),
        },
        other => WalletError::Keystore(other.to_string()),
    })?;
    let mut bytes = signer.credential().to_bytes();
    let secret = Zeroizing::new(<[u8; 32]>::from(bytes));
    zeroize::Zeroize::zeroize(bytes.as_mut_slice());
    Ok(secret)
}

impl Wallet {
    /// Creates a new random key, sealed with `passphrase`, in `dir`.
    pub fn create(dir: &Path, passphrase: &str) -> Result<Address, WalletError> {
        check_new(dir, passphrase)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        loop {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
            if signer_of(&secret).is_ok() {
                break;
            }
        }
        seal_into(dir, &secret, passphrase)
    }

    /// Imports a 0x-hex private key, sealed with `passphrase`, into `dir`.
    pub fn import(dir: &Path, key_hex: &str, passphrase: &str) -> Result<Address, WalletError> {
        check_new(dir, passphrase)?;
        let hex = Zeroizing::new(key_hex.trim().trim_start_matches("0x").to_string());
        let mut bytes = Zeroizing::new([0u8; 32]);
        if hex.len() != 64 || hex::decode_to_slice(hex.as_bytes(), bytes.as_mut()).is_err() {
            return Err(WalletError::BadKey);
        }
        seal_into(dir, &bytes, passphrase)
    }

    /// Imports a standard encrypted eth keystore (opened with `keystore_passphrase`) and
    /// re-seals its key in the vault with `passphrase`. The keystore file is left as it was.
    pub fn import_keystore(dir: &Path, keystore: &Path, keystore_passphrase: &str, passphrase: &str) -> Result<Address, WalletError> {
        check_new(dir, passphrase)?;
        let secret = keystore_secret(keystore, keystore_passphrase)?;
        seal_into(dir, &secret, passphrase)
    }

    /// The wallet's address, without unlocking it.
    pub fn address_of(dir: &Path) -> Result<Address, WalletError> {
        if !vault_path(dir).exists() && legacy_path(dir).exists() {
            let bytes = std::fs::read(legacy_path(dir)).map_err(io)?;
            let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| WalletError::Corrupt(e.to_string()))?;
            return doc.get("address").and_then(|a| a.as_str()).and_then(|a| a.trim_start_matches("0x").parse().ok()).ok_or_else(|| WalletError::Corrupt("the keystore names no address".into()));
        }
        Ok(read_vault(dir)?.address)
    }

    /// Whether `dir` holds a wallet (a vault, or a keystore from an earlier version).
    pub fn exists(dir: &Path) -> bool {
        vault_path(dir).exists() || legacy_path(dir).exists()
    }

    /// Opens the wallet into memory with the passphrase.
    pub fn unlock(dir: &Path, passphrase: &str) -> Result<Wallet, WalletError> {
        Ok(Self::open(dir, passphrase)?.0)
    }

    /// Opens the wallet with the passphrase; also returns the key-encryption key (what the
    /// keychain remembers). A keystore left by an earlier version is upgraded to a vault sealed
    /// with the same passphrase, and then shredded.
    pub fn open(dir: &Path, passphrase: &str) -> Result<(Wallet, vault::Kek), WalletError> {
        if !vault_path(dir).exists() && legacy_path(dir).exists() {
            let secret = keystore_secret(&legacy_path(dir), passphrase)?;
            seal_into(dir, &secret, passphrase)?;
            match shred(&legacy_path(dir)) {
                Ok(()) => tracing::info!("the wallet keystore was upgraded to the vault format"),
                // The vault is written and takes precedence; the old file is only a leftover.
                Err(e) => tracing::warn!(error = %e, "upgraded to the vault, but the old wallet.json could not be removed"),
            }
        }
        let v = read_vault(dir)?;
        let (secret, kek) = v.open(passphrase, &vault::floor())?;
        Ok((Self::from_secret(&v, &secret)?, kek))
    }

    /// Opens the wallet with a remembered key-encryption key.
    pub fn unlock_with_kek(dir: &Path, kek: &[u8; 32]) -> Result<Wallet, WalletError> {
        let v = read_vault(dir)?;
        let secret = v.open_with_kek(kek, &vault::floor())?;
        Self::from_secret(&v, &secret)
    }

    fn from_secret(v: &vault::Vault, secret: &[u8; 32]) -> Result<Wallet, WalletError> {
        let signer = signer_of(secret)?;
        if signer.address() != v.address {
            return Err(WalletError::Corrupt("the sealed key does not belong to the address in the header".into()));
        }
        Ok(Wallet { signer })
    }

    /// The private key as 0x-hex, after the passphrase (for `purser wallet export`).
    pub fn export_key(dir: &Path, passphrase: &str) -> Result<Zeroizing<String>, WalletError> {
        let v = read_vault(dir)?;
        let (secret, _) = v.open(passphrase, &vault::floor())?;
        // Written straight into a zeroising buffer (no intermediate String holds the key).
        let mut out = Zeroizing::new(String::with_capacity(66));
        out.push_str("0x");
        for b in secret.iter() {
            use std::fmt::Write;
            let _ = write!(out, "{b:02x}");
        }
        Ok(out)
    }

    /// Writes the key as a standard eth keystore (scrypt + AES-128-CTR) at `out`, encrypted with
    /// the wallet's own passphrase. Refuses to overwrite an existing file.
    pub fn export_keystore(dir: &Path, passphrase: &str, out: &Path) -> Result<Address, WalletError> {
        if out.exists() {
            return Err(WalletError::Exists(out.to_path_buf()));
        }
        let v = read_vault(dir)?;
        let (secret, _) = v.open(passphrase, &vault::floor())?;
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| WalletError::Io(format!("{} is not a file name", out.display())))?;
        PrivateKeySigner::encrypt_keystore(parent, &mut rand::thread_rng(), secret.as_ref(), passphrase, Some(name)).map_err(|e| WalletError::Keystore(e.to_string()))?;
        Ok(v.address)
    }

    /// A wallet from a raw key (tests and benchmarks only; the CLI always goes through the vault).
    pub fn from_key_hex(key_hex: &str) -> Result<Wallet, WalletError> {
        let signer: PrivateKeySigner = key_hex.trim().parse().map_err(|_| WalletError::BadKey)?;
        Ok(Wallet { signer })
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Signs an EIP-3009 transfer of exactly `req.amount` to `req.pay_to`, with the EIP-712
    /// domain of the registry's asset (the parser has already checked it matches the challenge).
    pub fn sign_transfer(&self, req: &Requirement, valid_after: u64, valid_before: u64, nonce: B256) -> Result<(Authorization, [u8; 65]), WalletError> {
        let auth = Authorization { from: self.address(), to: req.pay_to, value: req.amount, valid_after, valid_before, nonce };
        let domain = Eip712Domain {
            name: Some(Cow::Borrowed(req.asset.eip712_name)),
            version: Some(Cow::Borrowed(req.asset.eip712_version)),
            chain_id: Some(U256::from(req.network.chain_id)),
            verifying_contract: Some(req.asset.address),
            salt: None,
        };
        let msg = TransferWithAuthorization { from: auth.from, to: auth.to, value: auth.value, validAfter: U256::from(valid_after), validBefore: U256::from(valid_before), nonce };
        let hash = msg.eip712_signing_hash(&domain);
        let sig = self.signer.sign_hash_sync(&hash).map_err(|e| WalletError::Sign(e.to_string()))?;
        Ok((auth, sig.as_bytes()))
    }

    /// A 32-byte key that seals another of Purser's secrets at rest (the local CA's key),
    /// derived from the wallet's secret key with HKDF-SHA256 under `purpose`: it exists only
    /// while the wallet is unlocked, differs for every purpose and reveals nothing of the key.
    pub fn seal_key(&self, purpose: &str) -> Result<Zeroizing<[u8; 32]>, WalletError> {
        let secret = Zeroizing::new(self.signer.credential().to_bytes());
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"purser seal v1"), secret.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(purpose.as_bytes(), out.as_mut()).map_err(|e| WalletError::Sign(format!("seal key: {e}")))?;
        Ok(out)
    }

    /// An EIP-191 `personal_sign` of `msg` (the ledger's checkpoints, see `anchor`): prefixed,
    /// so it can never be taken for a transfer authorization or a transaction.
    pub fn sign_personal(&self, msg: &[u8]) -> Result<[u8; 65], WalletError> {
        let sig = self.signer.sign_message_sync(msg).map_err(|e| WalletError::Sign(e.to_string()))?;
        Ok(sig.as_bytes())
    }
}

#[cfg(test)]
mod tests;

//! Owns the user's key: an encrypted JSON keystore (scrypt + AES-128-CTR, the standard format)
//! in the data dir, unlocked into memory only, and EIP-3009 `TransferWithAuthorization`
//! signatures made with it via alloy. It never signs anything else.

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

/// File name of the keystore inside the data dir.
pub const KEYSTORE_FILE: &str = "wallet.json";

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("no wallet in {0}: run `purser wallet new` or `purser wallet import`")]
    Missing(PathBuf),
    #[error("a wallet already exists at {0}; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("the private key is not 32 bytes of hex")]
    BadKey,
    #[error("wrong passphrase, or the keystore is damaged")]
    Unlock,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("keystore I/O failed: {0}")]
    Io(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

impl WalletError {
    pub fn code(&self) -> &'static str {
        match self {
            WalletError::Missing(_) => "wallet_missing",
            WalletError::Exists(_) => "wallet_exists",
            WalletError::BadKey => "bad_key",
            WalletError::Unlock => "wallet_unlock_failed",
            WalletError::EmptyPassphrase => "empty_passphrase",
            WalletError::Io(_) => "wallet_io",
            WalletError::Sign(_) => "sign_failed",
        }
    }
}

/// An unlocked wallet. The key lives only in memory and is zeroised on drop (k256).
pub struct Wallet {
    signer: PrivateKeySigner,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet").field("address", &self.address()).finish_non_exhaustive()
    }
}

fn keystore_path(dir: &Path) -> PathBuf {
    dir.join(KEYSTORE_FILE)
}

fn check_new(dir: &Path, passphrase: &str) -> Result<(), WalletError> {
    if passphrase.is_empty() {
        return Err(WalletError::EmptyPassphrase);
    }
    let path = keystore_path(dir);
    if path.exists() {
        return Err(WalletError::Exists(path));
    }
    Ok(())
}

/// Writes the address next to the crypto params (as geth does) so it can be shown while locked,
/// and makes the file private.
fn finish_keystore(dir: &Path, address: Address) -> Result<(), WalletError> {
    let path = keystore_path(dir);
    let io = |e: std::io::Error| WalletError::Io(e.to_string());
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).map_err(io)?).map_err(|e| WalletError::Io(e.to_string()))?;
    doc["address"] = serde_json::Value::String(hex::encode(address));
    crate::datadir::write_private(&path, doc.to_string().as_bytes()).map_err(io)
}

impl Wallet {
    /// Creates a new random key, encrypted with `passphrase`, in `dir`.
    pub fn create(dir: &Path, passphrase: &str) -> Result<Address, WalletError> {
        check_new(dir, passphrase)?;
        let (signer, _) = PrivateKeySigner::new_keystore(dir, &mut rand::thread_rng(), passphrase, Some(KEYSTORE_FILE))
            .map_err(|e| WalletError::Io(e.to_string()))?;
        finish_keystore(dir, signer.address())?;
        Ok(signer.address())
    }

    /// Imports a 0x-hex private key, encrypted with `passphrase`, into `dir`.
    pub fn import(dir: &Path, key_hex: &str, passphrase: &str) -> Result<Address, WalletError> {
        check_new(dir, passphrase)?;
        let hex = Zeroizing::new(key_hex.trim().trim_start_matches("0x").to_string());
        let mut bytes = Zeroizing::new([0u8; 32]);
        if hex.len() != 64 || hex::decode_to_slice(hex.as_bytes(), bytes.as_mut()).is_err() {
            return Err(WalletError::BadKey);
        }
        let (signer, _) = PrivateKeySigner::encrypt_keystore(dir, &mut rand::thread_rng(), bytes.as_ref(), passphrase, Some(KEYSTORE_FILE))
            .map_err(|e| match e {
                alloy_signer_local::LocalSignerError::EcdsaError(_) => WalletError::BadKey,
                other => WalletError::Io(other.to_string()),
            })?;
        finish_keystore(dir, signer.address())?;
        Ok(signer.address())
    }

    /// The keystore's address, without unlocking it.
    pub fn address_of(dir: &Path) -> Result<Address, WalletError> {
        let path = keystore_path(dir);
        let bytes = std::fs::read(&path).map_err(|_| WalletError::Missing(path))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| WalletError::Io(e.to_string()))?;
        doc.get("address").and_then(|a| a.as_str()).and_then(|a| a.trim_start_matches("0x").parse().ok()).ok_or(WalletError::Unlock)
    }

    /// Whether `dir` holds a keystore.
    pub fn exists(dir: &Path) -> bool {
        keystore_path(dir).exists()
    }

    /// Decrypts the keystore into memory.
    pub fn unlock(dir: &Path, passphrase: &str) -> Result<Wallet, WalletError> {
        let path = keystore_path(dir);
        if !path.exists() {
            return Err(WalletError::Missing(path));
        }
        let signer = PrivateKeySigner::decrypt_keystore(&path, passphrase).map_err(|_| WalletError::Unlock)?;
        Ok(Wallet { signer })
    }

    /// A wallet from a raw key (tests and benchmarks only; the CLI always goes through a keystore).
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
        let msg = TransferWithAuthorization {
            from: auth.from,
            to: auth.to,
            value: auth.value,
            validAfter: U256::from(valid_after),
            validBefore: U256::from(valid_before),
            nonce,
        };
        let hash = msg.eip712_signing_hash(&domain);
        let sig = self.signer.sign_hash_sync(&hash).map_err(|e| WalletError::Sign(e.to_string()))?;
        Ok((auth, sig.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::parse_challenge;
    use alloy_primitives::Signature;
    use base64::Engine;

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    fn requirement() -> Requirement {
        let doc = serde_json::json!({"x402Version": 2, "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"}}]});
        let h = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
        parse_challenge(Some(h.as_bytes()), b"{}").result.unwrap().accepts.remove(0)
    }

    #[test]
    fn signature_recovers_to_the_wallet() {
        let w = Wallet::from_key_hex(KEY).unwrap();
        assert_eq!(w.address().to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let req = requirement();
        let (auth, sig) = w.sign_transfer(&req, 0, 1_795_635_397, B256::repeat_byte(7)).unwrap();
        assert!(sig[64] == 27 || sig[64] == 28, "v in {{27, 28}}");
        let domain = alloy_sol_types::eip712_domain! {
            name: "USDC", version: "2", chain_id: 84532,
            verifying_contract: alloy_primitives::address!("036CbD53842c5426634e7929541eC2318f3dCF7e"),
        };
        let msg = TransferWithAuthorization { from: auth.from, to: auth.to, value: auth.value, validAfter: U256::ZERO, validBefore: U256::from(1_795_635_397u64), nonce: auth.nonce };
        let parsed = Signature::try_from(&sig[..]).unwrap();
        assert_eq!(parsed.recover_address_from_prehash(&msg.eip712_signing_hash(&domain)).unwrap(), w.address());
        // The type hash is EIP-3009's.
        assert_eq!(
            hex::encode(msg.eip712_type_hash()),
            "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
        );
    }

    #[test]
    fn keystore_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let addr = Wallet::import(dir.path(), KEY, "pw").unwrap();
        assert_eq!(Wallet::address_of(dir.path()).unwrap(), addr);
        assert!(matches!(Wallet::import(dir.path(), KEY, "pw"), Err(WalletError::Exists(_))));
        assert!(matches!(Wallet::unlock(dir.path(), "wrong"), Err(WalletError::Unlock)));
        assert_eq!(Wallet::unlock(dir.path(), "pw").unwrap().address(), addr);
        let raw = std::fs::read_to_string(dir.path().join(KEYSTORE_FILE)).unwrap();
        assert!(!raw.contains(&KEY[2..]), "never plaintext");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join(KEYSTORE_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(Wallet::import(other.path(), "0x1234", "pw"), Err(WalletError::BadKey)));
        assert!(matches!(Wallet::import(other.path(), KEY, ""), Err(WalletError::EmptyPassphrase)));
    }
}

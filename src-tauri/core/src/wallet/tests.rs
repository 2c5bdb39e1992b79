//! The wallet's unit tests: signatures, vault files on disk, legacy keystores, export.

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
    assert_eq!(hex::encode(msg.eip712_type_hash()), "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p))
        } else {
            out.push(p)
        }
    }
    out
}

fn assert_no_plaintext(dir: &std::path::Path, key_hex: &str) {
    let raw = hex::decode(key_hex.trim_start_matches("0x")).unwrap();
    let hex_lower = key_hex.trim_start_matches("0x").to_lowercase();
    for f in files(dir) {
        let b = std::fs::read(&f).unwrap();
        assert!(!b.windows(32).any(|w| w == raw.as_slice()), "raw key bytes in {}", f.display());
        let text = String::from_utf8_lossy(&b).to_lowercase();
        assert!(!text.contains(&hex_lower), "hex key in {}", f.display());
    }
}

#[test]
fn vault_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Wallet::import(dir.path(), KEY, "pw").unwrap();
    assert_eq!(Wallet::address_of(dir.path()).unwrap(), addr);
    assert!(Wallet::exists(dir.path()));
    assert!(matches!(Wallet::import(dir.path(), KEY, "pw"), Err(WalletError::Exists(_))));
    assert!(matches!(Wallet::create(dir.path(), "pw"), Err(WalletError::Exists(_))));
    let e = Wallet::unlock(dir.path(), "wrong").unwrap_err();
    assert_eq!((e.code().as_str(), e.to_string().as_str()), ("wallet_unlock_failed", "wrong passphrase (or the wallet file was altered)"));
    let (w, kek) = Wallet::open(dir.path(), "pw").unwrap();
    assert_eq!(w.address(), addr);
    assert_eq!(Wallet::unlock_with_kek(dir.path(), &kek).unwrap().address(), addr);
    assert_eq!(Wallet::unlock_with_kek(dir.path(), &[0u8; 32]).unwrap_err().code(), "wallet_unlock_failed");
    assert_eq!(mode(&dir.path().join(VAULT_FILE)), 0o600);
    assert_no_plaintext(dir.path(), KEY);
    assert_eq!(*Wallet::export_key(dir.path(), "pw").unwrap(), KEY);
    assert_eq!(Wallet::export_key(dir.path(), "nope").unwrap_err().code(), "wallet_unlock_failed");
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(Wallet::import(other.path(), "0x1234", "pw"), Err(WalletError::BadKey)));
    assert!(matches!(Wallet::import(other.path(), &format!("0x{}", "0".repeat(64)), "pw"), Err(WalletError::BadKey)));
    assert!(matches!(Wallet::import(other.path(), KEY, ""), Err(WalletError::EmptyPassphrase)));
    assert_eq!(Wallet::unlock(other.path(), "pw").unwrap_err().code(), "wallet_missing");
    assert!(!Wallet::exists(other.path()));
}

#[test]
fn a_new_wallet_is_random_and_sealed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (x, y) = (Wallet::create(a.path(), "pw").unwrap(), Wallet::create(b.path(), "pw").unwrap());
    assert_ne!(x, y);
    let key = Wallet::export_key(a.path(), "pw").unwrap();
    assert_eq!(Wallet::from_key_hex(&key).unwrap().address(), x);
    assert_no_plaintext(a.path(), &key);
}

#[test]
fn a_damaged_vault_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Wallet::import(dir.path(), KEY, "pw").unwrap();
    let path = dir.path().join(VAULT_FILE);
    let good = std::fs::read(&path).unwrap();
    for i in (0..good.len()).step_by(7) {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        std::fs::write(&path, &b).unwrap();
        let e = Wallet::unlock(dir.path(), "pw").unwrap_err();
        assert!(matches!(e.code().as_str(), "wallet_corrupt" | "wallet_unlock_failed" | "weak_kdf_params"), "byte {i}: {e}");
    }
    std::fs::write(&path, b"{}").unwrap();
    assert_eq!(Wallet::unlock(dir.path(), "pw").unwrap_err().code(), "wallet_corrupt");
    assert_eq!(Wallet::address_of(dir.path()).unwrap_err().code(), "wallet_corrupt");
}

#[test]
fn keystores_import_export_and_legacy_upgrade() {
    // A standard keystore written by alloy (as geth or an earlier Purser would).
    let src = tempfile::tempdir().unwrap();
    let secret = hex::decode(&KEY[2..]).unwrap();
    let (signer, _) = PrivateKeySigner::encrypt_keystore(src.path(), &mut rand::thread_rng(), &secret, "ks-pw", Some("key.json")).unwrap();
    let ks = src.path().join("key.json");

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Wallet::import_keystore(dir.path(), &ks, "bad", "pw").unwrap_err().code(), "wallet_unlock_failed");
    assert_eq!(Wallet::import_keystore(dir.path(), &src.path().join("none.json"), "ks-pw", "pw").unwrap_err().code(), "keystore_unreadable");
    assert_eq!(Wallet::import_keystore(dir.path(), &ks, "ks-pw", "pw").unwrap(), signer.address());
    assert_eq!(Wallet::unlock(dir.path(), "pw").unwrap().address(), signer.address());

    // Export as a keystore: opens with the wallet's passphrase, never overwrites.
    let out = src.path().join("exported.json");
    Wallet::export_keystore(dir.path(), "pw", &out).unwrap();
    assert_eq!(PrivateKeySigner::decrypt_keystore(&out, "pw").unwrap().address(), signer.address());
    assert_eq!(Wallet::export_keystore(dir.path(), "pw", &out).unwrap_err().code(), "wallet_exists");

    // A data dir holding an earlier version's wallet.json: upgraded at the first unlock.
    let legacy = tempfile::tempdir().unwrap();
    std::fs::copy(&ks, legacy.path().join(LEGACY_KEYSTORE_FILE)).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&ks).unwrap()).unwrap();
    doc["address"] = serde_json::Value::String(hex::encode(signer.address()));
    std::fs::write(legacy.path().join(LEGACY_KEYSTORE_FILE), doc.to_string()).unwrap();
    assert!(Wallet::exists(legacy.path()));
    assert_eq!(Wallet::address_of(legacy.path()).unwrap(), signer.address());
    assert_eq!(Wallet::unlock(legacy.path(), "wrong").unwrap_err().code(), "wallet_unlock_failed");
    assert!(legacy.path().join(LEGACY_KEYSTORE_FILE).exists(), "a failed unlock upgrades nothing");
    assert_eq!(Wallet::unlock(legacy.path(), "ks-pw").unwrap().address(), signer.address());
    assert!(!legacy.path().join(LEGACY_KEYSTORE_FILE).exists(), "the old keystore is removed");
    assert!(legacy.path().join(VAULT_FILE).exists());
    assert_eq!(Wallet::unlock(legacy.path(), "ks-pw").unwrap().address(), signer.address());
    assert_no_plaintext(legacy.path(), KEY);
}

//! Owns the vault file format: the wallet's secret key encrypted at rest with a key derived
//! from the passphrase by Argon2id, sealed with XChaCha20-Poly1305 whose associated data is the
//! whole header (so no header byte, KDF parameters included, can be changed without unlock
//! failing), plus a floor on the KDF parameters enforced at unlock (no downgrade by re-sealing).
//!
//! Layout of `wallet.vault` (binary, little-endian integers; the header is bytes 0..83):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `PRSVAULT` |
//! | 1 | format version (1) |
//! | 1 | KDF id (1 = Argon2id v1.3) |
//! | 4, 4, 4 | m_cost (KiB), t_cost, p_cost |
//! | 16 | salt |
//! | 1 | cipher id (1 = XChaCha20-Poly1305) |
//! | 24 | nonce |
//! | 20 | the wallet's address (shown while locked) |
//! | 48 | ciphertext: the 32-byte secret key and the 16-byte tag |

use super::WalletError;
use alloy_primitives::Address;
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"PRSVAULT";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const CIPHER_XCHACHA20POLY1305: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// Bytes of the authenticated header.
pub const HEADER_LEN: usize = 8 + 1 + 1 + 12 + SALT_LEN + 1 + NONCE_LEN + 20;
/// Bytes of the whole file.
pub const FILE_LEN: usize = HEADER_LEN + 32 + 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl KdfParams {
    /// What every vault is sealed with: 64 MiB, 3 passes, 1 lane (above OWASP's Argon2id
    /// minimum of 19 MiB / 2 passes).
    pub const RELEASE: KdfParams = KdfParams { m_cost: 64 * 1024, t_cost: 3, p_cost: 1 };
    /// The weakest parameters a vault may carry at unlock; anything below is refused
    /// (`weak_kdf_params`), so a file re-sealed with cheaper parameters never opens.
    pub const FLOOR: KdfParams = KdfParams::RELEASE;
    /// The most a vault may ask for (a damaged file must not make unlock allocate gigabytes).
    pub const CEILING: KdfParams = KdfParams { m_cost: 1024 * 1024, t_cost: 64, p_cost: 16 };

    fn at_least(&self, floor: &KdfParams) -> bool {
        self.m_cost >= floor.m_cost && self.t_cost >= floor.t_cost && self.p_cost >= floor.p_cost
    }
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Argon2id m={} KiB, t={}, p={}", self.m_cost, self.t_cost, self.p_cost)
    }
}

// Release parameters stay above OWASP's Argon2id minimum (19 MiB, 2 passes), checked at compile time.
const _: () = assert!(KdfParams::RELEASE.m_cost >= 19 * 1024 && KdfParams::RELEASE.t_cost >= 2);

/// Cheap parameters for tests. Compiled only into debug builds: a release binary has no way to
/// seal or open a vault below [`KdfParams::FLOOR`].
#[cfg(debug_assertions)]
pub const TEST_PARAMS: KdfParams = KdfParams { m_cost: 256, t_cost: 1, p_cost: 1 };

/// The environment variable that selects [`TEST_PARAMS`] in debug builds (value `1`).
pub const TEST_KDF_ENV: &str = "PURSER_INSECURE_TEST_KDF";

/// Whether this process runs with the test-only cheap parameters: only in a debug build, and
/// only when asked (the core's own unit tests always do).
pub fn test_kdf() -> bool {
    #[cfg(debug_assertions)]
    {
        cfg!(test) || std::env::var_os(TEST_KDF_ENV).is_some_and(|v| v == "1")
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}

/// The parameters a new vault is sealed with.
pub fn new_params() -> KdfParams {
    #[cfg(debug_assertions)]
    if test_kdf() {
        return TEST_PARAMS;
    }
    KdfParams::RELEASE
}

/// The floor enforced at unlock.
pub fn floor() -> KdfParams {
    #[cfg(debug_assertions)]
    if test_kdf() {
        return TEST_PARAMS;
    }
    KdfParams::FLOOR
}

/// The key-encryption key: Argon2id(passphrase, salt). Holding it opens the vault without the
/// passphrase (it is what "remember on this computer" keeps in the OS keychain).
pub type Kek = Zeroizing<[u8; 32]>;

/// A parsed vault file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    pub params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    pub address: Address,
    ciphertext: [u8; 48],
}

fn corrupt(why: &str) -> WalletError {
    WalletError::Corrupt(why.to_string())
}

/// Derives the key-encryption key.
pub fn derive(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<Kek, WalletError> {
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32)).map_err(|e| corrupt(&format!("KDF parameters: {e}")))?;
    let mut kek = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p).hash_password_into(passphrase, salt, kek.as_mut()).map_err(|e| corrupt(&format!("key derivation: {e}")))?;
    Ok(kek)
}

impl Vault {
    /// Seals `secret` (a 32-byte secp256k1 key for `address`) under `passphrase`. Returns the
    /// vault and the key-encryption key it was sealed with.
    pub fn seal(secret: &[u8; 32], address: Address, passphrase: &str, params: KdfParams) -> Result<(Vault, Kek), WalletError> {
        if passphrase.is_empty() {
            return Err(WalletError::EmptyPassphrase);
        }
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let kek = derive(passphrase.as_bytes(), &salt, params)?;
        let mut v = Vault { params, salt, nonce, address, ciphertext: [0; 48] };
        let header = v.header();
        let sealed = XChaCha20Poly1305::new(kek.as_ref().into()).encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: &header }).map_err(|_| corrupt("encryption failed"))?;
        v.ciphertext.copy_from_slice(&sealed);
        Ok((v, kek))
    }

    /// The header bytes (also the AEAD associated data).
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.push(VERSION);
        h.push(KDF_ARGON2ID);
        h.extend_from_slice(&self.params.m_cost.to_le_bytes());
        h.extend_from_slice(&self.params.t_cost.to_le_bytes());
        h.extend_from_slice(&self.params.p_cost.to_le_bytes());
        h.extend_from_slice(&self.salt);
        h.push(CIPHER_XCHACHA20POLY1305);
        h.extend_from_slice(&self.nonce);
        h.extend_from_slice(self.address.as_slice());
        h
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.header();
        b.extend_from_slice(&self.ciphertext);
        b
    }

    /// Parses a vault file; any wrong length, magic, version or algorithm id is `wallet_corrupt`.
    pub fn parse(bytes: &[u8]) -> Result<Vault, WalletError> {
        if bytes.len() != FILE_LEN {
            return Err(corrupt(&format!("{} bytes, a vault has {FILE_LEN}", bytes.len())));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("not a Purser vault (bad magic)"));
        }
        if bytes[8] != VERSION {
            return Err(corrupt(&format!("unknown vault version {}", bytes[8])));
        }
        if bytes[9] != KDF_ARGON2ID {
            return Err(corrupt(&format!("unknown KDF id {}", bytes[9])));
        }
        let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let params = KdfParams { m_cost: u32_at(10), t_cost: u32_at(14), p_cost: u32_at(18) };
        let mut at = 22;
        let mut take = |n: usize| {
            let s = &bytes[at..at + n];
            at += n;
            s
        };
        let salt: [u8; SALT_LEN] = take(SALT_LEN).try_into().map_err(|_| corrupt("salt"))?;
        let cipher = take(1)[0];
        let nonce: [u8; NONCE_LEN] = take(NONCE_LEN).try_into().map_err(|_| corrupt("nonce"))?;
        let address = Address::from_slice(take(20));
        let ciphertext: [u8; 48] = take(48).try_into().map_err(|_| corrupt("ciphertext"))?;
        if cipher != CIPHER_XCHACHA20POLY1305 {
            return Err(corrupt(&format!("unknown cipher id {cipher}")));
        }
        Ok(Vault { params, salt, nonce, address, ciphertext })
    }

    /// Checks the KDF parameters against `floor` and the ceiling before any work is done.
    fn check_params(&self, floor: &KdfParams) -> Result<(), WalletError> {
        if !KdfParams::CEILING.at_least(&self.params) {
            return Err(corrupt(&format!("KDF parameters out of range ({})", self.params)));
        }
        if !self.params.at_least(floor) {
            return Err(WalletError::WeakKdf { found: self.params.to_string(), floor: floor.to_string() });
        }
        Ok(())
    }

    /// Opens the vault with the passphrase; returns the secret key and the key-encryption key.
    pub fn open(&self, passphrase: &str, floor: &KdfParams) -> Result<(Zeroizing<[u8; 32]>, Kek), WalletError> {
        self.check_params(floor)?;
        let kek = derive(passphrase.as_bytes(), &self.salt, self.params)?;
        let secret = self.open_with_kek(&kek, floor)?;
        Ok((secret, kek))
    }

    /// Opens the vault with a remembered key-encryption key.
    pub fn open_with_kek(&self, kek: &[u8; 32], floor: &KdfParams) -> Result<Zeroizing<[u8; 32]>, WalletError> {
        self.check_params(floor)?;
        let header = self.header();
        let plain = Zeroizing::new(XChaCha20Poly1305::new(kek.into()).decrypt(XNonce::from_slice(&self.nonce), Payload { msg: &self.ciphertext, aad: &header }).map_err(|_| WalletError::Unlock)?);
        let mut secret = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(corrupt("the sealed key is not 32 bytes"));
        }
        secret.copy_from_slice(&plain);
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: Address = alloy_primitives::address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");

    fn sealed() -> (Vec<u8>, [u8; 32]) {
        let secret = [7u8; 32];
        let (v, _) = Vault::seal(&secret, ADDR, "pw", TEST_PARAMS).unwrap();
        (v.to_bytes(), secret)
    }

    #[test]
    fn round_trip_with_passphrase_and_kek() {
        let (bytes, secret) = sealed();
        assert_eq!(bytes.len(), FILE_LEN);
        let v = Vault::parse(&bytes).unwrap();
        assert_eq!(v.address, ADDR);
        let (got, kek) = v.open("pw", &TEST_PARAMS).unwrap();
        assert_eq!(*got, secret);
        assert_eq!(*v.open_with_kek(&kek, &TEST_PARAMS).unwrap(), secret);
        assert!(matches!(v.open("wrong", &TEST_PARAMS), Err(WalletError::Unlock)));
        // Two seals of one key share neither salt, nonce nor ciphertext.
        let (again, _) = sealed();
        assert_ne!(bytes, again);
        assert!(!bytes.windows(32).any(|w| w == secret), "the key never appears in the file");
    }

    #[test]
    fn every_flipped_byte_fails_with_an_error() {
        let (bytes, _) = sealed();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                let r = Vault::parse(&b).and_then(|v| v.open("pw", &TEST_PARAMS));
                let e = r.err().unwrap_or_else(|| panic!("byte {i} ^ {mask:#x} still opened"));
                assert!(matches!(e.code().as_str(), "wallet_corrupt" | "wallet_unlock_failed" | "weak_kdf_params"), "byte {i}: {}", e.code().as_str());
            }
        }
        for cut in [0, 1, HEADER_LEN, FILE_LEN - 1] {
            assert_eq!(Vault::parse(&bytes[..cut]).unwrap_err().code(), "wallet_corrupt");
        }
    }

    #[test]
    fn parameters_cannot_be_downgraded() {
        // A vault sealed with release parameters whose header is edited to cheaper ones fails
        // authentication (the header is the associated data)...
        let secret = [9u8; 32];
        let (v, kek) = Vault::seal(&secret, ADDR, "pw", KdfParams::RELEASE).unwrap();
        let mut b = v.to_bytes();
        b[10..14].copy_from_slice(&256u32.to_le_bytes());
        b[14..18].copy_from_slice(&1u32.to_le_bytes());
        let edited = Vault::parse(&b).unwrap();
        assert_eq!(edited.open_with_kek(&kek, &TEST_PARAMS).unwrap_err().code(), "wallet_unlock_failed");
        // ...and one honestly re-sealed with cheap parameters is refused by the floor, before
        // any key derivation.
        let (cheap, cheap_kek) = Vault::seal(&secret, ADDR, "pw", TEST_PARAMS).unwrap();
        let e = cheap.open("pw", &KdfParams::FLOOR).unwrap_err();
        assert_eq!(e.code(), "weak_kdf_params");
        assert_eq!(cheap.open_with_kek(&cheap_kek, &KdfParams::FLOOR).unwrap_err().code(), "weak_kdf_params");
        assert_eq!(*v.open("pw", &KdfParams::FLOOR).unwrap().0, secret);
    }

    #[test]
    fn absurd_parameters_are_refused_before_derivation() {
        let (bytes, _) = sealed();
        let mut b = bytes.clone();
        b[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Vault::parse(&b).unwrap().open("pw", &TEST_PARAMS).unwrap_err().code(), "wallet_corrupt");
    }

    #[test]
    fn release_parameters_meet_the_floor() {
        assert!(KdfParams::RELEASE.at_least(&KdfParams::FLOOR));
        assert!(!TEST_PARAMS.at_least(&KdfParams::FLOOR));
        assert!(test_kdf(), "the core's unit tests run with cheap parameters");
    }
}

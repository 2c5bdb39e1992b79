//! Owns secrets that let callers in: grant tokens (shown once, stored only as a SHA-256 hash)
//! and the control API token, generated from the OS RNG and always compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of grant tokens, so a leaked one is recognisable.
pub const GRANT_TOKEN_PREFIX: &str = "pgt_";

/// 32 random bytes, URL-safe base64, with a prefix.
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(GRANT_TOKEN_PREFIX), new_token(GRANT_TOKEN_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with("pgt_") && a.len() == 4 + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(ct_eq(token_hash(&a).as_bytes(), token_hash(&a).as_bytes()));
        assert!(!ct_eq(token_hash(&a).as_bytes(), token_hash(&b).as_bytes()));
        assert!(!ct_eq(b"ab", b"abc"));
    }
}

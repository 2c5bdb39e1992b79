//! Owns time and randomness as injectable sources, so tests can move the clock and fix nonces.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(t))
    }
    pub fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Where EIP-3009 nonces come from: 32 random bytes from the OS unless a test injects its own.
pub trait NonceSource: Send + Sync {
    fn nonce(&self) -> [u8; 32];
}

/// The OS RNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsNonces;

impl NonceSource for OsNonces {
    fn nonce(&self) -> [u8; 32] {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b
    }
}

/// A new UUIDv7 id as a string.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

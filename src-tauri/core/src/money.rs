//! Owns money: atomic amounts (`U256` from the wire, `u64` micro-USD in the ledger), strict
//! parsing of both, and USD display through `rust_decimal`. Never a float.

use alloy_primitives::U256;
use rust_decimal::Decimal;

/// Ledger amounts are USD in micro-units (6 decimals), the unit of every registry asset.
pub const USD_DECIMALS: u32 = 6;

/// Why an amount was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a canonical decimal integer (want ^(0|[1-9][0-9]*)$)")]
    InvalidAtomic(String),
    #[error("amount {0:?} does not fit in 256 bits")]
    Overflow(String),
    #[error("USD amount {0:?} is not valid (want e.g. 5, 0.05 or 1.25, at most 6 decimals)")]
    InvalidUsd(String),
    #[error("amount is too large for the ledger")]
    TooLarge,
    #[error("{0} decimals are not supported")]
    Decimals(u8),
}

impl MoneyError {
    /// The snake_case code shown to agents, receipts and the UI.
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            MoneyError::InvalidAtomic(_) | MoneyError::InvalidUsd(_) => crate::api::ErrorCode::InvalidAmount,
            MoneyError::Overflow(_) | MoneyError::TooLarge => crate::api::ErrorCode::AmountOverflow,
            MoneyError::Decimals(_) => crate::api::ErrorCode::UnsupportedAsset,
        }
    }
}

fn is_canonical_integer(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b.len() == 1 || b[0] != b'0')
}

/// Parses an atomic amount strictly: `^(0|[1-9][0-9]*)$`, at most 2^256 - 1.
pub fn parse_atomic(s: &str) -> Result<U256, MoneyError> {
    if !is_canonical_integer(s) {
        return Err(MoneyError::InvalidAtomic(truncate(s)));
    }
    U256::from_str_radix(s, 10).map_err(|_| MoneyError::Overflow(truncate(s)))
}

/// Parses a USD amount typed by a person ("5", "5.00", "0.05") into micro-USD.
pub fn parse_usd(s: &str) -> Result<u64, MoneyError> {
    let s = s.trim();
    let bad = || MoneyError::InvalidUsd(truncate(s));
    let raw = s.strip_prefix('$').unwrap_or(s);
    let (int, frac) = match raw.split_once('.') {
        Some((i, f)) => (i, f),
        None => (raw, ""),
    };
    if !is_canonical_integer(int) || frac.len() > USD_DECIMALS as usize || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if raw.contains('.') && frac.is_empty() {
        return Err(bad());
    }
    let int: u64 = int.parse().map_err(|_| MoneyError::TooLarge)?;
    let mut frac_val: u64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
    for _ in frac.len()..USD_DECIMALS as usize {
        frac_val *= 10;
    }
    int.checked_mul(10u64.pow(USD_DECIMALS)).and_then(|v| v.checked_add(frac_val)).filter(|v| *v <= i64::MAX as u64).ok_or(MoneyError::TooLarge)
}

/// Converts an asset's atomic amount to ledger micro-USD (registry assets are USD stablecoins),
/// rounding up so that a budget is never under-charged.
pub fn atomic_to_micros(amount: U256, decimals: u8) -> Result<u64, MoneyError> {
    let d = decimals as u32;
    let micros = if d >= USD_DECIMALS {
        let div = U256::from(10u64).pow(U256::from(d - USD_DECIMALS));
        let (q, r) = amount.div_rem(div);
        if r.is_zero() {
            q
        } else {
            q + U256::from(1u8)
        }
    } else {
        let mul = U256::from(10u64).pow(U256::from(USD_DECIMALS - d));
        amount.checked_mul(mul).ok_or(MoneyError::TooLarge)?
    };
    u64::try_from(micros).ok().filter(|v| *v <= i64::MAX as u64).ok_or(MoneyError::TooLarge)
}

/// `$1.00`, `$0.001`, `$12.50`: micro-USD for display, at least two decimals, exact.
pub fn format_usd(micros: u64) -> String {
    let mut d = Decimal::from_i128_with_scale(micros as i128, USD_DECIMALS).normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    format!("${d}")
}

/// Micro-USD as a plain decimal string without the dollar sign (`"0.001"`), for JSON.
pub fn micros_decimal(micros: u64) -> String {
    format_usd(micros).trim_start_matches('$').to_string()
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An atomic amount in its asset's units, exactly: `50000` with 6 decimals is `0.05`.
pub fn atomic_decimal(amount: alloy_primitives::U256, decimals: u8) -> String {
    let digits = amount.to_string();
    let d = decimals as usize;
    if d == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_table() {
        let ok = [("0", 0u64), ("1", 1), ("1000", 1000), ("18446744073709551615", u64::MAX)];
        for (s, v) in ok {
            assert_eq!(parse_atomic(s).unwrap(), U256::from(v), "{s}");
        }
        for s in ["", "01", "+1", "-1", "1_000", "0x10", "1e3", " 1", "1 ", "1.0", "١"] {
            assert!(matches!(parse_atomic(s), Err(MoneyError::InvalidAtomic(_))), "{s:?}");
        }
        let max = U256::MAX.to_string();
        assert_eq!(parse_atomic(&max).unwrap(), U256::MAX);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert_eq!(parse_atomic(over).unwrap_err().code(), "amount_overflow");
    }

    #[test]
    fn usd_table() {
        let ok = [("5", 5_000_000u64), ("5.00", 5_000_000), ("0.05", 50_000), ("$1.25", 1_250_000), ("0.000001", 1), ("0", 0)];
        for (s, v) in ok {
            assert_eq!(parse_usd(s).unwrap(), v, "{s}");
        }
        for s in ["", "-1", "1.", ".5", "1.0000001", "1e3", "01", "abc", "1,00", "99999999999999999999"] {
            assert!(parse_usd(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn conversions_and_display() {
        assert_eq!(atomic_to_micros(U256::from(1000u64), 6).unwrap(), 1000);
        assert_eq!(atomic_to_micros(U256::from(10u64).pow(U256::from(18u64)), 18).unwrap(), 1_000_000);
        assert_eq!(atomic_to_micros(U256::from(1u64), 18).unwrap(), 1, "rounds up");
        assert_eq!(atomic_to_micros(U256::from(5u64), 2).unwrap(), 50_000);
        assert!(atomic_to_micros(U256::MAX, 6).is_err());
        assert_eq!(format_usd(1_000_000), "$1.00");
        assert_eq!(format_usd(1000), "$0.001");
        assert_eq!(format_usd(12_500_000), "$12.50");
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(micros_decimal(50_000), "0.05");
    }
}

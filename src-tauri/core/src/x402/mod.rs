//! Owns the x402 wire protocol (v1 and v2): challenge parsing into typed requirements, payment
//! header encoding, settlement header decoding, and the size and depth limits on all of them.
//! No I/O and no policy: bytes in, typed values or a named [`X402Error`] out.

mod encode;
mod parse;

pub use encode::{decode_settlement, encode_payment, Authorization, PaymentHeader, Settlement};
pub use parse::{parse_challenge, Challenge, Parsed, Requirement};

/// v2: the 402's requirements, base64 JSON.
pub const H_PAYMENT_REQUIRED: &str = "payment-required";
/// v2: the paid retry's payload.
pub const H_PAYMENT_SIGNATURE: &str = "payment-signature";
/// v2: the settlement answer.
pub const H_PAYMENT_RESPONSE: &str = "payment-response";
/// v1: the paid retry's payload.
pub const H_X_PAYMENT: &str = "x-payment";
/// v1: the settlement answer.
pub const H_X_PAYMENT_RESPONSE: &str = "x-payment-response";

/// Largest challenge header or body Purser reads (bytes).
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting accepted in any x402 document.
pub const MAX_JSON_DEPTH: usize = 32;
/// Most payment options considered in one challenge.
pub const MAX_ACCEPTS: usize = 32;

/// Why a challenge or header was not usable. `code()` is the receipt's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X402Error {
    #[error("not an x402 challenge: {0}")]
    NotX402(&'static str),
    #[error("x402Version {0} is not supported (Purser speaks 1 and 2)")]
    UnsupportedVersion(String),
    #[error("challenge is larger than {MAX_CHALLENGE_BYTES} bytes")]
    TooLarge,
    #[error("challenge JSON nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    #[error("challenge header is not valid base64")]
    InvalidBase64,
    #[error("challenge is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("challenge has no payment options")]
    EmptyAccepts,
    #[error("payment option is malformed: {0}")]
    InvalidField(String),
    #[error("amount is not a canonical decimal string: {0}")]
    InvalidAmount(String),
    #[error("amount is zero")]
    ZeroAmount,
    #[error("amount does not fit in 256 bits")]
    AmountOverflow,
    #[error("payTo is not an address: {0}")]
    InvalidPayTo(String),
    #[error("payTo is the zero address")]
    ZeroPayTo,
    #[error("asset is not an address: {0}")]
    InvalidAsset(String),
    #[error("maxTimeoutSeconds must be a positive integer, got {0}")]
    InvalidMaxTimeout(String),
    #[error("EIP-712 domain {got} does not match the registry's {want} for this asset")]
    DomainMismatch { got: String, want: String },
    #[error("scheme {0:?} is not supported (Purser pays `exact` only)")]
    UnsupportedScheme(String),
    #[error("network {0:?} is not in Purser's registry")]
    UnsupportedNetwork(String),
    #[error("asset {0} is not in Purser's registry for this network")]
    UnsupportedAsset(String),
    #[error("transfer method {0:?} is not supported (Purser signs EIP-3009 only, never Permit2)")]
    UnsupportedTransferMethod(String),
    #[error("extension {0:?} asks for an approval or permit, which Purser never signs")]
    UnsupportedExtension(String),
    #[error("settlement header is malformed: {0}")]
    InvalidSettlement(String),
}

impl X402Error {
    /// A stable snake_case code for receipts and agents.
    pub fn code(&self) -> crate::api::ErrorCode {
        use X402Error::*;
        match self {
            NotX402(_) => crate::api::ErrorCode::NotX402,
            UnsupportedVersion(_) => crate::api::ErrorCode::UnsupportedVersion,
            TooLarge => crate::api::ErrorCode::TooLarge,
            TooDeep => crate::api::ErrorCode::TooDeep,
            InvalidBase64 => crate::api::ErrorCode::InvalidBase64,
            InvalidJson(_) => crate::api::ErrorCode::InvalidJson,
            EmptyAccepts => crate::api::ErrorCode::EmptyAccepts,
            InvalidField(_) => crate::api::ErrorCode::InvalidField,
            InvalidAmount(_) => crate::api::ErrorCode::InvalidAmount,
            ZeroAmount => crate::api::ErrorCode::ZeroAmount,
            AmountOverflow => crate::api::ErrorCode::AmountOverflow,
            InvalidPayTo(_) => crate::api::ErrorCode::InvalidPayTo,
            ZeroPayTo => crate::api::ErrorCode::ZeroPayTo,
            InvalidAsset(_) => crate::api::ErrorCode::InvalidAsset,
            InvalidMaxTimeout(_) => crate::api::ErrorCode::InvalidMaxTimeout,
            DomainMismatch { .. } => crate::api::ErrorCode::DomainMismatch,
            UnsupportedScheme(_) => crate::api::ErrorCode::UnsupportedScheme,
            UnsupportedNetwork(_) => crate::api::ErrorCode::UnsupportedNetwork,
            UnsupportedAsset(_) => crate::api::ErrorCode::UnsupportedAsset,
            UnsupportedTransferMethod(_) => crate::api::ErrorCode::UnsupportedTransferMethod,
            UnsupportedExtension(_) => crate::api::ErrorCode::UnsupportedExtension,
            InvalidSettlement(_) => crate::api::ErrorCode::InvalidSettlement,
        }
    }

    /// Whether Purser simply cannot pay this (the 402 goes back to the agent untouched) rather
    /// than the challenge being malformed or suspicious (refused).
    pub fn is_not_payable(&self) -> bool {
        use X402Error::*;
        matches!(self, NotX402(_) | UnsupportedVersion(_) | UnsupportedScheme(_) | UnsupportedNetwork(_) | UnsupportedAsset(_) | UnsupportedTransferMethod(_) | UnsupportedExtension(_))
    }
}

/// Deepest nesting of arrays/objects in a JSON text, counted without parsing it (so a hostile
/// 10,000-deep document is rejected before any recursive parser sees it).
pub(crate) fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses a size- and depth-checked JSON document.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, X402Error> {
    if bytes.len() > MAX_CHALLENGE_BYTES {
        return Err(X402Error::TooLarge);
    }
    if json_depth(bytes) > MAX_JSON_DEPTH {
        return Err(X402Error::TooDeep);
    }
    serde_json::from_slice(bytes).map_err(|e| X402Error::InvalidJson(e.to_string()))
}

/// Decodes a base64 header value (standard alphabet, padding optional; URL-safe accepted).
pub(crate) fn decode_b64(value: &[u8]) -> Result<Vec<u8>, X402Error> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    if value.len() > MAX_CHALLENGE_BYTES * 4 / 3 + 4 {
        return Err(X402Error::TooLarge);
    }
    let v = value.trim_ascii();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(v).ok()).ok_or(X402Error::InvalidBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_outside_strings_only() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[["}]}"#), 3);
        assert_eq!(json_depth(br#""\"{""#), 0);
        let deep = "[".repeat(10_000);
        assert_eq!(parse_json(deep.as_bytes()).unwrap_err(), X402Error::TooDeep);
    }
}

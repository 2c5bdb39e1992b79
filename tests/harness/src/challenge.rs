//! Good x402 challenge templates (v2 `PAYMENT-REQUIRED` header, v1 JSON body) for Base Sepolia
//! USDC, shaped like the reference servers' answers, to be mutated one field at a time.

use base64::Engine;
use serde_json::{json, Value};

use crate::hostile::RawResponse;
use crate::{ANVIL_PAYEE_ADDR, USDC_BASE_SEPOLIA};

/// Decoded v2 `PAYMENT-REQUIRED` for `amount` atomic units to the anvil payee.
pub fn good_v2_required(resource_url: &str, amount: &str) -> Value {
    json!({
        "x402Version": 2,
        "error": "Payment required",
        "resource": {"url": resource_url, "description": "hostile test resource", "mimeType": "application/json"},
        "accepts": [{
            "scheme": "exact",
            "network": "eip155:84532",
            "amount": amount,
            "asset": USDC_BASE_SEPOLIA,
            "payTo": ANVIL_PAYEE_ADDR,
            "maxTimeoutSeconds": 300,
            "extra": {"name": "USDC", "version": "2"}
        }]
    })
}

/// v1 402 body for `amount` atomic units to the anvil payee.
pub fn good_v1_body(resource_url: &str, amount: &str) -> Value {
    json!({
        "x402Version": 1,
        "error": "X-PAYMENT header is required",
        "accepts": [{
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": amount,
            "resource": resource_url,
            "description": "hostile test resource",
            "mimeType": "application/json",
            "payTo": ANVIL_PAYEE_ADDR,
            "maxTimeoutSeconds": 300,
            "asset": USDC_BASE_SEPOLIA,
            "outputSchema": {"input": {"type": "http", "method": "GET", "discoverable": true}},
            "extra": {"name": "USDC", "version": "2"}
        }]
    })
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A base64 header (a payment or a settlement) decoded as JSON.
pub fn unb64_json(header: &str) -> serde_json::Value {
    let raw = base64::engine::general_purpose::STANDARD.decode(header.trim()).expect("base64");
    serde_json::from_slice(&raw).expect("JSON")
}

/// A v2 402: body `{}`, requirements base64-encoded in `PAYMENT-REQUIRED`.
pub fn v2_response(required: &Value) -> RawResponse {
    v2_response_header(b64(&serde_json::to_vec(required).unwrap()))
}

/// A v2 402 with a verbatim `PAYMENT-REQUIRED` value.
pub fn v2_response_header(value: String) -> RawResponse {
    RawResponse { status: 402, headers: vec![("content-type".into(), "application/json; charset=utf-8".into()), ("payment-required".into(), value)], body: b"{}".to_vec() }
}

/// A v1 402 with this JSON body.
pub fn v1_response(body: &Value) -> RawResponse {
    v1_response_raw(serde_json::to_vec(body).unwrap())
}

/// A v1 402 with a verbatim body.
pub fn v1_response_raw(body: Vec<u8>) -> RawResponse {
    RawResponse { status: 402, headers: vec![("content-type".into(), "application/json; charset=utf-8".into())], body }
}

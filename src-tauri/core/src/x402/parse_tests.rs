//! Table tests of challenge parsing: every bad input gets its named error.

// Table-driven: each case is one tuple, spelled out where it is read.
#![allow(clippy::type_complexity)]

use super::*;
use serde_json::json;

fn v2_doc(option: Value) -> Value {
    json!({"x402Version": 2, "error": "Payment required",
           "resource": {"url": "http://127.0.0.1:1/cheap", "description": "cheap", "mimeType": "application/json"},
           "accepts": [option]})
}

fn good_option() -> Value {
    json!({"scheme": "exact", "network": "eip155:84532", "amount": "1000",
           "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
           "payTo": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "maxTimeoutSeconds": 300,
           "extra": {"name": "USDC", "version": "2"}})
}

fn header(doc: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(doc.to_string()).into_bytes()
}

fn parse_v2(option: Value) -> Result<Challenge, X402Error> {
    parse_challenge(Some(&header(&v2_doc(option))), b"{}").result
}

fn with(field: &str, value: Value) -> Value {
    let mut o = good_option();
    o[field] = value;
    o
}

#[test]
fn good_v2_and_v1() {
    let c = parse_v2(good_option()).unwrap();
    assert_eq!((c.version, c.accepts.len()), (2, 1));
    let r = &c.accepts[0];
    assert_eq!(r.amount, U256::from(1000u64));
    assert_eq!(r.network.chain_id, 84532);
    assert_eq!(r.raw, good_option(), "kept verbatim for the v2 echo");
    assert_eq!(c.description.as_deref(), Some("cheap"));

    let mut v1 = good_option();
    v1.as_object_mut().unwrap().remove("amount");
    v1["maxAmountRequired"] = json!("1000");
    v1["network"] = json!("base-sepolia");
    let body = json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [v1]}).to_string();
    let c = parse_challenge(None, body.as_bytes()).result.unwrap();
    assert_eq!((c.version, c.accepts[0].network_name()), (1, "base-sepolia"));
}

#[test]
fn bad_options_table() {
    let big = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("empty amount", with("amount", json!("")), "invalid_amount"),
        ("underscore", with("amount", json!("1_000")), "invalid_amount"),
        ("plus", with("amount", json!("+1")), "invalid_amount"),
        ("hex", with("amount", json!("0x10")), "invalid_amount"),
        ("exponent", with("amount", json!("1e3")), "invalid_amount"),
        ("leading zero", with("amount", json!("01")), "invalid_amount"),
        ("bare number", with("amount", json!(1000)), "invalid_amount"),
        ("zero", with("amount", json!("0")), "zero_amount"),
        ("above 2^256", with("amount", json!(big)), "amount_overflow"),
        ("unknown network", with("network", json!("eip155:1")), "unsupported_network"),
        ("unknown scheme", with("scheme", json!("upto")), "unsupported_scheme"),
        ("unknown asset", with("asset", json!("0x1111111111111111111111111111111111111111")), "unsupported_asset"),
        ("zero payTo", with("payTo", json!("0x0000000000000000000000000000000000000000")), "zero_pay_to"),
        ("short payTo", with("payTo", json!("0x1234")), "invalid_pay_to"),
        ("timeout 0", with("maxTimeoutSeconds", json!(0)), "invalid_max_timeout"),
        ("timeout -1", with("maxTimeoutSeconds", json!(-1)), "invalid_max_timeout"),
        ("timeout 3.5", with("maxTimeoutSeconds", json!(3.5)), "invalid_max_timeout"),
        ("timeout string", with("maxTimeoutSeconds", json!("60")), "invalid_max_timeout"),
        ("permit2", with("extra", json!({"name": "USDC", "version": "2", "assetTransferMethod": "permit2"})), "unsupported_transfer_method"),
        ("approve in extra", with("extra", json!({"name": "USDC", "version": "2", "erc20ApprovalGasSponsoring": {}})), "unsupported_extension"),
        ("domain name", with("extra", json!({"name": "Fake USDC", "version": "2"})), "domain_mismatch"),
        ("domain version", with("extra", json!({"name": "USDC", "version": "1"})), "domain_mismatch"),
        ("not an object", json!("exact"), "invalid_field"),
    ];
    for (name, option, code) in cases {
        let err = parse_v2(option).expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
}

#[test]
fn bad_documents_table() {
    let mut v3 = v2_doc(good_option());
    v3["x402Version"] = json!(3);
    let mut empty = v2_doc(good_option());
    empty["accepts"] = json!([]);
    let mut approve = v2_doc(good_option());
    approve["extensions"] = json!({"eip2612GasSponsoring": {"info": {}}});
    let mut bazaar = v2_doc(good_option());
    bazaar["extensions"] = json!({"bazaar": {"info": {}}});
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = vec![b'A'; 1 << 20];
    let cases: Vec<(&str, Option<Vec<u8>>, Vec<u8>, &str)> = vec![
        ("version 3", Some(header(&v3)), b"{}".to_vec(), "unsupported_version"),
        ("empty accepts", Some(header(&empty)), b"{}".to_vec(), "empty_accepts"),
        ("approve extension", Some(header(&approve)), b"{}".to_vec(), "unsupported_extension"),
        ("bad base64", Some(b"!!not base64!!".to_vec()), b"{}".to_vec(), "invalid_base64"),
        (
            "header not json",
            Some({
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("{\"a\":").into_bytes()
            }),
            b"{}".to_vec(),
            "invalid_json",
        ),
        ("header not an object", Some(header(&json!("x"))), b"{}".to_vec(), "invalid_field"),
        (
            "deep header",
            Some({
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(&deep).into_bytes()
            }),
            b"{}".to_vec(),
            "too_deep",
        ),
        ("deep body", None, format!("{{\"a\":{deep}}}").into_bytes(), "too_deep"),
        ("1 MB header", Some(huge), b"{}".to_vec(), "too_large"),
        ("html body", None, b"<html>pay me</html>".to_vec(), "not_x402"),
        ("json without version", None, br#"{"error":"nope"}"#.to_vec(), "not_x402"),
        ("empty body", None, Vec::new(), "not_x402"),
    ];
    for (name, hdr, body, code) in cases {
        let err = parse_challenge(hdr.as_deref(), &body).result.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
    assert!(parse_challenge(Some(&header(&bazaar)), b"{}").result.is_ok(), "harmless extensions are fine");
}

#[test]
fn unsupported_options_are_skipped_when_another_is_payable() {
    let mut doc = v2_doc(with("network", json!("solana")));
    doc["accepts"].as_array_mut().unwrap().push(good_option());
    let c = parse_challenge(Some(&header(&doc)), b"{}").result.unwrap();
    assert_eq!(c.accepts.len(), 1);
    assert_eq!(c.accepts[0].index, 1);
    // ...but one malformed option poisons the whole challenge.
    doc["accepts"].as_array_mut().unwrap().push(with("amount", json!("01")));
    assert_eq!(parse_challenge(Some(&header(&doc)), b"{}").result.unwrap_err().code(), "invalid_amount");
}

#[test]
fn requirement_hash_binds_every_field() {
    let a = parse_v2(good_option()).unwrap().accepts[0].hash();
    let b = parse_v2(with("payTo", json!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"))).unwrap().accepts[0].hash();
    let c = parse_v2(with("amount", json!("1001"))).unwrap().accepts[0].hash();
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_eq!(a, parse_v2(good_option()).unwrap().accepts[0].hash());
}

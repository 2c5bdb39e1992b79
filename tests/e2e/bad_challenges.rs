//! e2e: hostile and malformed 402 challenges (v1 bodies, v2 PAYMENT-REQUIRED headers), each a
//! good template with one field broken: the right outcome/reason/detail, a receipt, no payment,
//! and the proxy stays up. No chain needed: nothing may be paid.

use purser_testkit::challenge::{b64, v1_response_raw, v2_response_header};
use purser_testkit::{agent, good_v1_body, good_v2_required, send, v1_response, v2_response, Hostile402, Purser, RawResponse};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_purser");
const TWO_POW_256: &str = "115792089237316195423570985008687907853269984665640564039457584007913129639936";

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 403, refused, malformed_challenge, this detail.
    Malformed(&'static str),
    /// 403, refused, this reason.
    Refused(&'static str),
    /// The upstream 402 passed back, not_payable, this detail.
    NotPayable(&'static str),
    /// Not 200; refused or failed with some named reason.
    AnyRefusal,
    /// The good template: paid once, the hostile server answers 402 again → failed/settlement_failed.
    Control,
}
use Expect::*;

#[derive(Clone, Copy, PartialEq)]
enum Gen {
    V1,
    V2,
}

/// One field of the good template to break.
enum M {
    None,
    /// `amount` (v2) / `maxAmountRequired` (v1).
    Amount(Value),
    /// A field of `accepts[0]`.
    Accept(&'static str, Value),
    /// A field of `accepts[0].extra`.
    Extra(&'static str, Value),
    /// A top-level field.
    Root(&'static str, Value),
    /// A network no registry knows (CAIP-2 for v2, a legacy name for v1).
    UnknownNetwork,
}

fn apply(m: &M, g: Gen, c: &mut Value) {
    match m {
        M::None => {}
        M::Amount(v) => {
            let f = if g == Gen::V2 { "amount" } else { "maxAmountRequired" };
            c["accepts"][0][f] = v.clone();
        }
        M::Accept(f, v) => c["accepts"][0][*f] = v.clone(),
        M::Extra(f, v) => c["accepts"][0]["extra"][*f] = v.clone(),
        M::Root(f, v) => c[*f] = v.clone(),
        M::UnknownNetwork => {
            let n = if g == Gen::V2 { "eip155:999999999" } else { "mystery-net" };
            c["accepts"][0]["network"] = json!(n);
        }
    }
}

/// The good template as JSON text with an extra top-level member `"junk": <raw>`.
fn with_junk(mut good: Value, raw_junk: &str) -> Vec<u8> {
    good.as_object_mut().unwrap().remove("junk");
    let s = serde_json::to_string(&good).unwrap();
    format!("{},\"junk\":{}}}", &s[..s.len() - 1], raw_junk).into_bytes()
}

fn cases(h: &Hostile402) -> Vec<(String, RawResponse, Expect)> {
    let mut out: Vec<(String, RawResponse, Expect)> = Vec::new();
    const ZERO: &str = "0x0000000000000000000000000000000000000000";
    let bad_amount = Malformed("invalid_amount");
    let bad_timeout = Malformed("invalid_max_timeout");
    let shared: Vec<(&str, M, Expect)> = vec![
        ("good_template", M::None, Control),
        ("amount_empty", M::Amount(json!("")), bad_amount),
        ("amount_underscore", M::Amount(json!("1_000")), bad_amount),
        ("amount_plus", M::Amount(json!("+1")), bad_amount),
        ("amount_hex", M::Amount(json!("0x10")), bad_amount),
        ("amount_exp", M::Amount(json!("1e3")), bad_amount),
        ("amount_leading_zero", M::Amount(json!("01")), bad_amount),
        ("amount_negative", M::Amount(json!("-1")), bad_amount),
        ("amount_decimal", M::Amount(json!("1.5")), bad_amount),
        ("amount_bare_number", M::Amount(json!(1000)), bad_amount),
        ("amount_zero", M::Amount(json!("0")), Malformed("zero_amount")),
        ("amount_over_cap", M::Amount(json!("600000")), Refused("over_per_request_cap")),
        ("amount_2pow256", M::Amount(json!(TWO_POW_256)), Malformed("amount_overflow")),
        ("pay_to_zero", M::Accept("payTo", json!(ZERO)), Malformed("zero_pay_to")),
        ("timeout_zero", M::Accept("maxTimeoutSeconds", json!(0)), bad_timeout),
        ("timeout_negative", M::Accept("maxTimeoutSeconds", json!(-1)), bad_timeout),
        ("timeout_fraction", M::Accept("maxTimeoutSeconds", json!(3.5)), bad_timeout),
        ("timeout_string", M::Accept("maxTimeoutSeconds", json!("60")), bad_timeout),
        ("domain_fake_name", M::Extra("name", json!("Fake USDC")), Malformed("domain_mismatch")),
        ("empty_accepts", M::Root("accepts", json!([])), Malformed("empty_accepts")),
        ("version_3", M::Root("x402Version", json!(3)), NotPayable("unsupported_version")),
        ("unknown_network", M::UnknownNetwork, NotPayable("unsupported_network")),
        ("permit2", M::Extra("assetTransferMethod", json!("permit2")), NotPayable("unsupported_transfer_method")),
    ];
    for (name, m, exp) in &shared {
        for g in [Gen::V2, Gen::V1] {
            let path = format!("/{}_{}", name, if g == Gen::V2 { "v2" } else { "v1" });
            let mut c = if g == Gen::V2 { good_v2_required(&h.url_of(&path), "1000") } else { good_v1_body(&h.url_of(&path), "1000") };
            apply(m, g, &mut c);
            let resp = if g == Gen::V2 { v2_response(&c) } else { v1_response(&c) };
            out.push((path, resp, *exp));
        }
    }
    // v2-only: approve/permit extensions, header encodings, sizes, depth.
    for ext in ["eip2612GasSponsoring", "erc20ApprovalGasSponsoring"] {
        let path = format!("/ext_{ext}_v2");
        let mut c = good_v2_required(&h.url_of(&path), "1000");
        c["extensions"] = json!({ ext: {"info": {"description": "approve the spender", "version": "1"}, "schema": {"type": "object"}} });
        out.push((path, v2_response(&c), NotPayable("unsupported_extension")));
    }
    out.push(("/bad_base64_v2".into(), v2_response_header("%%%not*base64!!".into()), Malformed("invalid_base64")));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let path = "/too_deep_v2".to_string();
    out.push((path.clone(), v2_response_header(b64(&with_junk(good_v2_required(&h.url_of(&path), "1000"), &deep))), Malformed("too_deep")));
    let path = "/too_deep_v1".to_string();
    out.push((path.clone(), v1_response_raw(with_junk(good_v1_body(&h.url_of(&path), "1000"), &deep)), Malformed("too_deep")));
    let big = format!("\"{}\"", "a".repeat(760_000));
    let path = "/huge_header_v2".to_string();
    out.push((path.clone(), v2_response_header(b64(&with_junk(good_v2_required(&h.url_of(&path), "1000"), &big))), AnyRefusal));
    let big = format!("\"{}\"", "a".repeat(1_048_576));
    let path = "/huge_body_v1".to_string();
    out.push((path.clone(), v1_response_raw(with_junk(good_v1_body(&h.url_of(&path), "1000"), &big)), AnyRefusal));
    out
}

fn check(path: &str, exp: Expect, r: &purser_testkit::Reply, sent: &RawResponse, rec: &Value) -> Result<(), String> {
    let e = |what: &str| Err(format!("{what}\n  receipt: {rec}\n  reply: {r}"));
    let reason = rec["reason"].as_str().unwrap_or("");
    match exp {
        Malformed(detail) | Refused(detail) => {
            let (want_reason, want_detail) = match exp {
                Malformed(d) => ("malformed_challenge", Some(d)),
                _ => (detail, None),
            };
            if r.status != 403 || r.code().as_deref() != Some(want_reason) {
                return e(&format!("want 403 code {want_reason}"));
            }
            if rec["outcome"] != "refused" || reason != want_reason {
                return e(&format!("want receipt refused/{want_reason}"));
            }
            if let Some(d) = want_detail {
                if rec["detail"] != d {
                    return e(&format!("want detail {d}"));
                }
            }
        }
        NotPayable(detail) => {
            if r.status != 402 || r.body.as_bytes() != sent.body.as_slice() {
                return e("want the upstream 402 passed back unchanged");
            }
            if rec["outcome"] != "not_payable" || reason.is_empty() || rec["detail"] != detail {
                return e(&format!("want receipt not_payable, a reason, detail {detail}"));
            }
        }
        AnyRefusal => {
            let named = !reason.is_empty() && reason.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if r.status == 200 || !(rec["outcome"] == "refused" || rec["outcome"] == "failed") || !named {
                return e("want a non-200 answer and a refused/failed receipt with a snake_case reason");
            }
        }
        Control => {
            if rec["outcome"] != "failed" || reason != "settlement_failed" || rec["amount_atomic"] != "1000" {
                return e(&format!("{path}: the good template must be paid once and fail settlement"));
            }
        }
    }
    if !matches!(exp, Control) && !rec["tx"].is_null() {
        return e("a bad challenge produced a tx");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_challenges_are_refused_with_receipts() {
    let h = Hostile402::start().await;
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let (gid, token) = p.grant(&["--budget", "10.00", "--per-request-max", "0.50", "--auto-below", "1.00", "--ask-below", "2.00", "--approval-timeout", "2s"]);
    let c = agent();
    let all = cases(&h);
    let mut failures: Vec<String> = Vec::new();
    let mut receipts_before = 0;
    for (path, resp, exp) in &all {
        h.route(path, resp.clone());
        let r = send(c.get(p.gateway_url(&h.url_of(path))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
        let paid = h.paid_to(path);
        let want_paid = if matches!(exp, Control) { 1 } else { 0 };
        if paid != want_paid {
            failures.push(format!("{path} ({exp:?}): hostile server saw {paid} paid retries, want {want_paid}\n  reply: {r}"));
        }
        let receipts = p.receipts();
        if receipts.len() != receipts_before + 1 {
            failures.push(format!("{path} ({exp:?}): {} new receipts, want 1\n  reply: {r}", receipts.len() - receipts_before));
        }
        receipts_before = receipts.len();
        let rec = r.receipt().and_then(|id| receipts.iter().find(|x| x["id"] == id.as_str()).cloned()).unwrap_or_default();
        println!("{path:<40} {exp:<38} -> HTTP {} {:<20} | {} / {} / {}", r.status, r.code().unwrap_or_default(), rec["outcome"], rec["reason"], rec["detail"], exp = format!("{exp:?}"));
        match r.receipt() {
            None => failures.push(format!("{path} ({exp:?}): no Purser-Receipt header\n  reply: {r}")),
            Some(id) => match receipts.iter().find(|x| x["id"] == id.as_str()) {
                None => failures.push(format!("{path} ({exp:?}): receipt {id} not in the ledger")),
                Some(rec) => {
                    if let Err(m) = check(path, *exp, &r, resp, rec) {
                        failures.push(format!("{path} ({exp:?}): {m}"));
                    }
                }
            },
        }
        // The proxy is still alive and still forwards.
        let alive = send(c.get(p.gateway_url(&h.url_of("/alive"))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
        assert!(alive.status == 200 && alive.json()["hostile"] == true, "proxy no longer forwards after {path}: {alive}\nearlier failures:\n{}", failures.join("\n\n"));
    }
    let g = p.grant_show(&gid);
    if g["spent_atomic"] != "0" {
        failures.push(format!("grant spent something: {g}"));
    }
    if h.paid() != 2 {
        failures.push(format!("hostile server saw {} paid requests in all, want 2 (the good templates)", h.paid()));
    }
    assert!(failures.is_empty(), "{} of {} hostile cases failed:\n\n{}", failures.len(), all.len(), failures.join("\n\n"));
}

//! Owns the fuzz targets: one `fn(&[u8])` per parser that reads untrusted input, feeding the bytes
//! to the real function the proxy and the ledger use and asserting invariants beyond "no panic"
//! (round trips, agreement with a simple reference). The `fuzz/` crate (cargo-fuzz) and the
//! corpus replay test (`tests/fuzz_corpus.rs`) call these; a panic here is a bug found.
//!
//! Where a target takes a mode byte, the first byte picks how the rest is presented (raw header
//! bytes, or JSON that the target base64-encodes so the fuzzer can work on the JSON).

use crate::grants::HostPattern;
use crate::money;
use crate::proxy::head::{self, ForwardHead, GatewayHead, Head};
use crate::search::Query;
use crate::x402::{self, Authorization, Challenge, Parsed, X402Error};
use alloy_primitives::{Address, B256, U256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{TimeZone, Utc};

/// A fuzz target: one input, any bytes.
pub type Target = fn(&[u8]);

/// Every target by name: what `fuzz/corpus/<name>/` holds inputs for.
pub const TARGETS: &[(&str, Target)] = &[
    ("x402_v1_challenge", x402_v1_challenge),
    ("x402_v2_challenge", x402_v2_challenge),
    ("settlement_header", settlement_header),
    ("amount", amount),
    ("host_pattern", host_pattern),
    ("timeline_query", timeline_query),
    ("proxy_head", proxy_head),
];

/// The listener port the proxy-head target pretends to own.
pub const PROXY_PORT: u16 = 4020;

/// x402 v1: a 402 JSON body with no `PAYMENT-REQUIRED` header.
pub fn x402_v1_challenge(data: &[u8]) {
    let parsed = x402::parse_challenge(None, data);
    check_parsed(&parsed, None);
}

/// x402 v2: mode 0 raw `PAYMENT-REQUIRED` bytes; 1 JSON sent as standard base64; 2 JSON sent
/// as URL-safe base64 without padding; 3 the body form (v2 JSON in the body, no header).
pub fn x402_v2_challenge(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let parsed = match mode % 4 {
        0 => x402::parse_challenge(Some(rest), b""),
        1 => x402::parse_challenge(Some(STANDARD.encode(rest).as_bytes()), b""),
        2 => x402::parse_challenge(Some(URL_SAFE_NO_PAD.encode(rest).as_bytes()), b"{}"),
        _ => x402::parse_challenge(None, rest),
    };
    check_parsed(&parsed, (mode % 4 != 3).then_some(()));
}

/// A challenge that parses re-serialises and re-parses to the same options; a payment header
/// can be built for each option (v2 echoes `accepted` verbatim); an error has a stable code.
fn check_parsed(parsed: &Parsed, header: Option<()>) {
    let c = match &parsed.result {
        Err(e) => return check_code(e.code().as_str()),
        Ok(c) => c,
    };
    let raw = parsed.raw.as_ref().expect("a parsed challenge keeps its document");
    assert!(!c.accepts.is_empty() && c.accepts.len() <= x402::MAX_ACCEPTS);
    assert!(c.version == 1 || c.version == 2);
    let mut last = None;
    for r in &c.accepts {
        assert!(!r.amount.is_zero() && !r.pay_to.is_zero() && r.max_timeout_seconds > 0);
        assert!(last.is_none_or(|l| l < r.index), "options keep their order");
        assert_eq!(raw["accepts"][r.index], r.raw);
        last = Some(r.index);
    }
    let text = raw.to_string();
    if text.len() <= x402::MAX_CHALLENGE_BYTES {
        let again = match header {
            Some(()) => x402::parse_challenge(Some(STANDARD.encode(&text).as_bytes()), b""),
            None => x402::parse_challenge(None, text.as_bytes()),
        };
        let again = again.result.unwrap_or_else(|e| panic!("re-serialised challenge no longer parses: {e}"));
        assert_eq!(summary(c), summary(&again), "re-parse differs");
    }
    let auth = Authorization { from: Address::repeat_byte(1), to: c.accepts[0].pay_to, value: c.accepts[0].amount, valid_after: 0, valid_before: 1, nonce: B256::ZERO };
    for r in &c.accepts {
        let h = x402::encode_payment(c, r, &auth, &[7u8; 65]);
        let doc: serde_json::Value = serde_json::from_slice(&STANDARD.decode(&h.value).expect("payment header is base64")).expect("payment header is JSON");
        assert_eq!(doc["x402Version"].as_u64(), Some(c.version as u64));
        if c.version == 2 {
            assert_eq!(doc["accepted"], r.raw, "v2 echoes the option verbatim");
        }
    }
}

type Summary = (u8, Option<String>, Vec<(usize, &'static str, Address, U256, Address, u64)>);

fn summary(c: &Challenge) -> Summary {
    let opts = c.accepts.iter().map(|r| (r.index, r.network.caip2, r.asset.address, r.amount, r.pay_to, r.max_timeout_seconds)).collect();
    (c.version, c.description.clone(), opts)
}

fn check_code(code: &str) {
    assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()), "code {code:?}");
}

/// `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE`: mode 0 raw header bytes, 1 JSON as base64.
pub fn settlement_header(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let decoded = if mode % 2 == 0 { x402::decode_settlement(rest) } else { x402::decode_settlement(STANDARD.encode(rest).as_bytes()) };
    let s = match decoded {
        Err(e) => return check_code(e.code().as_str()),
        Ok(s) => s,
    };
    for t in [&s.transaction, &s.network, &s.payer, &s.error_reason].into_iter().flatten() {
        assert!(t.chars().count() <= 200 && !t.chars().any(char::is_control), "settlement text not cleaned: {t:?}");
    }
    assert_eq!(s.raw["success"].as_bool(), Some(s.success));
    let again = x402::decode_settlement(STANDARD.encode(s.raw.to_string()).as_bytes());
    match again {
        Ok(a) => assert_eq!((a.success, a.transaction, a.network, a.payer, a.error_reason), (s.success, s.transaction, s.network, s.payer, s.error_reason)),
        Err(X402Error::TooLarge) => {}
        Err(e) => panic!("re-encoded settlement no longer decodes: {e}"),
    }
}

/// The strict atomic parser (`^(0|[1-9][0-9]*)$`, at most 2^256-1), the USD parser and the
/// atomic-to-micro-USD conversion. The first byte is the decimals for the conversion.
pub fn amount(data: &[u8]) {
    let Some((&decimals, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'));
    match money::parse_atomic(&s) {
        Ok(v) => {
            assert!(canonical, "accepted non-canonical {s:?}");
            assert_eq!(v.to_string(), s, "round trip");
            if let Ok(m) = money::atomic_to_micros(v, decimals) {
                assert!(m <= i64::MAX as u64);
                if decimals as u32 >= money::USD_DECIMALS {
                    let unit = U256::from(10u64).pow(U256::from(decimals as u32 - money::USD_DECIMALS));
                    assert!(U256::from(m).checked_mul(unit).is_none_or(|x| x >= v), "rounding up never under-charges");
                }
            }
        }
        Err(e) => {
            assert_eq!(e.code() == "amount_overflow", canonical, "{s:?}: {e}");
            if canonical {
                assert!(s.len() >= 78, "{s:?} fits in 256 bits");
            }
        }
    }
    if let Ok(m) = money::parse_usd(&s) {
        assert!(m <= i64::MAX as u64);
        assert_eq!(money::parse_usd(&money::format_usd(m)), Ok(m), "format_usd round trip");
        assert_eq!(money::parse_usd(&money::micros_decimal(m)), Ok(m), "micros_decimal round trip");
    }
}

/// A grant host pattern and a host:port it is checked against. Layout: two bytes of port, then
/// `pattern\nhost`.
pub fn host_pattern(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let port = u16::from_be_bytes([data[0], data[1]]);
    let text = String::from_utf8_lossy(&data[2..]);
    let (pat, host) = text.split_once('\n').unwrap_or((&text, ""));
    let p = match pat.parse::<HostPattern>() {
        Err(e) => return check_code(e.code().as_str()),
        Ok(p) => p,
    };
    let shown = p.to_string();
    assert_eq!(shown.parse::<HostPattern>().as_ref(), Ok(&p), "display round trip of {shown:?}");
    let json = serde_json::to_string(&p).expect("serialises");
    assert_eq!(serde_json::from_str::<HostPattern>(&json).ok().as_ref(), Some(&p), "serde round trip");
    let got = p.matches(host, port);
    if host.is_ascii() {
        assert_eq!(got, reference_match(&p, host, port), "{shown} vs {host:?}:{port}");
    }
}

/// What a host pattern means, written differently: a port must be equal if named; the host, in
/// lower case without trailing dots, equals the pattern, or for `*.` ends in `.pattern` with a
/// non-empty label before it.
fn reference_match(p: &HostPattern, host: &str, port: u16) -> bool {
    let (wildcard, name, want_port) = p.parts();
    if want_port.is_some_and(|w| w != port) {
        return false;
    }
    let h = host.to_ascii_lowercase();
    let h = h.trim_end_matches('.');
    if !wildcard {
        return h == name;
    }
    h.strip_suffix(name).and_then(|before| before.strip_suffix('.')).is_some_and(|label| !label.is_empty())
}

/// The timeline's query language (`weather grant:research amount:>0.10 since:7d`).
pub fn timeline_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    match Query::parse(&text, now) {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.contains(&e.token), "the error names its token");
        }
        Ok(q) => {
            if let Some((lo, hi)) = q.amount {
                assert!(lo <= hi, "empty amount range accepted");
            }
            if let (Some(s), Some(u)) = (q.since, q.until) {
                assert!(s < u);
            }
            for t in &q.terms {
                assert!(!t.words.is_empty() && t.words.iter().all(|w| !w.is_empty()));
            }
            assert!(q.facets.iter().all(|f| !f.values.is_empty()));
            assert_eq!(Query::parse(&text, now).as_ref(), Ok(&q), "deterministic");
        }
    }
}

/// An inbound request head as the listener reads it. Layout: `METHOD URI` on the first line,
/// then `name: value` lines (invalid methods, URIs and headers are dropped, as hyper would
/// reject them before Purser sees them).
pub fn proxy_head(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let (m, u) = match first.iter().position(|b| *b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => (first, &b"/"[..]),
    };
    let (Ok(method), Ok(uri)) = (http::Method::from_bytes(m), http::Uri::try_from(u)) else { return };
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some(i) = line.iter().position(|b| *b == b':') else { continue };
        let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(&line[..i]), http::HeaderValue::from_bytes(line[i + 1..].trim_ascii())) else { continue };
        headers.append(name, value);
    }
    let token = head::grant_token(&headers);
    assert!(token.as_deref().is_none_or(|t| !t.is_empty()), "an empty token");
    match head::read(&method, &uri, &headers, PROXY_PORT) {
        Err(r) => {
            check_code(r.code);
            assert!(r.status.is_client_error());
        }
        Ok(h) => {
            assert!(!headers.contains_key(http::header::ORIGIN), "a request with Origin was let in");
            match h {
                Head::Gateway(g) => {
                    let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
                    assert!(host == format!("127.0.0.1:{PROXY_PORT}") || host == format!("localhost:{PROXY_PORT}"), "gateway with Host {host:?}");
                    if let GatewayHead::Target { url, token: t } = g {
                        assert!(matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
                        assert_eq!(t, token);
                    }
                }
                Head::Forward(ForwardHead::Connect { host, port, token: t }) => {
                    assert_eq!(method, http::Method::CONNECT);
                    assert!(!host.is_empty() && port != 0 && host == host.to_ascii_lowercase());
                    assert!(!head::is_self(&host, port, PROXY_PORT), "a loop to ourselves");
                    assert_eq!(t, token);
                }
                Head::Forward(ForwardHead::Absolute { url, host, port, token: t }) => {
                    assert!(matches!(url.scheme(), "http" | "https"));
                    assert!(!head::is_self(&host, port, PROXY_PORT), "a loop to ourselves");
                    assert_eq!(t, token);
                }
            }
        }
    }
}

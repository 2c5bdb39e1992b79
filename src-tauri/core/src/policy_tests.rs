//! Table tests of the policy: each refusal reason and each tier at its boundaries.

// Table-driven: each case is one tuple, spelled out where it is read.
#![allow(clippy::type_complexity)]

use super::*;
use crate::grants::GrantSpec;
use crate::x402::parse_challenge;
use base64::Engine;
use chrono::Duration;
use serde_json::json;

fn grant(now: DateTime<Utc>) -> Grant {
    let spec = GrantSpec {
        label: "t".into(),
        budget: "1.00".into(),
        expires: "1h".into(),
        hosts: vec!["api.example.com".into(), "127.0.0.1:9000".into()],
        per_request_max: Some("0.50".into()),
        auto_below: Some("0.05".into()),
        ask_below: Some("0.40".into()),
        ..Default::default()
    };
    let (label, limits) = spec.validate(now).unwrap();
    Grant { id: "g".into(), label, created_at: now, revoked_at: None, limits, spent: 0, reserved: 0 }
}

fn reqs(options: &[(&str, &str)]) -> Vec<Requirement> {
    let accepts: Vec<_> = options
        .iter()
        .map(|(amount, pay_to)| {
            json!({"scheme": "exact", "network": "eip155:84532", "amount": amount,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": pay_to, "maxTimeoutSeconds": 60})
        })
        .collect();
    let h = base64::engine::general_purpose::STANDARD.encode(json!({"x402Version": 2, "accepts": accepts}).to_string());
    parse_challenge(Some(h.as_bytes()), b"{}").result.unwrap().accepts
}

const PAYEE: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

#[test]
fn tiers_and_refusals_table() {
    let now = Utc::now();
    type Mutate = fn(&mut Grant, DateTime<Utc>);
    let none: Mutate = |_, _| {};
    let cases: Vec<(&str, &str, u16, &str, Mutate, Result<Tier, Refusal>)> = vec![
        ("auto", "api.example.com", 443, "49999", none, Ok(Tier::Auto)),
        ("ask at the auto boundary", "api.example.com", 443, "50000", none, Ok(Tier::Ask)),
        ("ask just below ask tier", "api.example.com", 443, "399999", none, Ok(Tier::Ask)),
        ("above ask tier", "api.example.com", 443, "400000", none, Err(Refusal::AboveAskTier)),
        ("over cap", "api.example.com", 443, "500001", none, Err(Refusal::OverPerRequestCap)),
        ("host", "evil.com", 443, "1", none, Err(Refusal::HostNotAllowed)),
        ("port-pinned host, other port", "127.0.0.1", 9001, "1", none, Err(Refusal::HostNotAllowed)),
        ("port-pinned host", "127.0.0.1", 9000, "1", none, Ok(Tier::Auto)),
        ("revoked", "api.example.com", 443, "1", |g, n| g.revoked_at = Some(n), Err(Refusal::Revoked)),
        ("expired", "api.example.com", 443, "1", |g, n| g.limits.expires_at = n - Duration::seconds(1), Err(Refusal::Expired)),
        ("budget exactly used", "api.example.com", 443, "10000", |g, _| g.spent = 990_000, Ok(Tier::Auto)),
        ("over budget by one", "api.example.com", 443, "10001", |g, _| g.spent = 990_000, Err(Refusal::OverBudget)),
        ("reserved counts", "api.example.com", 443, "10001", |g, _| g.reserved = 990_000, Err(Refusal::OverBudget)),
        ("payee list", "api.example.com", 443, "1", |g, _| g.limits.payees = vec![alloy_primitives::Address::repeat_byte(1)], Err(Refusal::PayeeNotAllowed)),
        ("network list", "api.example.com", 443, "1", |g, _| g.limits.networks = vec!["eip155:8453".into()], Err(Refusal::NetworkNotAllowed)),
    ];
    for (name, host, port, amount, mutate, want) in cases {
        let mut g = grant(now);
        mutate(&mut g, now);
        let r = reqs(&[(amount, PAYEE)]);
        let c = choose(&g, host, port, &r, now);
        assert_eq!(c.verdict, want, "{name}");
    }
}

#[test]
fn chooses_the_cheapest_allowed_option() {
    let now = Utc::now();
    let r = reqs(&[("20000", PAYEE), ("10000", PAYEE), ("600000", PAYEE)]);
    let c = choose(&grant(now), "api.example.com", 443, &r, now);
    assert_eq!((c.requirement.index, c.micros, c.verdict), (1, 10_000, Ok(Tier::Auto)));
    // An allowed option beats a cheaper refused one.
    let mut g = grant(now);
    g.limits.payees = vec![PAYEE.parse().unwrap()];
    let r = reqs(&[("1000", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"), ("2000", PAYEE)]);
    assert_eq!(choose(&g, "api.example.com", 443, &r, now).requirement.index, 1);
    // None allowed: the cheapest one's refusal.
    let r = reqs(&[("900000", PAYEE), ("700000", PAYEE)]);
    let c = choose(&grant(now), "api.example.com", 443, &r, now);
    assert_eq!((c.requirement.index, c.verdict), (1, Err(Refusal::OverPerRequestCap)));
}

//! The request gate, tested without a socket: Host/Origin table, token checks, routing.

// Table-driven: each case is one tuple, spelled out where it is read.
#![allow(clippy::type_complexity)]

use super::*;
use crate::grants::GrantSpec;
use crate::ledger::Ledger;
use http::header;
use http_body_util::BodyExt;
use http_body_util::Full;

fn engine() -> (tempfile::TempDir, Arc<Engine>, String) {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap());
    let spec = GrantSpec { label: "t".into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["127.0.0.1".into()], ..Default::default() };
    let token = e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().token;
    (dir, e, token)
}

fn ctx() -> ProxyContext {
    ProxyContext { port: 4020, inflight: Default::default(), tunnels: tunnels::Tunnels::from_env() }
}

async fn send(e: &Arc<Engine>, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let mut b = Request::builder().uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = handle(e, &ctx(), &caller::Caller::unknown(), b.body(Full::new(Bytes::new())).unwrap()).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn host_and_origin_table() {
    let (_d, e, token) = engine();
    let auth = format!("Bearer {token}");
    // The target is unreachable on purpose: nothing here may get as far as forwarding.
    let uri = "/http://127.0.0.1:9/x";
    let cases: &[(&str, &[(&str, &str)], StatusCode, &str)] = &[
        ("evil.com", &[("host", "evil.com")], StatusCode::FORBIDDEN, "host_forbidden"),
        ("rebinding", &[("host", "localhost.evil.com:4020")], StatusCode::FORBIDDEN, "host_forbidden"),
        ("empty host", &[("host", "")], StatusCode::FORBIDDEN, "host_forbidden"),
        ("no host", &[], StatusCode::FORBIDDEN, "host_forbidden"),
        ("0.0.0.0", &[("host", "0.0.0.0:4020")], StatusCode::FORBIDDEN, "host_forbidden"),
        ("other port", &[("host", "127.0.0.1:4021")], StatusCode::FORBIDDEN, "host_forbidden"),
        ("origin", &[("host", "127.0.0.1:4020"), ("origin", "http://127.0.0.1:4020")], StatusCode::FORBIDDEN, "origin_forbidden"),
        ("null origin", &[("host", "127.0.0.1:4020"), ("origin", "null")], StatusCode::FORBIDDEN, "origin_forbidden"),
        ("no token", &[("host", "127.0.0.1:4020")], StatusCode::PROXY_AUTHENTICATION_REQUIRED, "missing_token"),
        ("bad token", &[("host", "127.0.0.1:4020"), ("proxy-authorization", "Bearer pgt_nope")], StatusCode::PROXY_AUTHENTICATION_REQUIRED, "unknown_token"),
        ("bad grant header", &[("host", "localhost:4020"), ("x-purser-grant", "nope")], StatusCode::PROXY_AUTHENTICATION_REQUIRED, "unknown_token"),
    ];
    for (name, headers, status, code) in cases {
        let (s, v) = send(&e, uri, headers).await;
        assert_eq!((s, v["code"].as_str().unwrap_or("")), (*status, *code), "{name}: {v}");
    }
    // A good token gets as far as the (unreachable) upstream: a receipt-backed 502.
    let (s, v) = send(&e, uri, &[("host", "127.0.0.1:4020"), ("proxy-authorization", &auth)]).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (StatusCode::BAD_GATEWAY, "upstream_error"), "{v}");
    assert!(v["receipt"].is_string());
}

#[tokio::test]
async fn routing_and_no_control_api_through_the_proxy() {
    let (_d, e, token) = engine();
    let h = ("host", "127.0.0.1:4020");
    assert_eq!(send(&e, "/", &[h]).await.1["code"], "not_found");
    assert_eq!(send(&e, "/ftp://x/y", &[h]).await.1["code"], "not_found");
    assert_eq!(send(&e, "/http://", &[h]).await.1["code"], "bad_target");
    // The control API lives on a Unix socket only: no token, old or new, opens it here.
    let auth = format!("Bearer {token}");
    for headers in [vec![h], vec![h, ("authorization", "Bearer pct_anything")], vec![h, ("authorization", auth.as_str())], vec![h, ("proxy-authorization", auth.as_str())]] {
        let (s, v) = send(&e, "/_purser/v1/approvals", &headers).await;
        assert_eq!((s, v["code"].as_str().unwrap()), (StatusCode::NOT_FOUND, "not_found"), "{headers:?}");
        let (s, _) = send(&e, "/_purser/v1/spending/resume", &headers).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_run_only_grant_is_refused_outside_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::new(Ledger::open_in(dir.path()).unwrap(), None).unwrap());
    let spec = GrantSpec { label: "r".into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["127.0.0.1".into()], only_run: true, ..Default::default() };
    let token = e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().token;
    let (s, v) = send(&e, "/http://127.0.0.1:9/x", &[("host", "127.0.0.1:4020"), ("proxy-authorization", &format!("Bearer {token}"))]).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (StatusCode::FORBIDDEN, "run_only"), "{v}");
    let spec = GrantSpec { label: "x".into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["127.0.0.1".into()], only_exe: Some("/usr/bin/definitely-not-this".into()), ..Default::default() };
    let token = e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().token;
    let (s, v) = send(&e, "/http://127.0.0.1:9/x", &[("host", "127.0.0.1:4020"), ("proxy-authorization", &format!("Bearer {token}"))]).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (StatusCode::FORBIDDEN, "exe_not_allowed"), "an unidentified caller is not the listed exe: {v}");
}

#[test]
fn grant_token_sources() {
    let mut h = HeaderMap::new();
    h.insert("x-purser-grant", "tok".parse().unwrap());
    assert_eq!(grant_token(&h).as_deref(), Some("tok"));
    h.insert(header::PROXY_AUTHORIZATION, "Basic Z3JhbnQ6c2VjcmV0".parse().unwrap());
    assert_eq!(grant_token(&h).as_deref(), Some("secret"), "Basic: the password is the token");
    h.insert(header::PROXY_AUTHORIZATION, "bearer  abc ".parse().unwrap());
    assert_eq!(grant_token(&h).as_deref(), Some("abc"));
    h.insert(header::PROXY_AUTHORIZATION, "Digest x".parse().unwrap());
    assert_eq!(grant_token(&h), None);
}

#[tokio::test]
async fn a_folded_minute_gets_its_summary_receipt_when_the_minute_ends() {
    use crate::clock::{ManualClock, OsNonces};
    let dir = tempfile::tempdir().unwrap();
    // One second before a minute ends, by the engine's clock.
    let now = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(now - chrono::Duration::seconds(now.timestamp().rem_euclid(60)) + chrono::Duration::seconds(59)));
    let mut e = Engine::with_sources(Ledger::open_in(dir.path()).unwrap(), None, clock.clone(), Arc::new(OsNonces)).unwrap();
    e.folding = Arc::new(crate::folding::Folding::new(2));
    let e = Arc::new(e);
    let spec = GrantSpec { label: "t".into(), budget: "1".into(), expires: "1h".into(), hosts: vec!["127.0.0.1".into()], ..Default::default() };
    let token = e.create_grant(&spec, Some(&crate::presence::Presence::app_click())).unwrap().token;
    let auth = format!("Bearer {token}");
    for _ in 0..5 {
        let (s, v) = send(&e, "/http://127.0.0.1:9/x", &[("host", "127.0.0.1:4020"), ("proxy-authorization", &auth)]).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("upstream_error")), "{v}");
    }
    let receipts = e.ledger.list_receipts(100).unwrap();
    assert_eq!(receipts.len(), 2, "two receipts, three folded and not yet written");
    // The minute ends; its summary follows within a second or so, with no traffic to prompt it.
    clock.advance(chrono::Duration::seconds(2));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let receipts = e.ledger.list_receipts(100).unwrap();
    let summary = receipts.iter().find(|r| r.reason == crate::folding::REASON).expect("the summary receipt");
    assert_eq!((summary.folded.as_ref().map(|f| f.count), summary.detail.as_deref()), (Some(3), Some("upstream_error")));
    assert!(matches!(e.ledger.verify_chain().unwrap(), crate::ledger::ChainReport::Intact { count: 3, .. }), "the chain holds the summary like any receipt");
}

//! e2e: the proxy's own defences — Host and Origin checks (never forwarded), 407 without a valid
//! grant token, no token leak upstream, loopback-only listening, a private data dir.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use purser_testkit::{agent, raw_http, send, Hostile402, Mode, Peers, Purser};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purser");

fn request(target: &str, host: Option<&str>, token: &str, extra: &str) -> Vec<u8> {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    format!("GET /{target} HTTP/1.1\r\n{host}Proxy-Authorization: Bearer {token}\r\nAccept: application/json\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_and_origin_checks_and_407() {
    let h = Hostile402::start().await;
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let g = p.grant_create(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let token = g["token"].as_str().unwrap().to_string();
    let addr = format!("127.0.0.1:{}", p.port);
    let target = h.url_of("/target");
    let other_port = if p.port == 65535 { p.port - 1 } else { p.port + 1 };

    // Control: the right Host goes through (so the refusals below are about the Host/Origin only).
    let ok = raw_http(&addr, &request(&target, Some(&addr), &token, "")).await;
    assert_eq!(ok.status, 200, "control request with Host {addr}: {ok}");
    assert_eq!(h.requests_to("/target"), 1, "control request reached upstream once");
    let seen = &h.seen()[0];
    for leak in ["proxy-authorization", "x-purser-grant"] {
        assert!(!seen.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case(leak) || v.contains(&token)), "the grant token leaked upstream in {leak}: {:?}", seen.headers);
    }

    let hosts = [
        "evil.com".to_string(),
        format!("evil.com:{}", p.port),
        "localhost.evil.com".to_string(),
        format!("localhost.evil.com:{}", p.port),
        format!("127.0.0.1.evil.com:{}", p.port),
        String::new(),
        "0.0.0.0".to_string(),
        format!("0.0.0.0:{}", p.port),
        format!("127.0.0.1:{other_port}"),
    ];
    let mut bad: Vec<String> = Vec::new();
    for host in &hosts {
        let r = raw_http(&addr, &request(&target, Some(host), &token, "")).await;
        if !(r.status == 403 || r.status == 421) || !r.json()["code"].is_string() {
            bad.push(format!("Host {host:?}: want 403/421 JSON with a code, got {r}"));
        }
    }
    let origins = ["http://evil.com", "null", &format!("http://{addr}"), "http://localhost", "chrome-extension://abc"];
    for origin in origins {
        let r = raw_http(&addr, &request(&target, Some(&addr), &token, &format!("Origin: {origin}\r\n"))).await;
        if !(r.status == 403 || r.status == 421) || !r.json()["code"].is_string() {
            bad.push(format!("Origin {origin:?}: want 403/421 JSON with a code, got {r}"));
        }
    }
    // No Host header at all: refused one way or another, never forwarded.
    let r = raw_http(&addr, &request(&target, None, &token, "")).await;
    if !(400..500).contains(&r.status) {
        bad.push(format!("no Host header: want a 4xx, got {r}"));
    }
    assert_eq!(h.requests_to("/target"), 1, "a refused Host/Origin request was forwarded upstream; also: {bad:#?}");
    assert!(bad.is_empty(), "Host/Origin checks:\n{}", bad.join("\n"));

    // Missing, wrong and malformed tokens: 407 with a JSON code, not forwarded.
    let c = agent();
    let url = p.gateway_url(&target);
    for (what, rb) in [
        ("no token", c.get(&url)),
        ("wrong token", c.get(&url).header("Proxy-Authorization", "Bearer pg_not_a_real_token_0000000000")),
        ("wrong X-Purser-Grant", c.get(&url).header("X-Purser-Grant", "nope")),
        ("Basic auth", c.get(&url).header("Proxy-Authorization", format!("Basic {token}"))),
        ("token prefix", c.get(&url).header("Proxy-Authorization", format!("Bearer {}", &token[..token.len() - 1]))),
    ] {
        let r = send(rb).await;
        assert_eq!(r.status, 407, "{what}: {r}");
        assert!(r.code().is_some() && r.json()["message"].is_string(), "{what}: 407 body must be JSON {{code,message}}: {r}");
    }
    assert_eq!(h.requests_to("/target"), 1, "an unauthenticated request was forwarded");
    assert!(p.receipts().is_empty(), "nothing governed was paid or refused: {:#?}", p.receipts());

    // Loopback only: 127.0.0.2 and ::1 reach the same host but not a 127.0.0.1-bound socket.
    let control: Value = serde_json::from_slice(&std::fs::read(p.data_dir.join("control.json")).expect("control.json")).expect("control.json is JSON");
    let mut ports = vec![p.port];
    for v in control.as_object().into_iter().flat_map(|o| o.values()) {
        if let Some(u) = v.as_str().filter(|u| u.starts_with("http")) {
            let port = u.rsplit(':').next().and_then(|x| x.trim_end_matches('/').split('/').next()?.parse::<u16>().ok());
            assert!(u.starts_with("http://127.0.0.1:"), "control API URL is not loopback: {u}");
            ports.extend(port);
        }
    }
    for port in ports {
        for other in [format!("127.0.0.2:{port}"), format!("[::1]:{port}")] {
            let r = tokio::net::TcpStream::connect(&other).await;
            assert!(r.is_err(), "port {port} also accepts connections on {other}: not bound to 127.0.0.1 only");
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<String>, secret: &str) {
    let meta = std::fs::metadata(dir).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    if mode != 0o700 {
        out.push(format!("dir {} has mode {mode:o}, want 700", dir.display()));
    }
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            walk(&p, out, secret);
        } else {
            let mode = m.permissions().mode() & 0o777;
            if mode != 0o600 {
                out.push(format!("file {} has mode {mode:o}, want 600", p.display()));
            }
            let bytes = std::fs::read(&p).unwrap_or_default();
            if String::from_utf8_lossy(&bytes).to_ascii_lowercase().contains(secret) {
                out.push(format!("file {} contains the private key in clear", p.display()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_dir_is_private_after_serving_and_paying() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let g = p.grant_create(&["--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let token = g["token"].as_str().unwrap();
    let r = send(agent().get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json")).await;
    assert_eq!(r.status, 200, "{r}");
    assert!(p.data_dir.join("control.json").exists(), "the daemon wrote no control.json");
    assert!(p.db_path().exists(), "no purser.db");
    let secret = peers.payer_key.trim_start_matches("0x").to_ascii_lowercase();
    let mut problems = Vec::new();
    walk(&p.data_dir, &mut problems, &secret);
    assert!(problems.is_empty(), "data dir {}:\n{}", p.data_dir.display(), problems.join("\n"));
}

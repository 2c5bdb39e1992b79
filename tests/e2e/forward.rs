//! e2e: standard proxy mode. Agents that only honour HTTPS_PROXY (curl, Python httpx and
//! requests) pay the reference paywalls served over TLS (a test CA that `purser serve` trusts
//! through PURSER_UPSTREAM_CA), through CONNECT intercepted with Purser's local CA; out-of-scope
//! hosts are tunnelled blind; a bad upstream certificate is refused with a receipt; wrong or
//! missing proxy credentials get 407.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use purser_testkit::{facilitator_count, raw_http, usdc_balance, Mode, Peers, Purser, ServeOptions, TestCa, TlsFront};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// The CA the paywalls' TLS fronts use (one for all of this file's tests); the daemons of
/// [`trusting`] trust it upstream, and nothing else does.
fn upstream_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| TestCa::new("purser e2e upstream CA"))
}

/// `serve` options trusting `ca` upstream (`PURSER_UPSTREAM_CA`), plus `env`. Given to the
/// daemon's own environment, not set in this process's: every e2e test shares this process,
/// and each `purser` it starts inherits its environment.
fn trusting(ca: &TestCa, env: &[(&str, &str)]) -> ServeOptions {
    let mut all = vec![("PURSER_UPSTREAM_CA".to_string(), ca.pem_path().to_string_lossy().into_owned())];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ServeOptions { env: all, ..Default::default() }
}

/// [`Purser::start`] (paying with the peers' payer) trusting `ca` upstream.
fn start_trusting(peers: &Peers, ca: &TestCa) -> Purser {
    let p = Purser::start_with(BIN, &peers.payer_key, trusting(ca, &[]));
    assert!(p.address.eq_ignore_ascii_case(&peers.payer_address), "wallet address {} != peers' payer {}", p.address, peers.payer_address);
    p
}

/// `purser ca export -o FILE` into the test's work dir.
fn export_ca(p: &Purser) -> PathBuf {
    let path = p.work_dir().join("purser-ca.pem");
    p.cli_ok(&["ca", "export", "-o", path.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    path
}

struct Curl {
    /// `%{http_code} %{http_connect}`
    code: u16,
    connect: u16,
    /// `%{http_version}`: 1.1 or 2
    version: String,
    headers: String,
    body: String,
    out: Output,
}

impl Curl {
    fn header(&self, name: &str) -> Option<String> {
        // The last response's headers (after the CONNECT's own 200).
        let last = self.headers.rsplit("\r\n\r\n").find(|b| b.trim().starts_with("HTTP/")).unwrap_or("");
        last.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl std::fmt::Display for Curl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "curl {} (connect {}), exit {}\n{}\n{}\nstderr: {}", self.code, self.connect, self.out.status, self.headers, self.body, String::from_utf8_lossy(&self.out.stderr))
    }
}

/// curl with `HTTPS_PROXY`/`http_proxy` set to Purser with these credentials (none if `token` is
/// None), trusting only `cacert`.
fn curl(p: &Purser, token: Option<&str>, cacert: &Path, url: &str) -> Curl {
    curl_with(p, token, cacert, url, &[])
}

fn curl_with(p: &Purser, token: Option<&str>, cacert: &Path, url: &str, extra: &[&str]) -> Curl {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (h, b) = (p.work_dir().join(format!("curl-{n}.h")), p.work_dir().join(format!("curl-{n}.b")));
    let proxy = match token {
        Some(t) => format!("http://grant:{t}@127.0.0.1:{}", p.port),
        None => format!("http://127.0.0.1:{}", p.port),
    };
    let out = Command::new("curl")
        .args(extra)
        .args(["-sS", "--max-time", "60", "-H", "Accept: application/json", "-w", "%{http_code} %{http_connect} %{http_version}", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .arg("--cacert")
        .arg(cacert)
        .arg(url)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HTTPS_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .output()
        .expect("run curl");
    let w = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = w.split_whitespace();
    let mut code = || words.next().unwrap_or("").to_string();
    let (status, connect, version) = (code(), code(), code());
    Curl {
        code: status.parse().unwrap_or(0),
        connect: connect.parse().unwrap_or(0),
        version,
        headers: std::fs::read_to_string(&h).unwrap_or_default(),
        body: std::fs::read_to_string(&b).unwrap_or_default(),
        out,
    }
}

fn assert_chain_ok(p: &Purser) {
    let v = p.cli_json(&["receipts", "verify", "--json"]);
    assert!(v.to_string().contains("true") || v["ok"] == true, "receipts verify: {v}");
    let out = p.cli(&["receipts", "verify"]);
    assert!(out.status.success(), "receipts verify failed: {}", String::from_utf8_lossy(&out.stdout));
}

fn assert_paid(r: &Value, url_part: &str) {
    assert_eq!(r["outcome"], "paid", "{r}");
    assert_eq!(r["amount_atomic"], "1000", "{r}");
    assert!(r["url"].as_str().is_some_and(|u| u.starts_with("https://127.0.0.1:") && u.contains(url_part)), "{r}");
    assert!(r["tx"].as_str().is_some_and(|t| t.starts_with("0x") && t.len() == 66), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn curl_pays_v2_through_connect_and_absolute_form() {
    let ca = upstream_ca();
    let peers = Peers::start(Mode::Real);
    let p = start_trusting(&peers, ca);
    let key = p.data_dir.join("ca-key.sealed");
    let purser_ca = export_ca(&p);
    // The CA key is private and sealed with the wallet: no key in the clear anywhere.
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the CA key is private");
    let sealed = std::fs::read(&key).unwrap();
    assert!(sealed.starts_with(b"PRSCAKY1") && !String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"), "sealed");
    assert!(!p.data_dir.join("ca-key.pem").exists(), "no clear key");
    let g = p.grant_create(&["--budget", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let token = g["token"].as_str().unwrap();
    let front = TlsFront::start(ca, &peers.v2);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    let c = curl(&p, Some(token), &purser_ca, &format!("{}/cheap?q=1", front.url()));
    assert_eq!((c.connect, c.code), (200, 200), "{c}");
    assert_eq!(c.json()["route"], "cheap", "{c}");
    assert_eq!(c.json()["x402"], 2, "{c}");
    assert!(c.header("server-timing").is_some_and(|t| t.starts_with("purser;dur=")), "{c}");
    let rid = c.header("purser-receipt").unwrap_or_else(|| panic!("no receipt header: {c}"));
    let r = p.receipt(&rid);
    assert_paid(&r, "/cheap?q=1");
    assert_eq!(r["grant_id"], g["id"], "{r}");

    // A free route passes through the intercepted tunnel untouched, with no receipt.
    let free = curl(&p, Some(token), &purser_ca, &format!("{}/free", front.url()));
    assert_eq!(free.code, 200, "{free}");
    assert!(free.header("purser-receipt").is_none(), "{free}");

    // HTTP/2 to the agent (ALPN) pays the same way.
    let h2 = curl_with(&p, Some(token), &purser_ca, &format!("{}/cheap?h2=1", front.url()), &["--http2"]);
    assert_eq!((h2.code, h2.version.as_str()), (200, "2"), "{h2}");
    assert_paid(&p.receipt(&h2.header("purser-receipt").unwrap_or_else(|| panic!("{h2}"))), "/cheap?h2=1");

    // Absolute-form plain http (http_proxy) is governed the same way.
    let abs = curl(&p, Some(token), &purser_ca, &format!("{}/cheap", peers.v2));
    assert_eq!(abs.code, 200, "{abs}");
    let ra = p.receipt(&abs.header("purser-receipt").unwrap_or_else(|| panic!("{abs}")));
    assert_eq!(ra["outcome"], "paid", "{ra}");
    assert!(ra["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{ra}");

    let after = usdc_balance(&peers.rpc, &peers.pay_to).await;
    assert_eq!(after - before, 3000, "payee delta");
    assert_eq!(p.receipts().len(), 3, "one receipt per payment");
    assert_chain_ok(&p);

    // Locked, the CA's key is out of memory with the wallet's: a paid host is not intercepted.
    p.cli_ok(&["wallet", "lock"]);
    let locked = curl(&p, Some(token), &purser_ca, &format!("{}/free", front.url()));
    assert_eq!(locked.connect, 503, "{locked}");
    // Unlocked again, the same CA (agents keep trusting it) intercepts again.
    p.cli_ok(&["wallet", "unlock"]);
    let again = curl(&p, Some(token), &purser_ca, &format!("{}/free", front.url()));
    assert_eq!(again.code, 200, "{again}");
}

/// A Python that has httpx and requests (Debian's python3-httpx/python3-requests, or any
/// python3 on PATH that has them).
fn python() -> String {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py).args(["-c", "import httpx, requests"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return py.to_string();
        }
    }
    panic!("no python3 with httpx and requests: run ./dev test (installs python3-httpx python3-requests)");
}

const PY: &str = r#"
import json, sys
lib, url = sys.argv[1], sys.argv[2]
if lib == "httpx":
    import httpx
    r = httpx.get(url, headers={"Accept": "application/json"}, timeout=60)
else:
    import requests
    r = requests.get(url, headers={"Accept": "application/json"}, timeout=60)
print(json.dumps({"status": r.status_code, "receipt": r.headers.get("purser-receipt"), "body": r.text}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_httpx_and_requests_pay_v1_with_only_env() {
    let ca = upstream_ca();
    let py = python();
    let peers = Peers::start(Mode::Real);
    let p = start_trusting(&peers, ca);
    let g = p.grant_create(&["--budget", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let (gid, token) = (g["id"].as_str().unwrap(), g["token"].as_str().unwrap());
    let front = TlsFront::start(ca, &peers.v1);
    // What `purser grant env` prints is all the agent gets.
    let env = p.cli_json(&["grant", "env", gid, "--token", token, "--json"]);
    let vars = env["env"].as_object().unwrap_or_else(|| panic!("grant env: {env}"));
    assert!(vars["HTTPS_PROXY"].as_str().unwrap().contains(token), "{env}");
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let mut ids = Vec::new();
    for lib in ["httpx", "requests"] {
        let mut cmd = Command::new(&py);
        cmd.args(["-c", PY, lib, &format!("{}/cheap", front.url())]).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", p.work_dir());
        for (k, v) in vars {
            cmd.env(k, v.as_str().unwrap());
        }
        let out = cmd.output().expect("run python");
        let text = format!("{lib}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["status"], 200, "{text}");
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!((body["route"].as_str(), body["x402"].as_u64()), (Some("cheap"), Some(1)), "{text}");
        let r = p.receipt(v["receipt"].as_str().unwrap_or_else(|| panic!("no receipt: {text}")));
        assert_paid(&r, "/cheap");
        ids.push(r["id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - before, 2000);
    assert_chain_ok(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_scope_connect_is_a_blind_tunnel() {
    let ca = upstream_ca();
    let peers = Peers::start(Mode::Real);
    let covered = TlsFront::start(ca, &peers.v2);
    let other = TlsFront::start(ca, &peers.v2);
    let scope = format!("127.0.0.1:{}", covered.addr.port());
    let grant = ["--host", &scope, "--budget", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"];

    // 127.0.0.1 is this machine: a grant that does not name it (with that port) does not reach it.
    let strict = start_trusting(&peers, ca);
    let g = strict.grant_create(&grant);
    let target = format!("127.0.0.1:{}", other.addr.port());
    let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {}\r\n\r\n", base64(format!("grant:{}", g["token"].as_str().unwrap()).as_bytes()));
    let refused = raw_http(&format!("127.0.0.1:{}", strict.port), connect.as_bytes()).await;
    assert_eq!((refused.status, refused.code().as_deref()), (403, Some("internal_target")), "{refused}");
    assert_eq!(other.connections(), 0);
    drop(strict);

    // A daemon whose user lets every grant reach 127.0.0.1 (PURSER_INTERNAL_HOSTS) tunnels it blind.
    let opts = trusting(ca, &[("PURSER_INTERNAL_HOSTS", "127.0.0.1")]);
    let p = Purser::start_with(BIN, &peers.payer_key, opts);
    let purser_ca = export_ca(&p);
    let g = p.grant_create(&grant);
    let token = g["token"].as_str().unwrap();
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    // Trusting only the upstream's own CA works: the certificate the agent sees is the real
    // server's, so Purser did not terminate TLS (it saw ciphertext only).
    let c = curl(&p, Some(token), ca.pem_path(), &format!("{}/cheap", other.url()));
    assert_eq!((c.connect, c.code), (200, 402), "the 402 reaches the agent unpaid: {c}");
    assert!(c.header("purser-receipt").is_none(), "{c}");
    let free = curl(&p, Some(token), ca.pem_path(), &format!("{}/free", other.url()));
    assert_eq!(free.code, 200, "{free}");
    // And Purser's CA does not verify that tunnel: nobody in the middle.
    let mitm = curl(&p, Some(token), &purser_ca, &format!("{}/free", other.url()));
    assert_eq!(mitm.out.status.code(), Some(60), "certificate problem expected: {mitm}");
    assert!(p.receipts().is_empty(), "a blind tunnel leaves no receipt: {:?}", p.receipts());
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, before);
    assert_eq!(covered.connections(), 0);

    // A grant with --only-listed-hosts refuses the same tunnel (and plain http to it).
    let strict = p.grant_create(&["--host", &scope, "--only-listed-hosts"]);
    assert_eq!(strict["only_listed_hosts"], true, "{strict}");
    let strict_token = strict["token"].as_str().unwrap();
    let refused = curl(&p, Some(strict_token), ca.pem_path(), &format!("{}/free", other.url()));
    assert_eq!(refused.connect, 403, "{refused}");
    let plain = curl(&p, Some(strict_token), ca.pem_path(), &format!("{}/free", peers.v2));
    assert_eq!((plain.code, plain.json()["code"].as_str()), (403, Some("host_not_listed")), "{plain}");
    let seen = other.connections();
    let listed = curl(&p, Some(strict_token), &purser_ca, &format!("{}/free", covered.url()));
    assert_eq!(listed.code, 200, "listed hosts are still served (intercepted): {listed}");
    assert_eq!(other.connections(), seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_upstream_certificate_is_refused_with_a_receipt() {
    let ca = upstream_ca();
    let untrusted = TestCa::new("nobody trusts this CA");
    let peers = Peers::start(Mode::Real);
    let p = start_trusting(&peers, ca);
    let purser_ca = export_ca(&p);
    let g = p.grant_create(&["--budget", "1.00", "--auto-below", "0.05", "--ask-below", "1.00"]);
    let token = g["token"].as_str().unwrap();
    let bad = TlsFront::start(&untrusted, &peers.v2);
    let settled = facilitator_count(&peers.facilitator, "settle").await;
    let before = usdc_balance(&peers.rpc, &peers.payer_address).await;

    let c = curl(&p, Some(token), &purser_ca, &format!("{}/cheap", bad.url()));
    assert_eq!((c.connect, c.code), (200, 502), "{c}");
    assert_eq!(c.json()["code"], "upstream_error", "{c}");
    let r = p.receipt(&c.header("purser-receipt").unwrap_or_else(|| panic!("{c}")));
    assert_eq!(r["outcome"], "refused", "{r}");
    assert_eq!(r["detail"], "upstream_certificate", "{r}");
    assert!(r["payload_hash"].is_null(), "nothing was signed: {r}");
    assert!(bad.connections() >= 1, "Purser did try the upstream");
    assert_eq!(facilitator_count(&peers.facilitator, "settle").await, settled);
    assert_eq!(usdc_balance(&peers.rpc, &peers.payer_address).await, before, "never a payment");
    assert_chain_ok(&p);
}

/// Standard base64 (for Basic credentials).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_or_missing_proxy_credentials_get_407() {
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let g = p.grant_create(&[]);
    let token = g["token"].as_str().unwrap();
    let addr = format!("127.0.0.1:{}", p.port);
    let basic = |user: &str, pass: &str| base64(format!("{user}:{pass}").as_bytes());
    let cases = [
        ("CONNECT no credentials", "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n".to_string(), 407, "missing_token"),
        ("CONNECT wrong token", format!("CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic {}\r\n\r\n", basic("grant", "pgt_wrong")), 407, "unknown_token"),
        ("CONNECT token as user name", format!("CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic {}\r\n\r\n", basic(token, "")), 407, "missing_token"),
        ("absolute-form no credentials", "GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: close\r\n\r\n".to_string(), 407, "missing_token"),
        (
            "absolute-form wrong token",
            format!("GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic {}\r\nConnection: close\r\n\r\n", basic("x", "nope")),
            407,
            "unknown_token",
        ),
        (
            "CONNECT from a web page",
            format!("CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nOrigin: http://evil.example\r\nProxy-Authorization: Basic {}\r\n\r\n", basic("grant", token)),
            403,
            "origin_forbidden",
        ),
        ("CONNECT to the proxy itself", format!("CONNECT {addr} HTTP/1.1\r\nHost: {addr}\r\nProxy-Authorization: Basic {}\r\n\r\n", basic("grant", token)), 400, "proxy_loop"),
    ];
    for (name, req, status, code) in cases {
        let r = raw_http(&addr, req.as_bytes()).await;
        assert_eq!(r.status, status, "{name}: {r}");
        assert_eq!(r.code().as_deref(), Some(code), "{name}: {r}");
        if status == 407 {
            let basic = r.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("proxy-authenticate") && v.starts_with("Basic"));
            assert!(basic, "{name}: Proxy-Authenticate Basic: {r}");
        }
    }
    // curl reports the CONNECT's 407 for a wrong password, and for none.
    let pem = p.work_dir().join("none.pem");
    std::fs::write(&pem, "").unwrap();
    for t in [Some("pgt_wrong"), None] {
        let c = curl(&p, t, &pem, "https://127.0.0.1:9/x");
        assert_eq!(c.connect, 407, "{c}");
    }
    assert!(p.receipts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_style_upgrade_passes_through_an_intercepted_tunnel() {
    let ca = upstream_ca();
    let p = Purser::start_with(BIN, purser_testkit::ANVIL_PAYER_KEY, trusting(ca, &[]));
    let purser_ca = export_ca(&p);
    let g = p.grant_create(&[]);
    let token = g["token"].as_str().unwrap();
    let echo = TlsFront::start_upgrade_echo(ca);
    let payload = b"hello through purser \x00\x01\x02".repeat(100);
    let (status, echoed) = purser_testkit::tls::upgrade_through_proxy(p.port, token, echo.addr, &purser_ca, &payload).await.unwrap_or_else(|e| panic!("{e}\n{}", p.serve_log_tail(20)));
    assert!(status.contains(" 101 "), "{status}");
    assert_eq!(echoed, payload, "bytes pass both ways after the upgrade");
    assert!(p.receipts().is_empty(), "upgrades are not governed: no receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaf_certificates_name_only_the_requested_host() {
    let p = Purser::start_with_key(BIN, purser_testkit::ANVIL_PAYER_KEY);
    let purser_ca = export_ca(&p);
    let g = p.grant_create(&["--host", "127.0.0.1", "--host", "api.example.com"]);
    let token = g["token"].as_str().unwrap();
    // The leaf is presented during the handshake, before any upstream is contacted.
    for (target, want) in [("127.0.0.1:9", "IP Address:127.0.0.1"), ("api.example.com:443", "DNS:api.example.com")] {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", target, "-proxy", &format!("127.0.0.1:{}", p.port), "-proxy_user", "grant", "-proxy_pass", &format!("pass:{token}"), "-CAfile"])
            .arg(&purser_ca)
            .args(["-verify_return_error"])
            .args(if target.starts_with("api.") { vec!["-servername", "api.example.com", "-verify_hostname", "api.example.com"] } else { vec!["-verify_ip", "127.0.0.1"] })
            .arg("-showcerts")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("Verification: OK") || text.contains("Verify return code: 0"), "{target}: {text}");
        let pem_start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| panic!("{target}: no certificate: {text}"));
        let pem_end = text[pem_start..].find("-----END CERTIFICATE-----").unwrap() + pem_start + 25;
        let leaf = p.work_dir().join("leaf.pem");
        std::fs::write(&leaf, &text[pem_start..pem_end]).unwrap();
        let san = Command::new("openssl").args(["x509", "-noout", "-ext", "subjectAltName", "-in"]).arg(&leaf).output().unwrap();
        let san = String::from_utf8_lossy(&san.stdout);
        let names: Vec<&str> = san.lines().skip(1).flat_map(|l| l.split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
        assert_eq!(names, vec![want], "{target}: {san}");
    }
}

//! e2e: money integrity when the agent misbehaves (issue 20), against the real peers: an agent
//! that gives up on a paid request still gets its payment recorded (a receipt within seconds,
//! `delivery: client_gone`, the budget settled, the chain agreeing); a held request whose agent
//! left is withdrawn at once, with a `client_gone` receipt and nothing paid; gateway mode honours
//! `--only-listed-hosts`.

use purser_testkit::{agent, send, usdc_balance, Mode, Peers, Purser};
use serde_json::Value;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_purser");

/// Polls the receipts until one satisfies `pred`.
fn wait_receipt(p: &Purser, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = p.receipts().into_iter().find(|r| pred(r)) {
            return r;
        }
        assert!(Instant::now() < deadline, "no such receipt within {timeout:?}; last: {:#?}", p.receipts_limit(3));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_that_gives_up_still_gets_its_payment_recorded() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.01"]);
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    // The agent waits 1 s; /slow answers 2 s after its paid request.
    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(1)).build().unwrap();
    let t0 = Instant::now();
    let r = impatient.get(p.gateway_url(&format!("{}/slow", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}")).send().await;
    assert!(r.is_err(), "the agent gave up: {r:?}");
    let rec = wait_receipt(&p, Duration::from_secs(15), |r| r["url"].as_str().is_some_and(|u| u.ends_with("/slow")));
    eprintln!("measured: the receipt of an abandoned paid request {} ms after the agent's request", t0.elapsed().as_millis());
    assert_eq!((rec["outcome"].as_str(), rec["delivery"].as_str()), (Some("paid"), Some("client_gone")), "{rec}");
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("1000"), Some("0")), "settled, not left reserved: {g}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - payee_before, 1000, "the payee got exactly what the receipts say");
    // A restart does not rewrite history: no `interrupted` receipt appears for it.
    let mut p = p;
    p.restart();
    assert!(p.receipts().iter().all(|r| r["reason"] != "interrupted"), "{:#?}", p.receipts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_request_whose_agent_left_is_withdrawn_at_once() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0", "--ask-below", "1.00", "--approval-timeout", "120s"]);
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let url = p.gateway_url(&format!("{}/mid", peers.v2));
    let agent_task = tokio::spawn(async move {
        let c = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(3)).build().unwrap();
        c.get(url).header("Proxy-Authorization", format!("Bearer {token}")).send().await.map(|r| r.status().as_u16())
    });
    let held = p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str());
    let id = held[0]["id"].as_str().unwrap().to_string();
    assert!(agent_task.await.unwrap().is_err(), "the agent gave up after 3 s");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(5);
    while !p.approvals().is_empty() {
        assert!(Instant::now() < deadline, "the held request outlived its agent: {:?}", p.approvals());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("measured: withdrawn {} ms after the agent left", t0.elapsed().as_millis());
    let rec = wait_receipt(&p, Duration::from_secs(5), |r| r["reason"] == "client_gone");
    assert_eq!((rec["outcome"].as_str(), rec["grant_id"].as_str()), (Some("refused"), Some(gid.as_str())), "{rec}");
    assert!(rec["tx"].is_null() && rec["payload_hash"].is_null(), "nothing signed: {rec}");
    // Approving it now is an error, not a silent success.
    let out = p.cli(&["approvals", "approve", &id]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no_such_approval"), "{out:?}");
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await, payee_before, "nothing paid");
    assert_eq!(p.grant_show(&gid)["reserved_atomic"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_mode_honours_only_listed_hosts() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let paywall = peers.v2.trim_start_matches("http://").to_string();
    let (_gid, token) = p.grant(&["--host", &paywall, "--only-listed-hosts", "--auto-below", "0.01"]);
    let c = agent();
    let ok = send(c.get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", format!("Bearer {token}"))).await;
    assert_eq!(ok.status, 200, "the listed host: {ok}");
    // The chain's RPC and the facilitator are on this machine but not listed: refused.
    for other in [&peers.rpc, &peers.facilitator] {
        let r = send(c.get(p.gateway_url(other)).header("Proxy-Authorization", format!("Bearer {token}"))).await;
        assert_eq!((r.status, r.code().as_deref()), (403, Some("host_not_listed")), "{other}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_targets_need_a_grant_that_names_them() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let port = peers.v2.rsplit(':').next().unwrap().to_string();
    // A grant for a public API only: this machine and its networks are out of its reach, in
    // gateway mode, proxy mode and CONNECT, however the address is spelled.
    let (_gid, token) = p.grant(&["--host", "api.example.com"]);
    let auth = format!("Bearer {token}");
    let c = agent();
    for host in ["127.0.0.1", "127.1", "[::ffff:127.0.0.1]", "2130706433", "localhost", "169.254.169.254", "10.0.0.1", "[::1]"] {
        let r = send(c.get(p.gateway_url(&format!("http://{host}:{port}/free"))).header("Proxy-Authorization", &auth)).await;
        assert_eq!((r.status, r.code().as_deref()), (403, Some("internal_target")), "gateway to {host}: {r}");
    }
    let addr = format!("127.0.0.1:{}", p.port);
    let absolute = format!("GET http://127.0.0.1:{port}/free HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n");
    let r = purser_testkit::raw_http(&addr, absolute.as_bytes()).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("internal_target")), "proxy mode: {r}");
    let connect = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n");
    let r = purser_testkit::raw_http(&addr, connect.as_bytes()).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("internal_target")), "CONNECT: {r}");
    assert!(p.receipts().is_empty(), "refused at the door: {:?}", p.receipts());

    // A grant that names 127.0.0.1 reaches it, and only by that name.
    let (_gid, named) = p.grant(&["--host", "127.0.0.1"]);
    let named = format!("Bearer {named}");
    let ok = send(c.get(p.gateway_url(&format!("{}/free", peers.v2))).header("Proxy-Authorization", &named)).await;
    assert_eq!(ok.status, 200, "{ok}");
    let other_name = send(c.get(p.gateway_url(&format!("http://localhost:{port}/free"))).header("Proxy-Authorization", &named)).await;
    assert_eq!((other_name.status, other_name.code().as_deref()), (403, Some("internal_target")), "{other_name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loops_forged_headers_and_secrets_in_urls() {
    let peers = Peers::start(Mode::Real);
    let p = Purser::start(BIN, &peers);
    let (_gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.01"]);
    let auth = format!("Bearer {token}");
    let c = agent();
    // The proxy itself, however it is spelled: refused as a loop, in both modes.
    for host in ["127.1", "[::ffff:127.0.0.1]", "0x7f000001", "2130706433", "localhost"] {
        let r = send(c.get(format!("{}/http://{host}:{}/x", p.proxy_url, p.port)).header("Proxy-Authorization", &auth)).await;
        assert_eq!((r.status, r.code().as_deref()), (400, Some("proxy_loop")), "gateway to {host}: {r}");
    }
    let connect = purser_testkit::raw_http(
        &format!("127.0.0.1:{}", p.port),
        format!("CONNECT 127.1:{port} HTTP/1.1\r\nHost: 127.1:{port}\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n", port = p.port).as_bytes(),
    )
    .await;
    assert_eq!((connect.status, connect.code().as_deref()), (400, Some("proxy_loop")), "CONNECT to 127.1: {connect}");

    // HTTP/2 cleartext is refused (the listener is HTTP/1.1), HTTP/1.1 still served.
    let h2 = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--http2-prior-knowledge", &format!("{}/http://127.0.0.1:9/", p.proxy_url)])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&h2.stdout).starts_with('2'), "answered over h2c: {}", String::from_utf8_lossy(&h2.stdout));
    let h1 = std::process::Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", &format!("{}/http://127.0.0.1:9/", p.proxy_url)]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&h1.stdout), "1.1 407", "HTTP/1.1 is served");
    // An upstream cannot speak as Purser: its Purser-* and Server-Timing: purser never reach the agent.
    let hostile = purser_testkit::Hostile402::start().await;
    hostile.route("/forged", purser_testkit::RawResponse::new(200, &[("Purser-Receipt", "forged-id"), ("Server-Timing", "purser;dur=0.001, db;dur=3"), ("Content-Type", "text/plain")], "hello"));
    let r = send(c.get(p.gateway_url(&hostile.url_of("/forged"))).header("Proxy-Authorization", &auth)).await;
    assert_eq!(r.status, 200, "{r}");
    assert!(r.header("purser-receipt").is_none(), "a forged receipt header passed: {r}");
    assert_eq!(r.header("server-timing"), Some("db;dur=3"), "{r}");

    // A secret in the query string: paid, and never kept in the receipt, the index or exports.
    let r = send(c.get(p.gateway_url(&format!("{}/cheap?city=paris&api_key=sk_live_SECRET123", peers.v2))).header("Proxy-Authorization", &auth)).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert!(rec["url"].as_str().unwrap().ends_with("/cheap?city=paris&api_key=REDACTED"), "{rec}");
    assert_eq!(rec["url_hash"].as_str().map(str::len), Some(64), "{rec}");
    let all = p.cli_ok(&["receipts", "export", "", "--format", "jsonl", "-o", "-"]);
    assert!(!all.contains("SECRET123") && all.contains("REDACTED"), "{all}");
    let found = p.cli_json(&["receipts", "search", "sk_live_SECRET123", "--json"]);
    assert_eq!(found["items"].as_array().map(|a| a.len()), Some(0), "{found}");
    assert!(!std::fs::read(p.db_path()).unwrap().windows(9).any(|w| w == b"SECRET123"), "the secret is not in the ledger file");
}

/// Counts TCP connections to a local port (a stand-in RPC that never answers).
struct Recorder {
    port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    fn start() -> Recorder {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(s);
            }
        });
        Recorder { port, hits }
    }
    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn no_chain_is_read_for_a_network_no_active_grant_uses() {
    let (mainnet, testnet) = (Recorder::start(), Recorder::start());
    let opts = purser_testkit::ServeOptions { env: vec![("PURSER_CHAIN_INTERVAL_SECS".into(), "1".into())], ..Default::default() };
    let mut p = Purser::start_with(BIN, purser_testkit::ANVIL_PAYER_KEY, opts);
    p.cli_ok(&["network", "set-rpc", "base", &format!("http://127.0.0.1:{}/", mainnet.port)]);
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &format!("http://127.0.0.1:{}/", testnet.port)]);
    p.restart();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!((mainnet.hits(), testnet.hits()), (0, 0), "no grant: no request to any chain");
    // A grant on the testnets (the default): only its network is read, and soon.
    p.grant(&["--budget", "1.00"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while testnet.hits() == 0 {
        assert!(Instant::now() < deadline, "the grant's network was never read");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mainnet.hits(), 0, "mainnet, which no grant uses, is never read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routine_refusals_beyond_the_minute_limit_fold_into_one_summary_receipt() {
    let peers = Peers::start(Mode::Real);
    let opts = purser_testkit::ServeOptions { env: vec![("PURSER_RECEIPTS_PER_MINUTE".into(), "5".into())], ..Default::default() };
    let mut p = Purser::start_with(BIN, &peers.payer_key, opts);
    let (gid, token) = p.grant(&["--budget", "1.00", "--auto-below", "0.01"]);
    let hostile = purser_testkit::Hostile402::start().await;
    hostile.route("/junk", purser_testkit::challenge::v1_response_raw(b"{not a challenge".to_vec()));
    let c = agent();
    let auth = format!("Bearer {token}");
    // An agent in a loop on a 402 Purser cannot pay: each is passed back, but only 5 a minute
    // are receipts of their own.
    let mut ids = Vec::new();
    for _ in 0..40 {
        let r = send(c.get(p.gateway_url(&hostile.url_of("/junk"))).header("Proxy-Authorization", &auth)).await;
        assert_eq!(r.status, 402, "{r}");
        ids.push(r.receipt_id());
    }
    // A payment is never folded, however many refusals came before it.
    let paid = send(c.get(p.gateway_url(&format!("{}/cheap", peers.v2))).header("Proxy-Authorization", &auth)).await;
    assert_eq!(paid.status, 200, "{paid}");
    let paid_id = paid.receipt_id();
    assert_eq!(p.receipt(&paid_id)["outcome"], "paid");

    // Stopping writes the open summary at once (else it is written when its minute ends).
    p.cli_ok(&["network", "set-rpc", "base-sepolia", &peers.rpc]);
    p.restart();
    let receipts = p.receipts();
    let single: Vec<&Value> = receipts.iter().filter(|r| r["reason"] == "not_payable").collect();
    let summaries: Vec<&Value> = receipts.iter().filter(|r| r["reason"] == "receipts_folded").collect();
    let folded: u64 = summaries.iter().map(|s| s["folded"]["count"].as_u64().unwrap()).sum();
    // 40 requests take well under a minute, but may straddle a minute's end: two windows at most.
    assert!((5..=10).contains(&single.len()) && !summaries.is_empty() && summaries.len() <= 2, "{} receipts, {} summaries", single.len(), summaries.len());
    assert_eq!(single.len() as u64 + folded, 40, "every decision is a receipt or counted in one");
    for s in &summaries {
        assert_eq!((s["grant_id"].as_str(), s["detail"].as_str(), s["outcome"].as_str()), (Some(gid.as_str()), Some("not_payable"), Some("not_payable")), "{s}");
        assert_eq!(s["folded"]["reasons"]["not_payable"], s["folded"]["count"], "{s}");
        assert_eq!(s["folded"]["limit"], 5, "{s}");
        assert!(s["message"].as_str().unwrap().contains("nothing was paid or reserved"), "{s}");
        // The folded answers named this summary in Purser-Receipt.
        let named = ids.iter().filter(|id| s["id"].as_str() == Some(id.as_str())).count() as u64;
        assert_eq!(named, s["folded"]["count"].as_u64().unwrap(), "{s}");
    }
    let verify = p.cli(&["receipts", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn a_knob_that_does_not_parse_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["serve", "--port", "0", "--no-notify"]).env("PURSER_DATA_DIR", dir.path()).env("PURSER_MAX_CONNECTIONS", "0").env_remove("PURSER_PASSPHRASE");
    // A daemon that ignored the knob would serve on: the timeout ends it, and the test fails.
    let out = purser_testkit::proc::run_with_timeout(cmd, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with PURSER_MAX_CONNECTIONS=0: {err}");
    assert!(err.contains("PURSER_MAX_CONNECTIONS=\"0\" is not valid") && err.contains("invalid_config"), "{err}");
}

//! e2e: desktop prompts over real D-Bus. A private session bus (dbus-run-session) carries the
//! harness's test notification server (owns org.freedesktop.Notifications, records every call,
//! presses buttons on request); the real `purser serve` raises its prompts there (built with
//! notify-rust, shown over zbus). Approve pays on the real reference peers; deny, timeout, hostile
//! text, a price change after the prompt, a press that overtakes the answer to `Notify`, a flood
//! of held requests, rules made from a decision, and a bus with no notification server at all.

use std::time::{Duration, Instant};

use purser_testkit::challenge::{good_v2_required, unb64_json, v2_response};
use purser_testkit::desktop::Notification;
use purser_testkit::{agent, facilitator_stats, send, usdc_balance, Hostile402, Mode, NotifyServer, Peers, Purser, Reply, ServeOptions, SessionBus, ANVIL_PAYER_KEY};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purser");
/// The daemon's flood threshold (purser_core::notify::FLOOD_THRESHOLD).
const FLOOD_THRESHOLD: usize = 5;

fn on_bus(bus: &SessionBus) -> ServeOptions {
    ServeOptions { session_bus: Some(bus.address.clone()), ..Default::default() }
}

fn spawn_get(p: &Purser, token: &str, url: &str, headers: &[(&str, &str)]) -> tokio::task::JoinHandle<Reply> {
    let mut rb = agent().get(p.gateway_url(url)).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json");
    for (k, v) in headers {
        rb = rb.header(*k, reqwest::header::HeaderValue::from_bytes(v.as_bytes()).expect("header value"));
    }
    tokio::spawn(send(rb))
}

async fn answered(h: tokio::task::JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(Duration::from_secs(90), h).await.expect("the agent got an answer").expect("agent task")
}

fn ids(g: &Value) -> (String, String) {
    (g["id"].as_str().unwrap().to_string(), g["token"].as_str().unwrap().to_string())
}

/// No further notification arrives for a while (the count stays at `n`).
async fn stays_at(server: &NotifyServer, n: usize, d: Duration) {
    tokio::time::sleep(d).await;
    assert_eq!(server.notifications().len(), n, "unexpected notifications: {:#?}", server.notifications());
}

fn short(addr: &str) -> String {
    format!("{}…{}", &addr[..6], &addr[38..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_deny_and_timeout_from_notifications() {
    let peers = Peers::start(Mode::Real);
    let bus = SessionBus::start();
    let server = NotifyServer::start(&bus, &["actions", "body", "body-markup", "persistence"]).await;
    let mut p = Purser::start_with(BIN, &peers.payer_key, on_bus(&bus));
    let g = p.grant_create(&["--label", "research", "--budget", "1.00", "--per-request-max", "0.50", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "60s"]);
    let (gid, token) = ids(&g);
    let before = usdc_balance(&peers.rpc, &peers.pay_to).await;
    let v2_host = peers.v2.trim_start_matches("http://").to_string();

    // Approve from the notification: one prompt, with the verified facts; pays on the peers.
    let t0 = Instant::now();
    let held = spawn_get(&p, &token, &format!("{}/mid", peers.v2), &[("Purser-Intent", "summarise the weather report")]);
    let n = server.wait_for(1, Duration::from_secs(20)).await.remove(0);
    eprintln!("measured: prompt on the bus {} ms after the agent's request (50 ms polling)", t0.elapsed().as_millis());
    assert_eq!(n.app_name, "Purser", "{n:#?}");
    assert_eq!(n.action_keys(), ["approve", "deny", "open"], "{n:#?}");
    // Who asks comes first: this test process, identified from its socket by the OS.
    assert_eq!(n.summary, format!("{}: pay $0.05 to {v2_host}?", me()), "{n:#?}");
    assert!(n.body.lines().next().is_some_and(|l| l.starts_with("Asked by ") && l.contains(&me()) && l.contains(&format!("pid {}", std::process::id()))), "{}", n.body);
    for want in [
        format!("GET {v2_host}/mid"),
        format!("$0.05 (0.05 USDC on base-sepolia) to {}", short(&peers.pay_to)),
        "budget $1.00 left, $0.95 after".to_string(),
        "Unverified, the agent".to_string(),
        "“summarise the weather report”".to_string(),
        format!("Payee {}", peers.pay_to),
        "Denied in ".to_string(),
    ] {
        assert!(n.body.contains(&want), "body lacks {want:?}:\n{}", n.body);
    }
    let pending = p.wait_approvals(1, Duration::from_secs(10), |a| a["grant_id"] == gid.as_str());
    assert_eq!(pending[0]["amount_atomic"], "50000");
    stays_at(&server, 1, Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "held until the user answers");
    let t0 = Instant::now();
    server.invoke(n.id, "approve").await;
    let r = answered(held).await;
    eprintln!("measured: approve pressed -> paid answer in {} ms (signature, paid request, settlement on anvil)", t0.elapsed().as_millis());
    assert_eq!(r.status, 200, "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["outcome"].as_str(), rec["decided_by"].as_str(), rec["decided_via"].as_str()), (Some("paid"), Some("user"), Some("notification")), "{rec}");
    assert_eq!(rec["amount_atomic"], "50000", "{rec}");
    assert!(rec["tx"].is_string(), "{rec}");
    server.wait_closed(n.id, Duration::from_secs(10)).await;
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - before, 50000, "the payee got exactly the approved price");

    // Deny from the notification.
    let held = spawn_get(&p, &token, &format!("{}/mid", peers.v2), &[]);
    let n = server.wait_for(2, Duration::from_secs(20)).await.remove(1);
    assert!(n.body.contains("budget $0.95 left, $0.90 after"), "{}", n.body);
    server.invoke(n.id, "deny").await;
    let r = answered(held).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("user_denied")), "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["decided_by"].as_str(), rec["decided_via"].as_str()), (Some("user"), Some("notification")), "{rec}");

    // Nobody answers: denied by timeout, the notification goes away.
    let g2 = p.grant_create(&["--label", "patient", "--budget", "1.00", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "2s"]);
    let held = spawn_get(&p, g2["token"].as_str().unwrap(), &format!("{}/mid", peers.v2), &[]);
    let n = server.wait_for(3, Duration::from_secs(20)).await.remove(2);
    assert!(n.body.contains("Task “patient”"), "{}", n.body);
    let t0 = Instant::now();
    let r = answered(held).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("approval_timed_out")), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(8), "timed out after {:?}", t0.elapsed());
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["decided_by"].as_str(), rec["decided_via"].as_str()), (Some("timeout"), None), "{rec}");
    server.wait_closed(n.id, Duration::from_secs(10)).await;

    // One notification per request, nothing else; a late press changes nothing.
    assert_eq!(server.notifications().len(), 3, "{:#?}", server.notifications());
    server.invoke(n.id, "approve").await;
    // The miss is told once, the next time the user looks.
    let out = p.cli_ok(&["approvals", "list"]);
    assert!(out.contains("1 request was denied while you were away"), "{out}");
    assert!(!p.cli_ok(&["approvals", "list"]).contains("while you were away"));
    assert_eq!(facilitator_stats(&peers.facilitator).await["settle"], 1, "only the approved payment settled");
    assert_eq!(p.receipts().len(), 3);

    // No prompt outlives the daemon.
    let _held = spawn_get(&p, &token, &format!("{}/mid", peers.v2), &[]);
    let n = server.wait_for(4, Duration::from_secs(20)).await.remove(3);
    p.stop();
    server.wait_closed(n.id, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_text_is_sanitised_and_a_price_change_after_the_prompt_pays_nothing() {
    let hostile = Hostile402::start().await;
    let long = "A".repeat(10 * 1024);
    let description = format!("\u{202E}evorppa ot kcilc\n$0.00 to trusted.example.com <img src=x onerror=alert(1)>{long}");
    let mut required = good_v2_required(&hostile.url_of("/h"), "50000");
    required["resource"]["description"] = Value::String(description);
    hostile.route("/h", v2_response(&required));
    let bus = SessionBus::start();
    let server = NotifyServer::start(&bus, &["actions", "body", "body-markup"]).await;
    let p = Purser::start_with(BIN, ANVIL_PAYER_KEY, on_bus(&bus));
    let g = p.grant_create(&["--budget", "1.00", "--auto-below", "0.01", "--ask-below", "0.50"]);
    let (gid, token) = ids(&g);
    let host = format!("127.0.0.1:{}", hostile.port);

    let intent = "\u{202E}approve <b>now</b>\tPay $0.00 to trusted.example.com?";
    let held = spawn_get(&p, &token, &hostile.url_of("/h"), &[("Purser-Intent", intent), ("User-Agent", "agent\u{200F}-007")]);
    let n: Notification = server.wait_for(1, Duration::from_secs(20)).await.remove(0);
    // The verified host and amount, unchanged and first.
    assert_eq!(n.summary, format!("{}: pay $0.05 to {host}?", me()));
    let lines: Vec<&str> = n.body.lines().collect();
    assert!(lines[0].starts_with("Asked by "), "{}", n.body);
    assert_eq!(lines[1], format!("GET {host}/h"), "{}", n.body);
    assert_eq!(lines[2], format!("$0.05 (0.05 USDC on base-sepolia) to {}", short(purser_testkit::ANVIL_PAYEE_ADDR)), "{}", n.body);
    // Attacker text: marked, quoted on its own line, stripped of bidi and markup, capped.
    let agent_line = lines.iter().find(|l| l.starts_with("Unverified, the agent")).unwrap_or_else(|| panic!("{}", n.body));
    assert!(agent_line.contains("(agent-007)") && agent_line.contains("“approve &lt;b&gt;now&lt;/b&gt; Pay $0.00 to trusted.example.com?”"), "{agent_line}");
    let server_line = lines.iter().find(|l| l.starts_with("Unverified, the server says: “evorppa ot kcilc $0.00 to trusted.example.com &lt;img src=x")).unwrap_or_else(|| panic!("{}", n.body));
    assert!(server_line.chars().count() < 300 && server_line.ends_with("…”"), "capped: {} chars", server_line.chars().count());
    assert!(!n.body.contains('\u{202E}') && !n.body.contains('\u{200F}') && !n.body.contains("<img") && !n.body.contains("<b>"), "{}", n.body);
    assert!(n.body.len() < 1500, "the 10 KB text is capped: body is {} bytes", n.body.len());
    let approval = &p.wait_approvals(1, Duration::from_secs(10), |a| a["grant_id"] == gid.as_str())[0];
    assert!(approval["description"].as_str().unwrap().chars().count() <= 160, "{approval}");

    // "Open", headless: the daemon prints the commands that decide it.
    server.invoke(n.id, "open").await;
    let id = approval["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(p.stdout_log()).unwrap_or_default().contains(&format!("approvals approve {id}")) {
        assert!(Instant::now() < deadline, "open printed no command; stdout:\n{}", std::fs::read_to_string(p.stdout_log()).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(p.approvals().iter().any(|a| a["id"] == id.as_str()), "open decides nothing");

    // The price moves while the prompt is up; the approval does not follow it. The signed
    // authorization binds the approved $0.05, so the server refuses it, and the request is sent
    // twice in all (unpaid, then paid), never a third time.
    hostile.route("/h", v2_response(&good_v2_required(&hostile.url_of("/h"), "60000")));
    server.invoke(n.id, "approve").await;
    let r = answered(held).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("requirement_changed")), "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["outcome"].as_str(), rec["detail"].as_str(), rec["decided_via"].as_str()), (Some("failed"), Some("price_changed"), Some("notification")), "{rec}");
    assert!(rec["message"].as_str().unwrap().contains("from $0.05 to $0.06"), "{rec}");
    assert!(rec["tx"].is_null(), "nothing settled: {rec}");
    assert_eq!((hostile.requests_to("/h"), hostile.paid_to("/h")), (2, 1), "one unpaid request, one paid, no re-check");
    let paid = hostile.seen().into_iter().find(|s| s.paid).unwrap();
    let header = paid.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("payment-signature")).map(|(_, v)| v.clone()).unwrap();
    let payload = unb64_json(&header);
    assert_eq!(payload["payload"]["authorization"]["value"].as_str(), Some("50000"), "the signature binds the approved price: {payload}");
    // The signed $0.05 stays reserved until the chain shows it unused; nothing is spent.
    let g = p.grant_show(&gid);
    assert_eq!((g["spent_atomic"].as_str(), g["reserved_atomic"].as_str()), (Some("0"), Some("50000")), "{g}");
}

/// A hostile-server route asking $0.05, a private bus and a notification server with `caps`.
async fn held_route(path: &str, caps: &[&str]) -> (Hostile402, SessionBus, NotifyServer) {
    let hostile = Hostile402::start().await;
    hostile.route(path, v2_response(&good_v2_required(&hostile.url_of(path), "50000")));
    let bus = SessionBus::start();
    let server = NotifyServer::start(&bus, caps).await;
    (hostile, bus, server)
}

/// A press that overtakes the answer to `Notify` (the server signals before it replies) still
/// decides: the daemon listens before it shows, and keeps the press until it knows the id. Before,
/// such a press was lost and the request waited out its approval timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_press_before_the_notify_answer_decides() {
    let (hostile, bus, server) = held_route("/q", &["actions", "body"]).await;
    server.press_at_once("deny");
    let p = Purser::start_with(BIN, ANVIL_PAYER_KEY, on_bus(&bus));
    let g = p.grant_create(&["--label", "quick", "--budget", "1.00", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "120s"]);
    let (_, token) = ids(&g);
    for round in 1..=3 {
        let t0 = Instant::now();
        let r = answered(spawn_get(&p, &token, &hostile.url_of("/q"), &[])).await;
        assert_eq!((r.status, r.code().as_deref()), (403, Some("user_denied")), "round {round}: {r}");
        assert!(t0.elapsed() < Duration::from_secs(30), "round {round}: decided by the press, not the 120 s timeout ({:?})", t0.elapsed());
        let rec = p.receipt(&r.receipt_id());
        assert_eq!((rec["decided_by"].as_str(), rec["decided_via"].as_str()), (Some("user"), Some("notification")), "{rec}");
        let n = server.wait_for(round, Duration::from_secs(10)).await.remove(round - 1);
        server.wait_closed(n.id, Duration::from_secs(10)).await;
    }
    assert_eq!(hostile.paid(), 0, "denied: nothing paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_fifty_raises_at_most_the_threshold() {
    let (hostile, bus, server) = held_route("/f", &["actions", "body"]).await;
    let p = Purser::start_with(BIN, ANVIL_PAYER_KEY, on_bus(&bus));
    let g = p.grant_create(&["--label", "crawler", "--budget", "100.00", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "120s"]);
    let (gid, token) = ids(&g);
    let t0 = Instant::now();
    let held: Vec<_> = (0..50).map(|i| spawn_get(&p, &token, &format!("{}?i={i}", hostile.url_of("/f")), &[])).collect();
    p.wait_approvals(50, Duration::from_secs(60), |a| a["grant_id"] == gid.as_str());
    // Let the prompter catch up with all 50.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = server.notifications().last().map(|n| n.summary.clone()).unwrap_or_default();
        if last == "46 more payments waiting for you" {
            break;
        }
        assert!(Instant::now() < deadline, "summary never counted 46: {:#?}", server.notifications());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("measured: 50 held requests -> summary counting 46 after {} ms", t0.elapsed().as_millis());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = server.notifications();
    eprintln!("measured: {} Notify calls in all for the flood (summary replaced in place)", all.len());
    let mut distinct: Vec<u32> = all.iter().map(|n| n.id).collect();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() <= FLOOD_THRESHOLD, "{} notifications for one grant: {all:#?}", distinct.len());
    let prompts: Vec<&Notification> = all.iter().filter(|n| n.summary.contains(": pay ")).collect();
    assert_eq!(prompts.len(), FLOOD_THRESHOLD - 1, "{all:#?}");
    let summary = all.last().unwrap();
    assert_eq!(summary.action_keys(), ["open"]);
    assert!(summary.body.contains("task “crawler”"), "{}", summary.body);
    assert!(all.iter().all(|n| n.app_name == "Purser"));

    // Revoking the grant denies all 50; every notification goes away.
    p.cli_ok(&["grant", "revoke", &gid]);
    for h in held {
        let r = answered(h).await;
        assert_eq!((r.status, r.code().as_deref()), (403, Some("revoked")), "{r}");
    }
    for id in distinct {
        server.wait_closed(id, Duration::from_secs(10)).await;
    }
    assert_eq!(hostile.paid(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_notification_server_the_cli_decides_and_makes_rules() {
    let peers = Peers::start(Mode::Real);
    let bus = SessionBus::start(); // nobody owns org.freedesktop.Notifications on it
    let mut p = Purser::start_with(BIN, &peers.payer_key, on_bus(&bus));
    let g = p.grant_create(&["--budget", "1.00", "--auto-below", "0.01", "--ask-below", "0.50", "--approval-timeout", "60s"]);
    let (gid, token) = ids(&g);
    let mid = format!("{}/mid", peers.v2);

    // Held; approved through the CLI with "and auto-approve this host up to $0.10 for 10 minutes".
    let held = spawn_get(&p, &token, &mid, &[]);
    let a = p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str()).remove(0);
    // The window has it open: its countdown stands still, and runs on when closed.
    let route = |verb: &str| format!("approvals/{}/{verb}", a["id"].as_str().unwrap());
    let (_, viewed) = p.control("POST", &route("view"), None);
    assert_eq!(viewed["paused"], true, "{viewed}");
    let (_, unviewed) = p.control("POST", &route("unview"), None);
    assert_eq!(unviewed["paused"], false, "{unviewed}");
    let out = p.cli_json(&["approvals", "approve", a["id"].as_str().unwrap(), "--allow-for", "10m", "--up-to", "0.10", "--json"]);
    let rule_id = out["rule"]["id"].as_str().unwrap_or_else(|| panic!("no rule in {out}")).to_string();
    assert_eq!(out["rule"]["description"].as_str().map(|d| d.starts_with("auto-approve 127.0.0.1:")), Some(true), "{out}");
    let r = answered(held).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["decided_by"].as_str(), rec["decided_via"].as_str()), (Some("user"), Some("terminal")), "{rec}");

    // The rule pays the next one at once, and says so.
    let r = answered(spawn_get(&p, &token, &mid, &[])).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["decided_by"].as_str(), rec["rule_id"].as_str()), (Some("rule"), Some(rule_id.as_str())), "{rec}");
    let rules = p.cli_json(&["rules", "list", "--grant", &gid, "--json"]);
    assert_eq!(rules.as_array().map(|a| a.len()), Some(1), "{rules}");
    assert_eq!(rules[0]["active"], true);
    p.cli_ok(&["rules", "remove", &rule_id]);

    // Without the rule it asks again; denied with "and block this host".
    let held = spawn_get(&p, &token, &mid, &[]);
    let a = p.wait_approvals(1, Duration::from_secs(15), |a| a["grant_id"] == gid.as_str()).remove(0);
    let out = p.cli_json(&["approvals", "deny", a["id"].as_str().unwrap(), "--block-host", "--json"]);
    let block_id = out["rule"]["id"].as_str().unwrap().to_string();
    let r = answered(held).await;
    assert_eq!(r.code().as_deref(), Some("user_denied"), "{r}");
    let r = answered(spawn_get(&p, &token, &mid, &[])).await;
    assert_eq!((r.status, r.code().as_deref()), (403, Some("blocked_by_rule")), "{r}");
    let rec = p.receipt(&r.receipt_id());
    assert_eq!((rec["decided_by"].as_str(), rec["rule_id"].as_str()), (Some("rule"), Some(block_id.as_str())), "{rec}");
    assert!(p.approvals().is_empty(), "a blocked host is never held");

    // Bad input: unknown or decided ids, a wrong token.
    for bad in ["no-such-id", a["id"].as_str().unwrap()] {
        let out = p.cli(&["approvals", "approve", bad]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("(no_such_approval)"), "{out:?}");
    }
    // The control API is not served through the proxy at all.
    let resp = agent().post(format!("{}/_purser/v1/approvals/x/approve", p.proxy_url)).bearer_auth("pct_wrong").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "not_found");

    // One clear warning, no crash.
    let log = std::fs::read_to_string(p.stderr_log()).unwrap_or_default();
    assert_eq!(log.matches("desktop prompts unavailable").count(), 1, "stderr:\n{log}");
    assert!(p.is_running());
    drop(bus);
}

/// This test binary's name, as the OS reports the process behind its requests.
fn me() -> String {
    std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default()
}

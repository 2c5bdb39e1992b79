//! e2e (in-process core, injected clock): the rule "auto-approve this host up to $0.10 for 10
//! minutes", made from the approval window, against the real reference peers, with prompts on a
//! real D-Bus test notification server. The core runs in this process so its clock can be moved:
//! the next matching request pays without a prompt; a request above $0.10 prompts; after the
//! rule expires (the clock moved 10 minutes) it prompts again.
//!
//! It points its process's session bus (`DBUS_SESSION_BUS_ADDRESS`, which the in-process
//! notifier connects to) at a private one, so it runs alone in a child process of the e2e
//! binary (`crate::in_own_process`): no other test sees that environment.

use std::sync::Arc;
use std::time::Duration;

use purser_core::approvals::Via;
use purser_core::clock::{ManualClock, OsNonces};
use purser_core::decisions::Decision;
use purser_core::engine::Engine;
use purser_core::grants::GrantSpec;
use purser_core::ledger::Ledger;
use purser_core::notify::desktop::DesktopNotifier;
use purser_core::notify::PrintCommand;
use purser_core::receipt::{DecidedBy, Outcome};
use purser_core::wallet::Wallet;
use purser_testkit::{agent, send, Mode, NotifyServer, Peers, Reply, SessionBus};

async fn get(proxy: &str, token: &str, url: &str) -> tokio::task::JoinHandle<Reply> {
    let rb = agent().get(format!("{proxy}/{url}")).header("Proxy-Authorization", format!("Bearer {token}"));
    tokio::spawn(send(rb))
}

async fn answered(h: tokio::task::JoinHandle<Reply>) -> Reply {
    tokio::time::timeout(Duration::from_secs(90), h).await.expect("answered").expect("agent task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allow_rule_pays_without_asking_until_it_expires() {
    if !crate::in_own_process(module_path!(), "an_allow_rule_pays_without_asking_until_it_expires").await {
        return;
    }
    let peers = Peers::start(Mode::Real);
    let bus = SessionBus::start();
    let server = NotifyServer::start(&bus, &["actions", "body"]).await;
    // SAFETY (edition 2021: safe fn): this process runs this test alone (`in_own_process`), and
    // sets it before any thread of this test reads the environment.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus.address);

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let wallet = Wallet::from_key_hex(&peers.payer_key).unwrap();
    let engine = Arc::new(Engine::with_sources(Ledger::open_in(&dir.path().join("data")).unwrap(), Some(wallet), clock.clone(), Arc::new(OsNonces)).unwrap());
    let prompter = purser_core::notify::spawn(engine.clone(), Arc::new(DesktopNotifier::new()), Arc::new(PrintCommand::new(None)));
    let proxy = purser_core::proxy::start(engine.clone(), 0, Duration::from_secs(5)).await.unwrap();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let spec = GrantSpec {
        label: "rules".into(),
        budget: "10.00".into(),
        expires: "2h".into(),
        hosts: vec!["127.0.0.1".into()],
        per_request_max: Some("5.00".into()),
        auto_below: Some("0.01".into()),
        ask_below: Some("5.00".into()),
        approval_timeout: Some("60s".into()),
        ..Default::default()
    };
    let token = engine.create_grant(&spec, Some(&purser_core::presence::Presence::app_click())).unwrap().token;
    let (mid, pricey) = (format!("{}/mid", peers.v2), format!("{}/pricey", peers.v2));
    let receipt = |r: &Reply| engine.receipt_by_id(&r.receipt_id()).unwrap().unwrap();

    // $0.05 asks; the window approves it "and auto-approve this host up to $0.10 for 10 minutes".
    let held = get(&proxy_url, &token, &mid).await;
    let n = server.wait_for(1, Duration::from_secs(20)).await.remove(0);
    assert!(n.summary.contains(": pay $0.05"), "{n:#?}");
    let a = engine.pending_approvals().remove(0);
    let d = Decision { approve: true, requirement_hash: Some(a.requirement_hash.clone()), allow_for: Some("10m".into()), up_to: Some("0.10".into()), block_host: false };
    let rule = engine.decide(&a.id, &d, purser_core::presence::Presence::app_click()).unwrap().rule.unwrap();
    assert_eq!(rule.description, format!("auto-approve {} up to $0.10 for 10 min", peers.v2.trim_start_matches("http://")));
    let r = answered(held).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = receipt(&r);
    assert_eq!((rec.outcome, rec.decided_by, rec.decided_via), (Outcome::Paid, DecidedBy::User, Some(Via::App)));
    server.wait_closed(n.id, Duration::from_secs(10)).await;

    // The next matching request pays at once, without a prompt, naming the rule.
    let r = answered(get(&proxy_url, &token, &mid).await).await;
    assert_eq!(r.status, 200, "{r}");
    let rec = receipt(&r);
    assert_eq!((rec.outcome, rec.decided_by, rec.rule_id.as_deref()), (Outcome::Paid, DecidedBy::Rule, Some(rule.id.as_str())));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.notifications().len(), 1, "no prompt under the rule");

    // Above $0.10 it asks (and is denied from the notification).
    let held = get(&proxy_url, &token, &pricey).await;
    let n = server.wait_for(2, Duration::from_secs(20)).await.remove(1);
    assert!(n.summary.contains(": pay $2.00"), "{n:#?}");
    server.invoke(n.id, "deny").await;
    let r = answered(held).await;
    assert_eq!(r.code().as_deref(), Some("user_denied"), "{r}");

    // Ten minutes later (injected clock) the rule has expired: $0.05 asks again.
    clock.advance(chrono::Duration::minutes(10));
    let held = get(&proxy_url, &token, &mid).await;
    let n = server.wait_for(3, Duration::from_secs(20)).await.remove(2);
    assert!(n.summary.contains(": pay $0.05"), "{n:#?}");
    server.invoke(n.id, "deny").await;
    let r = answered(held).await;
    assert_eq!(r.code().as_deref(), Some("user_denied"), "{r}");
    let rules = engine.rules(None, false).unwrap();
    assert_eq!((rules.len(), rules[0].active), (1, false), "listed, expired");

    let spent: Vec<_> = engine.receipts(10).await.unwrap().into_iter().filter(|r| r.outcome == Outcome::Paid).collect();
    assert_eq!(spent.len(), 2);
    proxy.shutdown().await;
    prompter.shutdown().await;
}

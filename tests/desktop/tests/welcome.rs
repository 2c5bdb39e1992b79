//! Desktop end-to-end of the first run, in the built app on a fresh data dir (no wallet, no
//! grant, no receipt): the welcome (screenshot `welcome.png`; with `PURSER_UPDATE_SCREENS=1`
//! also copied to the README's docs/screens/welcome.png); "Try it with a local test network" runs the demo in the app — the
//! banner, the /mid prompt answered in the Approvals screen with "this host up to $0.05 for 10
//! minutes" (as `purser demo --auto-answer approve`), the exact counts in the Timeline and
//! Grants screens (screenshot `demo-timeline.png`), Stop demo ends every process it started and
//! the real, empty data is back; and "Set up my wallet" creates a wallet whose address the
//! Wallet screen shows. Run by `.ci/app.sh`; alone:
//! `cargo test -p purser-desktop-e2e --test welcome -- --test-threads 1`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use purser_desktop_e2e::{App, AppOptions, Ui};
use serde_json::json;

/// The demo's run (a debug app, the reference facilitator settling 22 payments on anvil).
const DEMO_WAIT: Duration = Duration::from_secs(240);
const WAIT: Duration = Duration::from_secs(60);

fn fresh() -> AppOptions {
    AppOptions::default()
}

/// Every process below `root` (pid → command line).
fn descendants(root: u32) -> HashMap<u32, String> {
    let cmdline = |pid: u32| std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default();
    purser_desktop_e2e::driver::process_tree(root).into_iter().skip(1).map(|(pid, _)| (pid, cmdline(pid))).collect()
}

/// The process exists and is not a zombie (an exited child not reaped yet is gone for us).
fn running_now(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 2..].chars().next()).is_some_and(|state| state != 'Z'),
        Err(_) => false,
    }
}

/// The demo's processes under the app: the reference peers (node peers.mjs and its servers)
/// and anvil.
fn demo_processes(app_pid: u32) -> HashMap<u32, String> {
    descendants(app_pid).into_iter().filter(|(pid, cmd)| running_now(*pid) && (cmd.contains("peers.mjs") || cmd.contains("anvil") || cmd.contains("tests/peers"))).collect()
}

async fn wait_text(ui: &Ui, what: &str, testid: &str, want: &str, timeout: Duration) {
    ui.wait_js(
        what,
        timeout,
        "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); return e && e.textContent.includes(arguments[1]) ? true : null;",
        vec![json!(testid), json!(want)],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Searches the timeline for `query` and waits until its total reads exactly `want`, twice
/// 300 ms apart (a stale page of an earlier query must not pass).
async fn timeline_total(ui: &Ui, query: &str, want: &str) {
    ui.type_into("search-input", query).await;
    let exact = "const e = document.querySelector('[data-testid=timeline-total]'); return e && e.textContent.trim() === arguments[0] ? true : null;";
    for _ in 0..2 {
        ui.wait_js(&format!("the timeline to count {want} for {query:?}"), WAIT, exact, vec![json!(want)]).await.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ui.wait_js(&format!("the timeline to still count {want} for {query:?}"), Duration::from_millis(100), exact, vec![json!(want)]).await.unwrap_or_else(|e| panic!("{e}"));
}

/// A screenshot once the webview has painted: WebKit's capture can lag the DOM (a first capture
/// right after load is blank), so it waits for the repaint and retries a capture that is one
/// flat colour (a tiny PNG).
async fn shot(ui: &Ui, name: &str) -> PathBuf {
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        if let Some(p) = ui.screenshot(name).await {
            if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 10_000 {
                return p;
            }
        }
    }
    panic!("the screenshot {name} stayed blank");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn welcome_try_the_demo_answer_its_prompt_and_stop_it() {
    let app = App::start(fresh()).await;
    let ui = &app.ui;
    if let Err(e) = ui.wait_for_testid("welcome", WAIT).await {
        app.fail(&format!("no welcome on a first run: {e}")).await;
    }
    let welcome_png = shot(ui, "welcome").await;
    // The README's copy is refreshed only when asked (a test run leaves the tree as it was).
    if std::env::var_os("PURSER_UPDATE_SCREENS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screens");
        std::fs::create_dir_all(&docs).expect("docs/screens");
        std::fs::copy(&welcome_png, docs.join("welcome.png")).expect("copy welcome.png to docs/screens");
    }
    assert!(demo_processes(app.control.pid).is_empty(), "nothing of the demo runs before Try it");

    // Try it: the banner, the demo's grant and agent; its prompt in Approvals.
    ui.click("welcome-try").await;
    if let Err(e) = ui.wait_for_testid("demo-banner", WAIT).await {
        app.fail(&format!("no demo banner: {e}")).await;
    }
    wait_text(ui, "the demo banner's label", "demo-banner", "Demo — local test network, test USDC", WAIT).await;
    ui.click("nav-approvals").await;
    let found = ui
        .wait_js(
            "the demo's /mid prompt in Approvals",
            DEMO_WAIT,
            "const d = document.querySelector('[data-testid=approval-request]'); return d && d.textContent.includes('/mid') ? true : null",
            vec![],
        )
        .await;
    if let Err(e) = found {
        app.fail(&format!("{e}; banner: {:?}", ui.js("const b = document.querySelector('[data-testid=demo-banner]'); return b && b.textContent", vec![]).await)).await;
    }
    let running = demo_processes(app.control.pid);
    assert!(running.values().any(|c| c.contains("peers.mjs")), "the reference peers run under the app: {running:?}");
    assert!(running.values().any(|c| c.contains("anvil")), "anvil runs under the app: {running:?}");
    assert!(ui.text("approval-usd").await.contains("0.05"), "the prompt is for $0.05");
    shot(ui, "demo-approval").await;
    // "this host up to $0.05 for 10 minutes" (the form's defaults for this request), as
    // `purser demo --auto-answer approve`: the rest is paid by that rule until the budget runs out.
    assert_eq!(ui.testid("rule-minutes").await.prop("value").await.unwrap().unwrap_or_default(), "10");
    ui.type_into("rule-max-usd", "0.05").await;
    ui.click("rule-save").await;

    let finished = ui
        .wait_js(
            "the demo's agent to finish",
            DEMO_WAIT,
            "const b = document.querySelector('[data-testid=demo-banner]'); return b && b.getAttribute('data-phase') === 'finished' ? true : null",
            vec![],
        )
        .await;
    if let Err(e) = finished {
        app.fail(&e).await;
    }
    wait_text(ui, "the demo's counts in the banner", "demo-outcome", "22 paid, 2 refused, $0.953 of $1.00 spent", WAIT).await;

    // The Timeline shows the demo's receipts: 22 paid (3 auto, 1 you, 18 your rule), 2 refused.
    ui.click("nav-timeline").await;
    ui.testid("screen-timeline").await;
    timeline_total(ui, "", "24 receipts").await;
    timeline_total(ui, "outcome:paid", "22 receipts").await;
    timeline_total(ui, "outcome:refused", "2 receipts").await;
    timeline_total(ui, "", "24 receipts").await;
    // Close the search suggestions so the rows show.
    ui.testid("search-input").await.send_keys("\u{E00C}").await.expect("Escape");
    ui.click_css("#timeline-title").await;
    shot(ui, "demo-timeline").await;
    // The Grants screen: the demo grant spent exactly $0.953.
    ui.click("nav-grants").await;
    let row = ui
        .wait_js("the demo grant", WAIT, "for (const li of document.querySelectorAll('[data-testid^=grant-row-]')) { if (li.querySelector('[data-testid=grant-label]')?.textContent === 'demo agent') return li.textContent; } return null;", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(row.as_str().unwrap().contains("$0.953 spent"), "{row}");

    // Stop demo: every process it started is gone, and the real (empty) data is back.
    ui.click("demo-stop").await;
    ui.wait_js("the demo to stop", WAIT, "return document.querySelector('[data-testid=demo-banner]') ? null : true", vec![]).await.unwrap_or_else(|e| panic!("{e}"));
    let pids: HashSet<u32> = running.keys().copied().collect();
    let left: Vec<u32> = pids.iter().copied().filter(|&p| running_now(p)).collect();
    assert!(left.is_empty(), "demo processes still alive after Stop demo: {left:?} of {running:?}");
    assert!(demo_processes(app.control.pid).is_empty(), "no demo process under the app: {:?}", demo_processes(app.control.pid));
    ui.wait_js("the real, empty grants", WAIT, "return document.querySelector('[data-testid^=grant-row-]') ? null : true", vec![]).await.unwrap_or_else(|e| panic!("{e}"));
    ui.click("nav-timeline").await;
    timeline_total(ui, "", "0 receipts").await;
    let wallet = ui.text("header-wallet").await;
    assert_eq!(wallet, "no wallet", "the demo wallet is gone from the header");
    assert!(!purser_core::wallet::Wallet::exists(&app.data_dir), "the real data dir holds no wallet");
    assert!(app.data_dir.join("demo/DEMO").is_file(), "the demo's data is in its own, labelled dir");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_my_wallet_creates_one_and_the_wallet_screen_shows_it() {
    let app = App::start(fresh()).await;
    let ui = &app.ui;
    if let Err(e) = ui.wait_for_testid("welcome", WAIT).await {
        app.fail(&format!("no welcome on a first run: {e}")).await;
    }
    ui.click("welcome-wallet").await;
    ui.testid("wallet-setup").await;
    ui.type_into("setup-passphrase", "welcome-e2e correct horse").await;
    ui.type_into("setup-confirm", "welcome-e2e correct hose").await;
    ui.click("setup-submit").await;
    wait_text(ui, "the mismatch said", "setup-problem", "differ", WAIT).await;
    ui.type_into("setup-confirm", "welcome-e2e correct horse").await;
    ui.click("setup-submit").await;
    if let Err(e) = ui.wait_for_testid("wallet-address", WAIT).await {
        app.fail(&format!("the Wallet screen shows no address: {e}")).await;
    }
    let address = purser_core::wallet::Wallet::address_of(&app.data_dir).expect("a wallet in the data dir").to_checksum(None);
    wait_text(ui, "the new wallet's address", "wallet-address", &address, WAIT).await;
    wait_text(ui, "the wallet unlocked", "wallet-state", "unlocked", WAIT).await;
    assert!(ui.count("[data-testid=welcome]").await == 0, "the welcome is gone once a wallet exists");
    shot(ui, "welcome-wallet-created").await;
    app.stop().await;
}

/// Quitting the app (SIGTERM, as the tray's Quit) while the demo's prompt is held stops
/// everything the demo started, and the held request is decided with a receipt (refused, not
/// paid) in the demo's own ledger, whose hash chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_the_app_stops_a_running_demo() {
    let app = App::start(fresh()).await;
    let ui = &app.ui;
    if let Err(e) = ui.wait_for_testid("welcome", WAIT).await {
        app.fail(&format!("no welcome on a first run: {e}")).await;
    }
    ui.click("welcome-try").await;
    ui.click("nav-approvals").await;
    if let Err(e) =
        ui.wait_js("the demo's /mid prompt", DEMO_WAIT, "const d = document.querySelector('[data-testid=approval-request]'); return d && d.textContent.includes('/mid') ? true : null", vec![]).await
    {
        app.fail(&e).await;
    }
    let running = demo_processes(app.control.pid);
    assert!(running.values().any(|c| c.contains("anvil")), "the demo runs: {running:?}");
    let pid = app.control.pid;
    purser_testkit::proc::signal(pid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (running_now(pid) || running.keys().any(|&p| running_now(p))) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!running_now(pid), "the app quit on SIGTERM");
    let left: Vec<&String> = running.iter().filter(|(&p, _)| running_now(p)).map(|(_, c)| c).collect();
    assert!(left.is_empty(), "demo processes outlived the app: {left:?}");
    let ledger = purser_core::ledger::Ledger::open_in(&app.data_dir.join("demo")).expect("the demo's ledger");
    let receipts = ledger.list_receipts(100).expect("receipts");
    let mid: Vec<_> = receipts.iter().filter(|r| r.url.ends_with("/mid")).collect();
    assert_eq!(mid.len(), 1, "one /mid request, decided when the app quit: {mid:?}");
    assert_eq!(mid[0].outcome.as_str(), "refused", "the held request was not paid: {:?}", mid[0]);
    assert!(matches!(ledger.verify_chain().expect("verify"), purser_core::ledger::ChainReport::Intact { .. }), "the demo ledger's chain verifies");
    assert!(!purser_core::wallet::Wallet::exists(&app.data_dir), "the real data dir holds no wallet");
    app.stop().await;
}

//! Desktop end-to-end: the built app (`tauri build`) in its real webview under Xvfb, driven
//! through tauri-driver and WebKitWebDriver. Run by `.ci/app.sh` after the build; alone:
//! `cargo test -p purser-desktop-e2e --test desktop -- --test-threads 1`.

mod flows;

use std::time::Duration;

use purser_desktop_e2e::{App, AppOptions};
use purser_testkit::ANVIL_PAYER_KEY;

/// The built app starts under WebDriver: window titled "Purser", the React root rendered with
/// its navigation, the proxy listening (control.json), and a screenshot of the first screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_starts_and_shows_its_window() {
    let app = App::start(AppOptions::with_key(ANVIL_PAYER_KEY)).await;
    let title = app.ui.client().title().await.expect("title");
    assert_eq!(title, "Purser", "window title");
    let root_children = app.ui.js("return document.getElementById('root').childElementCount", vec![]).await;
    assert!(root_children.as_u64().unwrap_or(0) >= 1, "the React root is empty: {root_children}");
    for nav in ["nav-timeline", "nav-approvals", "nav-grants", "nav-wallet"] {
        app.ui.wait_for_testid(nav, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
    }
    // The proxy the app runs in-process answers (a request without a grant token: 407).
    let r = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{}/http://127.0.0.1:9/x", app.control.url)).send().await.expect("proxy answers");
    assert_eq!(r.status().as_u16(), 407, "the app's proxy wants a grant token");
    let url = app.control.url.clone();
    app.ui
        .wait_js("the header to show the proxy URL", Duration::from_secs(10), "return document.querySelector('[data-testid=proxy-url]').textContent.includes(arguments[0])", vec![url.clone().into()])
        .await
        .unwrap_or_else(|e| panic!("{e}; control.json says {url}"));
    app.ui.screenshot("01-start").await.expect("screenshot");
    // How the page paints: without a GPU render node the app turns WebKit's compositing off
    // (software OpenGL is slower than WebKit's CPU painting); a value the user set is kept.
    let want = match std::env::var(COMPOSITING) {
        Ok(v) => Some(v),
        Err(_) if !gpu_render_node() => Some("1".to_string()),
        Err(_) => None,
    };
    assert_eq!(web_process_env(&app, COMPOSITING), want, "{COMPOSITING} in the page's process");
    eprintln!("figure: WebDriver session to UI shown {} ms; app said ready in {:?} ms", app.shown_after.as_millis(), app.ready_ms);
    app.stop().await;
}

const COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

fn gpu_render_node() -> bool {
    std::fs::read_dir("/dev/dri").map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD"))).unwrap_or(false)
}

/// `var` in the environment of the app's WebKit web process (the page's process).
fn web_process_env(app: &App, var: &str) -> Option<String> {
    let tree = purser_desktop_e2e::driver::process_tree(app.control.pid);
    let (pid, _) = tree.iter().find(|(_, name)| name.starts_with("WebKitWebProc")).unwrap_or_else(|| panic!("no WebKit web process under the app: {tree:?}"));
    purser_desktop_e2e::driver::env_of(*pid, var)
}

/// A compositing setting the user gave the app is the one WebKit gets (here: on, though this
/// machine may have no GPU), and the app works with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_compositing_setting_is_kept() {
    let app = App::start(AppOptions { key_hex: Some(ANVIL_PAYER_KEY.into()), unlock: true, env: vec![(COMPOSITING, "0".into())], ..Default::default() }).await;
    assert_eq!(web_process_env(&app, COMPOSITING).as_deref(), Some("0"));
    app.ui.click("nav-timeline").await;
    app.ui.wait_for_testid("screen-timeline", Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
    app.stop().await;
}

const XSS: &str = "<img src=x onerror=alert(1)>";

/// The whole user story in one app session, against the real reference peers (anvil chain,
/// reference facilitator, v2 paywall) and a hostile 402 server:
/// a. a grant created in the form; the agent pays through the app's proxy; the paid receipt
///    appears in the timeline live (no reload: a marker set on the page survives);
/// b. an ask-tier grant: the agent's request is held, shows in Approvals, Approve pays it;
/// e. a 402 whose description (and the agent's intent) is `<img src=x onerror=alert(1)>` shows
///    as text in Approvals, the timeline row and the receipt drawer, and no such element exists;
/// c. `outcome:refused` narrows the timeline to the refused receipt;
/// d. Revoke turns the grant revoked and the agent's next request gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_pay_approve_search_revoke_and_escaping() {
    use flows::*;
    use purser_testkit::{good_v2_required, usdc_balance, v2_response, Hostile402, Mode, Peers};
    use serde_json::json;

    let peers = Peers::start(Mode::Real);
    let hostile = Hostile402::start().await;
    let app = App::start(AppOptions::with_key(&peers.payer_key)).await;
    assert!(app.address.eq_ignore_ascii_case(&peers.payer_address), "wallet {} != payer {}", app.address, peers.payer_address);
    let ui = &app.ui;
    let payee_before = usdc_balance(&peers.rpc, &peers.pay_to).await;

    // a. Grant in the form, the agent pays, the row appears live.
    let auto = create_grant(
        &app,
        &[("label", "desk-auto"), ("budget", "1"), ("expires", "2h"), ("hosts", "127.0.0.1"), ("autoBelow", "0.05"), ("askBelow", "1"), ("perRequestMax", "0.50")],
        Some(("02-grant-form", "03-grant-created")),
    )
    .await;
    ui.click("nav-timeline").await;
    ui.testid("screen-timeline").await;
    ui.js("window.__e2eNoReload = 'still here'; return true", vec![]).await;
    let before = row_ids(ui).await.len();
    let paid = agent_get(&app, &format!("{}/cheap?q=desktop", peers.v2), &auto, None).await;
    assert_eq!(paid.status, 200, "{paid}");
    assert_eq!(paid.json()["route"], "cheap", "{paid}");
    let paid_id = paid.receipt_id();
    let rows = wait_row(&app, &paid_id, "paid").await;
    assert_eq!(rows as usize, before + 1, "one new row");
    assert_eq!(ui.js("return window.__e2eNoReload", vec![]).await, json!("still here"), "the page was reloaded");
    ui.screenshot("04-timeline-paid").await;
    assert_eq!(usdc_balance(&peers.rpc, &peers.pay_to).await - payee_before, 1000, "the payee got $0.001 on chain");
    ui.click_css(&format!("[data-testid=receipt-row][data-id=\"{paid_id}\"]")).await;
    ui.wait_js("the drawer's transaction", WAIT, "const t = document.querySelector('[data-testid=drawer-tx]'); return t && t.textContent.startsWith('0x') && t.textContent.length >= 66", vec![]).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(ui.text("drawer-url").await.contains("/cheap?q=desktop"), "drawer url");
    ui.screenshot("05-receipt-drawer").await;
    ui.click("drawer-close").await;

    // b. Ask tier: held, shown in Approvals, approved by a click, paid.
    let ask = create_grant(
        &app,
        &[("label", "desk-ask"), ("budget", "1"), ("expires", "2h"), ("hosts", "127.0.0.1"), ("autoBelow", "0"), ("askBelow", "1"), ("approvalTimeout", "5m")],
        None,
    )
    .await;
    let (url, tok) = (app.gateway_url(&format!("{}/cheap?q=held", peers.v2)), ask.clone());
    let held = tokio::spawn(async move {
        purser_testkit::send(purser_testkit::agent().get(url).header("Proxy-Authorization", format!("Bearer {tok}")).header("Accept", "application/json")).await
    });
    ui.click("nav-approvals").await;
    ui.testid("screen-approvals").await;
    ui.wait_js("the held request in Approvals", WAIT, "const d = document.querySelector('[data-testid=approval-request]'); return d && d.textContent.includes('/cheap')", vec![]).await.unwrap_or_else(|e| panic!("{e}"));
    ui.screenshot("06-approvals").await;
    ui.click("approval-approve").await;
    let approved = tokio::time::timeout(WAIT, held).await.expect("the held request completes after Approve").unwrap();
    assert_eq!(approved.status, 200, "{approved}");
    ui.click("nav-timeline").await;
    wait_row(&app, &approved.receipt_id(), "paid").await;

    // e. Markup from a server and an agent is text, never markup.
    let mut required = good_v2_required(&hostile.url_of("/xss"), "1000");
    required["resource"]["description"] = json!(XSS);
    hostile.route("/xss", v2_response(&required));
    let (url, tok) = (app.gateway_url(&hostile.url_of("/xss")), ask.clone());
    let held = tokio::spawn(async move {
        purser_testkit::send(purser_testkit::agent().get(url).header("Proxy-Authorization", format!("Bearer {tok}")).header("Purser-Intent", XSS)).await
    });
    ui.click("nav-approvals").await;
    ui.wait_js("the hostile request in Approvals", WAIT, "const d = document.querySelector('[data-testid=approval-description]'); return d && d.textContent.includes(arguments[0])", vec![json!(XSS)]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_no_injected_markup(&app, "approvals").await;
    ui.screenshot("07-approvals-markup-as-text").await;
    ui.click("approval-deny").await;
    let denied = tokio::time::timeout(WAIT, held).await.expect("the denied request completes").unwrap();
    assert_eq!(denied.status, 403, "{denied}");
    let xss_id = denied.receipt_id();
    ui.click("nav-timeline").await;
    wait_row(&app, &xss_id, "refused").await;
    let row_intent = ui.js("return document.querySelector(`[data-testid=receipt-row][data-id=\"${arguments[0]}\"] [data-testid=row-intent]`).textContent", vec![json!(xss_id)]).await;
    assert_eq!(row_intent, json!(XSS), "the row shows the agent's words as text");
    ui.click_css(&format!("[data-testid=receipt-row][data-id=\"{xss_id}\"]")).await;
    ui.wait_js("the challenge in the drawer", WAIT, "const c = document.querySelector('[data-testid=drawer-challenge]'); return c && c.textContent.includes(arguments[0])", vec![json!(XSS)]).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ui.text("drawer-intent").await, XSS);
    assert_no_injected_markup(&app, "drawer").await;
    ui.screenshot("08-drawer-markup-as-text").await;
    ui.click("drawer-close").await;

    // c. Search narrows the timeline.
    let all = row_ids(ui).await;
    assert!(all.len() >= 3, "three receipts on screen: {all:?}");
    ui.type_into("search-input", "outcome:refused").await;
    let narrowed = ui
        .wait_js("the timeline to narrow to refused receipts", WAIT, "const rows = Array.from(document.querySelectorAll('[data-testid=receipt-row]')); return rows.length > 0 && rows.every(r => r.getAttribute('data-outcome') === 'refused') ? rows.map(r => r.getAttribute('data-id')) : null;", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let narrowed: Vec<String> = serde_json::from_value(narrowed).unwrap();
    assert!(narrowed.len() < all.len(), "fewer rows: {narrowed:?} of {all:?}");
    assert_eq!(narrowed, vec![xss_id.clone()], "just the refused receipt");
    ui.screenshot("09-timeline-search").await;
    ui.type_into("search-input", "").await;

    // d. Revoke: the row says revoked, the agent's next request is refused.
    ui.click("nav-grants").await;
    let row = grant_row(ui, "desk-auto").await;
    ui.click_css(&format!("[data-testid=\"{row}\"] [data-testid=grant-revoke]")).await;
    ui.wait_js("the grant to show revoked", WAIT, "const r = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); return r && r.getAttribute('data-state') === 'revoked' && r.querySelector('[data-testid=grant-state]').textContent.toLowerCase().includes('revoked')", vec![json!(row)]).await.unwrap_or_else(|e| panic!("{e}"));
    ui.screenshot("10-grants-revoked").await;
    let after = agent_get(&app, &format!("{}/cheap?q=after-revoke", peers.v2), &auto, None).await;
    assert_eq!(after.status, 403, "{after}");

    // The wallet screen, for the record.
    ui.click("nav-wallet").await;
    ui.wait_js("the wallet address", WAIT, "const a = document.querySelector('[data-testid=wallet-address]'); return a && a.textContent.toLowerCase().includes(arguments[0])", vec![json!(app.address.to_lowercase())]).await.unwrap_or_else(|e| panic!("{e}"));
    ui.screenshot("11-wallet").await;
    app.stop().await;
}

/// No element the hostile text describes exists, and no alert is open.
async fn assert_no_injected_markup(app: &App, where_: &str) {
    let n = app.ui.js("return document.querySelectorAll('img[src=x], img[onerror], [onerror]').length", vec![]).await;
    assert_eq!(n, serde_json::json!(0), "markup was injected in {where_}");
    assert!(app.ui.client().get_alert_text().await.is_err(), "an alert is open in {where_}");
}

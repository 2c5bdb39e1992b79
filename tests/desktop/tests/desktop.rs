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
    // (software OpenGL is slower than WebKit's CPU painting) and keeps OpenGL out of its own
    // process (the one left in the tray); a value the user set is kept.
    let user_set = CPU_PAINTING.iter().any(|(k, _)| std::env::var_os(k).is_some());
    for (var, value) in CPU_PAINTING {
        let want = match std::env::var(var) {
            Ok(v) => Some(v),
            Err(_) if !user_set && !gpu_render_node() => Some(value.to_string()),
            Err(_) => None,
        };
        assert_eq!(web_process_env(&app, var), want, "{var} in the page's process");
    }
    if !user_set && !gpu_render_node() {
        let gl = gl_mappings(app.control.pid);
        assert!(gl.is_empty(), "the app's own process loaded OpenGL without a GPU: {gl:?}");
        // The page's process still loads it, so the check above would see a driver there.
        let tree = purser_desktop_e2e::driver::process_tree(app.control.pid);
        let (web, _) = tree.iter().find(|(_, name)| name.starts_with("WebKitWebProc")).expect("web process");
        let in_page = gl_mappings(*web);
        assert!(!in_page.is_empty(), "no OpenGL library found in the page's process either: the check cannot see one");
        eprintln!("figure: OpenGL libraries mapped in the page's process: {}", in_page.len());
    }
    eprintln!("figure: WebDriver session to UI shown {} ms; app said ready in {:?} ms", app.shown_after.as_millis(), app.ready_ms);
    app.stop().await;
}

const COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// What the app sets without a GPU render node (`src-tauri/src/render.rs`; the same list).
const CPU_PAINTING: [(&str, &str); 4] = [(COMPOSITING, "1"), ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"), ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/dri/no-render-node"), ("GDK_GL", "disable")];

/// The OpenGL driver files a process maps (Mesa's DRI drivers, libGLX_mesa/libEGL_mesa, LLVM).
fn gl_mappings(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut v: Vec<String> = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.contains("/dri/") || p.contains("libLLVM") || p.contains("_mesa.so")).map(String::from).collect();
    v.sort();
    v.dedup();
    v
}

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
    // The rest of the CPU painting set is left alone too.
    for (var, _) in &CPU_PAINTING[1..] {
        assert_eq!(web_process_env(&app, var), std::env::var(var).ok(), "{var} in the page's process");
    }
    app.ui.click("nav-timeline").await;
    app.ui.wait_for_testid("screen-timeline", Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
    app.stop().await;
}

/// Closing the window keeps Purser in the tray: the webview's processes end (WebKit's web process
/// with the window; its network process, which WebKit keeps, ended by the app), the proxy still
/// answers, and the tray menu, clicked as a panel clicks it over D-Bus, pauses spending and
/// opens the window again (a new web process, the page loaded again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_to_the_tray_then_opened_from_it() {
    use purser_desktop_e2e::{display, driver, tray};
    let app = App::start(AppOptions::with_key(ANVIL_PAYER_KEY)).await;
    let bus = app.bus_address().to_string();
    let webkit = |pid: u32| driver::process_tree(pid).into_iter().filter(|(_, n)| n.starts_with("WebKit")).map(|(_, n)| n).collect::<Vec<_>>();
    let before = webkit(app.control.pid);
    assert!(before.iter().any(|n| n.starts_with("WebKitWebProc")) && before.iter().any(|n| n.starts_with("WebKitNetwork")), "WebKit's processes under the app: {before:?}");
    let labels = tray::menu_labels(&bus).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(labels, ["Open Purser", "Pause all spending", "Quit Purser"], "the tray menu");

    // What the window shows once loaded, to compare the window opened again from the tray with.
    let url = app.control.url.clone();
    app.ui
        .wait_js("the header to show the proxy URL", Duration::from_secs(10), "return document.querySelector('[data-testid=proxy-url]').textContent.includes(arguments[0])", vec![url.into()])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = driver::artifacts_dir().join("tray-before-close.png");
    app.ui.capture(&first).await.unwrap_or_else(|e| panic!("{e}"));

    // The close button, as a window manager sends it.
    let sent = display::close_window(app.display(), "Purser").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent, 1, "one window titled Purser");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !webkit(app.control.pid).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(driver::is_alive(app.control.pid), "closing the window ended the app; log:\n{}", app.log_tail(30));
    assert_eq!(webkit(app.control.pid), Vec::<String>::new(), "WebKit processes left 20 s after the window closed");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http.get(format!("{}/http://127.0.0.1:9/x", app.control.url)).send().await.expect("the proxy answers with the window closed");
    assert_eq!(r.status().as_u16(), 407);

    // Pause and resume from the tray: the menu item says which one it will do.
    tray::click(&bus, "Pause all spending").await.unwrap_or_else(|e| panic!("{e}"));
    wait_labels(&bus, "Resume spending").await;
    let (_, status) = app.control.call("GET", "spending").await;
    assert_eq!(status["paused"], serde_json::json!(true), "paused from the tray: {status}");
    tray::click(&bus, "Resume spending").await.unwrap_or_else(|e| panic!("{e}"));
    wait_labels(&bus, "Pause all spending").await;

    // Open from the tray: the window and its page come back.
    let t = std::time::Instant::now();
    tray::click(&bus, "Open Purser").await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = t + Duration::from_secs(30);
    let loaded = loop {
        let log = std::fs::read_to_string(app.log_path()).unwrap_or_default();
        if let Some(ms) = log.lines().find_map(|l| l.split("purser-app: window opened again, page loaded in ").nth(1)?.split(' ').next()?.parse::<u64>().ok()) {
            break ms;
        }
        assert!(std::time::Instant::now() < deadline, "the window did not open again from the tray within 30 s; log:\n{}", app.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let after = webkit(app.control.pid);
    assert!(after.iter().any(|n| n.starts_with("WebKitWebProc")), "no web process after Open: {after:?}");
    // The page is the app's, working: its commands answered (the header shows the proxy URL,
    // the grants list its empty state), so it looks as the first window did (WebDriver's session
    // ended with that window; the X server's picture is compared instead).
    let again = driver::artifacts_dir().join("tray-opened-again.png");
    let mut differ = u64::MAX;
    while t.elapsed() < Duration::from_secs(30) {
        app.ui.capture(&again).await.unwrap_or_else(|e| panic!("no window titled Purser after Open: {e}"));
        differ = pixels_differing(&first, &again);
        if differ < 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(differ < 2_000, "the window opened again does not show what the first one did ({differ} pixels differ): see {} and {}", first.display(), again.display());
    eprintln!("figure: tray Open: page loaded in {loaded} ms; the window showed the app as before {} ms after the click", t.elapsed().as_millis());
    app.stop().await;
}

/// How many pixels differ between two screenshots (ImageMagick's `compare`, 2% colour fuzz).
fn pixels_differing(a: &std::path::Path, b: &std::path::Path) -> u64 {
    let out = std::process::Command::new("compare").args(["-metric", "AE", "-fuzz", "2%"]).arg(a).arg(b).arg("null:").output().expect("ImageMagick's compare");
    // The count is on stderr ("1234", or "1.2e+04" for large counts); a size mismatch is an error.
    String::from_utf8_lossy(&out.stderr).split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).map_or(u64::MAX, |v| v as u64)
}

async fn wait_labels(bus: &str, label: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let labels = purser_desktop_e2e::tray::menu_labels(bus).await.unwrap_or_else(|e| panic!("{e}"));
        if labels.iter().any(|l| l == label) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the tray menu never showed {label:?}: {labels:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    ui.wait_js("the drawer's transaction", WAIT, "const t = document.querySelector('[data-testid=drawer-tx]'); return t && t.textContent.startsWith('0x') && t.textContent.length >= 66", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ui.text("drawer-url").await.contains("/cheap?q=desktop"), "drawer url");
    ui.screenshot("05-receipt-drawer").await;
    ui.click("drawer-close").await;

    // b. Ask tier: held, shown in Approvals, approved by a click, paid.
    let ask = create_grant(&app, &[("label", "desk-ask"), ("budget", "1"), ("expires", "2h"), ("hosts", "127.0.0.1"), ("autoBelow", "0"), ("askBelow", "1"), ("approvalTimeout", "5m")], None).await;
    let (url, tok) = (app.gateway_url(&format!("{}/cheap?q=held", peers.v2)), ask.clone());
    let held = tokio::spawn(async move { purser_testkit::send(purser_testkit::agent().get(url).header("Proxy-Authorization", format!("Bearer {tok}")).header("Accept", "application/json")).await });
    ui.click("nav-approvals").await;
    ui.testid("screen-approvals").await;
    ui.wait_js("the held request in Approvals", WAIT, "const d = document.querySelector('[data-testid=approval-request]'); return d && d.textContent.includes('/cheap')", vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ui.screenshot("06-approvals").await;
    ui.click("approval-approve").await;
    let approved = tokio::time::timeout(WAIT, held).await.expect("the held request completes after Approve").unwrap();
    assert_eq!(approved.status, 200, "{approved}");
    // The click in the app's window is the user's presence, and the receipt says where it was.
    let rec = purser_core::ledger::Ledger::open_in(&app.data_dir).expect("the app's ledger").receipt(&approved.receipt_id()).expect("read").expect("the receipt");
    assert_eq!((rec.decided_by, rec.decided_via), (purser_core::receipt::DecidedBy::User, Some(purser_core::approvals::Via::App)), "{rec:?}");
    ui.click("nav-timeline").await;
    wait_row(&app, &approved.receipt_id(), "paid").await;

    // e. Markup from a server and an agent is text, never markup.
    let mut required = good_v2_required(&hostile.url_of("/xss"), "1000");
    required["resource"]["description"] = json!(XSS);
    hostile.route("/xss", v2_response(&required));
    let (url, tok) = (app.gateway_url(&hostile.url_of("/xss")), ask.clone());
    let held = tokio::spawn(async move { purser_testkit::send(purser_testkit::agent().get(url).header("Proxy-Authorization", format!("Bearer {tok}")).header("Purser-Intent", XSS)).await });
    ui.click("nav-approvals").await;
    ui.wait_js("the hostile request in Approvals", WAIT, "const d = document.querySelector('[data-testid=approval-description]'); return d && d.textContent.includes(arguments[0])", vec![json!(XSS)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
    ui.wait_js("the challenge in the drawer", WAIT, "const c = document.querySelector('[data-testid=drawer-challenge]'); return c && c.textContent.includes(arguments[0])", vec![json!(XSS)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
    ui.wait_js(
        "the wallet address",
        WAIT,
        "const a = document.querySelector('[data-testid=wallet-address]'); return a && a.textContent.toLowerCase().includes(arguments[0])",
        vec![json!(app.address.to_lowercase())],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    ui.screenshot("11-wallet").await;
    app.stop().await;
}

/// No element the hostile text describes exists, and no alert is open.
async fn assert_no_injected_markup(app: &App, where_: &str) {
    let n = app.ui.js("return document.querySelectorAll('img[src=x], img[onerror], [onerror]').length", vec![]).await;
    assert_eq!(n, serde_json::json!(0), "markup was injected in {where_}");
    assert!(app.ui.client().get_alert_text().await.is_err(), "an alert is open in {where_}");
}

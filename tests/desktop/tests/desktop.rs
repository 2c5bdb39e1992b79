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
    eprintln!("figure: WebDriver session to UI shown {} ms; app said ready in {:?} ms", app.shown_after.as_millis(), app.ready_ms);
    app.stop().await;
}

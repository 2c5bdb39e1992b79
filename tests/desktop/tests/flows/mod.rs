//! Steps the desktop scenarios share: a grant created in the form (token read from the
//! shown-once set-up lines), agent requests through the app's proxy, and waits on timeline rows.

use std::time::Duration;

use purser_desktop_e2e::{App, Ui};
use purser_testkit::{agent, send, Reply};
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(60);

/// The grant form's fields the scenarios fill (testid suffix, value).
pub type Fields<'a> = &'a [(&'a str, &'a str)];

/// Opens Grants → New grant, fills `fields`, saves, and returns the token read from the
/// set-up lines panel (then closes it). `shots`: names for screenshots of the form and of the
/// created panel.
pub async fn create_grant(app: &App, fields: Fields<'_>, shots: Option<(&str, &str)>) -> String {
    let ui = &app.ui;
    ui.click("nav-grants").await;
    ui.testid("screen-grants").await;
    ui.click("grant-new").await;
    ui.testid("grant-form").await;
    for (f, v) in fields {
        ui.type_into(&format!("form-{f}"), v).await;
    }
    if let Some((form, _)) = shots {
        ui.screenshot(form).await;
    }
    ui.click("grant-save").await;
    let created = ui.wait_for_testid("setup-lines", WAIT).await;
    if let Err(e) = created {
        app.fail(&format!("grant not created: {e}")).await;
    }
    let lines = ui.text("setup-lines").await;
    let token = lines
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("pgt_"))
        .unwrap_or_else(|| panic!("no pgt_ token in the set-up lines: {lines:?}"))
        .to_string();
    assert!(lines.contains(&app.control.url), "set-up lines name the app's proxy {}: {lines:?}", app.control.url);
    if let Some((_, created)) = shots {
        ui.screenshot(created).await;
    }
    ui.click("created-done").await;
    ui.wait("the created panel to close", WAIT, || async { (ui.count("[data-testid=setup-lines]").await == 0).then_some(()) }).await.unwrap();
    token
}

/// The agent's GET of `upstream` through the app's proxy (gateway mode, Bearer token).
pub async fn agent_get(app: &App, upstream: &str, token: &str, intent: Option<&str>) -> Reply {
    let mut req = agent().get(app.gateway_url(upstream)).header("Proxy-Authorization", format!("Bearer {token}")).header("Accept", "application/json");
    if let Some(i) = intent {
        req = req.header("Purser-Intent", i);
    }
    send(req).await
}

/// The grant row's testid (`grant-row-<id>`) of the grant labelled `label`.
pub async fn grant_row(ui: &Ui, label: &str) -> String {
    let v = ui
        .wait_js(
            &format!("grant row {label}"),
            WAIT,
            "for (const li of document.querySelectorAll('[data-testid^=grant-row-]')) { const l = li.querySelector('[data-testid=grant-label]'); if (l && l.textContent === arguments[0]) return li.getAttribute('data-testid'); } return null;",
            vec![json!(label)],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    v.as_str().unwrap().to_string()
}

/// Waits until the timeline shows a row for receipt `id` (with `outcome`); returns the row count.
pub async fn wait_row(app: &App, id: &str, outcome: &str) -> u64 {
    let r = app
        .ui
        .wait_js(
            &format!("timeline row {id} ({outcome})"),
            WAIT,
            "const r = document.querySelector(`[data-testid=receipt-row][data-id=\"${arguments[0]}\"]`); return r && r.getAttribute('data-outcome') === arguments[1] ? document.querySelectorAll('[data-testid=receipt-row]').length : 0;",
            vec![json!(id), json!(outcome)],
        )
        .await;
    match r {
        Ok(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Ok(v) => panic!("unexpected {v}"),
        Err(e) => app.fail(&e).await,
    }
}

/// The receipt ids of the rows on screen, in order.
pub async fn row_ids(ui: &Ui) -> Vec<String> {
    let v = ui.js("return Array.from(document.querySelectorAll('[data-testid=receipt-row]')).map(r => r.getAttribute('data-id'))", vec![]).await;
    v.as_array().unwrap().iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

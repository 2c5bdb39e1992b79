//! The README's screenshots (`docs/screens/*.png`): builds a realistic state in the built desktop
//! app on a fresh data dir against the real reference peers (anvil chain with test USDC, the
//! reference facilitator, the v2 and v1 paywalls), then saves one PNG of each main screen.
//!
//! The state: a wallet (the peers' funded payer, balance read from the local chain), three grants
//! made in the app's New grant form (`research-agent` auto below $0.10; `news-digest` asking from
//! $0.01; `old-scraper`, which paid once and was then revoked), paid requests on both x402 versions, one refused above the
//! per-request cap, and two requests held for approval while the Approvals screenshot is taken
//! (then one approved, one denied, with clicks). Every step is checked; a missing screen or a
//! payment that did not happen is an error, never a blank picture.
//!
//! ```sh
//! (cd src-tauri && npx --prefix ../ui tauri build --debug --no-bundle)   # the app (or .ci/app.sh)
//! cargo run -p purser-desktop-e2e --bin screens [-- --out DIR]           # default docs/screens
//! ```
//! Writes `grants.png`, `approvals.png`, `timeline.png`, `receipt.png`, `wallet.png`, each
//! palette-compressed with `pngquant` when it is installed (`apt-get install pngquant`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use purser_core::networks::NetworkConfig;
use purser_core::wallet::Wallet;
use purser_desktop_e2e::{App, AppOptions, Ui, PASSPHRASE};
use purser_testkit::{agent, send, Mode, Peers, Reply};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The window size of the pictures (the app opens at 960x640; the virtual screen is 1280x800).
const WINDOW: (u32, u32) = (1200, 760);

fn out_dir() -> Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    let mut out = purser_testkit::repo_root().join("docs/screens");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().context("--out needs a directory")?),
            other => bail!("unknown argument {other} (usage: screens [--out DIR])"),
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    Ok(out)
}

/// The grants, as typed into the app's New grant form (field testid suffix, value).
const GRANTS: &[&[(&str, &str)]] = &[
    &[("label", "research-agent"), ("budget", "5.00"), ("expires", "2h"), ("hosts", "127.0.0.1"), ("autoBelow", "0.10"), ("askBelow", "1.00"), ("perRequestMax", "0.50"), ("approvalTimeout", "10m")],
    &[("label", "news-digest"), ("budget", "1.00"), ("expires", "45m"), ("hosts", "127.0.0.1"), ("autoBelow", "0.01"), ("askBelow", "0.25"), ("approvalTimeout", "10m")],
    &[("label", "old-scraper"), ("budget", "2.00"), ("expires", "1h"), ("hosts", "127.0.0.1"), ("autoBelow", "0.05"), ("askBelow", "0.50")],
];

/// The data dir before the app opens it: the payer's wallet and the base-sepolia RPC on the
/// local chain (the ledger is the app's own: grants are made in its form).
fn prepare(dir: &Path, peers: &Peers) -> Result<()> {
    purser_core::datadir::ensure_private_dir(dir)?;
    Wallet::import(dir, &peers.payer_key, PASSPHRASE).context("import the payer's key")?;
    NetworkConfig::set_rpc(dir, "base-sepolia", Some(&peers.rpc)).context("point base-sepolia at the local chain")?;
    Ok(())
}

/// Grants → New grant, fills the form, saves; returns (label, token read from the set-up lines).
async fn create_grant(ui: &Ui, fields: &[(&str, &str)]) -> Result<(String, String)> {
    ui.click("nav-grants").await;
    ui.testid("screen-grants").await;
    ui.click("grant-new").await;
    ui.testid("grant-form").await;
    for (f, v) in fields {
        ui.type_into(&format!("form-{f}"), v).await;
    }
    ui.click("grant-save").await;
    ui.wait_for_testid("setup-lines", WAIT).await.map_err(anyhow::Error::msg)?;
    let lines = ui.text("setup-lines").await;
    let token = lines
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("pgt_"))
        .with_context(|| format!("no pgt_ token in the set-up lines: {lines:?}"))?
        .to_string();
    ui.click("created-done").await;
    ui.wait("the created panel to close", WAIT, || async { (ui.count("[data-testid=setup-lines]").await == 0).then_some(()) }).await.map_err(anyhow::Error::msg)?;
    Ok((fields[0].1.to_string(), token))
}

fn token<'a>(grants: &'a [(String, String)], label: &str) -> &'a str {
    &grants.iter().find(|(l, _)| l == label).expect("grant").1
}

/// The agent's GET of `upstream` through the app's proxy (gateway mode), with its stated intent.
async fn get(app: &App, upstream: &str, token: &str, intent: &str) -> Reply {
    send(agent().get(app.gateway_url(upstream)).header("Proxy-Authorization", format!("Bearer {token}")).header("Purser-Intent", intent).header("Accept", "application/json")).await
}

fn expect(reply: &Reply, status: u16, what: &str) -> Result<String> {
    ensure!(reply.status == status, "{what}: want HTTP {status}, got {reply}");
    reply.receipt().with_context(|| format!("{what}: no Purser-Receipt in {reply}"))
}

/// Saves the webview's screenshot as `out/name.png` (pngquant'ed when available), after
/// closing any toast so it hides nothing.
async fn shot(ui: &Ui, out: &Path, name: &str) -> Result<()> {
    while ui.count("[data-testid=toast-dismiss]").await > 0 {
        ui.click("toast-dismiss").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last repaint (fonts, chart, countdowns) land.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let path = out.join(format!("{name}.png"));
    ui.capture(&path).await.map_err(anyhow::Error::msg).with_context(|| format!("screenshot {name}"))?;
    let quant = Command::new("pngquant").args(["--force", "--skip-if-larger", "--strip", "--quality", "70-95", "--ext", ".png"]).arg(&path).status();
    let size = std::fs::metadata(&path)?.len();
    let how = match quant.map(|s| (s.code(), s)) {
        Ok((Some(0), _)) => "pngquant",
        // 98: the result was not smaller, 99: below the quality floor; the capture is kept.
        Ok((Some(98 | 99), _)) => "as captured (pngquant kept it)",
        Ok((_, s)) => bail!("pngquant failed on {} ({s})", path.display()),
        Err(_) => "as captured (no pngquant)",
    };
    println!("{}: {} KB ({how})", path.display(), size.div_ceil(1024));
    Ok(())
}

async fn wait_js(ui: &Ui, what: &str, script: &str, args: Vec<Value>) -> Result<Value> {
    ui.wait_js(what, WAIT, script, args).await.map_err(anyhow::Error::msg)
}

async fn wait_row(ui: &Ui, id: &str, outcome: &str) -> Result<()> {
    let script = "const r = document.querySelector(`[data-testid=receipt-row][data-id=\"${arguments[0]}\"]`); return !!r && r.getAttribute('data-outcome') === arguments[1];";
    wait_js(ui, &format!("timeline row {id} ({outcome})"), script, vec![json!(id), json!(outcome)]).await.map(drop)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let out = out_dir()?;
    let peers = Peers::start(Mode::Real);
    let work = tempfile::Builder::new().prefix("purser-screens-").tempdir()?;
    let dir = work.path().join("data");
    prepare(&dir, &peers)?;
    let app = App::start(AppOptions { key_hex: None, data_dir: Some(dir.clone()), unlock: true, ..Default::default() }).await;
    app.ui.client().set_window_size(WINDOW.0, WINDOW.1).await.context("resize the window")?;
    let result = scenes(&app, &peers, &out).await;
    if result.is_err() {
        app.ui.screenshot("screens-failure").await;
        eprintln!("app log (tail):\n{}", app.log_tail(40));
    }
    app.stop().await;
    result?;
    println!("screens: done ({})", out.display());
    Ok(())
}

async fn scenes(app: &App, peers: &Peers, out: &Path) -> Result<()> {
    let ui = &app.ui;
    let mut grants = Vec::new();
    for fields in GRANTS {
        grants.push(create_grant(ui, fields).await?);
    }
    let grants = &grants;
    let (research, news, old) = (token(grants, "research-agent"), token(grants, "news-digest"), token(grants, "old-scraper"));
    let (v1, v2) = (&peers.v1, &peers.v2);

    // Paid silently (auto tier), on both protocol versions; one refused above the per-request cap.
    let mut paid = Vec::new();
    for (url, tok, intent) in [
        (format!("{v2}/cheap?q=llm+pricing"), research, "Compare LLM API prices for the weekly report"),
        (format!("{v2}/mid?topic=gpu-supply"), research, "Read the GPU supply analysis"),
        (format!("{v1}/cheap?q=eu+ai+act"), research, "Look up the EU AI Act summary"),
        (format!("{v2}/cheap?q=headlines"), news, "Fetch this morning's headlines"),
        (format!("{v2}/cheap?page=1"), old, "Crawl the archive, page 1"),
        (format!("{v2}/mid?topic=rate-cuts"), research, "Read the rate-cut forecast"),
        (format!("{v1}/cheap?q=weather"), news, "Weather for the digest"),
    ] {
        paid.push(expect(&get(app, &url, tok, intent).await, 200, &url)?);
    }
    let pricey = format!("{v2}/pricey?dataset=full");
    let refused = expect(&get(app, &pricey, research, "Download the full dataset").await, 403, &pricey)?;

    // Revoke old-scraper through the control API, as `purser grant revoke` does.
    let c = &app.control;
    let (_, list) = c.call("GET", "grants").await;
    let old_id = list.as_array().and_then(|a| a.iter().find(|g| g["label"] == "old-scraper")).and_then(|g| g["id"].as_str()).context("old-scraper in the grant list")?.to_string();
    let (status, v) = c.call("POST", &format!("grants/{old_id}/revoke")).await;
    anyhow::ensure!(status == 200, "revoke: {status} {v}");
    let after = get(app, &format!("{v2}/cheap?page=2"), old, "Crawl the archive, page 2").await;
    expect(&after, 403, "old-scraper after revoke")?;

    // Two requests held for approval (news-digest asks from $0.01).
    let held = |url: String, intent: &'static str| {
        let (gw, tok) = (app.gateway_url(&url), news.to_string());
        tokio::spawn(async move { send(agent().get(gw).header("Proxy-Authorization", format!("Bearer {tok}")).header("Purser-Intent", intent)).await })
    };
    let first = held(format!("{v2}/mid?story=chip-export-rules"), "Read the full chip-export story for the digest");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = held(format!("{v1}/mid?story=central-banks"), "Summarise the central banks piece");
    ui.click("nav-approvals").await;
    ui.testid("screen-approvals").await;
    wait_js(
        ui,
        "two held requests in Approvals",
        "return document.querySelectorAll('[data-testid^=approval-item-]').length >= 2 && !!document.querySelector('[data-testid=approval-request]')",
        vec![],
    )
    .await?;
    shot(ui, out, "approvals").await?;
    ui.click("approval-approve").await;
    let approved = tokio::time::timeout(WAIT, first).await.context("the approved request completes")??;
    paid.push(expect(&approved, 200, "approved request")?);
    wait_js(ui, "the second held request", "return document.querySelectorAll('[data-testid^=approval-item-]').length === 1", vec![]).await?;
    ui.click("approval-deny").await;
    let denied = tokio::time::timeout(WAIT, second).await.context("the denied request completes")??;
    let denied_id = expect(&denied, 403, "denied request")?;

    // Timeline: every receipt, the spend chart, then one paid receipt's drawer.
    ui.click("nav-timeline").await;
    ui.testid("screen-timeline").await;
    for id in &paid {
        wait_row(ui, id, "paid").await?;
    }
    wait_row(ui, &refused, "refused").await?;
    wait_row(ui, &denied_id, "refused").await?;
    wait_js(ui, "the spend chart's bars", "const c = document.querySelector('[data-testid=spend-chart]'); return !!c && c.querySelectorAll('rect').length > 0", vec![]).await?;
    shot(ui, out, "timeline").await?;
    // The drawer of the second $0.05 payment (research-agent, /mid?topic=rate-cuts).
    let row = format!("[data-testid=receipt-row][data-id=\"{}\"]", paid[5]);
    ui.js("document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); return true", vec![json!(row)]).await;
    ui.click_css(&row).await;
    wait_js(ui, "the drawer's transaction", "const t = document.querySelector('[data-testid=drawer-tx]'); return !!t && t.textContent.startsWith('0x') && t.textContent.length >= 66", vec![]).await?;
    shot(ui, out, "receipt").await?;
    ui.click("drawer-close").await;

    // Grants: two active with their spend, one revoked (past its 8 s undo window).
    ui.click("nav-grants").await;
    ui.testid("screen-grants").await;
    wait_js(ui, "three grants, one revoked", "const rows = document.querySelectorAll('[data-testid^=grant-row-]'); return rows.length === 3 && [...rows].filter(r => r.getAttribute('data-state') === 'revoked').length === 1 && !document.querySelector('[data-testid=grant-undo]')", vec![]).await?;
    shot(ui, out, "grants").await?;

    // Wallet: unlocked, the balance read from the local chain.
    ui.click("nav-wallet").await;
    ui.testid("screen-wallet").await;
    wait_js(ui, "the unlocked wallet with a balance", "const b = document.querySelector('[data-testid=wallet-balance]'); const s = document.querySelector('[data-testid=wallet-state]'); return !!b && /[0-9]/.test(b.textContent) && !!s && !/locked/i.test(s.textContent.replace(/unlocked/i, ''))", vec![]).await?;
    shot(ui, out, "wallet").await?;
    Ok(())
}

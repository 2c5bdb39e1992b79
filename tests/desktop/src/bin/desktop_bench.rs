//! The desktop app's performance figures (prints them; never a test, never gates on time):
//! start to UI shown and proxy listening (cold, then warm), idle memory of the app with its
//! window open and closed to the tray (RSS and PSS summed over the app and its WebKit child
//! processes), idle memory of `purser serve`, and, on a ledger of N receipts (1,000,000 by
//! default, seeded with `purser dev seed-receipts`), timeline search latency (keystroke to
//! results painted, from the UI's `window.__purserPerf`) and scroll frame deltas
//! (requestAnimationFrame while scrolling the virtual list).
//!
//! ```sh
//! cargo build --release -p purser          # the `purser serve` measured, and the seeder
//! (cd src-tauri && npx --prefix ../ui tauri build --debug --no-bundle)   # the app measured
//! cargo run -p purser-desktop-e2e --bin desktop_bench -- [--receipts N] [--seeded DIR] [--starts K]
//!     [--parts starts,memory,serve,timeline]
//! ```
//! Scrolling runs three passes: 48 and 480 px a frame, then 480 again over rows already loaded;
//! each starts with a wheel event over the list (as a user's scroll does; the search box keeps
//! the focus), and the frames over 25 ms are listed by number.
//! `--seeded DIR`: a data dir already holding the receipts (reused, not re-seeded; a 1M ledger
//! is about 0.9 GB). Otherwise one is seeded in a temp dir and removed afterwards.
//! Binaries: `PURSER_APP_BIN` (default `<target>/debug/purser-app`), `PURSER_BIN` (default
//! `<target>/release/purser`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use purser_desktop_e2e::{App, AppOptions, PASSPHRASE};
use purser_testkit::ANVIL_PAYER_KEY;
use serde_json::{json, Value};

struct Opts {
    /// Which measurements: starts, memory, serve, timeline (default all).
    parts: Vec<String>,
    receipts: u64,
    seeded: Option<PathBuf>,
    starts: usize,
}

fn opts() -> Result<Opts> {
    let mut o = Opts { parts: ["starts", "memory", "serve", "timeline"].map(String::from).to_vec(), receipts: 1_000_000, seeded: None, starts: 3 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--receipts" => o.receipts = val()?.parse().context("--receipts N")?,
            "--seeded" => o.seeded = Some(PathBuf::from(val()?)),
            "--parts" => o.parts = val()?.split(',').map(str::to_string).collect(),
            "--starts" => o.starts = val()?.parse().context("--starts K")?,
            other => bail!("unknown argument {other} (see the doc comment of tests/desktop/src/bin/desktop_bench.rs)"),
        }
    }
    Ok(o)
}

/// `<target>/release/purser` (this binary lives in `<target>/<profile>/`).
fn purser_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PURSER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let target = exe.parent().and_then(Path::parent).context("target dir")?;
    let bin = target.join("release/purser");
    if !bin.is_file() {
        bail!("{} is missing: cargo build --release -p purser (or set PURSER_BIN)", bin.display());
    }
    Ok(bin)
}

/// (RSS, PSS) in KiB of one process, from /proc/PID/smaps_rollup.
fn mem_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
    Some((field("Rss:")?, field("Pss:")?))
}

/// The process and all its descendants: (pid, name, rss KiB, pss KiB).
fn tree_mem(root: u32) -> Vec<(u32, String, u64, u64)> {
    purser_desktop_e2e::driver::process_tree(root).into_iter().filter_map(|(p, name)| mem_kib(p).map(|(rss, pss)| (p, name, rss, pss))).collect()
}

fn print_mem(label: &str, procs: &[(u32, String, u64, u64)]) {
    let (rss, pss): (u64, u64) = procs.iter().fold((0, 0), |(a, b), p| (a + p.2, b + p.3));
    println!("{label}: RSS {:.1} MB, PSS {:.1} MB over {} processes", rss as f64 / 1024.0, pss as f64 / 1024.0, procs.len());
    for (pid, name, r, p) in procs {
        println!("    {pid:>7} {name:<18} RSS {:>7.1} MB  PSS {:>7.1} MB", *r as f64 / 1024.0, *p as f64 / 1024.0);
    }
}

/// The largest resident mappings of a process (by file, `[anon]` for the heap and the rest).
fn print_top_mappings(pid: u32, n: usize) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else { return };
    let mut by: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut name = String::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some(h) if h.contains('-') && h.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) && !h.ends_with(':') => {
                name = f.nth(4).unwrap_or("[anon]").to_string();
            }
            Some("Rss:") => *by.entry(name.clone()).or_default() += f.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (name, kib) in v.into_iter().take(n) {
        println!("        {:>7.1} MB  {name}", kib as f64 / 1024.0);
    }
}

fn stats(label: &str, unit: &str, v: &[f64]) {
    if v.is_empty() {
        println!("{label}: no samples");
        return;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |f: f64| s[((s.len() - 1) as f64 * f).round() as usize];
    println!("{label}: n={} p50 {:.1}{unit} p95 {:.1}{unit} max {:.1}{unit}", s.len(), q(0.5), q(0.95), s[s.len() - 1]);
}

async fn starts(n: usize) {
    println!("\n== start: WebDriver session → UI shown; the app's own `ready in N ms` (window loaded, proxy listening)");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("data");
    for i in 0..n {
        let app = App::start(AppOptions { key_hex: Some(ANVIL_PAYER_KEY.into()), data_dir: Some(dir.clone()), unlock: true, ..Default::default() }).await;
        let kind = if i == 0 { "cold (fresh data dir)" } else { "warm" };
        println!("start {} {kind}: ready in {:?} ms, UI seen by WebDriver after {} ms", i + 1, app.ready_ms, app.shown_after.as_millis());
        app.stop().await;
    }
}

async fn idle_memory() {
    println!("\n== idle memory of the app (window open, then closed to the tray)");
    let app = App::start(AppOptions::with_key(ANVIL_PAYER_KEY)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    print_mem("window open, idle 5 s", &tree_mem(app.control.pid));
    // As a window manager does on the close button (WebDriver's close would end the app).
    let sent = purser_desktop_e2e::display::close_window(app.display(), "Purser").unwrap_or_else(|e| panic!("{e}"));
    println!("WM_DELETE_WINDOW sent to {sent} window(s) titled Purser");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let alive = purser_desktop_e2e::driver::is_alive(app.control.pid);
    let procs = tree_mem(app.control.pid);
    print_mem(&format!("window closed (app alive: {alive}), idle 8 s"), &procs);
    for (pid, name, _, _) in &procs {
        println!("    largest mappings of {pid} {name}:");
        print_top_mappings(*pid, 8);
    }
    app.stop().await;
}

fn serve_memory(purser: &Path) -> Result<()> {
    println!("\n== idle memory of `purser serve` ({})", purser.display());
    let work = tempfile::tempdir()?;
    let dir = work.path().join("data");
    purser_core::datadir::ensure_private_dir(&dir)?;
    purser_core::wallet::Wallet::import(&dir, ANVIL_PAYER_KEY, PASSPHRASE)?;
    let mut child = Command::new(purser)
        .args(["--data-dir"])
        .arg(&dir)
        .args(["serve", "--port", "0", "--no-notify"])
        .env("PURSER_PASSPHRASE", PASSPHRASE)
        .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("control.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(5));
    print_mem("purser serve, wallet unlocked, idle 5 s", &tree_mem(child.id()));
    purser_testkit::proc::terminate(&mut child, Duration::from_secs(10));
    Ok(())
}

const SCROLL_JS: &str = r#"
const done = arguments[arguments.length - 1];
const el = document.querySelector('[data-testid=receipt-list]');
// A wheel turn over the list first, as a user's scroll starts (the focus stays in the search box).
el.dispatchEvent(new WheelEvent('wheel', { deltaY: 1, bubbles: true }));
const ms = arguments[0], speed = arguments[1];
// The UI's IPC calls while it runs (when each was sent and answered), to place the long frames:
// Tauri's IPC is a fetch of ipc://localhost/<command> (its internals object is frozen).
const fetch0 = window.fetch, t0 = performance.now(), calls = [];
window.fetch = (input, init) => {
  const url = String(input && input.url ? input.url : input);
  if (!url.startsWith('ipc:') && !url.includes('ipc.localhost')) return fetch0(input, init);
  const c = { cmd: url.split('/').pop(), sent: performance.now() - t0, answered: null };
  calls.push(c);
  return fetch0(input, init).then(async (r) => { const b = await r.clone().arrayBuffer(); c.answered = performance.now() - t0; c.bytes = b.byteLength; return r; });
};
const deltas = [], at = []; let last = performance.now(); const end = last + ms;
function step(t) {
  deltas.push(t - last); at.push(t - t0); last = t; el.scrollTop += speed;
  if (t < end) requestAnimationFrame(step); else { window.fetch = fetch0; done({ deltas, at, calls, top: el.scrollTop }); }
}
requestAnimationFrame(step);
"#;

/// Times `receipts_search` (the UI's first page: 60 rows) over Tauri's IPC, N times.
const IPC_JS: &str = r#"
const done = arguments[arguments.length - 1];
const q = arguments[0], n = arguments[1];
(async () => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await window.__TAURI_INTERNALS__.invoke('receipts_search', { query: q, cursor: null, limit: 60 });
    out.push(performance.now() - t);
  }
  done(out);
})().catch((e) => done([String(e)]));
"#;

async fn timeline(purser: &Path, o: &Opts) -> Result<()> {
    let tmp;
    let dir = match &o.seeded {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("purser-desktop-bench-").tempdir()?;
            let d = tmp.path().join("data");
            println!("\n== seeding {} receipts into {} (purser dev seed-receipts)", o.receipts, d.display());
            let t = Instant::now();
            let st = Command::new(purser).arg("--data-dir").arg(&d).args(["dev", "seed-receipts", &o.receipts.to_string()]).stdout(Stdio::null()).status()?;
            if !st.success() {
                bail!("seed-receipts failed: {st}");
            }
            println!("seeded in {:.0} s", t.elapsed().as_secs_f64());
            d
        }
    };
    println!("\n== timeline with the receipts in {} (app without a wallet)", dir.display());
    let app = App::start(AppOptions { key_hex: None, data_dir: Some(dir.clone()), unlock: false, ..Default::default() }).await;
    println!("start on this ledger: ready in {:?} ms, UI after {} ms", app.ready_ms, app.shown_after.as_millis());
    let ui = &app.ui;
    ui.click("nav-timeline").await;
    let t = Instant::now();
    ui.wait_js("the first rows", Duration::from_secs(120), "return document.querySelectorAll('[data-testid=receipt-row]').length", vec![]).await.map_err(anyhow::Error::msg)?;
    let full = ui.text("timeline-total").await;
    println!("timeline first page shown {} ms after the click; total: {full}", t.elapsed().as_millis());
    let mut painted = Vec::new();
    let mut committed = Vec::new();
    for q in ["outcome:refused", "amount:>0.10", "refused", "api", "outcome:paid amount:<0.01", "search", "timeout"] {
        let n = ui.js("return (window.__purserPerf && window.__purserPerf.searches.length) || 0", vec![]).await.as_u64().unwrap_or(0);
        ui.type_into("search-input", q).await;
        let r = ui
            .wait_js(
                &format!("results for {q}"),
                Duration::from_secs(60),
                "const p = window.__purserPerf; return p && p.searches.length > arguments[0] && p.lastQuery === arguments[1] ? p : null",
                vec![json!(n), json!(q)],
            )
            .await;
        match r {
            Ok(p) => {
                let (s, c) = (p["lastSearchMs"].as_f64().unwrap_or(f64::NAN), p["lastCommitMs"].as_f64().unwrap_or(f64::NAN));
                println!("search {q:<28} keystroke → painted {s:>7.1} ms (committed {c:.1} ms), {}", ui.text("timeline-total").await);
                painted.push(s);
                committed.push(c);
            }
            Err(e) => println!("search {q:<28} {e}"),
        }
        // Clear, and wait for the full list again.
        ui.type_into("search-input", "").await;
        let _ = ui.wait_js("the full list", Duration::from_secs(60), "return document.querySelector('[data-testid=timeline-total]').textContent === arguments[0]", vec![json!(full)]).await;
    }
    // The search command alone, through the same IPC the UI uses (no React, no paint).
    let mut ipc = Vec::new();
    for q in ["outcome:refused", "amount:>0.10", "refused", "api", "outcome:paid amount:<0.01", "search", "timeout"] {
        let v = ui.client().execute_async(IPC_JS, vec![json!(q), json!(5)]).await?;
        let ms: Vec<f64> = v.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        println!("ipc    {q:<28} receipts_search (first page) round trip: {}", ms.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>().join(", "));
        ipc.extend(ms);
    }
    stats("search command round trip over IPC", " ms", &ipc);
    stats("search keystroke → results painted", " ms", &painted);
    stats("search keystroke → results committed", " ms", &committed);
    // The last pass scrolls again over rows already loaded (no page fetched while it runs).
    for (speed, what) in [(48, ""), (480, ""), (480, ", again over loaded rows")] {
        let v = ui.client().execute_async(SCROLL_JS, vec![json!(3000), json!(speed)]).await?;
        let deltas: Vec<f64> = v["deltas"].as_array().map(|a| a.iter().skip(1).filter_map(Value::as_f64).collect()).unwrap_or_default();
        let dropped = deltas.iter().filter(|d| **d > 1.5 * 1000.0 / 60.0).count();
        stats(&format!("scroll {speed} px/frame for 3 s{what}, rAF deltas"), " ms", &deltas);
        let at: Vec<String> = deltas.iter().enumerate().filter(|(_, d)| **d > 1.5 * 1000.0 / 60.0).map(|(i, d)| format!("#{i} {d:.0} ms")).collect();
        println!("    frames {} ({:.1} fps), over 25 ms (dropped at 60 Hz): {dropped}, scrolled to {}", deltas.len(), deltas.len() as f64 / 3.0, v["top"]);
        println!("    the long frames: {}", at.join(", "));
        // Where each long frame ended, against the IPC answers before it.
        let times: Vec<f64> = v["at"].as_array().map(|a| a.iter().skip(1).filter_map(Value::as_f64).collect()).unwrap_or_default();
        let answered: Vec<(String, f64)> = v["calls"].as_array().map(|a| a.iter().filter_map(|c| Some((c["cmd"].as_str()?.to_string(), c["answered"].as_f64()?))).collect()).unwrap_or_default();
        let bytes: Vec<String> = v["calls"].as_array().map(|a| a.iter().map(|c| format!("{}", c["bytes"].as_u64().unwrap_or(0) / 1024)).collect()).unwrap_or_default();
        println!("    IPC calls while scrolling: {} (answers of {} KiB)", answered.len(), bytes.join(", "));
        for (i, d) in deltas.iter().enumerate().filter(|(_, d)| **d > 1.5 * 1000.0 / 60.0) {
            let t = times.get(i).copied().unwrap_or(f64::NAN);
            let near = answered.iter().filter(|(_, a)| *a <= t).map(|(c, a)| (c, t - a)).min_by(|x, y| x.1.total_cmp(&y.1));
            let near = near.map_or("none before it".to_string(), |(c, dt)| format!("{c} answered {dt:.0} ms before its end"));
            println!("      #{i} {d:.0} ms, ended at {t:.0} ms: {near}");
        }
        ui.js("document.querySelector('[data-testid=receipt-list]').scrollTop = 0; return true", vec![]).await;
    }
    ui.screenshot("bench-timeline-1m").await;
    app.stop().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = opts()?;
    let purser = purser_bin()?;
    println!("desktop bench: app {}, purser {}", purser_desktop_e2e::app_binary().display(), purser.display());
    let on = |p: &str| o.parts.iter().any(|x| x == p);
    if on("starts") {
        starts(o.starts).await;
    }
    if on("memory") {
        idle_memory().await;
    }
    if on("serve") {
        serve_memory(&purser)?;
    }
    if on("timeline") {
        timeline(&purser, &o).await?;
    }
    Ok(())
}

//! Owns the app's demo session ("Try it with a local test network"): the `purser-demo` library
//! run in-process on `<data dir>/demo` (its own ledger and wallet; the real ones are never
//! opened), the switch of every screen to the demo's engine while it is up ([`DemoSession::engine`]),
//! its events forwarded to the UI like the real engine's, its progress lines for the banner, and
//! the stop (Stop demo, app quit, or the demo failing) that ends everything it started (chain,
//! paywall, facilitator, proxy) and returns the app to the real data. Prompts are not
//! auto-answered: the user answers them in the Approvals screen (or the usual native
//! notification, unless `PURSER_NO_NOTIFY`) while the sample agent waits.

use purser_core::engine::{ApiError, Engine};
use purser_core::first_run::{demo_outcome, DemoOutcome, DemoPhase, DemoStatus};
use purser_demo::{Options, Progress};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tauri::AppHandle;
use tokio::sync::watch;

/// Lines kept for the banner.
const KEEP_LINES: usize = 40;
/// Longest wait for the demo to stop (the agent's call in flight gets 20 s, the peers 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Default)]
struct Inner {
    phase: Option<DemoPhase>,
    engine: Option<Arc<Engine>>,
    lines: VecDeque<String>,
    error: Option<ApiError>,
    outcome: Option<DemoOutcome>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tauri::async_runtime::JoinHandle<()>>,
    forwarder: Option<tauri::async_runtime::JoinHandle<()>>,
    /// The native prompts for the demo's approvals (as the real engine's).
    prompter: Option<purser_core::notify::PrompterHandle>,
    proxy_url: Option<String>,
}

/// At most one demo at a time.
#[derive(Default)]
pub struct DemoSession {
    inner: Arc<Mutex<Inner>>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn api(code: purser_core::api::ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError { code, message: message.into() }
}

/// Brings the tray up to date from the main thread without waiting for it: the tray's setters
/// block their caller until the main thread runs them, and while the app quits the main thread
/// is itself waiting for the demo to stop (a blocked worker would stall the runtime).
fn refresh_tray(app: &AppHandle) {
    let a = app.clone();
    let _ = app.run_on_main_thread(move || crate::tray::refresh(&a));
}

/// Tells the UI to refetch everything (an unknown kind refreshes every query) and the banner.
fn switched(app: &AppHandle) {
    crate::events::emit(app, &purser_core::events::Event::DemoChanged);
    refresh_tray(app);
}

impl DemoSession {
    /// The demo's engine while the app shows the demo's data.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        lock(&self.inner).engine.clone()
    }

    /// The demo's proxy while it is up.
    pub fn proxy_url(&self) -> Option<String> {
        let i = lock(&self.inner);
        i.engine.as_ref().and(i.proxy_url.clone())
    }

    pub fn status(&self, dir: &Path) -> DemoStatus {
        let i = lock(&self.inner);
        DemoStatus {
            phase: i.phase.unwrap_or(DemoPhase::Idle),
            showing_demo: i.engine.is_some(),
            dir: dir.display().to_string(),
            progress: i.lines.back().cloned().unwrap_or_default(),
            lines: i.lines.iter().cloned().collect(),
            error: i.error.clone(),
            outcome: i.outcome.clone(),
        }
    }

    /// Starts the demo in the background; the status says how it goes. Refused while one runs,
    /// and at once when the reference peers are missing (`demo_needs_peers`,
    /// `demo_peers_not_installed`: the message says which command fixes it).
    pub fn start(&self, app: AppHandle, real_data_dir: &Path) -> Result<(), ApiError> {
        let peers_dir = std::env::var_os("PURSER_PEERS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut i = lock(&self.inner);
        if i.phase.is_some_and(|p| p != DemoPhase::Idle) {
            return Err(api(purser_core::api::ErrorCode::DemoRunning, "a demo is already running: stop it first"));
        }
        purser_demo::peers::locate(peers_dir.as_deref()).map_err(|e| api(e.code(), e.to_string()))?;
        let opts = Options {
            dir: real_data_dir.join("demo"),
            real_data_dir: real_data_dir.to_path_buf(),
            peers_dir,
            auto_answer: None,
            answer_delay: Duration::ZERO,
            notify: false,
            // The chain, paywall and proxy stay up after the agent (the demo's wallet balance
            // and timeline stay live) until Stop demo.
            keep_running: true,
        };
        let (tx, rx) = watch::channel(false);
        *i = Inner { phase: Some(DemoPhase::Starting), stop: Some(tx), ..Default::default() };
        let inner = self.inner.clone();
        i.task = Some(tauri::async_runtime::spawn(run(app.clone(), inner, opts, rx)));
        drop(i);
        switched(&app);
        Ok(())
    }

    /// Stops the demo and waits until everything it started has exited (bounded).
    pub async fn stop(&self, app: Option<&AppHandle>) {
        let task = {
            let mut i = lock(&self.inner);
            if let Some(tx) = i.stop.take() {
                let _ = tx.send(true);
                i.phase = Some(DemoPhase::Stopping);
            }
            i.task.take()
        };
        let Some(task) = task else { return };
        if let Some(app) = app {
            switched(app);
        }
        if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
            tracing::warn!("the demo did not stop within {} s", STOP_TIMEOUT.as_secs());
        }
    }
}

/// The demo's run, then back to the real data.
async fn run(app: AppHandle, inner: Arc<Mutex<Inner>>, opts: Options, stop: watch::Receiver<bool>) {
    let (a, i) = (app.clone(), inner.clone());
    let on_progress = move |p: Progress<'_>| match p {
        Progress::Ready(ready) => {
            let mut g = lock(&i);
            g.forwarder = Some(forward(a.clone(), &ready.engine));
            if std::env::var_os("PURSER_NO_NOTIFY").is_none() {
                let opener = crate::opener::AppOpener(Arc::new(std::sync::OnceLock::from(a.clone())));
                let notifier = Arc::new(purser_core::notify::desktop::DesktopNotifier::new());
                g.prompter = Some(purser_core::notify::spawn(ready.engine.clone(), notifier, Arc::new(opener)));
            }
            g.engine = Some(ready.engine);
            g.proxy_url = Some(ready.proxy_url);
            g.phase = Some(DemoPhase::Running);
            drop(g);
            switched(&a);
        }
        Progress::Summary(s) => {
            let n = |k: &str| s.tally.outcomes.get(k).copied().unwrap_or(0);
            let mut g = lock(&i);
            g.outcome = Some(demo_outcome(n("paid"), n("refused"), s.spent_micros, s.budget_micros));
            if g.phase == Some(DemoPhase::Running) {
                g.phase = Some(DemoPhase::Finished);
            }
            drop(g);
            switched(&a);
        }
    };
    let (a, i) = (app.clone(), inner.clone());
    let on_line = move |l: &str| {
        // The library speaks to a terminal (commands to answer a prompt, Ctrl-C); here the
        // Approvals screen answers and the banner's button stops.
        let l = if l.starts_with("running ") {
            "running   the test chain, paywall and proxy stay up until you click Stop demo".to_string()
        } else if l.starts_with("prompt ") {
            l.replace("is waiting for you (desktop notification, or type):", "is waiting for you: answer it in Approvals")
        } else if l.trim_start().starts_with("purser --data-dir") {
            return;
        } else {
            l.to_string()
        };
        let mut g = lock(&i);
        if g.lines.len() == KEEP_LINES {
            g.lines.pop_front();
        }
        g.lines.push_back(l);
        drop(g);
        crate::events::emit(&a, &purser_core::events::Event::DemoLine);
    };
    let result = purser_demo::run_with(&opts, on_progress, on_line, stop.clone()).await;
    let prompter = {
        let mut g = lock(&inner);
        if let Err(e) = result {
            // Stopped by the user: no failure to show.
            if !(*stop.borrow() && e.code() == "demo_interrupted") {
                tracing::warn!(error = %e, "the demo failed");
                g.error = Some(api(e.code(), e.to_string()));
            }
        }
        if let Some(f) = g.forwarder.take() {
            f.abort();
        }
        g.engine = None;
        g.proxy_url = None;
        g.stop = None;
        g.phase = Some(DemoPhase::Idle);
        g.prompter.take()
    };
    if let Some(p) = prompter {
        p.shutdown().await;
    }
    switched(&app);
}

/// Forwards the demo engine's events to the UI, as `events::spawn_forwarder` does the real one's.
fn forward(app: AppHandle, engine: &Arc<Engine>) -> tauri::async_runtime::JoinHandle<()> {
    tauri::async_runtime::spawn(crate::events::forward(app, engine.subscribe(), refresh_tray))
}

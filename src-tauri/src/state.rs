//! Owns the running app's state: the engine (the same core `purser serve` runs; while a demo
//! session is up, [`AppState::engine`] is the demo's, see `demo.rs`), the in-process
//! proxy, prompter and chain watcher it started, where it listens, the data dir and its exclusive lock, and the
//! graceful stop (like `purser serve`'s: control file removed, held approvals denied with
//! receipts, in-flight requests given their grace, prompts taken off the screen).

use purser_core::control::ControlFile;
use purser_core::datadir::DirLock;
use purser_core::engine::Engine;
use purser_core::ipc::AppInfo;
use purser_core::notify::PrompterHandle;
use purser_core::proxy::ProxyHandle;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What is running until the app quits.
pub struct Running {
    pub proxy: ProxyHandle,
    pub prompter: Option<PrompterHandle>,
    /// Balance refreshes and on-chain reconciliation (as in `purser serve`).
    pub chain: tokio::task::JoinHandle<()>,
    /// The control API's Unix socket (removed when dropped).
    pub control: purser_core::control::socket::ControlServer,
    /// Contained runs (`purser run`, the "Run an agent" action).
    pub runs: std::sync::Arc<purser_core::runs::Runs>,
    pub reaper: tokio::task::JoinHandle<()>,
}

pub struct AppState {
    /// The real engine (the user's ledger and wallet). Commands use [`AppState::engine`].
    pub real: Arc<Engine>,
    /// The demo session ("Try it"): while it shows its data, commands go to its engine.
    pub demo: crate::demo::DemoSession,
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub proxy_url: String,
    /// The local CA certificate (standard proxy mode), named in a new grant's set-up lines.
    pub ca_cert: PathBuf,
    /// A tray exists: closing the window hides it (the proxy keeps running).
    pub has_tray: std::sync::atomic::AtomicBool,
    pub running: Mutex<Option<Running>>,
    /// Held for the process lifetime: this app owns the data dir.
    pub _lock: DirLock,
}

impl AppState {
    /// The engine every screen shows: the demo's while a demo session shows its data, else the
    /// real one.
    pub fn engine(&self) -> Arc<Engine> {
        self.demo.engine().unwrap_or_else(|| self.real.clone())
    }

    /// The proxy of [`AppState::engine`] (the demo's own while it is shown).
    pub fn active_proxy_url(&self) -> String {
        self.demo.proxy_url().unwrap_or_else(|| self.proxy_url.clone())
    }

    /// The runs registry (None once shut down).
    pub fn runs(&self) -> Option<Arc<purser_core::runs::Runs>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|r| r.runs.clone())
    }

    pub fn info(&self) -> AppInfo {
        let proxy_url = self.active_proxy_url();
        AppInfo {
            version: purser_core::VERSION.to_string(),
            data_dir: self.data_dir.display().to_string(),
            setup_hint: format!("Agents send their requests through {proxy_url} with a grant's token: create a grant and paste its set-up lines into the agent's shell."),
            proxy_url,
            paused: self.engine().paused(),
        }
    }

    /// Stops the proxy and the prompter once (later calls do nothing).
    pub async fn shutdown(&self) {
        // The demo first: everything it started stops with the app.
        self.demo.stop(None).await;
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(running) = running else { return };
        if ControlFile::read(&self.data_dir).is_some_and(|c| c.pid == std::process::id()) {
            let _ = std::fs::remove_file(ControlFile::path(&self.data_dir));
        }
        eprintln!("purser-app: stopping; letting in-flight requests finish");
        running.chain.abort();
        drop(running.control);
        running.reaper.abort();
        running.runs.reap(&self.real, true);
        running.proxy.shutdown().await;
        if let Some(p) = running.prompter {
            p.shutdown().await;
        }
        self.real.lock_wallet(false);
        eprintln!("purser-app: stopped");
    }
}

//! Owns the app's start, before any window exists: where the data dir is (`PURSER_DATA_DIR`,
//! else the platform default, as the CLI), taking it exclusively (or saying who has it), the
//! engine on its ledger, the proxy in-process on `PURSER_PORT` (default 4020; 0 picks a free
//! one) with the local CA and the control API (`control.json`, so the CLI and tests can talk to
//! the app as to the daemon), the desktop prompter, and the wallet unlock in the background
//! (the OS keychain, else `PURSER_PASSPHRASE`; otherwise it stays locked until the user unlocks).

use crate::opener::AppOpener;
use crate::state::{AppState, Running};
use purser_core::datadir::{self, Owner};
use purser_core::engine::Engine;
use purser_core::wallet::custody::KeychainUnlock;
use purser_core::wallet::Wallet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default port, as `purser serve`'s.
pub const DEFAULT_PORT: u16 = 4020;
/// Time in-flight requests get to finish when the app quits.
pub const GRACE: Duration = Duration::from_secs(10);
/// Longest wait for the OS keychain at start.
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the app cannot start; shown in a native dialog, then the app exits non-zero.
#[derive(Debug)]
pub struct Fatal(pub String);

fn fatal(what: &str, e: impl std::fmt::Display) -> Fatal {
    Fatal(format!("{what}: {e}"))
}

/// `PURSER_PORT`: a port number (0 = any free port).
pub fn port_from_env() -> Result<u16, Fatal> {
    match std::env::var("PURSER_PORT") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u16>().map_err(|_| Fatal(format!("PURSER_PORT={v:?} is not a port number (0-65535)"))),
        _ => Ok(DEFAULT_PORT),
    }
}

pub fn data_dir_from_env() -> PathBuf {
    std::env::var_os("PURSER_DATA_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(datadir::default_dir)
}

/// Everything up to a listening proxy. Runs on tauri's async runtime.
pub async fn start(opener: AppOpener) -> Result<AppState, Fatal> {
    let dir = data_dir_from_env();
    let port = port_from_env()?;
    // The tuning knobs, parsed once: a value that does not parse stops the start, named.
    purser_core::config::Config::load().map_err(|e| fatal("the configuration", e))?;
    datadir::ensure_private_dir(&dir).map_err(|e| fatal(&format!("data dir {}", dir.display()), e))?;
    let lock = datadir::lock_exclusive(&dir, Owner::App).map_err(|e| Fatal(e.to_string()))?;
    let ledger = purser_core::ledger::Ledger::open_in(&dir).map_err(|e| fatal("opening the ledger", e))?;
    let mut engine = Engine::new(ledger, None).map_err(|e| fatal("starting the engine", e))?;
    // Payments a killed process left in flight get their receipt; the reconciler decides them.
    // If the ledger cannot take writes now, their budget stays reserved until a later start.
    if let Err(e) = engine.recover_interrupted(&lock) {
        eprintln!("purser-app: could not record the payments the last stop interrupted ({}: {e}); their budget stays reserved until the next start", e.code());
    }
    if let Some(ca) = std::env::var_os("PURSER_UPSTREAM_CA") {
        let pem = std::fs::read(&ca).map_err(|e| fatal(&format!("PURSER_UPSTREAM_CA {}", PathBuf::from(&ca).display()), e))?;
        engine.set_upstream(purser_core::upstream::Upstream::with_extra_roots_pem(&pem).map_err(|e| fatal("PURSER_UPSTREAM_CA", e))?);
    }
    let engine = Arc::new(engine);
    engine.set_data_dir(&dir);
    let proxy = purser_core::proxy::start(engine.clone(), port, GRACE).await.map_err(|e| fatal(&format!("starting the proxy on 127.0.0.1:{port}"), e))?;
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let runs = purser_core::runs::Runs::new(Some(purser_core::ca::LocalCa::cert_path(&dir)));
    let control = purser_core::control::socket::publish(engine.clone(), runs.clone(), &dir, &proxy_url).await.map_err(|e| fatal("the control socket", e))?;
    let reaper = runs.spawn_reaper(engine.clone(), std::time::Duration::from_secs(1));
    let prompter = if std::env::var_os("PURSER_NO_NOTIFY").is_some() {
        None
    } else {
        Some(purser_core::notify::spawn(engine.clone(), Arc::new(purser_core::notify::desktop::DesktopNotifier::new()), Arc::new(opener)))
    };
    unlock_in_background(engine.clone(), dir.clone());
    let chain = purser_core::background::spawn(engine.clone(), dir.clone(), purser_core::background::interval_from_env());
    Ok(AppState {
        real: engine,
        demo: Default::default(),
        ca_cert: purser_core::ca::LocalCa::cert_path(&dir),
        data_dir: dir,
        proxy_url,
        has_tray: Default::default(),
        running: std::sync::Mutex::new(Some(Running { proxy, prompter, chain, control, runs, reaper })),
        _lock: lock,
    })
}

/// Unlocks the wallet without delaying the window: the keychain's remembered secret, else
/// `PURSER_PASSPHRASE`. A failure is logged; the wallet screen offers the unlock.
fn unlock_in_background(engine: Arc<Engine>, dir: PathBuf) {
    if !Wallet::exists(&dir) {
        eprintln!("purser-app: no wallet in {} yet; payments are refused until one is created", dir.display());
        return;
    }
    tauri::async_runtime::spawn(async move {
        let e = engine.clone();
        match tokio::time::timeout(KEYCHAIN_TIMEOUT, tauri::async_runtime::spawn_blocking(move || e.unlock_from_keychain())).await {
            Ok(Ok(KeychainUnlock::Unlocked)) => {
                eprintln!("purser-app: wallet unlocked with the secret the OS keychain remembers");
                return;
            }
            Ok(Ok(other)) => tracing::info!(?other, "keychain did not unlock the wallet"),
            Ok(Err(e)) => tracing::warn!(error = %e, "keychain lookup failed"),
            Err(_) => tracing::warn!("the OS keychain did not answer in time"),
        }
        let Some(pass) = purser_core::secrets::env_passphrase().filter(|p| !p.is_empty()) else {
            eprintln!("purser-app: the wallet is locked; unlock it in the Wallet screen");
            return;
        };
        let e = engine.clone();
        match tauri::async_runtime::spawn_blocking(move || e.unlock_wallet(&pass, false)).await {
            Ok(Ok(_)) => eprintln!("purser-app: wallet unlocked with PURSER_PASSPHRASE"),
            Ok(Err(err)) => eprintln!("purser-app: PURSER_PASSPHRASE did not unlock the wallet: {err} ({})", err.code()),
            Err(err) => eprintln!("purser-app: unlocking failed: {err}"),
        }
    });
}

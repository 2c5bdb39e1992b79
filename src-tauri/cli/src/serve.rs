//! `purser serve`: the headless daemon. Unlocks the wallet, starts the proxy on 127.0.0.1,
//! serves the control API on its Unix socket (and `purser run`'s runs), publishes the control
//! file, raises desktop prompts for held payments (unless `--no-notify`), and shuts down
//! cleanly on Ctrl-C or SIGTERM. It is not dumpable: another process of the user can neither
//! read its memory or environment nor ptrace it.

use anyhow::{Context, Result};
use purser_core::control::ControlFile;
use purser_core::engine::Engine;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `notify`: raise desktop prompts; `explicit_dir`: the data dir was given (so the commands
/// "Open" prints name it).
/// `upstream_ca`: extra CA certificates (PEM) upstream TLS trusts.
pub async fn run(dir: &Path, port: u16, grace_secs: u64, notify: bool, explicit_dir: bool, upstream_ca: Option<&Path>) -> Result<()> {
    purser_core::secrets::not_dumpable();
    // The tuning knobs, parsed once: a value that does not parse stops the start, named.
    purser_core::config::Config::load().map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    // One owner per data dir (this daemon or the desktop app), held until the process ends.
    let _owner = purser_core::datadir::lock_exclusive(dir, purser_core::datadir::Owner::Daemon)?;
    let ledger = crate::ledger(dir)?;
    let mut engine = Engine::new(ledger, None)?;
    // Payments a killed process left in flight get their receipt; the reconciler decides them.
    // If the ledger cannot take writes now, their budget stays reserved until a later start.
    match engine.recover_interrupted(&_owner) {
        Ok(r) if !r.receipts.is_empty() => {
            tracing::warn!(
                count = r.receipts.len(),
                micros = r.micros,
                without_nonce = r.without_nonce,
                "payments interrupted by the last stop recorded (failed, interrupted); the chain decides them by nonce"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(code = %e.code(), error = %e, "could not record the payments the last stop interrupted; their budget stays reserved until the next start"),
    }
    if let Some(path) = upstream_ca {
        engine.set_upstream(crate::ca::upstream_with_ca(path)?);
    }
    let engine = Arc::new(engine);
    crate::wallet::unlock_at_start(&engine, dir).await?;
    let prompter = notify.then(|| {
        let opener = purser_core::notify::PrintCommand::new(explicit_dir.then(|| dir.to_path_buf()));
        purser_core::notify::spawn(engine.clone(), Arc::new(purser_core::notify::desktop::DesktopNotifier::new()), Arc::new(opener))
    });
    let handle = purser_core::proxy::start(engine.clone(), port, Duration::from_secs(grace_secs)).await?;
    let url = format!("http://127.0.0.1:{}", handle.port());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {url}")?;
        out.flush()?;
    }
    let runs = purser_core::runs::Runs::new(Some(purser_core::ca::LocalCa::cert_path(dir)));
    let control = purser_core::control::socket::publish(engine.clone(), runs.clone(), dir, &url).await.context("the control socket")?;
    let reaper = runs.spawn_reaper(engine.clone(), Duration::from_secs(1));
    tracing::info!(%url, "serving");
    // Balances and reconciliation, off the payment path (interval: PURSER_CHAIN_INTERVAL_SECS).
    let chain_task = purser_core::background::spawn(engine.clone(), dir.to_path_buf(), purser_core::background::interval_from_env());

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("purser: stopping; letting in-flight requests finish");
    let _ = std::fs::remove_file(ControlFile::path(dir));
    drop(control);
    reaper.abort();
    runs.reap(&engine, true);
    handle.shutdown().await;
    chain_task.abort();
    if let Some(p) = prompter {
        p.shutdown().await;
    }
    // The ledger's head as it stops, signed by the wallet's key (see `receipts verify`).
    purser_core::background::checkpoint_engine(&engine, None).await;
    // The key leaves memory (zeroised) before the process ends.
    engine.lock_wallet(false);
    eprintln!("purser: stopped");
    Ok(())
}

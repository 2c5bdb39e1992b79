//! Purser desktop shell: starts the same core `purser serve` runs (proxy in-process, control
//! API, prompts) and shows the UI in a window with a tray; all logic lives in `purser-core`.
//! Closing the window keeps the proxy running in the tray (the webview is closed to save memory
//! and built again on Open); Quit stops the proxy gracefully.
//!
//! Environment: `PURSER_DATA_DIR` (else the platform data dir), `PURSER_PORT` (default 4020; 0
//! picks a free one), `PURSER_PASSPHRASE` (unlocks the wallet at start when the OS keychain
//! remembers nothing), `PURSER_NO_NOTIFY` (no desktop prompts), `PURSER_NO_DIALOG` (a fatal start
//! error only on stderr, no dialog), `PURSER_UPSTREAM_CA`, `PURSER_LOG`; WebKit and GTK rendering variables (`WEBKIT_DISABLE_COMPOSITING_MODE`, …: see [`render`]).
//! On stderr, once the page is loaded: `purser-app: ready in N ms (proxy http://127.0.0.1:PORT)`.

// No console window next to the app in Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod closed;
mod commands;
mod demo;
mod error;
mod events;
mod opener;
mod render;
mod startup;
mod state;
mod tray;

use state::AppState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tauri::webview::PageLoadEvent;
use tauri::{Manager, RunEvent};

/// Shows why the app cannot start (a native dialog when there is a display), then exits 1.
fn die(message: &str) -> ! {
    eprintln!("purser-app: {message}");
    // PURSER_NO_DIALOG: scripts and tests get the message on stderr and the exit code only.
    #[cfg(target_os = "linux")]
    if std::env::var_os("PURSER_NO_DIALOG").is_none() && gtk::init().is_ok() {
        use gtk::prelude::*;
        let dialog = gtk::MessageDialog::new(None::<&gtk::Window>, gtk::DialogFlags::MODAL, gtk::MessageType::Error, gtk::ButtonsType::Close, message);
        // Not the main window's title "Purser": a window check must never take this for the app.
        dialog.set_title("Purser cannot start");
        dialog.run();
        dialog.close();
    }
    std::process::exit(1);
}

fn main() {
    let t0 = Instant::now();
    // Before any thread and before GTK: the environment WebKit reads.
    let painting = render::apply();
    // Everything Purser writes is the user's alone.
    unsafe { libc::umask(0o077) };
    // The passphrase leaves the environment (and /proc/<pid>/environ); nobody else of the user
    // may read this process's memory or ptrace it.
    purser_core::secrets::take_from_env();
    purser_core::secrets::not_dumpable();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PURSER_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    tracing::info!(?painting, "webview painting");

    let opener = opener::AppOpener::default();
    let state = match tauri::async_runtime::block_on(startup::start(opener.clone())) {
        Ok(s) => s,
        Err(startup::Fatal(m)) => die(&m),
    };
    let listening_ms = t0.elapsed().as_millis();
    let proxy_url = state.proxy_url.clone();
    let ready = AtomicBool::new(false);

    let app = tauri::Builder::default()
        .manage(state)
        .invoke_handler(handlers!())
        .manage(opener::PendingOpen::default())
        .on_page_load(move |webview, payload| {
            if payload.event() != PageLoadEvent::Finished || webview.label() != opener::MAIN {
                return;
            }
            if !ready.swap(true, Ordering::SeqCst) {
                eprintln!("purser-app: ready in {} ms (proxy {proxy_url})", t0.elapsed().as_millis());
                tracing::info!(listening_ms, "proxy listening");
            }
            opener::on_loaded(webview.app_handle(), webview);
        })
        .on_window_event(|window, event| {
            // The window closed to the tray: give back what its webview held (see `closed`).
            if let tauri::WindowEvent::Destroyed = event {
                if window.label() == opener::MAIN {
                    closed::window_closed(window.app_handle());
                }
            }
        })
        .setup(move |app| {
            let _ = opener.0.set(app.handle().clone());
            let has_tray = tray::create(app.handle())?;
            app.state::<AppState>().has_tray.store(has_tray, Ordering::SeqCst);
            events::spawn_forwarder(app.handle().clone());
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => die(&format!("could not open the window: {e}")),
    };
    app.run(|handle, event| match event {
        // The last window closed: with a tray, Purser keeps running there (the window and its
        // webview processes are gone; Open builds them again). Quit and signals exit with a code.
        RunEvent::ExitRequested { code: None, api, .. } if handle.state::<AppState>().has_tray.load(Ordering::SeqCst) => api.prevent_exit(),
        RunEvent::Exit => tauri::async_runtime::block_on(handle.state::<AppState>().shutdown()),
        _ => {}
    });
}

/// SIGTERM / Ctrl-C quit like the tray's Quit (graceful proxy shutdown).
fn quit_on_signals(app: tauri::AppHandle) {
    tauri::async_runtime::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        app.exit(0);
    });
}

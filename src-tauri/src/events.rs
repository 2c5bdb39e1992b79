//! Owns the live link from the core to the UI and the tray: every core event (the real engine's
//! here; a demo session's engine is forwarded the same way by `demo.rs`) is forwarded to
//! the webview as one Tauri event, `purser://changed`, whose payload is the core `Event`
//! ({kind, id} or {kind, paused}...; the UI refetches, the ledger stays the truth), and the
//! tray is brought up to date. If the UI fell behind a burst, `{kind: "resync"}` tells it to
//! refetch everything.

use crate::state::AppState;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::error::RecvError;

pub const CHANGED_EVENT: &str = "purser://changed";

/// Forwards events until the engine's publisher goes away.
pub fn spawn_forwarder(app: AppHandle) {
    let mut rx = app.state::<AppState>().real.events.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let _ = app.emit(CHANGED_EVENT, &event);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "UI events lagged; asking for a full refetch");
                    let _ = app.emit(CHANGED_EVENT, serde_json::json!({ "kind": "resync" }));
                }
                Err(RecvError::Closed) => break,
            }
            crate::tray::refresh(&app);
        }
    });
}

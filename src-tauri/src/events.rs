//! Owns the live link from the core to the UI and the tray: every core event (the real engine's
//! here; a demo session's engine is forwarded the same way by `demo.rs`) is forwarded to
//! the webview as one Tauri event, `purser://changed`, whose payload is the core `Event`
//! ({kind, id} or {kind, paused}...; the UI refetches, the ledger stays the truth), and the
//! tray is brought up to date. If the UI fell behind a burst, `{kind: "resync"}` tells it to
//! refetch everything. The shell's own events (`demo_changed`, `demo_line`, `resync`) are
//! variants of the same `Event`, sent by [`emit`], the one forwarder.

use crate::state::AppState;
use purser_core::events::Event;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::error::RecvError;

pub const CHANGED_EVENT: &str = "purser://changed";

/// The one way an event reaches the UI: `purser://changed` with the `Event` as its payload
/// (its `kind` is the generated TypeScript `Event` union's, shell events included).
pub fn emit(app: &AppHandle, event: &Event) {
    let _ = app.emit(CHANGED_EVENT, event);
}

/// Forwards `rx` (an engine's events, the real one's or a demo session's) until its publisher
/// goes away; a burst the UI fell behind becomes one `Resync`. `after` runs after each.
pub async fn forward(app: AppHandle, mut rx: tokio::sync::broadcast::Receiver<Event>, after: impl Fn(&AppHandle)) {
    loop {
        match rx.recv().await {
            Ok(event) => emit(&app, &event),
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "UI events lagged; asking for a full refetch");
                emit(&app, &Event::Resync);
            }
            Err(RecvError::Closed) => break,
        }
        after(&app);
    }
}

/// Forwards the real engine's events until its publisher goes away, refreshing the tray.
pub fn spawn_forwarder(app: AppHandle) {
    let rx = app.state::<AppState>().real.subscribe();
    tauri::async_runtime::spawn(forward(app, rx, crate::tray::refresh));
}

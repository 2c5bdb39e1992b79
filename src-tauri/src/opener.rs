//! Owns bringing the window up: from the tray's Open, and from a notification's "Open" (on the
//! Approvals screen at that request: the event `purser://open` {screen, id} when the window is
//! up, else the new window's `#/approvals/<id>`). A window closed to the tray is destroyed (the
//! webview's processes end; the proxy runs on) and built again from tauri.conf.json on Open.

use purser_core::approvals::PendingApproval;
use purser_core::notify::Opener;
use serde::Serialize;
use std::sync::{Arc, Mutex, OnceLock};
use tauri::{AppHandle, Emitter, Manager};

/// The event that tells the UI which screen (and request) to show.
pub const OPEN_EVENT: &str = "purser://open";
pub const MAIN: &str = "main";

#[derive(Debug, Clone, Serialize)]
pub struct OpenPayload {
    pub screen: &'static str,
    pub id: Option<String>,
}

/// A screen to show once a window being built has loaded its page, and when the build began.
#[derive(Default)]
pub struct PendingOpen {
    screen: Mutex<Option<OpenPayload>>,
    building_since: Mutex<Option<std::time::Instant>>,
}

/// Shows and focuses the main window, building it if it was closed. `open`: a screen to show.
pub fn show_window(app: &AppHandle, open: Option<OpenPayload>) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        if let Some(p) = open {
            let _ = app.emit(OPEN_EVENT, p);
        }
        return;
    }
    if let Some(p) = open {
        *app.state::<PendingOpen>().screen.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }
    let Some(cfg) = app.config().app.windows.iter().find(|w| w.label == MAIN).cloned() else { return };
    *app.state::<PendingOpen>().building_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    match tauri::WebviewWindowBuilder::from_config(app, &cfg).and_then(|b| b.build()) {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => eprintln!("purser-app: could not open the window: {e}"),
    }
}

/// After a (re)built window loaded its page: go to the screen Open asked for.
pub fn on_loaded(app: &AppHandle, webview: &tauri::Webview) {
    if let Some(t) = app.state::<PendingOpen>().building_since.lock().unwrap_or_else(|e| e.into_inner()).take() {
        eprintln!("purser-app: window opened again, page loaded in {} ms", t.elapsed().as_millis());
    }
    let pending = app.state::<PendingOpen>().screen.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = pending {
        // Ids are checked before they reach script text (UUID characters only).
        let id = p.id.as_deref().and_then(|id| purser_core::ipc::id("id", id).ok());
        let hash = match id {
            Some(id) => format!("#/{}/{id}", p.screen),
            None => format!("#/{}", p.screen),
        };
        let _ = webview.eval(format!("window.location.hash = {:?};", hash));
    }
}

/// The app's [`Opener`]; its handle is set once the app is built (prompts cannot be raised
/// before the proxy serves, and the proxy starts just before).
#[derive(Clone, Default)]
pub struct AppOpener(pub Arc<OnceLock<AppHandle>>);

impl AppOpener {
    fn open(&self, id: Option<String>) {
        let Some(app) = self.0.get() else {
            tracing::warn!("Open pressed before the window exists");
            return;
        };
        show_window(app, Some(OpenPayload { screen: "approvals", id }));
    }
}

impl Opener for AppOpener {
    fn open_approval(&self, approval: &PendingApproval) {
        self.open(Some(approval.id.clone()));
    }
    fn open_queue(&self, _grant_id: &str, _grant_label: &str, _waiting: usize) {
        self.open(None);
    }
}

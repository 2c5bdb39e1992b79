//! Owns the tray: an icon per state (idle, N pending approvals, spending paused; drawn by
//! icons/make_icons.py), a tooltip saying it in words ("Purser — 2 pending approvals"), and the
//! menu: Open, Pause all spending / Resume spending, Quit. Without a tray library on the system
//! (libayatana-appindicator3) there is no tray, and closing the window quits the app.

use crate::state::AppState;
use std::sync::Mutex;
use tauri::image::Image;
use tauri::menu::{Menu, MenuEvent, MenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};

const ICON_IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const ICON_PENDING: &[u8] = include_bytes!("../../icons/tray-pending.png");
const ICON_PAUSED: &[u8] = include_bytes!("../../icons/tray-paused.png");

/// What the tray shows. Paused wins over pending (nothing pays while paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    Idle,
    Pending(usize),
    Paused,
}

impl TrayState {
    pub fn of(pending: usize, paused: bool) -> TrayState {
        match (paused, pending) {
            (true, _) => TrayState::Paused,
            (false, 0) => TrayState::Idle,
            (false, n) => TrayState::Pending(n),
        }
    }

    pub fn tooltip(&self) -> String {
        match self {
            TrayState::Idle => "Purser — idle".into(),
            TrayState::Pending(1) => "Purser — 1 pending approval".into(),
            TrayState::Pending(n) => format!("Purser — {n} pending approvals"),
            TrayState::Paused => "Purser — spending paused".into(),
        }
    }

    fn icon(&self) -> &'static [u8] {
        match self {
            TrayState::Idle => ICON_IDLE,
            TrayState::Pending(_) => ICON_PENDING,
            TrayState::Paused => ICON_PAUSED,
        }
    }
}

/// The tray's parts that change.
pub struct Tray {
    icon: TrayIcon,
    pause: MenuItem<Wry>,
    shown: Mutex<Option<TrayState>>,
}

/// Whether the system can show a tray (tray-icon would panic without the library).
pub fn available() -> bool {
    ["libayatana-appindicator3.so.1", "libappindicator3.so.1", "libayatana-appindicator3.so", "libappindicator3.so"].iter().any(|name| unsafe { libloading::Library::new(name) }.is_ok())
}

/// Builds the tray (when the system has one) and shows the current state.
pub fn create(app: &AppHandle) -> tauri::Result<bool> {
    if !available() {
        eprintln!("purser-app: no tray on this system (libayatana-appindicator3 is missing); closing the window quits Purser");
        return Ok(false);
    }
    let open = MenuItem::with_id(app, "open", "Open Purser", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause all spending", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Purser", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &pause, &quit])?;
    let icon = TrayIconBuilder::with_id("purser").icon(Image::from_bytes(ICON_IDLE)?).tooltip(TrayState::Idle.tooltip()).menu(&menu).show_menu_on_left_click(true).on_menu_event(on_menu).build(app)?;
    app.manage(Tray { icon, pause, shown: Mutex::new(None) });
    refresh(app);
    Ok(true)
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    match event.id.as_ref() {
        "open" => crate::opener::show_window(app, None),
        "pause" => {
            let engine = app.state::<AppState>().engine();
            let paused = !engine.paused();
            tauri::async_runtime::spawn_blocking(move || {
                if let Err(e) = engine.set_paused(paused, Some(&purser_core::presence::Presence::app_click())) {
                    eprintln!("purser-app: could not {} spending: {e}", if paused { "pause" } else { "resume" });
                }
            });
        }
        "quit" => app.exit(0),
        _ => {}
    }
}

/// Brings the tray up to date (icon, tooltip, pause label) when its state changed.
pub fn refresh(app: &AppHandle) {
    let Some(tray) = app.try_state::<Tray>() else { return };
    let engine = app.state::<AppState>().engine();
    let state = TrayState::of(engine.pending_approvals().len(), engine.paused());
    let mut shown = tray.shown.lock().unwrap_or_else(|p| p.into_inner());
    if *shown == Some(state) {
        return;
    }
    if let Ok(img) = Image::from_bytes(state.icon()) {
        let _ = tray.icon.set_icon(Some(img));
    }
    let _ = tray.icon.set_tooltip(Some(state.tooltip()));
    let _ = tray.pause.set_text(if state == TrayState::Paused { "Resume spending" } else { "Pause all spending" });
    *shown = Some(state);
}

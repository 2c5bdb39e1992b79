//! Purser desktop shell: owns the Tauri window and the commands the UI may invoke (only `app_info` so far); all logic lives in `purser-core`.

// No console window next to the app in Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use serde::Serialize;

/// What `app_info` returns to the UI.
#[derive(Debug, Clone, Serialize)]
struct AppInfo {
    /// Purser's version (the core crate's).
    version: &'static str,
}

/// Basic facts about the running app, for the UI's header.
#[tauri::command]
fn app_info() -> AppInfo {
    AppInfo {
        version: purser_core::VERSION,
    }
}

fn main() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![app_info])
        .run(tauri::generate_context!())
        .expect("failed to run the Purser window");
}

//! App-wide commands: facts for the header and "pause all spending".

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::ipc::AppInfo;
use tauri::State;

#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    state.info()
}

async fn set_paused(state: State<'_, AppState>, paused: bool) -> CmdResult<AppInfo> {
    let e = state.engine();
    blocking(move || Ok(e.set_paused(paused, Some(&purser_core::presence::Presence::app_click()))?)).await?;
    Ok(state.info())
}

/// Every grant refuses every payment (`spending_paused`) until resumed; kept across restarts.
#[tauri::command]
pub async fn spending_pause(state: State<'_, AppState>) -> CmdResult<AppInfo> {
    set_paused(state, true).await
}

#[tauri::command]
pub async fn spending_resume(state: State<'_, AppState>) -> CmdResult<AppInfo> {
    set_paused(state, false).await
}

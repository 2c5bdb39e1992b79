//! Run commands: "Run an agent" on a grant (its command and working dir, started contained as
//! `purser run` starts it; the click is the user's presence) and the runs in progress.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::engine::ApiError;
use purser_core::ipc;
use purser_core::presence::Presence;
use purser_core::runs::launch::RunLaunched;
use purser_core::runs::RunView;
use tauri::State;

#[tauri::command]
pub async fn run_start(state: State<'_, AppState>, grant_id: String, command: String, cwd: String) -> CmdResult<RunLaunched> {
    let grant_id = ipc::id("grantId", &grant_id)?;
    let runs = state.runs().ok_or_else(|| ApiError { code: purser_core::api::ErrorCode::NotRunning, message: "Purser is stopping".into() })?;
    let exe = std::env::current_exe().map_err(|e| ApiError { code: purser_core::api::ErrorCode::CliMissing, message: e.to_string() })?;
    let cli = purser_core::runs::launch::find_cli(&exe)
        .ok_or_else(|| ApiError { code: purser_core::api::ErrorCode::CliMissing, message: "the `purser` command is needed to contain an agent; install it beside the app or on PATH".into() })?;
    let (engine, log_dir) = (state.real.clone(), state.data_dir.join("runs"));
    blocking(move || Ok(purser_core::runs::launch::launch(&engine, &runs, &Presence::app_click(), &grant_id, &command, std::path::Path::new(cwd.trim()), &cli, &log_dir)?)).await
}

#[tauri::command]
pub fn runs_list(state: State<'_, AppState>) -> Vec<RunView> {
    state.runs().map(|r| r.list()).unwrap_or_default()
}

//! Grant commands: list, read, create (token shown once, with the agent's set-up lines), edit,
//! top up, revoke (and undo), revoke all.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::grants::{GrantSpec, GrantView};
use purser_core::ipc::{self, GrantCreated, GrantPatch, GrantSpecInput};
use purser_core::presence::Presence;
use tauri::State;

#[tauri::command]
pub async fn grants_list(state: State<'_, AppState>) -> CmdResult<Vec<GrantView>> {
    let e = state.engine();
    blocking(move || Ok(e.list_grants()?)).await
}

#[tauri::command]
pub async fn grant_get(state: State<'_, AppState>, id: String) -> CmdResult<GrantView> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || Ok(e.grant(&id)?)).await
}

#[tauri::command]
pub async fn grant_create(state: State<'_, AppState>, spec: GrantSpecInput) -> CmdResult<GrantCreated> {
    ipc::grant_input(&spec)?;
    let (e, url, ca) = (state.engine(), state.active_proxy_url(), state.ca_cert.clone());
    blocking(move || e.create_grant_for_app(&GrantSpec::from(spec), &url, &ca, &Presence::app_click())).await
}

#[tauri::command]
pub async fn grant_update(state: State<'_, AppState>, id: String, spec: GrantPatch) -> CmdResult<GrantView> {
    let id = ipc::id("id", &id)?;
    ipc::grant_patch(&spec)?;
    let e = state.engine();
    blocking(move || Ok(e.update_grant(&id, &spec, Some(&Presence::app_click()))?)).await
}

#[tauri::command]
pub async fn grant_top_up(state: State<'_, AppState>, id: String, usd: String) -> CmdResult<GrantView> {
    let (id, usd) = (ipc::id("id", &id)?, ipc::positive_usd("usd", &usd)?);
    let e = state.engine();
    blocking(move || Ok(e.top_up(&id, &usd, Some(&Presence::app_click()))?)).await
}

#[tauri::command]
pub async fn grant_revoke(state: State<'_, AppState>, id: String) -> CmdResult<GrantView> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || Ok(e.revoke_grant(&id)?)).await
}

/// Undoes a revocation: only within 10 s, and only if nothing was decided under the grant since.
#[tauri::command]
pub async fn grant_unrevoke(state: State<'_, AppState>, id: String) -> CmdResult<GrantView> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || Ok(e.unrevoke_grant(&id, Some(&Presence::app_click()))?)).await
}

#[tauri::command]
pub async fn grants_revoke_all(state: State<'_, AppState>) -> CmdResult<Vec<GrantView>> {
    let e = state.engine();
    blocking(move || Ok(e.revoke_all()?)).await
}

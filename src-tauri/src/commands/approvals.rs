//! Approval commands: the pending queue, approve / deny by approval id (never an amount: the
//! approval covers exactly the requirement it was held for), approve with a rule, and the rules.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::approvals::PendingApproval;
use purser_core::decisions::{Decided, Decision};
use purser_core::ipc;
use purser_core::presence::Presence;
use purser_core::rules::RuleView;
use tauri::State;

#[tauri::command]
pub fn approvals_list(state: State<'_, AppState>) -> Vec<PendingApproval> {
    state.engine().pending_approvals()
}

async fn decide(state: State<'_, AppState>, id: String, d: Decision) -> CmdResult<Decided> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || Ok(e.decide(&id, &d, Presence::app_click())?)).await
}

#[tauri::command]
pub async fn approval_approve(state: State<'_, AppState>, id: String) -> CmdResult<Decided> {
    decide(state, id, Decision { approve: true, ..Default::default() }).await
}

#[tauri::command]
pub async fn approval_deny(state: State<'_, AppState>, id: String) -> CmdResult<Decided> {
    decide(state, id, Decision { approve: false, ..Default::default() }).await
}

/// Approves this request and auto-approves its host up to `max_usd` for `minutes` (within the
/// grant's own limits).
#[tauri::command]
pub async fn approval_rule(state: State<'_, AppState>, id: String, max_usd: String, minutes: u32) -> CmdResult<Decided> {
    let up_to = ipc::positive_usd("maxUsd", &max_usd)?;
    let allow_for = ipc::rule_minutes(minutes)?;
    decide(state, id, Decision { approve: true, allow_for: Some(allow_for), up_to: Some(up_to), ..Default::default() }).await
}

#[tauri::command]
pub async fn rules_list(state: State<'_, AppState>) -> CmdResult<Vec<RuleView>> {
    let e = state.engine();
    blocking(move || Ok(e.rules(None, false)?)).await
}

#[tauri::command]
pub async fn rule_delete(state: State<'_, AppState>, id: String) -> CmdResult<RuleView> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || Ok(e.remove_rule(&id)?)).await
}

/// The window shows this request: its countdown to the default denial stands still (10 min at
/// most) until `approval_unview`.
#[tauri::command]
pub async fn approval_view(state: State<'_, AppState>, id: String) -> CmdResult<PendingApproval> {
    let id = ipc::id("id", &id)?;
    Ok(state.engine().view_approval(&id)?)
}

/// The window no longer shows this request: its countdown runs on.
#[tauri::command]
pub async fn approval_unview(state: State<'_, AppState>, id: String) -> CmdResult<PendingApproval> {
    let id = ipc::id("id", &id)?;
    Ok(state.engine().unview_approval(&id)?)
}

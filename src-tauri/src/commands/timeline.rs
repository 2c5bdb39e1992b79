//! Timeline commands: search (the timeline engine's query language, keyset pages), one
//! receipt, aggregates for the spend chart, export of the current result set (to the user's
//! download dir, else the data dir's exports/: never a path from the UI), search suggestions.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::ipc::{self, ExportResult, QueryHelp, ReceiptDetail, TimelinePage};
use purser_core::search::Stats;
use tauri::{AppHandle, Manager, State};

#[tauri::command]
pub async fn receipts_search(state: State<'_, AppState>, query: String, cursor: Option<String>, limit: u32) -> CmdResult<TimelinePage> {
    let (query, cursor, limit) = (ipc::query(&query)?, ipc::cursor(cursor.as_deref())?, ipc::limit(limit)?);
    let e = state.engine();
    blocking(move || e.search_receipts(&query, cursor.as_deref(), limit).map(TimelinePage::from)).await
}

#[tauri::command]
pub async fn receipt_get(state: State<'_, AppState>, id: String) -> CmdResult<ReceiptDetail> {
    let id = ipc::id("id", &id)?;
    let e = state.engine();
    blocking(move || e.receipt_detail(&id)).await
}

#[tauri::command]
pub async fn receipts_stats(state: State<'_, AppState>, query: String, by: String) -> CmdResult<Stats> {
    let (query, by) = (ipc::query(&query)?, ipc::group_by(&by)?);
    let e = state.engine();
    blocking(move || e.receipt_stats(&query, &by)).await
}

#[tauri::command]
pub async fn receipts_export(app: AppHandle, state: State<'_, AppState>, query: String, format: String) -> CmdResult<ExportResult> {
    let (query, format) = (ipc::query(&query)?, ipc::export_format(&format)?);
    let dir = purser_core::app_ops::export_dir(app.path().download_dir().ok(), &state.data_dir);
    let e = state.engine();
    blocking(move || e.export_receipts(&query, format, &dir)).await
}

#[tauri::command]
pub async fn query_help(state: State<'_, AppState>) -> CmdResult<QueryHelp> {
    let e = state.engine();
    blocking(move || e.query_help()).await
}

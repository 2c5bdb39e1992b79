//! First-run commands: the welcome (shown or not, "Not now"), setting up the real wallet from the
//! app (create, or import a private key; the same core code as `purser wallet new|import`, then
//! unlocked), and the demo session (start, stop, status). Passphrases and keys are zeroised as
//! soon as they are validated and never logged.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::first_run::{DemoStatus, WelcomeState};
use purser_core::ipc;
use purser_core::wallet::custody::WalletStatus;
use tauri::{AppHandle, State};
use zeroize::Zeroizing;

/// The longest private key accepted (0x + 64 hex digits, with room for whitespace).
const MAX_KEY: usize = 200;

/// Whether to show the welcome (always about the real data, even while a demo is shown).
#[tauri::command]
pub async fn welcome_state(state: State<'_, AppState>) -> CmdResult<WelcomeState> {
    let e = state.real.clone();
    blocking(move || Ok(e.welcome_state()?)).await
}

/// "Not now": the welcome is not shown again (kept in the ledger's settings).
#[tauri::command]
pub async fn welcome_dismiss(state: State<'_, AppState>) -> CmdResult<WelcomeState> {
    let e = state.real.clone();
    blocking(move || Ok(e.dismiss_welcome()?)).await
}

/// A new wallet (random key sealed with the passphrase, typed twice), unlocked at once.
#[tauri::command]
pub async fn wallet_create(state: State<'_, AppState>, passphrase: String, confirm: String, remember: bool) -> CmdResult<WalletStatus> {
    let (passphrase, confirm) = (Zeroizing::new(passphrase), Zeroizing::new(confirm));
    let (pass, again) = (ipc::passphrase(&passphrase)?, ipc::passphrase(&confirm)?);
    let e = state.real.clone();
    blocking(move || Ok(e.create_wallet(&pass, &again, remember)?)).await
}

/// Imports a 0x-hex private key, sealed with the passphrase (typed twice), unlocked at once.
#[tauri::command]
pub async fn wallet_import_key(state: State<'_, AppState>, key: String, passphrase: String, confirm: String, remember: bool) -> CmdResult<WalletStatus> {
    let (key, passphrase, confirm) = (Zeroizing::new(key), Zeroizing::new(passphrase), Zeroizing::new(confirm));
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(purser_core::engine::ApiError { code: purser_core::api::ErrorCode::BadKey, message: "the private key must be 64 hex digits (0x optional)".into() });
    }
    let (pass, again) = (ipc::passphrase(&passphrase)?, ipc::passphrase(&confirm)?);
    let e = state.real.clone();
    blocking(move || Ok(e.import_wallet_key(&key, &pass, &again, remember)?)).await
}

#[tauri::command]
pub fn demo_status(state: State<'_, AppState>) -> DemoStatus {
    state.demo.status(&state.data_dir.join("demo"))
}

/// "Try it with a local test network": starts the demo (in the background; `demo_status` and
/// `purser://changed` events tell how it goes). Every screen shows the demo's data while it runs.
#[tauri::command]
pub fn demo_start(app: AppHandle, state: State<'_, AppState>) -> CmdResult<DemoStatus> {
    state.demo.start(app, &state.data_dir)?;
    Ok(demo_status(state))
}

/// Stops the demo and everything it started; answers once they are gone, back on the real data.
#[tauri::command]
pub async fn demo_stop(app: AppHandle, state: State<'_, AppState>) -> CmdResult<DemoStatus> {
    state.demo.stop(Some(&app)).await;
    Ok(state.demo.status(&state.data_dir.join("demo")))
}

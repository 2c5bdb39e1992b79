//! Wallet commands: status (address, locked, keychain), unlock with the passphrase (optionally
//! remembered by the OS keychain), lock.

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::ipc;
use purser_core::wallet::custody::WalletStatus;
use tauri::State;

#[tauri::command]
pub fn wallet_status(state: State<'_, AppState>) -> WalletStatus {
    state.engine.wallet_status()
}

#[tauri::command]
pub async fn wallet_unlock(state: State<'_, AppState>, passphrase: String, remember: bool) -> CmdResult<WalletStatus> {
    let pass = ipc::passphrase(&passphrase)?;
    drop(zeroize::Zeroizing::new(passphrase));
    let e = state.engine.clone();
    blocking(move || Ok(e.unlock_wallet(&pass, remember)?)).await
}

#[tauri::command]
pub async fn wallet_lock(state: State<'_, AppState>) -> CmdResult<WalletStatus> {
    let e = state.engine.clone();
    blocking(move || Ok(e.lock_wallet(false))).await
}

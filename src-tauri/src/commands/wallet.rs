//! Wallet commands: status (address, locked, keychain), unlock with the passphrase (optionally
//! remembered by the OS keychain), lock, and funds (balances per network, what grants could
//! still spend against them, funding URI and instructions).

use crate::error::{blocking, CmdResult};
use crate::state::AppState;
use purser_core::chain::funds::Funds;
use purser_core::ipc;
use purser_core::wallet::custody::WalletStatus;
use tauri::State;

#[tauri::command]
pub fn wallet_status(state: State<'_, AppState>) -> WalletStatus {
    state.engine().wallet_status()
}

#[tauri::command]
pub async fn wallet_unlock(state: State<'_, AppState>, passphrase: String, remember: bool) -> CmdResult<WalletStatus> {
    let pass = ipc::passphrase(&passphrase)?;
    drop(zeroize::Zeroizing::new(passphrase));
    let e = state.engine();
    blocking(move || Ok(e.unlock_wallet(&pass, remember)?)).await
}

#[tauri::command]
pub async fn wallet_lock(state: State<'_, AppState>) -> CmdResult<WalletStatus> {
    let e = state.engine();
    blocking(move || Ok(e.lock_wallet(false))).await
}

/// The wallet's funds; `refresh` reads the balances over JSON-RPC first (else the cached ones).
#[tauri::command]
pub async fn wallet_funds(state: State<'_, AppState>, refresh: bool) -> CmdResult<Funds> {
    let e = state.engine();
    Ok(e.wallet_funds(refresh).await?)
}

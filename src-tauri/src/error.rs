//! Owns how a command's failure reaches the UI: always `{code, message}` (`engine::ApiError`,
//! serialised as the command's rejection), never a bare string, and how commands that touch
//! SQLite or the vault run off the UI's thread.

pub use purser_core::engine::ApiError;

/// What every command returns.
pub type CmdResult<T> = Result<T, ApiError>;

/// Runs `f` on the blocking pool (SQLite, fsync, Argon2id never stall the webview's IPC thread).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> CmdResult<T> + Send + 'static) -> CmdResult<T> {
    match tauri::async_runtime::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError { code: purser_core::api::ErrorCode::Internal, message: format!("the operation did not finish: {e}") }),
    }
}

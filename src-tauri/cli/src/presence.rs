//! Owns the CLI's side of user presence: for an action that widens spending, the wallet
//! passphrase is typed at the terminal for that action (read from `/dev/tty`, never from the
//! environment) and checked against the vault, or sent to the running daemon, which checks it.
//! Without a terminal, or with a wrong passphrase, the action is refused with
//! `presence_required`, nothing is written, and `audit.log` says which process tried.

use anyhow::Result;
use purser_core::presence::{self, Presence, PresenceError};
use std::path::Path;
use zeroize::Zeroizing;

/// An error with a code, printed as `{code, message}` under `--json` (see `main::fail`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: String,
    pub message: String,
}

impl Coded {
    pub fn error(code: &str, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Coded { code: code.to_string(), message: message.into() })
    }
}

/// Who started this CLI (its parent process, with its chain), for the audit log.
fn caller() -> purser_core::agent::AgentInfo {
    purser_core::agent::identify_pid(std::os::unix::process::parent_id())
}

/// The passphrase, typed now at the controlling terminal for `action`.
pub fn typed(dir: &Path, action: &str) -> Result<Zeroizing<String>> {
    match rpassword::prompt_password(format!("Type the wallet passphrase to confirm {action}: ")) {
        Ok(p) if !p.is_empty() => Ok(Zeroizing::new(p)),
        Ok(_) => {
            presence::audit(dir, action, "refused", &caller());
            Err(Coded::error(presence::CODE, format!("{action} needs the wallet passphrase, typed; nothing was typed")))
        }
        Err(_) => {
            presence::audit(dir, action, "refused", &caller());
            let e = PresenceError::Required { action: action.to_string() };
            Err(Coded::error(presence::CODE, format!("{e} (no terminal to type it on)")))
        }
    }
}

/// Presence for `action`, checked here against the vault in `dir`.
pub fn prove(dir: &Path, action: &str) -> Result<Presence> {
    let pass = typed(dir, action)?;
    match Presence::typed_passphrase(dir, &pass, action) {
        Ok(p) => Ok(p),
        Err(e) => {
            if matches!(e, PresenceError::WrongPassphrase { .. }) {
                presence::audit(dir, action, "wrong_passphrase", &caller());
            }
            Err(Coded::error(e.code().as_str(), e.to_string()))
        }
    }
}

/// A core error with its code kept.
pub fn engine(e: purser_core::engine::EngineError) -> anyhow::Error {
    Coded::error(e.code().as_str(), e.to_string())
}

//! Owns user presence: the proof that a person, not an agent running as the same OS user, asked
//! for an action that widens spending (approving a held payment, an allow rule, resuming after a
//! pause, a top-up, a new grant or a raised limit, unlocking or exporting the wallet).
//!
//! A [`Presence`] exists only as one of three things: a click in the desktop app's own window,
//! a click on one of Purser's native notifications, or the wallet passphrase typed on a terminal
//! at that moment and checked against the vault (never read from the environment). Narrowing
//! actions (deny, revoke, pause, lock) never need one. A widening action without one is refused
//! with [`CODE`] (`presence_required`), changes nothing, and leaves a line in the data dir's
//! `audit.log` saying who tried (see [`audit`]).

use crate::approvals::Via;
use crate::wallet::{Wallet, WalletError};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// The error code of a widening action refused for want of presence.
pub const CODE: &str = "presence_required";
/// The file (in the data dir) where refused and proven widening attempts are logged.
pub const AUDIT_LOG: &str = "audit.log";

/// Proof that the user is there. Only the constructors below make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    via: Via,
}

/// Why presence could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The action widens spending and nobody showed presence.
    #[error(
        "{action} widens what agents may spend, so it needs you: click it in the Purser app or its notification, or type the wallet passphrase at a terminal (it is never read from the environment)"
    )]
    Required { action: String },
    /// The passphrase typed was not the wallet's.
    #[error("{action}: the passphrase is not the wallet's")]
    WrongPassphrase { action: String },
    /// Presence is shown with the wallet's passphrase; there is no wallet yet.
    #[error("{action}: create or import the wallet first (purser wallet new | import): presence is shown with its passphrase")]
    NoWallet { action: String },
    #[error("{action}: the vault could not be read: {source}")]
    Vault { action: String, source: WalletError },
}

impl PresenceError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            PresenceError::Vault { source, .. } => source.code(),
            _ => crate::api::ErrorCode::PresenceRequired,
        }
    }
}

impl Presence {
    /// A click in the desktop app's own window (its webview's commands; only the app's shell
    /// calls this).
    pub fn app_click() -> Presence {
        Presence { via: Via::App }
    }

    /// The wallet passphrase opened the vault just now (`Engine::unlock_wallet_present`): the
    /// same proof as [`Presence::typed_passphrase`], without a second key derivation.
    pub(crate) fn vault_opened() -> Presence {
        Presence { via: Via::Terminal }
    }

    /// A click on an action button of Purser's own native notification.
    pub(crate) fn notification_click() -> Presence {
        Presence { via: Via::Notification }
    }

    /// The wallet passphrase, typed at a terminal for this action, checked against the vault
    /// in `dir` (Argon2id: this takes as long as an unlock).
    pub fn typed_passphrase(dir: &Path, passphrase: &str, action: &str) -> Result<Presence, PresenceError> {
        if !Wallet::exists(dir) {
            return Err(PresenceError::NoWallet { action: action.to_string() });
        }
        match Wallet::open(dir, passphrase) {
            Ok(_) => Ok(Presence { via: Via::Terminal }),
            Err(e) if e.code() == "wallet_unlock_failed" => Err(PresenceError::WrongPassphrase { action: action.to_string() }),
            Err(source) => Err(PresenceError::Vault { action: action.to_string(), source }),
        }
    }

    /// Where the user showed up (recorded as a receipt's `decided_via`).
    pub fn via(&self) -> Via {
        self.via
    }
}

/// What answered a held request: a present user, or a caller that showed no presence (enough
/// for a denial, never for an approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    Present(Presence),
    Unproven(Via),
}

impl Answerer {
    pub fn via(&self) -> Via {
        match self {
            Answerer::Present(p) => p.via(),
            Answerer::Unproven(v) => *v,
        }
    }

    /// The presence this answer carries, or `presence_required` for `action`.
    pub fn presence(&self, action: &str) -> Result<Presence, PresenceError> {
        match self {
            Answerer::Present(p) => Ok(*p),
            Answerer::Unproven(_) => Err(PresenceError::Required { action: action.to_string() }),
        }
    }
}

impl From<Presence> for Answerer {
    fn from(p: Presence) -> Self {
        Answerer::Present(p)
    }
}

impl From<Via> for Answerer {
    fn from(v: Via) -> Self {
        Answerer::Unproven(v)
    }
}

/// Requires presence for `action`: `Some` passes, `None` is `presence_required`.
pub fn require(p: Option<&Presence>, action: &str) -> Result<Presence, PresenceError> {
    p.copied().ok_or_else(|| PresenceError::Required { action: action.to_string() })
}

/// One line of `audit.log`.
#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    time: chrono::DateTime<chrono::Utc>,
    action: &'a str,
    /// `refused` (no presence) or `wrong_passphrase`.
    result: &'a str,
    /// Who tried, as far as the OS says.
    who: &'a crate::agent::AgentInfo,
}

/// Appends a line saying who tried `action` and how it ended, to `dir/audit.log` (0600), and
/// to the log. Failing to write it is logged, never fatal.
pub fn audit(dir: &Path, action: &str, result: &str, who: &crate::agent::AgentInfo) {
    tracing::warn!(action, result, who = %who.chain(), pid = ?who.pid, "a widening action was refused: {result}");
    let line = AuditLine { time: chrono::Utc::now(), action, result, who };
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).mode_private().open(dir.join(AUDIT_LOG))?;
        let mut text = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)
    };
    if let Err(e) = write() {
        tracing::error!(error = %e, "could not write audit.log");
    }
}

trait ModePrivate {
    fn mode_private(&mut self) -> &mut Self;
}

impl ModePrivate for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_the_vaults_passphrase_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let no_wallet = Presence::typed_passphrase(dir.path(), "x", "top-up").unwrap_err();
        assert_eq!(no_wallet.code(), CODE);
        Wallet::create(dir.path(), "right passphrase").unwrap();
        let wrong = Presence::typed_passphrase(dir.path(), "wrong passphrase", "top-up").unwrap_err();
        assert_eq!((wrong.code().as_str(), matches!(wrong, PresenceError::WrongPassphrase { .. })), (CODE, true));
        let p = Presence::typed_passphrase(dir.path(), "right passphrase", "top-up").unwrap();
        assert_eq!(p.via(), Via::Terminal);
    }

    #[test]
    fn an_unproven_answer_cannot_approve() {
        let a = Answerer::from(Via::Terminal);
        assert_eq!(a.presence("approve").unwrap_err().code(), CODE);
        let p = Answerer::from(Presence::app_click());
        assert_eq!(p.presence("approve").unwrap().via(), Via::App);
        assert_eq!(require(None, "resume").unwrap_err().code(), CODE);
    }
}

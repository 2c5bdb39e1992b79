//! Owns the running core's parts and the operations every front end shares (the CLI, the
//! control API and the desktop app call these, never the ledger directly): grants, approvals,
//! the unlocked wallet. The payment road itself is `pipeline`.

use crate::approvals::{ApprovalError, Approvals, PendingApproval, Verdict};
use crate::auth;
use crate::clock::{new_id, Clock, NonceSource, OsNonces, SystemClock};
use crate::events::{Event, Events};
use crate::grants::{Grant, GrantError, GrantSpec};
use crate::ledger::{Ledger, LedgerError};
use crate::money::{self, MoneyError};
use crate::presence::{self, Presence};
use crate::upstream::{Upstream, UpstreamError};
use crate::wallet::Wallet;
use serde::Serialize;
use std::sync::{Arc, RwLock};

/// Any failure of an engine operation, mapped to `{code, message}` in one place.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Rule(#[from] crate::rules::RuleError),
    #[error(transparent)]
    Edit(#[from] crate::grants::EditError),
    #[error(transparent)]
    Wallet(#[from] crate::wallet::WalletError),
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error(transparent)]
    Presence(#[from] crate::presence::PresenceError),
}

pub use crate::api::ApiError;

impl EngineError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            EngineError::Ledger(e) => e.code(),
            EngineError::Grant(e) => e.code(),
            EngineError::Approval(e) => e.code(),
            EngineError::Money(e) => e.code(),
            EngineError::Upstream(e) => e.code(),
            EngineError::Rule(e) => e.code(),
            EngineError::Edit(e) => e.code(),
            EngineError::Wallet(e) => e.code(),
            EngineError::Chain(e) => e.code(),
            EngineError::Presence(e) => e.code(),
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError { code: self.code(), message: self.to_string() }
    }
}

/// A grant just created, with its token (shown once, never stored).
#[derive(Debug, Clone, Serialize)]
pub struct CreatedGrant {
    #[serde(flatten)]
    pub grant: crate::grants::GrantView,
    pub token: String,
}

/// The core, assembled.
pub struct Engine {
    pub ledger: Ledger,
    pub approvals: Approvals,
    pub events: Events,
    pub clock: Arc<dyn Clock>,
    pub nonces: Arc<dyn NonceSource>,
    pub upstream: Upstream,
    wallet: RwLock<Option<Arc<Wallet>>>,
    /// The vault's data dir, keychain state and lock/unlock operations (`wallet::custody`).
    pub custody: crate::wallet::custody::Custody,
    /// "Pause all spending" (persisted in the ledger's settings; see `pause`).
    pub(crate) paused: std::sync::atomic::AtomicBool,
    /// The receipt rate limit per grant and minute, and its summaries (`folding`).
    pub folding: Arc<crate::folding::Folding>,
    /// The local CA standard proxy mode intercepts with: its key is sealed with the wallet, so
    /// it is here only while the wallet is unlocked (see `proxy::ca`).
    ca: RwLock<Option<Arc<crate::ca::LocalCa>>>,
}

impl Engine {
    /// An engine on `ledger` with the system clock and OS randomness.
    pub fn new(ledger: Ledger, wallet: Option<Wallet>) -> Result<Engine, EngineError> {
        Self::with_sources(ledger, wallet, Arc::new(SystemClock), Arc::new(OsNonces))
    }

    pub fn with_sources(ledger: Ledger, wallet: Option<Wallet>, clock: Arc<dyn Clock>, nonces: Arc<dyn NonceSource>) -> Result<Engine, EngineError> {
        let events = Events::default();
        let paused = std::sync::atomic::AtomicBool::new(ledger.spending_paused()?);
        Ok(Engine {
            ledger,
            approvals: Approvals::new(events.clone()),
            events,
            clock,
            nonces,
            upstream: Upstream::new()?,
            wallet: RwLock::new(wallet.map(Arc::new)),
            custody: Default::default(),
            paused,
            folding: Arc::new(crate::folding::Folding::from_env()),
            ca: RwLock::new(None),
        })
    }

    /// The unlocked wallet, if any.
    pub fn wallet(&self) -> Option<Arc<Wallet>> {
        self.wallet.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Locks the wallet (drops the in-memory key, and the local CA's with it) or installs an
    /// unlocked one (and opens the local CA of the engine's data dir with its seal, creating it
    /// on first use; a CA that cannot be opened is logged, and HTTPS to paid hosts then answers
    /// `interception_unavailable`).
    pub fn set_wallet(&self, wallet: Option<Wallet>) {
        let wallet = wallet.map(Arc::new);
        let ca = match (&wallet, self.data_dir()) {
            (Some(w), Ok(dir)) => {
                let opened = w.seal_key(crate::ca::SEAL_PURPOSE).map_err(|e| e.to_string()).and_then(|seal| crate::ca::LocalCa::open(&dir, &seal).map_err(|e| e.to_string()));
                match opened {
                    Ok(ca) => Some(Arc::new(ca)),
                    Err(err) => {
                        tracing::error!(error = %err, "the local CA could not be opened; HTTPS to paid hosts is not intercepted");
                        None
                    }
                }
            }
            _ => None,
        };
        *self.ca.write().unwrap_or_else(|p| p.into_inner()) = ca;
        *self.wallet.write().unwrap_or_else(|p| p.into_inner()) = wallet;
    }

    /// The local CA, while the wallet is unlocked.
    pub fn local_ca(&self) -> Option<Arc<crate::ca::LocalCa>> {
        self.ca.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The grant a token opens, if any (looked up by hash, compared in constant time).
    pub fn authenticate(&self, token: &str) -> Result<Option<Grant>, EngineError> {
        Ok(self.ledger.grant_by_token_hash(&auth::token_hash(token))?)
    }

    /// Creates a grant (widens spending: needs the user's presence).
    pub fn create_grant(&self, spec: &GrantSpec, presence: Option<&Presence>) -> Result<CreatedGrant, EngineError> {
        presence::require(presence, "creating a grant")?;
        let now = self.clock.now();
        let (label, limits) = spec.validate(now)?;
        let token = auth::new_token(auth::GRANT_TOKEN_PREFIX);
        let g = self.ledger.create_grant(&new_id(), &label, &limits, &auth::token_hash(&token), now)?;
        self.events.publish(Event::GrantChanged { id: g.id.clone() });
        Ok(CreatedGrant { grant: g.view(now), token })
    }

    pub fn list_grants(&self) -> Result<Vec<crate::grants::GrantView>, EngineError> {
        let now = self.clock.now();
        Ok(self.ledger.list_grants()?.iter().map(|g| g.view(now)).collect())
    }

    pub fn grant(&self, id: &str) -> Result<crate::grants::GrantView, EngineError> {
        Ok(self.ledger.grant(id)?.view(self.clock.now()))
    }

    /// Adds to a grant's budget (widens spending: needs the user's presence).
    pub fn top_up(&self, id: &str, usd: &str, presence: Option<&Presence>) -> Result<crate::grants::GrantView, EngineError> {
        presence::require(presence, "topping up a grant")?;
        let micros = money::parse_usd(usd)?;
        let g = self.ledger.top_up(id, micros)?;
        self.events.publish(Event::GrantChanged { id: id.to_string() });
        Ok(g.view(self.clock.now()))
    }

    /// Revokes a grant: the next request is refused, and requests held for approval under it
    /// are denied now.
    pub fn revoke_grant(&self, id: &str) -> Result<crate::grants::GrantView, EngineError> {
        let g = self.ledger.revoke_grant(id, self.clock.now())?;
        let denied = self.approvals.cancel_grant(id, Verdict::Revoked);
        tracing::info!(grant = id, denied, "grant revoked");
        self.events.publish(Event::GrantChanged { id: id.to_string() });
        Ok(g.view(self.clock.now()))
    }

    pub fn pending_approvals(&self) -> Vec<PendingApproval> {
        self.approvals.list()
    }
}

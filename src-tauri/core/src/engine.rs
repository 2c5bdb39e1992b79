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
    pub(crate) ledger: Ledger,
    pub(crate) approvals: Approvals,
    pub(crate) events: Events,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) nonces: Arc<dyn NonceSource>,
    pub(crate) upstream: Upstream,
    wallet: RwLock<Option<Arc<Wallet>>>,
    /// The vault's data dir, keychain state and lock/unlock operations (`wallet::custody`).
    pub(crate) custody: crate::wallet::custody::Custody,
    /// "Pause all spending" (persisted in the ledger's settings; see `pause`).
    pub(crate) paused: std::sync::atomic::AtomicBool,
    /// The receipt rate limit per grant and minute, and its summaries (`folding`).
    pub(crate) folding: Arc<crate::folding::Folding>,
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

    /// The engine's clock, now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The change notifications (what a front end forwards to its UI, then refetches).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// A held request, while it is held.
    pub fn approval(&self, id: &str) -> Option<PendingApproval> {
        self.approvals.get(id)
    }

    /// Denies every held request now (their receipts say why); how many there were.
    pub fn close_approvals(&self) -> usize {
        self.approvals.close()
    }

    /// Stores a setting of the ledger's, durably.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), EngineError> {
        Ok(self.ledger.set_setting(key, value, self.clock.now())?)
    }

    /// One receipt by id, if the ledger has it.
    pub fn receipt_by_id(&self, id: &str) -> Result<Option<crate::receipt::Receipt>, EngineError> {
        Ok(self.ledger.receipt(id)?)
    }

    /// The latest `limit` receipts, newest first (off the async threads).
    pub async fn receipts(&self, limit: usize) -> Result<Vec<crate::receipt::Receipt>, EngineError> {
        Ok(self.ledger.blocking(move |l| l.list_receipts(limit)).await??)
    }

    /// The hash chain's check, from the first receipt to the head (off the async threads).
    pub async fn verify_chain(&self) -> Result<crate::ledger::ChainReport, EngineError> {
        Ok(self.ledger.blocking(|l| l.verify_chain()).await??)
    }

    /// A grant as stored, with its totals (off the async threads).
    pub async fn grant_record(&self, id: &str) -> Result<Grant, EngineError> {
        let id = id.to_string();
        Ok(self.ledger.blocking(move |l| l.grant(&id)).await??)
    }

    /// At start: payments a killed process left in flight get their receipt (`interrupted`);
    /// the reconciler decides them by nonce. `owner` proves this process owns the data dir.
    pub fn recover_interrupted(&self, owner: &crate::datadir::DirLock) -> Result<crate::ledger::Recovered, EngineError> {
        Ok(self.ledger.recover_interrupted(owner, self.clock.now())?)
    }

    /// Replaces the upstream client (e.g. one that also trusts a corporate CA), before serving.
    pub fn set_upstream(&mut self, upstream: Upstream) {
        self.upstream = upstream;
    }

    /// One reconciliation round of the paid receipts against the chain (`chain::reconcile`).
    pub async fn reconcile_once(&self, dir: &std::path::Path) -> Result<crate::chain::reconcile::Report, EngineError> {
        Ok(crate::chain::reconcile::reconcile_once(&self.ledger, dir, self.clock.as_ref()).await?)
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

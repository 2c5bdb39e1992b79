//! Owns the open tunnels (blind and intercepted CONNECTs, upgrade pass-throughs such as
//! WebSocket): a registry per engine, shared by all its listeners, that caps them per grant
//! (`PURSER_TUNNELS_PER_GRANT`, default [`TUNNELS_PER_GRANT`]: beyond it `429 too_many_tunnels`)
//! and in all (each takes about two file descriptors: at most half of what the open-file limit
//! leaves after [`FD_RESERVE`], else `503 tunnel_limit`), closes a grant's tunnels within a
//! second once it is revoked or expires, and times out blind tunnels that carry no byte either
//! way for `PURSER_TUNNEL_IDLE_SECS` (default [`TUNNEL_IDLE`]) with [`pipe`].

use crate::engine::Engine;
use crate::events::Event;
use crate::grants::GrantState;
use crate::upstream::{error_response, Body};
use http::{Response, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Default time a blind tunnel may carry no byte either way before both sides are closed.
pub const TUNNEL_IDLE: Duration = Duration::from_secs(300);
/// Default most tunnels one grant may have open.
pub const TUNNELS_PER_GRANT: usize = 64;
/// File descriptors kept out of the tunnels' share (listener, ledger, agents' plain requests).
pub const FD_RESERVE: u64 = 256;
/// How often the registry checks its grants' expiry.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TunnelError {
    #[error("this grant already has {open} tunnels open, the most it may (PURSER_TUNNELS_PER_GRANT={max}); close one first")]
    TooManyForGrant { open: usize, max: usize },
    #[error("Purser has {open} tunnels open, as many as its open-file limit allows ({max}); try again later")]
    TooManyOpen { open: usize, max: usize },
    #[error("an upgrade outside an intercepted tunnel")]
    Unregistered,
}

impl TunnelError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            TunnelError::TooManyForGrant { .. } => crate::api::ErrorCode::TooManyTunnels,
            TunnelError::TooManyOpen { .. } => crate::api::ErrorCode::TunnelLimit,
            TunnelError::Unregistered => crate::api::ErrorCode::Internal,
        }
    }

    pub fn response(&self) -> Response<Body> {
        let status = match self {
            TunnelError::TooManyForGrant { .. } => StatusCode::TOO_MANY_REQUESTS,
            TunnelError::TooManyOpen { .. } => StatusCode::SERVICE_UNAVAILABLE,
            TunnelError::Unregistered => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error_response(status, self.code().as_str(), &self.to_string(), None)
    }
}

/// The open tunnels of one engine, by grant id, each with the sender that closes it.
pub struct Tunnels {
    /// Idle timeout of blind tunnels.
    pub idle: Duration,
    per_grant: usize,
    /// The process-wide cap; `None`: from the open-file limit at each admission.
    max_open: Option<usize>,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    by_grant: HashMap<String, HashMap<u64, watch::Sender<bool>>>,
    total: usize,
    next: u64,
}

/// One open tunnel: it stays counted (and holds its connection's slot, if given) until dropped.
pub struct TunnelGuard {
    tunnels: Arc<Tunnels>,
    grant: String,
    id: u64,
    closed: watch::Receiver<bool>,
    slot: Option<super::limits::Slot>,
}

/// What an intercepted tunnel hands to the requests inside it (in their extensions), so that
/// an upgrade among them is counted and keeps the connection's slot.
#[derive(Clone)]
pub struct Inner {
    pub tunnels: Arc<Tunnels>,
    pub slot: Option<super::limits::Slot>,
}

impl Inner {
    /// Counts an upgrade inside an intercepted tunnel (from the request's extensions) under
    /// `grant`.
    pub fn admit<B>(req: &http::Request<B>, grant: &str) -> Result<TunnelGuard, TunnelError> {
        let inner = req.extensions().get::<Inner>().ok_or(TunnelError::Unregistered)?;
        inner.tunnels.admit(grant, inner.slot.clone())
    }
}

impl TunnelGuard {
    /// The connection slot this tunnel holds.
    pub fn slot(&self) -> Option<super::limits::Slot> {
        self.slot.clone()
    }

    /// Resolves once the tunnel's grant is revoked or expired (never otherwise).
    pub async fn closed(&mut self) {
        if self.closed.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        let mut guard = self.tunnels.lock();
        let open = &mut *guard;
        if let Some(tunnels) = open.by_grant.get_mut(&self.grant) {
            if tunnels.remove(&self.id).is_some() {
                open.total -= 1;
            }
            if tunnels.is_empty() {
                open.by_grant.remove(&self.grant);
            }
        }
    }
}

/// Tunnels the open-file limit leaves room for: (soft limit − [`FD_RESERVE`]) / 2.
pub fn fd_cap() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 { lim.rlim_cur } else { 1024 };
    usize::try_from(soft.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX).max(1)
}

impl Tunnels {
    pub fn new(idle: Duration, per_grant: usize, max_open: Option<usize>) -> Arc<Self> {
        Arc::new(Tunnels { idle, per_grant: per_grant.max(1), max_open, open: Mutex::default() })
    }

    /// As the process's configuration says (`config`: the defaults, or their variables).
    pub fn from_env() -> Arc<Self> {
        let c = crate::config::Config::get();
        Self::new(c.tunnel_idle, c.tunnels_per_grant, None)
    }

    /// The registry of `engine` (created, with its watcher task, on first use): every listener
    /// of one daemon shares it, since the caps are per grant and per process.
    pub fn for_engine(engine: &Arc<Engine>) -> Arc<Self> {
        static ALL: Mutex<Vec<(Weak<Engine>, Weak<Tunnels>)>> = Mutex::new(Vec::new());
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(e, t)| e.strong_count() > 0 && t.strong_count() > 0);
        if let Some(t) = all.iter().find(|(e, _)| std::ptr::eq(e.as_ptr(), Arc::as_ptr(engine))).and_then(|(_, t)| t.upgrade()) {
            return t;
        }
        let tunnels = Self::from_env();
        all.push((Arc::downgrade(engine), Arc::downgrade(&tunnels)));
        tokio::spawn(watch_grants(Arc::downgrade(&tunnels), Arc::downgrade(engine)));
        tunnels
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more tunnel under `grant`, or says which cap it would break.
    pub fn admit(self: &Arc<Self>, grant: &str, slot: Option<super::limits::Slot>) -> Result<TunnelGuard, TunnelError> {
        let max = self.max_open.unwrap_or_else(fd_cap);
        let mut open = self.lock();
        let mine = open.by_grant.get(grant).map_or(0, HashMap::len);
        if mine >= self.per_grant {
            return Err(TunnelError::TooManyForGrant { open: mine, max: self.per_grant });
        }
        if open.total >= max {
            return Err(TunnelError::TooManyOpen { open: open.total, max });
        }
        let (tx, rx) = watch::channel(false);
        open.next += 1;
        let id = open.next;
        open.by_grant.entry(grant.to_string()).or_default().insert(id, tx);
        open.total += 1;
        Ok(TunnelGuard { tunnels: self.clone(), grant: grant.to_string(), id, closed: rx, slot })
    }

    /// Closes every tunnel of `grant`; returns how many.
    pub fn close_grant(&self, grant: &str) -> usize {
        let open = self.lock();
        open.by_grant.get(grant).map_or(0, |t| t.values().filter(|tx| tx.send(true).is_ok()).count())
    }

    /// Tunnels open now, in all and under `grant`.
    pub fn open(&self, grant: &str) -> (usize, usize) {
        let open = self.lock();
        (open.total, open.by_grant.get(grant).map_or(0, HashMap::len))
    }

    fn grants(&self) -> Vec<String> {
        self.lock().by_grant.keys().cloned().collect()
    }

    /// Closes the tunnels of `grant` if the ledger says it is no longer active.
    fn check(&self, engine: &Engine, grant: &str) {
        match engine.ledger.grant(grant) {
            Ok(g) if g.state(engine.clock.now()) != GrantState::Active => {
                let closed = self.close_grant(grant);
                tracing::info!(grant, closed, state = ?g.state(engine.clock.now()), "grant no longer active; its tunnels are closed");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(grant, error = %e, "could not read a tunnel's grant"),
        }
    }
}

/// Closes tunnels whose grant changed (revoked) at once, and checks expiry every second; ends
/// once the registry or the engine is gone.
async fn watch_grants(tunnels: Weak<Tunnels>, engine: Weak<Engine>) {
    let Some(mut events) = engine.upgrade().map(|e| e.events.subscribe()) else { return };
    let mut tick = tokio::time::interval(EXPIRY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = tokio::select! {
            ev = events.recv() => match ev {
                Ok(Event::GrantChanged { id }) => Some(id),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => None,
        };
        let (Some(tunnels), Some(engine)) = (tunnels.upgrade(), engine.upgrade()) else { return };
        match changed {
            Some(id) => tunnels.check(&engine, &id),
            None => tunnels.grants().iter().for_each(|id| tunnels.check(&engine, id)),
        }
    }
}

/// Why [`pipe`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides finished (or one failed).
    Done,
    /// No byte either way for the idle timeout.
    Idle,
    /// The grant was revoked or expired.
    Closed,
}

/// Copies bytes both ways between `a` and `b` until both finish (or one fails), nothing moves
/// either way for `idle` (if given), or the guard's grant is closed; then drops both.
pub async fn pipe<A, B>(a: A, b: B, idle: Option<Duration>, guard: &mut TunnelGuard) -> End
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let copy = async { tokio::try_join!(one_way(&mut ar, &mut bw, &touch), one_way(&mut br, &mut aw, &touch)) };
    let idled = async {
        let Some(idle) = idle else { return std::future::pending().await };
        loop {
            let quiet = start.elapsed().saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        _ = copy => End::Done,
        _ = idled => End::Idle,
        _ = guard.closed() => End::Closed,
    }
}

/// Copies `r` into `w` until EOF (then shuts `w` down), noting each move.
async fn one_way<R, W>(r: &mut R, w: &mut W, touch: &impl Fn()) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        touch();
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        touch();
    }
}

#[cfg(test)]
#[path = "tunnels_tests.rs"]
mod tests;

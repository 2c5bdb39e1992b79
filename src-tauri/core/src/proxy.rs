//! Owns the listener: loopback only, the Host and Origin checks that keep browsers and DNS
//! rebinding out, grant-token authentication, and routing between gateway mode
//! (`/https://host/path`), standard proxy mode ([`forward`]: absolute-form requests and
//! `CONNECT`, intercepted with the local CA of [`ca`] or tunnelled blind). It serves loopback
//! TCP and, for each contained run, a Unix socket of the run's own ([`start_unix`]); who is on
//! the other end is [`caller`]'s. The control API is not served here (see `control`). It
//! neither decides nor signs.

pub mod caller;
pub mod forward;
pub mod head;
pub mod limits;
pub mod tunnels;

#[cfg(test)]
use {head::grant_token, http::HeaderMap};

use crate::engine::Engine;
use crate::upstream::{error_response, Body, BoxError};
use bytes::Bytes;
use caller::{Caller, Origin};
use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Largest agent request body Purser buffers (it must be able to send it twice).
pub const MAX_REQUEST_BODY: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("could not listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
}

impl ProxyError {
    pub fn code(&self) -> crate::api::ErrorCode {
        crate::api::ErrorCode::BindFailed
    }
}

/// What a request is checked against.
#[derive(Clone)]
pub struct ProxyContext {
    /// The port we are bound to: the only one a Host header may name (for a run's socket,
    /// the port its bridge listens on inside the sandbox).
    pub port: u16,
    /// Requests in progress inside intercepted tunnels (shutdown waits for them, like for
    /// plain connections, so that their receipts are written).
    pub inflight: Arc<forward::InFlight>,
    /// The engine's open tunnels (shared by all its listeners: see `tunnels`).
    pub tunnels: Arc<tunnels::Tunnels>,
}

/// A running proxy. Reports its bound port; stops (gracefully) on `shutdown` or on drop.
pub struct ProxyHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProxyHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting, denies held approvals (with receipts), lets in-flight requests finish
    /// for up to `grace`, then returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds 127.0.0.1:`port` (0 picks one) and serves until the handle stops it. CONNECTs to
/// hosts a grant pays are intercepted with the engine's local CA (while its wallet is unlocked).
pub async fn start(engine: Arc<Engine>, port: u16, grace: Duration) -> Result<ProxyHandle, ProxyError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await.map_err(|source| ProxyError::Bind { port, source })?;
    let addr = listener.local_addr().map_err(|source| ProxyError::Bind { port, source })?;
    let listener = Arc::new(listener);
    let accept = move || {
        let listener = listener.clone();
        async move {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(addr);
            Ok((stream, Origin::Tcp { peer, local }))
        }
    };
    Ok(serve(engine, addr, addr.port(), grace, accept, true))
}

/// Serves the proxy on a run's own Unix socket (already bound): every connection is that run.
/// `port` is the one its bridge listens on inside the sandbox (the only one a Host header may
/// name). Held approvals are not closed when it stops (the daemon's other listeners go on).
pub fn start_unix(engine: Arc<Engine>, listener: tokio::net::UnixListener, binding: Arc<caller::RunBinding>, port: u16) -> ProxyHandle {
    let listener = Arc::new(listener);
    let accept = move || {
        let (listener, binding) = (listener.clone(), binding.clone());
        async move {
            let (stream, _) = listener.accept().await?;
            let pid = stream.peer_cred().ok().and_then(|c| c.pid()).and_then(|p| u32::try_from(p).ok());
            Ok((stream, Origin::Run { binding, pid }))
        }
    };
    serve(engine, SocketAddr::from(([127, 0, 0, 1], port)), port, Duration::from_secs(2), accept, false)
}

/// The accept loop shared by both kinds of listener.
fn serve<S, F, Fut>(engine: Arc<Engine>, addr: SocketAddr, port: u16, grace: Duration, mut accept: F, owns_approvals: bool) -> ProxyHandle
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<(S, Origin)>> + Send,
{
    let inflight = Arc::new(forward::InFlight::default());
    let ctx = Arc::new(ProxyContext { port, inflight: inflight.clone(), tunnels: tunnels::Tunnels::for_engine(&engine) });
    let (stop, mut stopped) = watch::channel(false);
    let conn_limits = limits::ConnLimits::from_env();
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = accept() => {
                    let (stream, origin) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // e.g. EMFILE: every accept fails until a connection closes; never spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(limits::ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let Some(slot) = conn_limits.admit().map(limits::Slot::new) else { continue };
                    let (engine, ctx, caller, conn_slot) = (engine.clone(), ctx.clone(), Arc::new(Caller::new(origin)), slot.clone());
                    let svc = service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        let (engine, ctx, caller) = (engine.clone(), ctx.clone(), caller.clone());
                        // A tunnel opened by this request keeps the connection's slot (`tunnels`).
                        req.extensions_mut().insert(conn_slot.clone());
                        async move {
                            if head::is_proxy_request(req.method(), req.uri()) {
                                return Ok::<_, Infallible>(forward::handle(engine, ctx, caller, req).await);
                            }
                            Ok::<_, Infallible>(handle(&engine, &ctx, &caller, req).await)
                        }
                    });
                    // HTTP/1.1 with upgrades (CONNECT hands the connection to `forward`).
                    // With the head timeout and size limit of `limits`.
                    let builder = conn_limits.http1_builder();
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(limits::FirstByte::new(stream, conn_limits.header_read).refusing_h2()), svc).into_owned();
                    let watched = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = watched.await;
                        drop(slot);
                    });
                }
                _ = stopped.changed() => break,
            }
        }
        drop(accept);
        if owns_approvals {
            let denied = engine.approvals.close();
            tracing::info!(denied, "proxy stopping; waiting for in-flight requests");
        }
        tokio::select! {
            _ = async { graceful.shutdown().await; inflight.idle().await } => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
        }
        if owns_approvals {
            // Folded decisions of the minute still open get their summary receipt now.
            let due = engine.folding.due(None);
            crate::pipeline::record_summaries(&engine.ledger, &engine.events, due, engine.clock.now()).await;
        }
    });
    ProxyHandle { addr, stop, task: Some(task) }
}

/// Handles one gateway-mode request (origin-form; standard proxy requests go to
/// [`forward::handle`]) from `caller`: a plain function of (engine, context, caller, request),
/// testable without a socket.
pub async fn handle<B>(engine: &Arc<Engine>, ctx: &ProxyContext, caller: &Caller, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let (url, token) = match head::gateway(req.uri(), req.headers(), ctx.port) {
        Err(refusal) => return refusal.response(),
        Ok(head::GatewayHead::Control) => {
            return error_response(StatusCode::NOT_FOUND, "not_found", "the control API is served only on Purser's Unix socket, never through the proxy", None);
        }
        Ok(head::GatewayHead::Target { url, token }) => (url, token),
    };
    let grant = match caller.authenticate(engine, token.as_deref()).await {
        Ok(g) => g,
        Err(refusal) => return refusal,
    };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(0);
    if caller::is_loop(&host, port, ctx.port).await {
        return caller::loop_refusal();
    }
    // `--only-listed-hosts` holds in gateway mode exactly as in standard proxy mode.
    if grant.limits.only_listed_hosts && !grant.limits.hosts.iter().any(|p| p.matches(&host, port)) {
        return forward::not_listed(&host, port);
    }
    if let Err(refusal) = caller.check_target(&grant, &host, port).await {
        return refusal;
    }
    forward::govern(engine, &ctx.inflight, caller, grant, url, req).await
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;

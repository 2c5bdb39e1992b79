//! Owns the listener: loopback only, the Host and Origin checks that keep browsers and DNS
//! rebinding out, grant-token authentication, and routing between gateway mode
//! (`/https://host/path`), standard proxy mode ([`forward`]: absolute-form requests and
//! `CONNECT`, intercepted with the local CA of [`ca`] or tunnelled blind) and the control API
//! (`/_purser/`). It neither decides nor signs.

pub mod ca;
pub mod forward;
pub mod head;
pub mod limits;

#[cfg(test)]
use {head::grant_token, http::HeaderMap};

use crate::control;
use crate::engine::Engine;
use crate::upstream::{error_response, Body, BoxError};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
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
    pub fn code(&self) -> &'static str {
        "bind_failed"
    }
}

/// What a request is checked against.
#[derive(Clone)]
pub struct ProxyContext {
    /// The port we are bound to: the only one a Host header may name.
    pub port: u16,
    /// The control API's token; `None` disables the control API.
    pub control_token: Option<String>,
    /// The local CA that intercepts CONNECTs to in-scope hosts; `None`: such CONNECTs are refused.
    pub ca: Option<Arc<ca::LocalCa>>,
    /// Requests in progress inside intercepted tunnels (shutdown waits for them, like for
    /// plain connections, so that their receipts are written).
    pub inflight: Arc<forward::InFlight>,
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

/// Binds 127.0.0.1:`port` (0 picks one) and serves until the handle stops it.
pub async fn start(engine: Arc<Engine>, port: u16, control_token: Option<String>, grace: Duration) -> Result<ProxyHandle, ProxyError> {
    start_with_ca(engine, port, control_token, grace, None).await
}

/// [`start`], with the local CA that standard proxy mode intercepts HTTPS with.
pub async fn start_with_ca(engine: Arc<Engine>, port: u16, control_token: Option<String>, grace: Duration, ca: Option<Arc<ca::LocalCa>>) -> Result<ProxyHandle, ProxyError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await.map_err(|source| ProxyError::Bind { port, source })?;
    let addr = listener.local_addr().map_err(|source| ProxyError::Bind { port, source })?;
    let inflight = Arc::new(forward::InFlight::default());
    let ctx = Arc::new(ProxyContext { port: addr.port(), control_token, ca, inflight: inflight.clone() });
    let (stop, mut stopped) = watch::channel(false);
    let conn_limits = limits::ConnLimits::from_env();
    let task = tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // e.g. EMFILE: every accept fails until a connection closes; never spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(limits::ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let Some(slot) = conn_limits.admit() else { continue };
                    let _ = stream.set_nodelay(true);
                    let (engine, ctx) = (engine.clone(), ctx.clone());
                    let svc = service_fn(move |req| {
                        let (engine, ctx) = (engine.clone(), ctx.clone());
                        async move {
                            if head::is_proxy_request(req.method(), req.uri()) {
                                return Ok::<_, Infallible>(forward::handle(engine, ctx, req).await);
                            }
                            Ok::<_, Infallible>(handle(&engine, &ctx, req).await)
                        }
                    });
                    // HTTP/1.1 with upgrades (CONNECT hands the connection to `forward`).
                    // With the head timeout and size limit of `limits`.
                    let builder = conn_limits.http1_builder();
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(limits::FirstByte::new(stream, conn_limits.header_read)), svc).into_owned();
                    let watched = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = watched.await;
                        drop(slot);
                    });
                }
                _ = stopped.changed() => break,
            }
        }
        drop(listener);
        let denied = engine.approvals.close();
        tracing::info!(denied, "proxy stopping; waiting for in-flight requests");
        tokio::select! {
            _ = async { graceful.shutdown().await; inflight.idle().await } => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
        }
    });
    Ok(ProxyHandle { addr, stop, task: Some(task) })
}

/// Handles one gateway-mode or control request (origin-form; standard proxy requests go to
/// [`forward::handle`]): a plain function of (engine, context, request), testable without a socket.
pub async fn handle<B>(engine: &Engine, ctx: &ProxyContext, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let (url, token) = match head::gateway(req.uri(), req.headers(), ctx.port) {
        Err(refusal) => return refusal.response(),
        Ok(head::GatewayHead::Control) => {
            return match ctx.control_token.as_deref() {
                Some(token) => control::handle(engine, token, req).await,
                None => error_response(StatusCode::NOT_FOUND, "not_found", "the control API is disabled", None),
            }
        }
        Ok(head::GatewayHead::Target { url, token }) => (url, token),
    };
    let grant = match token {
        None => return proxy_auth_required("missing_token", "send your grant token as Proxy-Authorization: Bearer <token> or X-Purser-Grant"),
        Some(token) => match engine.authenticate(&token) {
            Ok(Some(g)) => g,
            Ok(None) => return proxy_auth_required("unknown_token", "this grant token is not known to Purser"),
            Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string(), None),
        },
    };
    forward::govern(engine, grant, url, req).await
}

fn proxy_auth_required(code: &str, message: &str) -> Response<Body> {
    let mut r = error_response(StatusCode::PROXY_AUTHENTICATION_REQUIRED, code, message, None);
    r.headers_mut().insert(header::PROXY_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"purser\""));
    r
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;

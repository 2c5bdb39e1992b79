//! Owns standard proxy mode: absolute-form `http://` requests and `CONNECT host:port`, with the
//! grant token as proxy credentials (Basic, any user name). A CONNECT to a host the grant
//! covers is intercepted: TLS is terminated with a leaf from the local CA and every request
//! inside is governed by the pipeline exactly as in gateway mode (upstream TLS fully verified by
//! the pooled client). A CONNECT to any other host is tunnelled blind: bytes only, no plaintext,
//! no receipt.
//!
//! Why the gateway's Host check does not apply here: in proxy mode `Host` names the target. A
//! web page (the DNS-rebinding threat) can only send origin-form requests (`GET /path`), never
//! an absolute-form request line or `CONNECT`, and cannot attach proxy credentials; so these
//! requests are recognised by their request line, still refused with any `Origin` header, and
//! never served without a grant token.

use super::caller::Caller;
use super::head::ForwardHead;
use super::tunnels::{self, TunnelGuard, Tunnels};
use super::{ProxyContext, MAX_REQUEST_BODY};
use crate::engine::Engine;
use crate::grants::Grant;
use crate::pipeline;
use crate::upstream::{error_response, AgentRequest, Body, BoxError};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed to open a blind tunnel's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the agent's TLS handshake inside an intercepted CONNECT.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Counts governed requests in progress (their pipeline tasks, and requests inside intercepted
/// tunnels); shutdown waits until it is idle.
#[derive(Default)]
pub struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Returns once no intercepted request is in progress.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Is this a standard proxy request (CONNECT, or an absolute-form request line)?
pub fn is_proxy_request<B>(req: &Request<B>) -> bool {
    super::head::is_proxy_request(req.method(), req.uri())
}

/// Handles a CONNECT or an absolute-form request.
pub async fn handle<B>(engine: Arc<Engine>, ctx: Arc<ProxyContext>, caller: Arc<Caller>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // `$PURSER_PROXY/https://host/path` sent by a client that also has HTTP_PROXY set (as every
    // client in `purser run` has) arrives as an absolute-form request for the proxy itself: it
    // is a gateway-mode request, served as one.
    if let Some(origin_form) = gateway_through_proxy(req.method(), req.uri(), ctx.port) {
        let mut req = req;
        *req.uri_mut() = origin_form;
        if let Ok(host) = http::HeaderValue::from_str(&format!("127.0.0.1:{}", ctx.port)) {
            req.headers_mut().insert(header::HOST, host);
        }
        return super::handle(&engine, &ctx, &caller, req).await;
    }
    match super::head::forward(req.method(), req.uri(), req.headers(), ctx.port) {
        Err(refusal) => refusal.response(),
        Ok(ForwardHead::Connect { host, port, .. } | ForwardHead::Absolute { host, port, .. }) if super::caller::is_loop(&host, port, ctx.port).await => super::caller::loop_refusal(),
        Ok(ForwardHead::Connect { host, port, token }) => connect(engine, &ctx, caller, (host, port), token, req).await,
        Ok(ForwardHead::Absolute { url, host, port, token }) => absolute(&engine, &ctx.inflight, &caller, (url, host, port), token, req).await,
    }
}

/// `GET http://127.0.0.1:<own port>/https://host/path`: the gateway form, sent through the proxy
/// settings; its origin-form URI (`/https://host/path`).
fn gateway_through_proxy(method: &http::Method, uri: &http::Uri, own_port: u16) -> Option<http::Uri> {
    if method == http::Method::CONNECT || uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(80);
    if !matches!(authority.host(), "127.0.0.1" | "localhost") || port != own_port {
        return None;
    }
    let pq = uri.path_and_query()?.as_str();
    (pq.starts_with("/http://") || pq.starts_with("/https://")).then(|| pq.parse().ok()).flatten()
}

/// 407 asking for Basic proxy credentials (what HTTP clients answer), Bearer also accepted.
pub fn auth_required(code: &str, message: &str) -> Response<Body> {
    let mut r = error_response(StatusCode::PROXY_AUTHENTICATION_REQUIRED, code, message, None);
    r.headers_mut().insert(header::PROXY_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"purser\""));
    r.headers_mut().append(header::PROXY_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"purser\""));
    r
}

/// `GET http://host/path HTTP/1.1` (target read by [`super::head::forward`]): governed like
/// gateway mode.
async fn absolute<B>(engine: &Arc<Engine>, inflight: &Arc<InFlight>, caller: &Caller, (url, host, port): (reqwest::Url, String, u16), token: Option<String>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let grant = match caller.authenticate(engine, token.as_deref()).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    if grant.limits.only_listed_hosts && !grant.limits.hosts.iter().any(|p| p.matches(&host, port)) {
        return not_listed(&host, port);
    }
    if let Err(r) = caller.check_target(&grant, &host, port).await {
        return r;
    }
    govern(engine, inflight, caller, grant, url, req).await
}

/// Buffers the agent's request and runs it through the pipeline under `grant`, as `caller`.
/// The pipeline runs in a task of its own, counted in `inflight` (shutdown waits for it), so
/// that it runs to its end whatever the agent does: if the agent's connection drops the request,
/// the [`crate::client::ClientGone`] it carries fires, and the payment still gets its receipt.
pub(crate) async fn govern<B>(engine: &Arc<Engine>, inflight: &Arc<InFlight>, caller: &Caller, grant: Grant, url: reqwest::Url, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let intent = req.headers().get("purser-intent").and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).and_then(pipeline::sanitize_intent);
    let (parts, body) = req.into_parts();
    let within = super::limits::request_body_timeout();
    let body = match tokio::time::timeout(within, http_body_util::Limited::new(body, MAX_REQUEST_BODY).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "request bodies over 16 MiB are not proxied", None),
        Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, "request_body_timeout", &format!("the request body did not arrive within {} s", within.as_secs()), None),
    };
    let who = caller.agent().await;
    let (guard, client) = crate::client::pair();
    let agent = AgentRequest { method: parts.method, url, headers: parts.headers, body, who, client };
    let (engine, running) = (engine.clone(), inflight.enter());
    let task = tokio::spawn(async move {
        let resp = pipeline::run(&engine, grant, agent, intent).await;
        drop(running);
        resp
    });
    let resp = match task.await {
        Ok(r) => r,
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", &format!("the request's task failed: {e}"), None),
    };
    guard.delivered();
    resp
}

/// `CONNECT host:port` (authority read by [`super::head::forward`]): intercept for a host the
/// grant covers, else a blind tunnel.
async fn connect<B>(engine: Arc<Engine>, ctx: &ProxyContext, caller: Arc<Caller>, (host, port): (String, u16), token: Option<String>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let grant = match caller.authenticate(&engine, token.as_deref()).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let token = token.unwrap_or_default();
    if let Err(r) = caller.check_target(&grant, &host, port).await {
        return r;
    }
    let in_scope = grant.limits.hosts.iter().any(|p| p.matches(&host, port));
    // A tunnel is counted under its grant, and keeps the connection's slot, for its whole life.
    let slot = req.extensions().get::<super::limits::Slot>().cloned();
    if in_scope {
        // The CA's key is sealed with the wallet: while it is locked, nothing is intercepted.
        let Some(ca) = engine.local_ca() else {
            if engine.wallet().is_none() {
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "wallet_locked",
                    "Purser is locked, and the key of its local CA is sealed with the wallet, so HTTPS to a host this grant pays cannot be governed: unlock it (`purser wallet unlock` or the app)",
                    None,
                );
            }
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "interception_unavailable", "this proxy has no local CA, so it cannot govern HTTPS through CONNECT", None);
        };
        let tls = match ca.server_config(&host) {
            Ok(c) => tokio_rustls::TlsAcceptor::from(c),
            Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, e.code().as_str(), &e.to_string(), None),
        };
        let base = if host.contains(':') { format!("https://[{host}]:{port}") } else { format!("https://{host}:{port}") };
        let mut tunnel = match ctx.tunnels.admit(&grant.id, slot) {
            Ok(t) => t,
            Err(e) => return e.response(),
        };
        let (inflight, tunnels) = (ctx.inflight.clone(), ctx.tunnels.clone());
        tokio::spawn(async move {
            let upgraded = match hyper::upgrade::on(req).await {
                Ok(u) => u,
                Err(e) => return tracing::debug!(error = %e, "CONNECT upgrade failed"),
            };
            let handshake = tokio::select! {
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(TokioIo::new(upgraded))) => r,
                _ = tunnel.closed() => return,
            };
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::info!(error = %e, %base, "agent TLS handshake failed (does it trust Purser's CA?)"),
                Err(_) => return tracing::info!(%base, "agent TLS handshake timed out"),
            };
            serve_intercepted(engine, inflight, (tunnels, tunnel), caller, Arc::from(token), Arc::from(base), stream).await;
        });
        return tunnel_established();
    }
    if grant.limits.only_listed_hosts {
        return not_listed(&host, port);
    }
    if let Err(refusal) = crate::policy::check_budget(&grant, 0, engine.clock.now()) {
        return error_response(StatusCode::FORBIDDEN, refusal.code().as_str(), &refusal.to_string(), None);
    }
    let (mut tunnel, idle) = match ctx.tunnels.admit(&grant.id, slot) {
        Ok(t) => (t, ctx.tunnels.idle),
        Err(e) => return e.response(),
    };
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return error_response(StatusCode::BAD_GATEWAY, "connect_failed", &format!("could not connect to {host}:{port}: {e}"), None),
        Err(_) => return error_response(StatusCode::GATEWAY_TIMEOUT, "connect_timeout", &format!("{host}:{port} did not accept a connection in time"), None),
    };
    let _ = upstream.set_nodelay(true);
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let end = tunnels::pipe(TokioIo::new(up), upstream, Some(idle), &mut tunnel).await;
                tracing::debug!(?end, "blind tunnel closed");
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    tunnel_established()
}

/// The grant says "only listed hosts" and this one is not listed.
pub(crate) fn not_listed(host: &str, port: u16) -> Response<Body> {
    error_response(StatusCode::FORBIDDEN, "host_not_listed", &format!("{host}:{port} is not among this grant's hosts, and the grant allows only those"), None)
}

fn tunnel_established() -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::OK;
    r
}

/// Serves HTTP/1.1 or HTTP/2 (by ALPN) inside an intercepted tunnel.
/// It ends (gracefully: requests in progress finish) once its grant is revoked or expires.
async fn serve_intercepted<S>(engine: Arc<Engine>, inflight: Arc<InFlight>, (tunnels, mut tunnel): (Arc<Tunnels>, TunnelGuard), caller: Arc<Caller>, token: Arc<str>, base: Arc<str>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let target = base.clone();
    // An upgrade inside it is a tunnel of its own, keeping the slot too (`pass_upgrade`).
    let inner = tunnels::Inner { tunnels, slot: tunnel.slot() };
    let svc = service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(inner.clone());
        let (engine, caller, token, base, inflight) = (engine.clone(), caller.clone(), token.clone(), base.clone(), inflight.clone());
        let guard = inflight.enter();
        async move {
            let resp = intercepted(&engine, &inflight, &caller, &token, &base, req).await;
            drop(guard);
            Ok::<_, Infallible>(resp)
        }
    });
    // The listener's head timeout applies inside the tunnel too (see `limits`).
    let header_read = super::limits::ConnLimits::from_env().header_read;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_read);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(super::limits::FirstByte::new(stream, header_read)), svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        _ = tunnel.closed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, base = %target, "intercepted connection ended");
    }
}

/// One request inside an intercepted tunnel: the target is the CONNECT's host and port (never
/// the inner Host header), and the grant is looked up again so that a revocation applies to
/// the next request.
async fn intercepted<B>(engine: &Arc<Engine>, inflight: &Arc<InFlight>, caller: &Caller, token: &str, base: &str, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let grant = match caller.authenticate(engine, Some(token)).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = match reqwest::Url::parse(&format!("{base}{pq}")) {
        Ok(u) => u,
        Err(_) => return error_response(StatusCode::BAD_REQUEST, "bad_target", "the request path is not valid", None),
    };
    if req.headers().contains_key(header::UPGRADE) {
        if let Err(refusal) = crate::policy::check_budget(&grant, 0, engine.clock.now()) {
            return error_response(StatusCode::FORBIDDEN, refusal.code().as_str(), &refusal.to_string(), None);
        }
        return pass_upgrade(engine, &grant.id, url, req).await;
    }
    govern(engine, inflight, caller, grant, url, req).await
}

/// An upgrade (WebSocket) inside an intercepted tunnel: not governed, but not broken. The
/// request goes to the upstream over verified TLS; a `101` joins the two upgraded connections.
/// Counted as a tunnel of `grant` (and holding the connection's slot) while it is open.
async fn pass_upgrade<B>(engine: &Engine, grant: &str, url: reqwest::Url, mut req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut tunnel = match tunnels::Inner::admit(&req, grant) {
        Ok(t) => t,
        Err(e) => return e.response(),
    };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let bad_gateway = |code: &str, msg: String| error_response(StatusCode::BAD_GATEWAY, code, &msg, None);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return bad_gateway("connect_failed", format!("could not connect to {host}:{port}: {e}")),
        Err(_) => return bad_gateway("connect_timeout", format!("{host}:{port} did not accept a connection in time")),
    };
    let _ = tcp.set_nodelay(true);
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return error_response(StatusCode::BAD_REQUEST, "bad_target", "not a valid TLS server name", None);
    };
    let tls = match tokio_rustls::TlsConnector::from(engine.upstream.tls_config()).connect(name, tcp).await {
        Ok(t) => t,
        Err(e) => {
            let code =
                if e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_))) { "upstream_certificate" } else { "upstream_error" };
            return bad_gateway(code, format!("TLS to {host}:{port} failed: {e}"));
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tls)).await {
        Ok(pair) => pair,
        Err(e) => return bad_gateway("upstream_error", e.to_string()),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let agent_side = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let mut out = Request::new(http_body_util::Empty::<Bytes>::new());
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse().unwrap_or_default();
    for (k, v) in parts.headers.iter() {
        let n = k.as_str();
        if !(n.starts_with("proxy-") || n.starts_with("purser-") || n.starts_with("x-purser-") || n == "host") {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    let authority = if port == 443 { host.clone() } else { format!("{host}:{port}") };
    if let Ok(v) = http::HeaderValue::from_str(&authority) {
        out.headers_mut().insert(header::HOST, v);
    }
    let mut resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => return bad_gateway("upstream_error", e.to_string()),
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(a), Ok(b)) = (agent_side.await, upstream_side.await) {
                let end = tunnels::pipe(TokioIo::new(a), TokioIo::new(b), None, &mut tunnel).await;
                tracing::debug!(?end, "upgraded connection closed");
            }
        });
    }
    resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inflight_idle_waits_for_every_guard() {
        let f = Arc::new(InFlight::default());
        f.idle().await;
        let (a, b) = (f.enter(), f.enter());
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.idle().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one request still in flight");
        drop(b);
        tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap();
    }

    #[test]
    fn proxy_requests_are_recognised_by_the_request_line() {
        let req = |m: &str, uri: &str| Request::builder().method(m).uri(uri).body(()).unwrap();
        assert!(is_proxy_request(&req("CONNECT", "api.example.com:443")));
        assert!(is_proxy_request(&req("GET", "http://api.example.com/x")));
        assert!(!is_proxy_request(&req("GET", "/https://api.example.com/x")), "gateway mode is origin-form");
        assert!(!is_proxy_request(&req("GET", "/_purser/v1/approvals")));
    }
}

//! Owns the way out: one pooled HTTP client to paid APIs (no environment proxies, no automatic
//! redirects, so a payment header never follows a redirect), the agent's request as Purser
//! forwards it, and the conversion of upstream answers back into streamed responses.
//!
//! Limits on hostile or broken upstreams ([`Limits`]; each overridable by its environment
//! variable, for tests): the answer's head must arrive within `head` (an upstream that never
//! answers, or trickles its headers, fails with `upstream_timeout`); a body that pauses longer
//! than `body_idle` is cut (a streamed answer ends early; a 402 body is an `upstream_timeout`);
//! a 402's whole body must arrive within `challenge` and be at most `MAX_402_BODY` bytes.

use crate::x402::PaymentHeader;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every answer Purser gives.
pub type Body = BoxBody<Bytes, BoxError>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    #[error("the upstream did not answer: {0}")]
    Send(String),
    /// The upstream's TLS certificate did not verify: nothing is sent, nothing is paid.
    #[error("the upstream's TLS certificate was rejected: {0}")]
    Certificate(String),
    /// The upstream took longer than a [`Limits`] timeout.
    #[error("the upstream timed out: {0}")]
    Timeout(String),
    /// A body Purser must read whole (a 402's) is over its size limit.
    #[error("the upstream's body is larger than {0} bytes")]
    TooLarge(usize),
}

impl UpstreamError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            UpstreamError::Client(_) => crate::api::ErrorCode::ClientError,
            UpstreamError::Send(_) => crate::api::ErrorCode::UpstreamError,
            UpstreamError::Certificate(_) => crate::api::ErrorCode::UpstreamCertificate,
            UpstreamError::Timeout(_) => crate::api::ErrorCode::UpstreamTimeout,
            UpstreamError::TooLarge(_) => crate::api::ErrorCode::TooLarge,
        }
    }
}

/// An agent's request, buffered so that it can be sent again with a payment.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub method: Method,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Who is asking (the run, or the local process behind the connection), as the proxy
    /// found it; recorded in the receipt and shown first in prompts.
    pub who: crate::agent::AgentInfo,
    /// Fires if the agent leaves before its answer (see [`crate::client`]).
    pub client: crate::client::ClientGone,
}

impl AgentRequest {
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']')
    }
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(0)
    }
}

/// Headers never forwarded: hop-by-hop ones and Purser's own.
fn is_private_or_hop(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(n, "connection" | "keep-alive" | "proxy-authorization" | "proxy-authenticate" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade" | "host" | "content-length")
        || n.starts_with("purser-")
        || n.starts_with("x-purser-")
}

/// Time limits on upstreams (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Status and headers must arrive within this (`PURSER_UPSTREAM_HEAD_TIMEOUT_SECS`).
    pub head: Duration,
    /// Longest pause while reading a body (`PURSER_UPSTREAM_IDLE_TIMEOUT_SECS`).
    pub body_idle: Duration,
    /// A whole 402 body must arrive within this (`PURSER_CHALLENGE_READ_TIMEOUT_SECS`).
    pub challenge: Duration,
}

/// Default [`Limits::head`]: generous for slow paid APIs, finite for ones that never answer.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`Limits::body_idle`] (server-sent events keep-alives come far more often).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`Limits::challenge`]: a 402 body is at most 1 MiB.
pub const CHALLENGE_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    fn default() -> Self {
        Limits { head: HEAD_TIMEOUT, body_idle: BODY_IDLE_TIMEOUT, challenge: CHALLENGE_READ_TIMEOUT }
    }
}

impl Limits {
    /// As the process's configuration says (`config`: the defaults, or their variables).
    pub fn from_env() -> Self {
        let c = crate::config::Config::get();
        Limits { head: c.upstream_head, body_idle: c.upstream_idle, challenge: c.challenge_read }
    }
}

/// The pooled client.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    limits: Limits,
    /// The same trust for raw TLS (upgrade pass-through in standard proxy mode).
    tls: std::sync::Arc<rustls::ClientConfig>,
}

impl Upstream {
    pub fn new() -> Result<Self, UpstreamError> {
        Self::with_extra_roots(&[])
    }

    /// The client, also trusting the CA certificates in `extra` (`--upstream-ca`: test CAs, a
    /// corporate TLS proxy) on top of the built-in web roots. Verification stays on.
    pub fn with_extra_roots(extra: &[rustls::pki_types::CertificateDer<'static>]) -> Result<Self, UpstreamError> {
        let mut builder = reqwest::Client::builder();
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for c in extra {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(c).map_err(|e| UpstreamError::Client(e.to_string()))?);
            roots.add(c.clone()).map_err(|e| UpstreamError::Client(e.to_string()))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let limits = Limits::from_env();
        let client = builder
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(limits.body_idle)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Upstream { client, limits, tls: std::sync::Arc::new(tls) })
    }

    /// [`Upstream::with_extra_roots`] from a PEM bundle of one or more CA certificates.
    pub fn with_extra_roots_pem(pem: &[u8]) -> Result<Self, UpstreamError> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| UpstreamError::Client(format!("not a PEM certificate bundle: {e:?}")))?;
        if certs.is_empty() {
            return Err(UpstreamError::Client("no certificate in the PEM bundle".into()));
        }
        Self::with_extra_roots(&certs)
    }

    /// TLS to upstreams with the client's trust (web roots plus `--upstream-ca`), HTTP/1.1.
    pub fn tls_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// Sends the request, with the payment header when given. Never follows redirects.
    pub async fn send(&self, req: &AgentRequest, payment: Option<&PaymentHeader>) -> Result<reqwest::Response, UpstreamError> {
        let mut headers = HeaderMap::with_capacity(req.headers.len() + 1);
        for (k, v) in req.headers.iter().filter(|(k, _)| !is_private_or_hop(k)) {
            headers.append(k.clone(), v.clone());
        }
        if let Some(p) = payment {
            let v = HeaderValue::from_str(&p.value).map_err(|e| UpstreamError::Send(e.to_string()))?;
            headers.insert(HeaderName::from_static(p.name), v);
        }
        let mut rb = self.client.request(req.method.clone(), req.url.clone()).headers(headers);
        if !req.body.is_empty() || !matches!(req.method, Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS) {
            rb = rb.body(req.body.clone());
        }
        let sent = match tokio::time::timeout(self.limits.head, rb.send()).await {
            Ok(sent) => sent,
            Err(_) => return Err(UpstreamError::Timeout(format!("no answer (status and headers) within {} s", self.limits.head.as_secs()))),
        };
        sent.map_err(|e| {
            let chain = error_chain(&e);
            if e.is_timeout() {
                return UpstreamError::Timeout(chain);
            }
            // rustls's own wording is the fallback when a wrapper hides the typed error.
            if is_certificate_error(&e) || chain.contains("invalid peer certificate") {
                UpstreamError::Certificate(chain)
            } else {
                UpstreamError::Send(chain)
            }
        })
    }
}

/// Did a TLS certificate fail to verify somewhere in this error's causes?
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>()));
        if matches!(tls, Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The name of Purser's receipt header on governed answers.
pub const RECEIPT_HEADER: &str = "purser-receipt";

/// Copies an upstream's headers to the agent's answer, less hop-by-hop ones and anything that
/// could pass for Purser's own: `Purser-*` / `X-Purser-*` headers and `purser` metrics of
/// `Server-Timing` (an upstream cannot forge a receipt id or Purser's timing).
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from.iter() {
        let n = k.as_str();
        if matches!(n, "connection" | "keep-alive" | "transfer-encoding" | "proxy-connection") || n.starts_with("purser-") || n.starts_with("x-purser-") {
            continue;
        }
        if n == "server-timing" {
            if let Some(kept) = without_purser_timing(v) {
                to.append(k.clone(), kept);
            }
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

/// A `Server-Timing` value without its `purser` metrics (`None` when nothing else is left).
fn without_purser_timing(v: &HeaderValue) -> Option<HeaderValue> {
    let text = v.to_str().ok()?;
    let kept: Vec<&str> = text.split(',').map(str::trim).filter(|m| !m.is_empty() && !m.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("purser")).collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(", ")).ok()
}

fn with_receipt(mut resp: Response<Body>, receipt: Option<&str>) -> Response<Body> {
    if let Some(id) = receipt.and_then(|id| HeaderValue::from_str(id).ok()) {
        resp.headers_mut().insert(RECEIPT_HEADER, id);
    }
    resp
}

/// Streams an upstream answer back unchanged (plus `Purser-Receipt` when governed).
pub fn stream_back(resp: reqwest::Response, receipt: Option<&str>) -> Response<Body> {
    let mut out = Response::new(Body::default());
    *out.status_mut() = resp.status();
    copy_headers(resp.headers(), out.headers_mut());
    let stream = resp.bytes_stream().map_ok(Frame::data).map_err(|e| Box::new(e) as BoxError);
    *out.body_mut() = BoxBody::new(StreamBody::new(stream));
    with_receipt(out, receipt)
}

/// An answer whose body was already read (a 402 passed back untouched).
pub fn buffered_back(status: StatusCode, headers: &HeaderMap, body: Bytes, receipt: Option<&str>) -> Response<Body> {
    let mut out = Response::new(full(body));
    *out.status_mut() = status;
    copy_headers(headers, out.headers_mut());
    with_receipt(out, receipt)
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A JSON answer from Purser itself.
pub fn json_response(status: StatusCode, value: &serde_json::Value, receipt: Option<&str>) -> Response<Body> {
    let mut out = Response::new(full(value.to_string()));
    *out.status_mut() = status;
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_receipt(out, receipt)
}

/// `{code, message}` (and `receipt` when there is one) with `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str, receipt: Option<&str>) -> Response<Body> {
    let mut v = serde_json::json!({"code": code, "message": message});
    if let Some(r) = receipt {
        v["receipt"] = serde_json::Value::String(r.to_string());
    }
    json_response(status, &v, receipt)
}

impl Upstream {
    /// Reads a 402's whole body: at most `limit` bytes ([`UpstreamError::TooLarge`] as soon as
    /// it is longer; the rest is never read) within [`Limits::challenge`].
    pub async fn read_challenge(&self, resp: reqwest::Response, limit: usize) -> Result<Bytes, UpstreamError> {
        let secs = self.limits.challenge.as_secs();
        tokio::time::timeout(self.limits.challenge, read_limited(resp, limit)).await.unwrap_or_else(|_| Err(UpstreamError::Timeout(format!("the 402 body did not arrive within {secs} s"))))
    }
}

/// Reads at most `limit` bytes of an upstream body; `Err` if it is longer.
pub async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Bytes, UpstreamError> {
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.try_next().await.map_err(|e| if e.is_timeout() { UpstreamError::Timeout(error_chain(&e)) } else { UpstreamError::Send(error_chain(&e)) })? {
        if buf.len() + chunk.len() > limit {
            return Err(UpstreamError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_cannot_speak_as_purser() {
        let mut from = HeaderMap::new();
        from.insert("purser-receipt", HeaderValue::from_static("forged"));
        from.insert("x-purser-grant", HeaderValue::from_static("forged"));
        from.append("server-timing", HeaderValue::from_static("purser;dur=0.001"));
        from.append("server-timing", HeaderValue::from_static("db;dur=53, Purser;dur=1, app;dur=4"));
        from.insert("content-type", HeaderValue::from_static("application/json"));
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to);
        assert!(to.get("purser-receipt").is_none() && to.get("x-purser-grant").is_none());
        let timing: Vec<&str> = to.get_all("server-timing").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(timing, ["db;dur=53, app;dur=4"]);
        assert_eq!(to.get("content-type").unwrap(), "application/json");
        // Purser's own receipt header is the only one an answer carries.
        let resp = buffered_back(StatusCode::OK, &from, Bytes::from_static(b"{}"), Some("r1"));
        assert_eq!(resp.headers().get_all(RECEIPT_HEADER).iter().collect::<Vec<_>>(), [HeaderValue::from_static("r1")]);
    }
}

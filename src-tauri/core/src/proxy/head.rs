//! Owns the reading of an inbound request's head (method, URI, headers) before anything async
//! happens: gateway or standard proxy mode, the Origin/Host checks, the gateway's target URL, an
//! absolute-form target, a CONNECT authority, the request-loop check and the grant token. Pure:
//! no engine, no I/O, so it is unit-tested and fuzzed (`fuzzing::proxy_head`) on its own.

use crate::upstream::{error_response, Body};
use http::{header, HeaderMap, Method, Response, StatusCode, Uri};

/// The control API's path prefix: never served through the proxy (the control API listens
/// only on its Unix socket).
pub const CONTROL_PREFIX: &str = "/_purser/";

/// A request refused on its head alone (before authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { status, code, message: message.into() }
    }

    /// The `{code, message}` answer.
    pub fn response(&self) -> Response<Body> {
        error_response(self.status, self.code, &self.message, None)
    }
}

/// An origin-form request to the listener itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayHead {
    /// `/_purser/...`: the control API (which checks its own token).
    Control,
    /// `/https://host/path`: the target, and the grant token if one was sent.
    Target { url: reqwest::Url, token: Option<String> },
}

/// A standard proxy request (CONNECT or absolute-form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardHead {
    /// `CONNECT host:port` (lower-case host without brackets, port defaulting to 443).
    Connect { host: String, port: u16, token: Option<String> },
    /// `GET http://host/path`: the target URL and its host (without brackets) and port.
    Absolute { url: reqwest::Url, host: String, port: u16, token: Option<String> },
}

/// Either mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Gateway(GatewayHead),
    Forward(ForwardHead),
}

/// Is this a standard proxy request (CONNECT, or an absolute-form request line)?
pub fn is_proxy_request(method: &Method, uri: &Uri) -> bool {
    method == Method::CONNECT || uri.scheme().is_some()
}

/// Reads a request head as the listener does: standard proxy requests by their request line,
/// everything else as gateway mode. `port` is the listener's own port.
pub fn read(method: &Method, uri: &Uri, headers: &HeaderMap, port: u16) -> Result<Head, Refusal> {
    if is_proxy_request(method, uri) {
        forward(method, uri, headers, port).map(Head::Forward)
    } else {
        gateway(uri, headers, port).map(Head::Gateway)
    }
}

/// Gateway mode: browsers (any `Origin`) and DNS rebinding (a Host other than our loopback
/// address) are refused; then the control API, or the target URL after the proxy's address.
pub fn gateway(uri: &Uri, headers: &HeaderMap, port: u16) -> Result<GatewayHead, Refusal> {
    refuse_origin(headers)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ![format!("127.0.0.1:{port}"), format!("localhost:{port}")].contains(&host) {
        return Err(Refusal::new(StatusCode::FORBIDDEN, "host_forbidden", "the Host header must be this proxy's own loopback address"));
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if path.starts_with(CONTROL_PREFIX) {
        return Ok(GatewayHead::Control);
    }
    let target = path.strip_prefix('/').unwrap_or_default();
    if !(target.starts_with("http://") || target.starts_with("https://")) {
        let msg = format!("send requests as http://127.0.0.1:{port}/https://api.example.com/path with your grant token");
        return Err(Refusal::new(StatusCode::NOT_FOUND, "not_found", msg));
    }
    let url = match reqwest::Url::parse(target) {
        Ok(u) if u.host_str().is_some() => u,
        _ => return Err(Refusal::new(StatusCode::BAD_REQUEST, "bad_target", "the target URL after the proxy's address is not a valid http(s) URL")),
    };
    Ok(GatewayHead::Target { url, token: grant_token(headers) })
}

/// Standard proxy mode: an `Origin` is refused; a CONNECT needs `host:port`, an absolute-form
/// target a valid http(s) URL; neither may name this proxy itself (a loop).
pub fn forward(method: &Method, uri: &Uri, headers: &HeaderMap, port: u16) -> Result<ForwardHead, Refusal> {
    refuse_origin(headers)?;
    let is_loop = || Refusal::new(StatusCode::BAD_REQUEST, "proxy_loop", "the target is this proxy itself");
    if method == Method::CONNECT {
        let bad = || Refusal::new(StatusCode::BAD_REQUEST, "bad_target", "CONNECT needs host:port");
        let authority = uri.authority().ok_or_else(bad)?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let target_port = authority.port_u16().unwrap_or(443);
        if host.is_empty() || target_port == 0 {
            return Err(bad());
        }
        if is_self(&host, target_port, port) {
            return Err(is_loop());
        }
        return Ok(ForwardHead::Connect { host, port: target_port, token: grant_token(headers) });
    }
    let url = match reqwest::Url::parse(&uri.to_string()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => return Err(Refusal::new(StatusCode::BAD_REQUEST, "bad_target", "the request target is not a valid http(s) URL")),
    };
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
    let target_port = url.port_or_known_default().unwrap_or(0);
    if is_self(&host, target_port, port) {
        return Err(is_loop());
    }
    Ok(ForwardHead::Absolute { url, host, port: target_port, token: grant_token(headers) })
}

fn refuse_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    match headers.contains_key(header::ORIGIN) {
        true => Err(Refusal::new(StatusCode::FORBIDDEN, "origin_forbidden", "requests from web pages (with an Origin header) are refused")),
        false => Ok(()),
    }
}

/// Is `host:port` this proxy itself (a request loop)?
pub fn is_self(host: &str, port: u16, own_port: u16) -> bool {
    port == own_port && matches!(host.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "::1" | "0.0.0.0")
}

/// The grant token from `Proxy-Authorization` (Bearer, or Basic with the token as password)
/// or `X-Purser-Grant`. Never empty.
pub fn grant_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::PROXY_AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = v.trim().split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.trim().to_string()).filter(|t| !t.is_empty());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return text.split_once(':').map(|(_, p)| p.to_string()).filter(|t| !t.is_empty());
        }
        return None;
    }
    headers.get("x-purser-grant").and_then(|v| v.to_str().ok()).map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn gateway_heads() {
        let ok = headers(&[("host", "127.0.0.1:4020"), ("proxy-authorization", "Bearer  pgt_x ")]);
        let uri: Uri = "/https://api.example.com/p?q=1".parse().unwrap();
        match read(&Method::GET, &uri, &ok, 4020).unwrap() {
            Head::Gateway(GatewayHead::Target { url, token }) => {
                assert_eq!(url.as_str(), "https://api.example.com/p?q=1");
                assert_eq!(token.as_deref(), Some("pgt_x"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(gateway(&"/_purser/v1/grants".parse().unwrap(), &ok, 4020), Ok(GatewayHead::Control));
        let code = |uri: &str, h: &HeaderMap| gateway(&uri.parse().unwrap(), h, 4020).unwrap_err().code;
        assert_eq!(code("/x", &ok), "not_found");
        assert_eq!(code("/https://", &ok), "bad_target");
        assert_eq!(code("/https://a.b/", &headers(&[("host", "evil.com")])), "host_forbidden");
        assert_eq!(code("/https://a.b/", &headers(&[("host", "127.0.0.1:4020"), ("origin", "x")])), "origin_forbidden");
    }

    #[test]
    fn forward_heads() {
        let h = headers(&[("proxy-authorization", "Basic Z3JhbnQ6cGd0X3k=")]);
        let connect = forward(&Method::CONNECT, &"[::1]:8443".parse().unwrap(), &h, 4020).unwrap();
        assert_eq!(connect, ForwardHead::Connect { host: "::1".into(), port: 8443, token: Some("pgt_y".into()) });
        let loop_ = forward(&Method::CONNECT, &"LOCALHOST:4020".parse().unwrap(), &h, 4020).unwrap_err();
        assert_eq!(loop_.code, "proxy_loop");
        match forward(&Method::GET, &"http://[::1]/x".parse().unwrap(), &HeaderMap::new(), 4020).unwrap() {
            ForwardHead::Absolute { host, port, token, .. } => assert_eq!((host.as_str(), port, token), ("::1", 80, None)),
            other => panic!("{other:?}"),
        }
        let bad = forward(&Method::GET, &"ftp://a.b/x".parse().unwrap(), &h, 4020).unwrap_err();
        assert_eq!(bad.code, "bad_target");
        assert!(is_proxy_request(&Method::GET, &"http://a.b/".parse().unwrap()));
        assert!(!is_proxy_request(&Method::GET, &"/https://a.b/".parse().unwrap()));
    }
}

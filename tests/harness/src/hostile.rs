//! `Hostile402`: a tiny hyper server on 127.0.0.1:0 whose routes answer configured raw responses
//! (any status, headers, body), recording every request and counting paid retries (requests
//! carrying `X-PAYMENT` or `PAYMENT-SIGNATURE`). `RawServer`: a raw-TCP upstream that misbehaves
//! below HTTP (stalls a body, floods a 100 MB body, trickles a byte a second, never answers).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        RawResponse { status, headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), body: body.into() }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Self::new(status, &[("content-type", "application/json")], serde_json::to_vec(v).unwrap())
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub paid: bool,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, RawResponse>,
    seen: Vec<Seen>,
}

pub struct Hostile402 {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile402 {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime. Unknown paths answer
    /// 200 `{"ok":true,"hostile":true}`.
    pub async fn start() -> Hostile402 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind hostile");
        let port = listener.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Arc::default();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Hostile402 { url: format!("http://127.0.0.1:{port}"), port, state, task }
    }

    /// Sets what `path` (path only, no query) answers.
    pub fn route(&self, path: &str, resp: RawResponse) {
        self.state.lock().unwrap().routes.insert(path.to_string(), resp);
    }

    /// `http://127.0.0.1:PORT<path>`
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    /// Requests that carried X-PAYMENT or PAYMENT-SIGNATURE.
    pub fn paid(&self) -> usize {
        self.state.lock().unwrap().seen.iter().filter(|s| s.paid).count()
    }

    pub fn requests_to(&self, path: &str) -> usize {
        self.state.lock().unwrap().seen.iter().filter(|s| path_only(&s.path) == path).count()
    }

    pub fn paid_to(&self, path: &str) -> usize {
        self.state.lock().unwrap().seen.iter().filter(|s| s.paid && path_only(&s.path) == path).count()
    }
}

fn path_only(p: &str) -> &str {
    p.split('?').next().unwrap_or(p)
}

impl Drop for Hostile402 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(st: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req.headers().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let paid = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-payment") || k.eq_ignore_ascii_case("payment-signature"));
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let resp = {
        let mut s = st.lock().unwrap();
        s.seen.push(Seen { method, path: path.clone(), headers, body, paid });
        s.routes.get(path_only(&path)).cloned()
    };
    let resp = resp.unwrap_or_else(|| RawResponse::new(200, &[("content-type", "application/json")], &br#"{"ok":true,"hostile":true}"#[..]));
    let mut b = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(k.as_str(), hyper::header::HeaderValue::from_bytes(v.as_bytes()).expect("header value"));
    }
    Ok(b.body(Full::new(Bytes::from(resp.body))).expect("response"))
}

/// What a [`RawServer`] does on each connection, after reading the request head.
#[derive(Clone, Debug)]
pub enum Misbehave {
    /// Sends `head` (a whole response head, ending in CRLF CRLF) and `body_start`, then never
    /// sends another byte nor closes (an upstream that never finishes its body).
    StallBody { head: String, body_start: Vec<u8> },
    /// Sends `head` and then zeros, as fast as the peer reads them, up to `len` bytes
    /// (a 402 with a 100 MB body).
    HugeBody { head: String, len: u64 },
    /// Sends `response` one byte every `every` (a server that trickles its answer).
    Trickle { response: Vec<u8>, every: std::time::Duration },
    /// Reads the request and never answers.
    Silent,
}

/// A raw-TCP upstream on 127.0.0.1:0 that misbehaves as told, counting connections and the
/// bytes it managed to send. Every connection is dropped with it.
pub struct RawServer {
    pub port: u16,
    pub url: String,
    connections: Arc<std::sync::atomic::AtomicU64>,
    sent: Arc<std::sync::atomic::AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl RawServer {
    pub async fn start(how: Misbehave) -> RawServer {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind raw server");
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (connections, sent) = (Arc::new(std::sync::atomic::AtomicU64::new(0)), Arc::new(std::sync::atomic::AtomicU64::new(0)));
        let (conns, bytes) = (connections.clone(), sent.clone());
        let mut stopped_accept = stopped.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped_accept.changed() => return,
                };
                let Ok((mut s, _)) = accepted else { continue };
                conns.fetch_add(1, Ordering::SeqCst);
                let (how, bytes, mut stopped) = (how.clone(), bytes.clone(), stopped.clone());
                tokio::spawn(async move {
                    let work = async {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let count = |n: usize| {
                            bytes.fetch_add(n as u64, Ordering::SeqCst);
                        };
                        match how {
                            Misbehave::StallBody { head, body_start } => {
                                if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&body_start).await.is_err() {
                                    return;
                                }
                                count(head.len() + body_start.len());
                                std::future::pending::<()>().await;
                            }
                            Misbehave::HugeBody { head, len } => {
                                if s.write_all(head.as_bytes()).await.is_err() {
                                    return;
                                }
                                count(head.len());
                                let zeros = vec![0u8; 64 << 10];
                                let mut left = len;
                                while left > 0 {
                                    let n = left.min(zeros.len() as u64) as usize;
                                    if s.write_all(&zeros[..n]).await.is_err() {
                                        return;
                                    }
                                    count(n);
                                    left -= n as u64;
                                }
                                std::future::pending::<()>().await;
                            }
                            Misbehave::Trickle { response, every } => {
                                for b in response {
                                    if s.write_all(&[b]).await.is_err() {
                                        return;
                                    }
                                    count(1);
                                    tokio::time::sleep(every).await;
                                }
                                std::future::pending::<()>().await;
                            }
                            Misbehave::Silent => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        _ = work => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        RawServer { port, url: format!("http://127.0.0.1:{port}"), connections, sent, stop }
    }

    /// `http://127.0.0.1:PORT<path>`
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Bytes written to peers so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

//! `Hostile402`: a tiny hyper server on 127.0.0.1:0 whose routes answer configured raw responses
//! (any status, headers, body), recording every request and counting paid retries (requests
//! carrying `X-PAYMENT` or `PAYMENT-SIGNATURE`).

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
        RawResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        Self::new(
            status,
            &[("content-type", "application/json")],
            serde_json::to_vec(v).unwrap(),
        )
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind hostile");
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
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Hostile402 {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            task,
        }
    }

    /// Sets what `path` (path only, no query) answers.
    pub fn route(&self, path: &str, resp: RawResponse) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), resp);
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
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.paid)
            .count()
    }

    pub fn requests_to(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| path_only(&s.path) == path)
            .count()
    }

    pub fn paid_to(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.paid && path_only(&s.path) == path)
            .count()
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

async fn handle(
    st: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let paid = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("x-payment") || k.eq_ignore_ascii_case("payment-signature")
    });
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let resp = {
        let mut s = st.lock().unwrap();
        s.seen.push(Seen {
            method,
            path: path.clone(),
            headers,
            body,
            paid,
        });
        s.routes.get(path_only(&path)).cloned()
    };
    let resp = resp.unwrap_or_else(|| {
        RawResponse::new(
            200,
            &[("content-type", "application/json")],
            &br#"{"ok":true,"hostile":true}"#[..],
        )
    });
    let mut b = Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        b = b.header(
            k.as_str(),
            hyper::header::HeaderValue::from_bytes(v.as_bytes()).expect("header value"),
        );
    }
    Ok(b.body(Full::new(Bytes::from(resp.body))).expect("response"))
}

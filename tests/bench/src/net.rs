//! Owns the bench's own HTTP plumbing on loopback: a bare keep-alive HTTP/1.1 client connection
//! (hyper's conn API, so the load generator adds as little as possible), a tiny server loop for
//! the bench's upstream and paywall, the upstream's small JSON answer, and free-port picking.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// How long one request may take before the bench gives up on it (a bound, not a check).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer as the load generator saw it.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

/// One keep-alive HTTP/1.1 connection to `addr`, reopened if the server closes it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let mut c = Conn { addr, host: addr.to_string(), sender: None };
        c.connect().await?;
        Ok(c)
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr).await.with_context(|| format!("connect {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// GET `path` (origin-form, e.g. `/x` or `/http://127.0.0.1:9/x`) with `headers`; reads the
    /// whole body. The elapsed time runs from sending to the last body byte.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        let fut = self.get_inner(path, headers);
        tokio::time::timeout(REQUEST_TIMEOUT, fut).await.map_err(|_| anyhow!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    async fn get_inner(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        let ready = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.connect().await?;
        }
        let mut rb = Request::get(path).header(http::header::HOST, &self.host);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let req = rb.body(Full::new(Bytes::new()))?;
        let start = Instant::now();
        let sender = self.sender.as_mut().expect("connected");
        let result = async {
            let resp = sender.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts, body))
        }
        .await;
        let elapsed = start.elapsed();
        match result {
            Ok((parts, body)) => Ok(Answer { status: parts.status, headers: parts.headers, body, elapsed }),
            Err(e) => {
                self.sender = None;
                Err(e.into())
            }
        }
    }
}

/// A server's handler: request in, response out.
pub type Handler<F> = Arc<dyn Fn(Request<Incoming>) -> F + Send + Sync>;

/// A listener on 127.0.0.1:0.
pub async fn bind() -> Result<TcpListener> {
    Ok(TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?)
}

/// Serves HTTP/1.1 keep-alive on `listener` with `handler` on the current runtime, until the
/// runtime stops. Returns the bound address.
pub fn serve<F>(listener: TcpListener, handler: Handler<F>) -> Result<SocketAddr>
where
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            let svc = service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(addr)
}

/// The body the bench upstream answers every request with.
pub const UPSTREAM_BODY: &str = r#"{"ok":true,"service":"purser-bench-upstream","items":[1,2,3]}"#;

/// The plain (non-402) upstream: a small JSON answer to anything.
pub async fn start_upstream() -> Result<SocketAddr> {
    let handler = |_req: Request<Incoming>| async {
        let mut r = Response::new(Full::new(Bytes::from_static(UPSTREAM_BODY.as_bytes())));
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        r
    };
    serve(bind().await?, Arc::new(handler))
}

/// A port that was free a moment ago (for processes that need a port number up front).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A JSON response with `status` and extra headers.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>, headers: &[(&'static str, String)]) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// Polls `addr` with GET `path` until it answers at all (any status), for up to `within`.
pub async fn wait_answering(addr: SocketAddr, path: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match Conn::open(addr).await {
            Ok(mut c) => match c.get(path, &[]).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow!("{addr} did not answer within {within:?}: {last}"))
}

//! The agent side: a reqwest client (never using an env proxy), a `Reply` that keeps the whole
//! answer for assertion messages, and raw-TCP HTTP/1.1 requests for Host/Origin tests.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reqwest client for agent requests (no env proxy, 180 s timeout).
pub fn agent() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(180)).pool_idle_timeout(Duration::from_secs(5)).build().expect("reqwest client")
}

/// A whole HTTP answer as the agent saw it.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What was asked (for messages).
    pub request: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `Purser-Receipt` header.
    pub fn receipt(&self) -> Option<String> {
        self.header("purser-receipt").map(|s| s.trim().to_string())
    }

    /// The `Purser-Receipt` header, or a panic that shows this reply.
    pub fn receipt_id(&self) -> String {
        self.receipt().unwrap_or_else(|| panic!("no Purser-Receipt header in {self}"))
    }

    /// Body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `code` of a JSON error body.
    pub fn code(&self) -> Option<String> {
        self.json()["code"].as_str().map(str::to_string)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] -> HTTP {}", self.request, self.status)?;
        for (k, v) in &self.headers {
            let v = if v.len() > 300 { format!("{}…({} bytes)", &v[..300], v.len()) } else { v.clone() };
            writeln!(f, "  {k}: {v}")?;
        }
        let b = if self.body.len() > 2000 { format!("{}…({} bytes)", &self.body[..2000], self.body.len()) } else { self.body.clone() };
        write!(f, "  body: {b}")
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Sends a request and collects the answer; a transport error panics with the request.
pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
    try_send(rb).await.unwrap_or_else(|e| panic!("{e}"))
}

pub async fn try_send(rb: reqwest::RequestBuilder) -> Result<Reply, String> {
    let (client, req) = rb.build_split();
    let req = req.map_err(|e| format!("bad request: {e}"))?;
    let desc = format!("{} {}", req.method(), req.url());
    let resp = client.execute(req).await.map_err(|e| format!("{desc}: transport error: {e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let body = resp.text().await.map_err(|e| format!("{desc}: reading body: {e}"))?;
    Ok(Reply { status, headers, body, request: desc })
}

/// Answer of a raw-TCP request; status 0 means the server closed without an HTTP answer.
pub type RawReply = Reply;

/// Writes `request` verbatim to `addr` (host:port) and reads the answer until EOF or the end of
/// a Content-Length body (send `Connection: close`). 30 s timeout.
pub async fn raw_http(addr: &str, request: &[u8]) -> RawReply {
    let desc = format!("raw {}", String::from_utf8_lossy(request.split(|b| *b == b'\r').next().unwrap_or_default()));
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(request).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = s.read(&mut chunk).await.unwrap_or_default();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                if let Some(cl) = head.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))) {
                    if buf.len() >= end + 4 + cl {
                        break;
                    }
                }
            }
        }
        Ok::<Vec<u8>, String>(buf)
    };
    let buf = match tokio::time::timeout(Duration::from_secs(30), fut).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => panic!("{desc}: {e}"),
        Err(_) => panic!("{desc}: no answer within 30 s"),
    };
    parse_raw(&buf, desc)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_raw(buf: &[u8], request: String) -> Reply {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Reply { status: 0, headers: vec![], body: String::from_utf8_lossy(buf).into_owned(), request };
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let raw = &buf[end + 4..];
    let chunked = headers_chunked(&headers);
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    let body = String::from_utf8_lossy(&body).into_owned();
    Reply { status, headers, body, request }
}

fn headers_chunked(h: &[(String, String)]) -> bool {
    h.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(raw, b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || raw.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + n]);
        raw = &raw[(eol + 4 + n).min(raw.len())..];
    }
    out
}

/// Waits until the other side closes `s` (EOF or reset); how long after `since` that was, or
/// `None` past `limit`. Bytes read meanwhile are dropped.
pub async fn closed_within(s: &mut tokio::net::TcpStream, since: std::time::Instant, limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|_| since.elapsed())
}

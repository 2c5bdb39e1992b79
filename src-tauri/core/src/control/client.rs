//! Owns the client side of the control socket: one HTTP/1.1 request over a fresh Unix-socket
//! connection, JSON in and out. The CLI (and tests) call a running Purser through it.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach Purser's control socket {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("the control socket's answer could not be read: {0}")]
    Protocol(String),
}

impl ClientError {
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            ClientError::Connect { .. } => crate::api::ErrorCode::ControlUnreachable,
            ClientError::Protocol(_) => crate::api::ErrorCode::ControlProtocol,
        }
    }
}

/// Sends `method /_purser/v1/<path>` with an optional JSON body; returns the status and the
/// JSON answer (`{code, message}` on errors).
pub async fn call(socket: &Path, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<(StatusCode, serde_json::Value), ClientError> {
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|source| ClientError::Connect { path: socket.display().to_string(), source })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| ClientError::Protocol(e.to_string()))?;
    tokio::spawn(conn);
    let bytes = match body {
        Some(v) => Bytes::from(serde_json::to_vec(v).map_err(|e| ClientError::Protocol(e.to_string()))?),
        None => Bytes::new(),
    };
    let req = Request::builder()
        .method(method)
        .uri(format!("{}v1/{path}", super::PREFIX))
        .header(http::header::HOST, "purser")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| ClientError::Protocol(e.to_string()))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| ClientError::Protocol(e.to_string()))?.to_bytes();
    let v = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(format!("not JSON ({e})")))?;
    Ok((status, v))
}

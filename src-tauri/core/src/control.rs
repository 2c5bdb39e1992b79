//! Owns the local control API that the CLI (and any local tool) uses to reach a running
//! daemon: pending approvals, decisions, revocation, wallet lock/unlock. Token-protected (its own token, kept in a
//! 0600 file), JSON in and out, `{code, message}` on error. Each route calls one engine
//! operation; no logic lives here.

use crate::approvals::Via;
use crate::auth;
use crate::decisions::Decision;
use crate::engine::{Engine, EngineError};
use crate::upstream::{error_response, json_response, Body, BoxError};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every control route starts with this.
pub const PREFIX: &str = "/_purser/";
/// File in the data dir that tells local clients where the daemon listens.
pub const CONTROL_FILE: &str = "control.json";

/// Contents of `control.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlFile {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

impl ControlFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONTROL_FILE)
    }
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        crate::datadir::write_private(&Self::path(data_dir), serde_json::to_string(self)?.as_bytes())
    }
    pub fn read(data_dir: &Path) -> Option<ControlFile> {
        serde_json::from_slice(&std::fs::read(Self::path(data_dir)).ok()?).ok()
    }
}

/// Body of `approve` / `deny` (all optional): `requirement_hash`; approve with `allow_for`
/// (and `up_to`) to auto-approve the host for a while; deny with `block_host`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    requirement_hash: Option<String>,
    allow_for: Option<String>,
    up_to: Option<String>,
    #[serde(default)]
    block_host: bool,
}

/// Body of `wallet/unlock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    passphrase: String,
    #[serde(default)]
    remember: bool,
}

impl Drop for UnlockBody {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.passphrase);
    }
}

/// Body of `wallet/lock` (optional).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockBody {
    #[serde(default)]
    forget: bool,
}

/// Runs a blocking wallet operation (Argon2id, the keychain's D-Bus calls) without stalling the
/// other tasks of a multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn ok<T: Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_value(v) {
        Ok(v) => json_response(StatusCode::OK, &v, None),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e.to_string(), None),
    }
}

fn fail(e: EngineError) -> Response<Body> {
    let status = match e.code() {
        "no_such_grant" | "no_such_approval" | "no_such_rule" => StatusCode::NOT_FOUND,
        "requirement_changed" | "revoked" => StatusCode::CONFLICT,
        "wallet_unlock_failed" => StatusCode::FORBIDDEN,
        "ledger_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error_response(status, e.code(), &e.to_string(), None)
}

/// Serves one control request.
pub async fn handle<B>(engine: &Engine, token: &str, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    let presented = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    if !auth::ct_eq(presented.as_bytes(), token.as_bytes()) {
        return error_response(StatusCode::UNAUTHORIZED, "unauthorized", "the control API needs the token from control.json", None);
    }
    let method = req.method().clone();
    let path = req.uri().path().trim_start_matches(PREFIX).trim_end_matches('/').to_string();
    let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "control requests are small", None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["v1", "health"]) => ok(&serde_json::json!({"ok": true, "version": crate::VERSION})),
        (Method::GET, ["v1", "approvals"]) => ok(&engine.pending_approvals()),
        (Method::GET, ["v1", "approvals", "missed"]) => engine.missed_approvals().map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "approvals", "missed", "ack"]) => engine.ack_missed().map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "approvals", id, verb @ ("approve" | "deny")]) => {
            let d: DecideBody = match if body.is_empty() { Ok(DecideBody::default()) } else { serde_json::from_slice(&body) } {
                Ok(d) => d,
                Err(e) => return error_response(StatusCode::BAD_REQUEST, "invalid_body", &format!("the decision body is not valid: {e}"), None),
            };
            let decision = Decision { approve: *verb == "approve", requirement_hash: d.requirement_hash, allow_for: d.allow_for, up_to: d.up_to, block_host: d.block_host };
            engine.decide(id, &decision, Via::Control).map_or_else(fail, |v| ok(&v))
        }
        (Method::POST, ["v1", "approvals", id, "view"]) => engine.view_approval(id).map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "approvals", id, "unview"]) => engine.unview_approval(id).map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "grants"]) => engine.list_grants().map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "grants", id]) => engine.grant(id).map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "grants", id, "revoke"]) => engine.revoke_grant(id).map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "spending"]) => ok(&serde_json::json!({"paused": engine.paused()})),
        (Method::POST, ["v1", "spending", verb @ ("pause" | "resume")]) => engine.set_paused(*verb == "pause").map_or_else(fail, |p| ok(&serde_json::json!({"paused": p}))),
        (Method::GET, ["v1", "wallet"]) => ok(&engine.wallet_status()),
        (Method::POST, ["v1", "wallet", "unlock"]) => match serde_json::from_slice::<UnlockBody>(&body) {
            Ok(b) => blocking(|| engine.unlock_wallet(&b.passphrase, b.remember)).map_or_else(fail, |v| ok(&v)),
            Err(_) => error_response(StatusCode::BAD_REQUEST, "invalid_body", "unlock takes {\"passphrase\": \"...\", \"remember\": false}", None),
        },
        (Method::POST, ["v1", "wallet", "lock"]) => match if body.is_empty() { Ok(LockBody::default()) } else { serde_json::from_slice::<LockBody>(&body) } {
            Ok(b) => ok(&blocking(|| engine.lock_wallet(b.forget))),
            Err(e) => error_response(StatusCode::BAD_REQUEST, "invalid_body", &format!("lock takes {{\"forget\": false}}: {e}"), None),
        },
        _ => error_response(StatusCode::NOT_FOUND, "not_found", "no such control route", None),
    }
}

//! Owns the local control API that the CLI (and any local tool of the user's) uses to reach a
//! running daemon or app: pending approvals, decisions, revocation, pause, wallet lock/unlock,
//! and contained runs. It is served only on a Unix socket in the user's private runtime dir
//! ([`socket`]; 0700, the peer's uid checked), never over TCP, so nothing that speaks HTTP
//! through the proxy can reach it. Widening routes need the user's presence: the wallet
//! passphrase, typed at a terminal and sent in the body (`passphrase`). JSON in and out,
//! `{code, message}` on error. Each route calls one engine operation; no logic lives here.

pub mod client;
mod runs_api;
pub mod socket;

use crate::agent::AgentInfo;
use crate::approvals::Via;
use crate::decisions::Decision;
use crate::engine::{Engine, EngineError};
use crate::presence::{Answerer, Presence, PresenceError};
use crate::upstream::{error_response, json_response, Body, BoxError};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use crate::datadir::{ControlFile, CONTROL_FILE};
/// Every control route starts with this (the proxy refuses it: see `proxy::head`).
pub use crate::proxy::head::CONTROL_PREFIX as PREFIX;

/// Who is on the other end of a control connection (from the socket's peer credentials).
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: Option<u32>,
}

impl Peer {
    pub(crate) fn who(&self) -> AgentInfo {
        self.pid.map(crate::agent::identify_pid).unwrap_or_else(AgentInfo::unknown)
    }
}

/// Body of `approve` / `deny` (all optional): `requirement_hash`; approve with `allow_for`
/// (and `up_to`) to auto-approve the host for a while; deny with `block_host`; `passphrase`:
/// the user's presence, typed at a terminal (approve needs it).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    requirement_hash: Option<String>,
    allow_for: Option<String>,
    up_to: Option<String>,
    #[serde(default)]
    block_host: bool,
    passphrase: Option<Zeroizing<String>>,
}

/// Body of a route that needs presence and nothing else (`spending/resume`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    passphrase: Option<Zeroizing<String>>,
}

/// Body of `wallet/unlock`: the passphrase itself is the presence.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    passphrase: Zeroizing<String>,
    #[serde(default)]
    remember: bool,
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
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
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
    error_response(e.code().http_status(), e.code().as_str(), &e.to_string(), None)
}

fn bad_body(message: String) -> Response<Body> {
    error_response(StatusCode::BAD_REQUEST, "invalid_body", &message, None)
}

/// Parses an optional JSON body (empty means the default).
fn parse<T: Default + for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, serde_json::Error> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        serde_json::from_slice(body)
    }
}

/// Presence from a typed passphrase, when one was sent; wrong ones are audited.
pub(crate) fn presence(engine: &Engine, peer: &Peer, passphrase: Option<&str>, action: &str) -> Result<Option<Presence>, EngineError> {
    let Some(p) = passphrase else { return Ok(None) };
    let dir = engine.data_dir()?;
    match blocking(|| Presence::typed_passphrase(&dir, p, action)) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            if matches!(e, PresenceError::WrongPassphrase { .. }) {
                crate::presence::audit(&dir, action, "wrong_passphrase", &peer.who());
            }
            Err(e.into())
        }
    }
}

/// An engine result; a `presence_required` refusal is audited with who tried.
fn answer<T: Serialize>(engine: &Engine, peer: &Peer, action: &str, r: Result<T, EngineError>) -> Response<Body> {
    r.map_or_else(|e| refused(engine, peer, action, e), |v| ok(&v))
}

/// The `{code, message}` answer to a failed `action`; a refusal for want of presence is first
/// written to the audit log with who tried.
pub(crate) fn refused(engine: &Engine, peer: &Peer, action: &str, e: EngineError) -> Response<Body> {
    if matches!(e, EngineError::Presence(PresenceError::Required { .. })) {
        if let Ok(dir) = engine.data_dir() {
            crate::presence::audit(&dir, action, "refused", &peer.who());
        }
    }
    fail(e)
}

/// Serves one control request from `peer` (already checked to be this user).
pub async fn handle<B>(engine: &std::sync::Arc<Engine>, runs: &crate::runs::Runs, peer: &Peer, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
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
            let d: DecideBody = match parse(&body) {
                Ok(d) => d,
                Err(e) => return bad_body(format!("the decision body is not valid: {e}")),
            };
            let approve = *verb == "approve";
            let who = match presence(engine, peer, d.passphrase.as_deref().map(|s| s.as_str()), "approving a held payment") {
                Ok(Some(p)) => Answerer::Present(p),
                Ok(None) => Answerer::Unproven(Via::Terminal),
                Err(e) => return fail(e),
            };
            let decision = Decision { approve, requirement_hash: d.requirement_hash, allow_for: d.allow_for, up_to: d.up_to, block_host: d.block_host };
            answer(engine, peer, "approving a held payment", engine.decide(id, &decision, who))
        }
        (Method::POST, ["v1", "approvals", id, "view"]) => engine.view_approval(id).map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "approvals", id, "unview"]) => engine.unview_approval(id).map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "grants"]) => engine.list_grants().map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "grants", id]) => engine.grant(id).map_or_else(fail, |v| ok(&v)),
        (Method::POST, ["v1", "grants", id, "revoke"]) => engine.revoke_grant(id).map_or_else(fail, |v| ok(&v)),
        (Method::GET, ["v1", "spending"]) => ok(&serde_json::json!({"paused": engine.paused()})),
        (Method::POST, ["v1", "spending", verb @ ("pause" | "resume")]) => {
            let b: PresenceBody = match parse(&body) {
                Ok(b) => b,
                Err(e) => return bad_body(format!("{verb} takes {{\"passphrase\": \"...\"}} or nothing: {e}")),
            };
            let p = match presence(engine, peer, b.passphrase.as_deref().map(|s| s.as_str()), "resuming spending") {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            answer(engine, peer, "resuming spending", engine.set_paused(*verb == "pause", p.as_ref()).map(|p| serde_json::json!({"paused": p})))
        }
        (Method::GET, ["v1", "wallet"]) => ok(&engine.wallet_status()),
        (Method::POST, ["v1", "wallet", "unlock"]) => match serde_json::from_slice::<UnlockBody>(&body) {
            Ok(b) => {
                let r = blocking(|| engine.unlock_wallet(&b.passphrase, b.remember));
                if let (Err(e), Ok(dir)) = (&r, engine.data_dir()) {
                    if e.code() == "wallet_unlock_failed" {
                        crate::presence::audit(&dir, "unlocking the wallet", "wrong_passphrase", &peer.who());
                    }
                }
                r.map_or_else(fail, |v| ok(&v))
            }
            Err(_) => bad_body("unlock takes {\"passphrase\": \"...\", \"remember\": false}".into()),
        },
        (Method::POST, ["v1", "wallet", "lock"]) => match parse::<LockBody>(&body) {
            Ok(b) => ok(&blocking(|| engine.lock_wallet(b.forget))),
            Err(e) => bad_body(format!("lock takes {{\"forget\": false}}: {e}")),
        },
        (method, ["v1", "runs", rest @ ..]) => runs_api::route(engine, runs, peer, method, rest, &body).await,
        _ => error_response(StatusCode::NOT_FOUND, "not_found", "no such control route", None),
    }
}

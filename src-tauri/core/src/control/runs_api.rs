//! Owns the `/v1/runs…` routes of the control API: list, start (authorised by the grant's token or
//! the user's presence) and end contained runs. The runs themselves are `runs`'.

use super::Peer;
use crate::engine::{Engine, EngineError};
use crate::ipc::GrantSpecInput;
use crate::runs::{command_line, RunError, Runs};
use crate::upstream::{error_response, json_response, Body};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Body of `POST /v1/runs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    label: Option<String>,
    command: Vec<String>,
    /// Run under this existing grant …
    #[serde(default)]
    grant_id: Option<String>,
    /// … proven by its token (else the passphrase is needed) …
    #[serde(default)]
    grant_token: Option<Zeroizing<String>>,
    /// … or under a new grant made from this spec (needs the passphrase).
    #[serde(default)]
    grant: Option<GrantSpecInput>,
    #[serde(default)]
    keep_grant: bool,
    #[serde(default)]
    passphrase: Option<Zeroizing<String>>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    error_response(status, code, message, None)
}

fn engine_error(e: EngineError) -> Response<Body> {
    refuse(e.code().http_status(), e.code().as_str(), &e.to_string())
}

fn run_error(e: RunError) -> Response<Body> {
    let status = match e {
        RunError::NotFound(_) => StatusCode::NOT_FOUND,
        RunError::Socket(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RunError::WrongToken(_) => StatusCode::FORBIDDEN,
        RunError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    refuse(status, e.code().as_str(), &e.to_string())
}

/// One printable line for a command (control characters dropped, capped).
/// `POST /v1/runs`: authorises and opens a run for the launcher `peer`.
fn start(engine: &Arc<Engine>, runs: &Runs, peer: &Peer, body: &Bytes) -> Response<Body> {
    let b: StartBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "invalid_body", &format!("the run body is not valid: {e}")),
    };
    if b.command.is_empty() || b.command[0].is_empty() {
        return run_error(RunError::Invalid("a run needs a command".into()));
    }
    let command = command_line(&b.command);
    // A typed passphrase is checked (and a wrong one audited) as for every control route.
    let presence = |action: &str| super::presence(engine, peer, b.passphrase.as_deref().map(|s| s.as_str()), action);
    let (grant_id, label, created) = match (&b.grant_id, &b.grant) {
        (Some(id), None) => {
            let g = match engine.grant(id) {
                Ok(g) => g,
                Err(e) => return engine_error(e),
            };
            match b.grant_token.as_deref() {
                Some(t) => match engine.authenticate(t) {
                    Ok(Some(by_token)) if by_token.id == g.id => {}
                    Ok(_) => return run_error(RunError::WrongToken(g.id.clone())),
                    Err(e) => return engine_error(e),
                },
                None => {
                    let action = "starting a run on an existing grant without its token";
                    if let Err(e) = presence(action).and_then(|p| crate::presence::require(p.as_ref(), action).map_err(EngineError::from)) {
                        return super::refused(engine, peer, action, e);
                    }
                }
            }
            (g.id.clone(), b.label.clone().unwrap_or(g.label.clone()), false)
        }
        (None, Some(spec)) => {
            let mut spec = crate::grants::GrantSpec::from(spec.clone());
            // A grant made for a run is spent only by runs.
            spec.only_run = true;
            let action = "creating a grant for a run";
            match presence(action).and_then(|p| engine.create_grant(&spec, p.as_ref())) {
                Ok(c) => (c.grant.id.clone(), b.label.clone().unwrap_or(c.grant.label.clone()), true),
                Err(e) => return super::refused(engine, peer, action, e),
            }
        }
        _ => return run_error(RunError::Invalid("a run takes grant_id (with grant_token or passphrase) or grant (a new grant's spec)".into())),
    };
    let label = crate::text::clean(&label, crate::text::MAX_NAME);
    match runs.open(engine, &grant_id, &label, &command, created && !b.keep_grant, peer.pid) {
        Ok(s) => json_response(StatusCode::OK, &serde_json::to_value(&s).unwrap_or_default(), None),
        Err(e) => run_error(e),
    }
}

/// Body of `POST /v1/runs/{id}/end`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndBody {
    #[serde(default)]
    keep_grant: bool,
}

/// The `/v1/runs…` routes of the control API.
pub async fn route(engine: &Arc<Engine>, runs: &Runs, peer: &Peer, method: Method, rest: &[&str], body: &Bytes) -> Response<Body> {
    match (method, rest) {
        (Method::GET, []) => json_response(StatusCode::OK, &serde_json::to_value(runs.list()).unwrap_or_default(), None),
        (Method::POST, []) => start(engine, runs, peer, body),
        (Method::POST, [id, "end"]) => {
            let b: EndBody = if body.is_empty() {
                EndBody::default()
            } else {
                match serde_json::from_slice(body) {
                    Ok(b) => b,
                    Err(e) => return refuse(StatusCode::BAD_REQUEST, "invalid_body", &format!("end takes {{\"keep_grant\": false}}: {e}")),
                }
            };
            match runs.end(engine, id, b.keep_grant) {
                Ok(revoked) => json_response(StatusCode::OK, &serde_json::json!({"run_id": id, "grant_revoked": revoked}), None),
                Err(e) => run_error(e),
            }
        }
        _ => refuse(StatusCode::NOT_FOUND, "not_found", "no such control route"),
    }
}

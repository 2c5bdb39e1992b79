//! Owns contained runs (`purser run`): each is registered here with its label, command and
//! grant, gets a grant token of its own that works only on the run's own Unix socket (a proxy
//! listener of its own, in the private runtime dir, bind-mounted into the sandbox), and ends
//! when its launcher says so or dies: the socket goes, the token stops working, and a grant
//! made for the run is revoked unless the user kept it.
//!
//! Starting a run on an existing grant needs either that grant's token (its holder already
//! may spend it: binding it to a run only narrows) or the user's presence; creating a grant for
//! the run always needs presence (see [`crate::presence`]).

pub mod launch;

use crate::control::Peer;
use crate::engine::{Engine, EngineError};
use crate::ipc::GrantSpecInput;
use crate::upstream::{error_response, json_response, Body};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The port a run's bridge listens on inside its sandbox (its own network namespace, so no
/// clash with anything on the host).
pub const SANDBOX_PORT: u16 = 4020;

/// What the proxy knows of the run a connection belongs to.
#[derive(Debug)]
pub struct RunBinding {
    pub id: String,
    pub label: String,
    /// The command line, as the launcher gave it (shown, never run by Purser).
    pub command: String,
    pub grant_id: String,
    /// SHA-256 of the run's token.
    pub token_hash: String,
    pub started_at: DateTime<Utc>,
}

/// A run as `GET /v1/runs` (and the app) lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: String,
    pub label: String,
    pub command: String,
    pub grant_id: String,
    pub started_at: DateTime<Utc>,
    /// The launcher's pid (the run ends if it dies).
    pub launcher_pid: Option<u32>,
}

struct Entry {
    binding: Arc<RunBinding>,
    socket: PathBuf,
    proxy: crate::proxy::ProxyHandle,
    /// The grant was made for this run, and is revoked when it ends.
    end_grant: bool,
    launcher_pid: Option<u32>,
}

/// The daemon's (or the app's) runs.
pub struct Runs {
    ca_cert: Option<PathBuf>,
    live: Mutex<HashMap<String, Entry>>,
}

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

/// Answer of `POST /v1/runs`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Started {
    pub run_id: String,
    pub label: String,
    /// The run's own proxy socket (to bind into the sandbox).
    pub socket: PathBuf,
    /// The run's token (works only on `socket`).
    pub token: String,
    pub grant_id: String,
    /// The grant was made for this run (and ends with it unless kept).
    pub grant_created: bool,
    pub port: u16,
    /// Purser's local CA certificate (PEM), for standard proxy mode inside the sandbox.
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no run {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the run's socket could not be made: {0}")]
    Socket(std::io::Error),
    #[error("this token does not open grant {0}")]
    WrongToken(String),
}

impl RunError {
    pub fn code(&self) -> &'static str {
        match self {
            RunError::NotFound(_) => "no_such_run",
            RunError::Invalid(_) => "invalid_run",
            RunError::Socket(_) => "run_socket_failed",
            RunError::WrongToken(_) => "unknown_token",
        }
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    error_response(status, code, message, None)
}

fn engine_error(e: EngineError) -> Response<Body> {
    refuse(crate::control::status_of(e.code()), e.code(), &e.to_string())
}

fn run_error(e: RunError) -> Response<Body> {
    let status = match e {
        RunError::NotFound(_) => StatusCode::NOT_FOUND,
        RunError::Socket(_) => StatusCode::INTERNAL_SERVER_ERROR,
        RunError::WrongToken(_) => StatusCode::FORBIDDEN,
        RunError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    refuse(status, e.code(), &e.to_string())
}

/// One printable line for a command (control characters dropped, capped).
fn command_line(argv: &[String]) -> String {
    crate::prompt::clean(&argv.join(" "), 1024)
}

impl Runs {
    /// `ca_cert`: the certificate of the local CA standard proxy mode intercepts with (the
    /// engine's, while its wallet is unlocked), given to runs when it exists.
    pub fn new(ca_cert: Option<PathBuf>) -> Arc<Runs> {
        Arc::new(Runs { ca_cert, live: Mutex::new(HashMap::new()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self) -> Vec<RunView> {
        let mut v: Vec<RunView> = self
            .lock()
            .values()
            .map(|e| RunView {
                id: e.binding.id.clone(),
                label: e.binding.label.clone(),
                command: e.binding.command.clone(),
                grant_id: e.binding.grant_id.clone(),
                started_at: e.binding.started_at,
                launcher_pid: e.launcher_pid,
            })
            .collect();
        v.sort_by_key(|r| r.started_at);
        v
    }

    /// Starts a run for `grant_id` (already authorised): its socket, its token, its listener.
    pub fn open(&self, engine: &Arc<Engine>, grant_id: &str, label: &str, command: &str, end_grant: bool, launcher_pid: Option<u32>) -> Result<Started, RunError> {
        let id = crate::clock::new_id();
        let socket = crate::datadir::runtime_dir().map_err(RunError::Socket)?.join(format!("run-{id}.sock"));
        let listener = {
            let _ = std::fs::remove_file(&socket);
            let std_listener = std::os::unix::net::UnixListener::bind(&socket).map_err(RunError::Socket)?;
            std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(RunError::Socket)?;
            std_listener.set_nonblocking(true).map_err(RunError::Socket)?;
            tokio::net::UnixListener::from_std(std_listener).map_err(RunError::Socket)?
        };
        let token = crate::auth::new_token(crate::auth::GRANT_TOKEN_PREFIX);
        let binding = Arc::new(RunBinding {
            id: id.clone(),
            label: label.to_string(),
            command: command.to_string(),
            grant_id: grant_id.to_string(),
            token_hash: crate::auth::token_hash(&token),
            started_at: engine.clock.now(),
        });
        let proxy = crate::proxy::start_unix(engine.clone(), listener, binding.clone(), SANDBOX_PORT);
        tracing::info!(run = %id, label, grant = grant_id, command, "run started");
        self.lock().insert(id.clone(), Entry { binding, socket: socket.clone(), proxy, end_grant, launcher_pid });
        Ok(Started {
            run_id: id,
            label: label.to_string(),
            socket,
            token,
            grant_id: grant_id.to_string(),
            grant_created: end_grant,
            port: SANDBOX_PORT,
            ca_cert: self.ca_cert.clone().filter(|p| p.exists()),
        })
    }

    /// Records the pid of the process that launched the run (the run ends if it dies).
    pub fn set_launcher(&self, id: &str, pid: u32) {
        if let Some(e) = self.lock().get_mut(id) {
            e.launcher_pid = Some(pid);
        }
    }

    /// Ends a run: its socket and token stop working now; a grant made for it is revoked
    /// unless `keep_grant`. Returns whether the grant was revoked.
    pub fn end(&self, engine: &Engine, id: &str, keep_grant: bool) -> Result<bool, RunError> {
        let entry = self.lock().remove(id).ok_or_else(|| RunError::NotFound(id.to_string()))?;
        drop(entry.proxy);
        let _ = std::fs::remove_file(&entry.socket);
        let revoke = entry.end_grant && !keep_grant;
        if revoke {
            if let Err(e) = engine.revoke_grant(&entry.binding.grant_id) {
                tracing::warn!(run = id, error = %e, "the run's grant could not be revoked");
            }
        }
        tracing::info!(run = id, revoked = revoke, "run ended");
        Ok(revoke)
    }

    /// Ends the runs whose launcher has died (checked by the daemon now and then), and every
    /// run when `all` (shutdown).
    pub fn reap(&self, engine: &Engine, all: bool) {
        let dead: Vec<(String, bool)> =
            self.lock().iter().filter(|(_, e)| all || e.launcher_pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())).map(|(id, e)| (id.clone(), e.end_grant)).collect();
        for (id, _) in dead {
            let _ = self.end(engine, &id, false);
        }
    }

    /// Reaps runs whose launcher died, every `every`, until the runs are dropped.
    pub fn spawn_reaper(self: &Arc<Self>, engine: Arc<Engine>, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let runs = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(r) = runs.upgrade() else { break };
                r.reap(&engine, false);
            }
        })
    }
}

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
    let presence = |action: &str| crate::control::presence(engine, peer, b.passphrase.as_deref().map(|s| s.as_str()), action);
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
                        return crate::control::refused(engine, peer, action, e);
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
                Err(e) => return crate::control::refused(engine, peer, action, e),
            }
        }
        _ => return run_error(RunError::Invalid("a run takes grant_id (with grant_token or passphrase) or grant (a new grant's spec)".into())),
    };
    let label = crate::prompt::clean(&label, crate::prompt::MAX_NAME);
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

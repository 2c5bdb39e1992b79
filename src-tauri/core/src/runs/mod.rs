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

use crate::engine::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The port a run's bridge listens on inside its sandbox (its own network namespace, so no
/// clash with anything on the host).
pub const SANDBOX_PORT: u16 = 4020;

pub use crate::proxy::caller::RunBinding;

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
    pub fn code(&self) -> crate::api::ErrorCode {
        match self {
            RunError::NotFound(_) => crate::api::ErrorCode::NoSuchRun,
            RunError::Invalid(_) => crate::api::ErrorCode::InvalidRun,
            RunError::Socket(_) => crate::api::ErrorCode::RunSocketFailed,
            RunError::WrongToken(_) => crate::api::ErrorCode::UnknownToken,
        }
    }
}

pub(crate) fn command_line(argv: &[String]) -> String {
    crate::text::clean(&argv.join(" "), 1024)
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

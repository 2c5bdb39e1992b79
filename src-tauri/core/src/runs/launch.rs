//! Owns starting a contained run from a front end that is not a terminal (the app's "Run an
//! agent" action): the run is opened on an existing grant (the click that asked for it is the
//! user's presence), the agent is launched under the `purser` binary's sandbox
//! (`purser __sandbox-exec`, the same bubblewrap containment as `purser run`) with its output in
//! a log file, and the run ends when the agent exits.

use super::{RunError, Runs};
use crate::engine::Engine;
use crate::presence::Presence;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A run started by a front end.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct RunLaunched {
    pub run_id: String,
    pub grant_id: String,
    pub label: String,
    pub pid: u32,
    /// Where the agent's standard output and error go.
    pub log: String,
}

/// The `purser` binary: beside `current_exe` (the app and the CLI ship together), else on PATH.
pub fn find_cli(current_exe: &Path) -> Option<PathBuf> {
    let beside = current_exe.parent().map(|d| d.join("purser")).filter(|p| p.is_file());
    beside.or_else(|| std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("purser")).find(|p| p.is_file())))
}

/// Starts `command` (run by `sh -c`) in `cwd`, contained, on grant `grant_id`, answered by
/// the user's `presence`; its output goes to `log_dir/<run id>.log`.
#[allow(clippy::too_many_arguments)]
pub fn launch(engine: &Arc<Engine>, runs: &Arc<Runs>, _presence: &Presence, grant_id: &str, command: &str, cwd: &Path, cli: &Path, log_dir: &Path) -> Result<RunLaunched, RunError> {
    let command = command.trim();
    if command.is_empty() || command.len() > 4096 || command.chars().any(|c| c == '\0') {
        return Err(RunError::Invalid("give the agent's command (one line, at most 4096 characters)".into()));
    }
    if !cwd.is_absolute() || !cwd.is_dir() {
        return Err(RunError::Invalid(format!("the working dir {} is not an existing absolute directory", cwd.display())));
    }
    let grant = engine.grant(grant_id).map_err(|e| RunError::Invalid(e.to_string()))?;
    if grant.state != crate::grants::GrantState::Active {
        return Err(RunError::Invalid(format!("grant {} is {:?}: a run needs a live grant", grant.label, grant.state)));
    }
    crate::datadir::ensure_private_dir(log_dir).map_err(RunError::Socket)?;
    let started = runs.open(engine, grant_id, &grant.label, command, false, None)?;
    let log_path = log_dir.join(format!("{}.log", started.run_id));
    let spawn = || -> std::io::Result<std::process::Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut cmd = std::process::Command::new(cli);
        cmd.arg("__sandbox-exec").arg("--socket").arg(&started.socket).arg("--token").arg(&started.token).arg("--cwd").arg(cwd);
        if let Some(ca) = &started.ca_cert {
            cmd.arg("--ca").arg(ca);
        }
        cmd.args(["--", "sh", "-c", command]).stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log).env_remove("PURSER_PASSPHRASE");
        cmd.spawn()
    };
    let child = match spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = runs.end(engine, &started.run_id, true);
            return Err(RunError::Socket(e));
        }
    };
    let pid = child.id();
    runs.set_launcher(&started.run_id, pid);
    // The run ends when the agent does (the reaper would also see the launcher gone).
    let (engine2, runs2, id, gid) = (engine.clone(), runs.clone(), started.run_id.clone(), grant_id.to_string());
    std::thread::spawn(move || {
        let mut child = child;
        let status = child.wait();
        tracing::info!(run = %id, ?status, "the app's run ended");
        let _ = runs2.end(&engine2, &id, true);
        engine2.events.publish(crate::events::Event::GrantChanged { id: gid });
    });
    Ok(RunLaunched { run_id: started.run_id, grant_id: grant_id.to_string(), label: started.label, pid, log: log_path.display().to_string() })
}

impl From<RunError> for crate::engine::ApiError {
    fn from(e: RunError) -> Self {
        crate::engine::ApiError { code: e.code(), message: e.to_string() }
    }
}

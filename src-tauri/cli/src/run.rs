//! `purser run`: starts an agent contained, with Purser as its only way out. Asks the running
//! daemon (or app) to open a run (its own proxy socket and a token bound to it, on an existing
//! grant or one made for the run), launches the command in the sandbox (`sandbox`), ends the
//! run when the command exits, and exits with the command's status.

use crate::args::RunArgs;
use crate::presence::Coded;
use anyhow::Result;
use purser_core::runs::Started;
use serde_json::{json, Value};
use std::path::Path;

/// The grant body: an existing grant (with its token from `PURSER_GRANT`, else the passphrase)
/// or a new one from grant create's flags (always the passphrase).
fn grant_body(dir: &Path, a: &RunArgs) -> Result<Value> {
    if let Some(id) = &a.grant {
        if let Some(token) = std::env::var("PURSER_GRANT").ok().filter(|t| !t.is_empty()) {
            return Ok(json!({"grant_id": id, "grant_token": token}));
        }
        let pass = crate::presence::typed(dir, "starting a run on an existing grant")?;
        return Ok(json!({"grant_id": id, "passphrase": pass.as_str()}));
    }
    let (Some(budget), Some(expires)) = (&a.budget, &a.expires) else {
        return Err(Coded::error("invalid_run", "give --grant ID, or a new grant's --budget USD --expires DUR --host HOST (as `purser grant create` takes them)"));
    };
    if a.hosts.is_empty() {
        return Err(Coded::error("invalid_run", "a new grant for the run needs at least one --host"));
    }
    let g = a.limits.spec(a.label.clone().unwrap_or_else(|| "run".into()), budget.clone(), expires.clone(), a.hosts.clone(), true);
    let spec = json!({
        "label": g.label, "budget": g.budget, "expires": g.expires, "hosts": g.hosts, "payees": g.payees, "networks": g.networks,
        "perRequestMax": g.per_request_max, "autoBelow": g.auto_below, "askBelow": g.ask_below,
        "approvalTimeout": g.approval_timeout, "onlyListedHosts": g.only_listed_hosts, "onlyExe": g.only_exe,
    });
    let pass = crate::presence::typed(dir, "creating a grant for a run")?;
    Ok(json!({"grant": spec, "passphrase": pass.as_str(), "keep_grant": a.keep_grant}))
}

pub async fn run(dir: &Path, a: RunArgs) -> Result<()> {
    // Never an uncontained run: no bubblewrap, no user namespaces → a named error, nothing started.
    crate::sandbox::preflight().map_err(|e| Coded::error(e.code().as_str(), e.to_string()))?;
    let c = crate::remote::daemon(dir).ok_or_else(|| Coded::error("no_daemon", format!("no purser daemon or app is serving {} (start `purser serve` or the app)", dir.display())))?;
    let mut body = grant_body(dir, &a)?;
    body["command"] = json!(a.command.iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>());
    if let Some(l) = &a.label {
        body["label"] = json!(l);
    }
    let started: Started = serde_json::from_value(crate::remote::call(&c, reqwest::Method::POST, "runs", Some(body)).await?)?;
    eprintln!(
        "purser: run {} \"{}\" on grant {}{}",
        started.run_id,
        started.label,
        started.grant_id,
        if started.grant_created && !a.keep_grant { " (made for this run; it ends with it)" } else { "" }
    );
    let cwd = match &a.cwd {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let mut hide = vec![dir.to_path_buf()];
    if let Some(parent) = c.socket.parent() {
        hide.push(parent.to_path_buf());
    }
    let spec = crate::sandbox::SandboxSpec {
        proxy_socket: started.socket.clone(),
        token: started.token.clone(),
        ca_pem: started.ca_cert.clone(),
        cwd,
        allow_write: a.allow_write.clone(),
        hide,
        command: a.command.clone(),
    };
    let status = crate::sandbox::run(&spec).await.map_err(crate::sandbox::coded);
    // The run ends whatever happened: its socket and token stop working, a grant made for it ends.
    match crate::remote::call(&c, reqwest::Method::POST, &format!("runs/{}/end", started.run_id), Some(json!({"keep_grant": a.keep_grant}))).await {
        Ok(v) if v["grant_revoked"] == true => eprintln!("purser: run {} ended; its grant {} is revoked", started.run_id, started.grant_id),
        Ok(_) => eprintln!("purser: run {} ended", started.run_id),
        Err(e) => eprintln!("purser: the run could not be ended cleanly ({e}); the daemon ends it when it sees this process gone"),
    }
    std::process::exit(status?)
}

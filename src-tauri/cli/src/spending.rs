//! `purser pause` / `purser resume`: the "pause all spending" switch from a script. Through the
//! running daemon's (or desktop app's) control API when one serves the data dir, so it takes
//! effect at once; otherwise stored in the ledger for the next start.

use anyhow::Result;
use std::path::Path;

/// Resuming widens spending: it asks for the wallet passphrase at the terminal.
pub async fn set(dir: &Path, pause: bool, json: bool) -> Result<()> {
    const ACTION: &str = "resuming spending";
    let paused = match crate::remote::daemon(dir) {
        Some(c) => {
            let body = match pause {
                true => None,
                false => Some(serde_json::json!({"passphrase": crate::presence::typed(dir, ACTION)?.as_str()})),
            };
            let v = crate::remote::call(&c, reqwest::Method::POST, if pause { "spending/pause" } else { "spending/resume" }, body).await?;
            v["paused"].as_bool().unwrap_or(pause)
        }
        None => {
            let presence = if pause { None } else { Some(crate::presence::prove(dir, ACTION)?) };
            let engine = purser_core::engine::Engine::new(crate::ledger(dir)?, None)?;
            engine.set_paused(pause, presence.as_ref()).map_err(crate::presence::engine)?
        }
    };
    if json {
        return crate::print_json(&serde_json::json!({ "paused": paused }));
    }
    if paused {
        println!("Spending is paused: every payment is refused (spending_paused) until `purser resume`.");
    } else {
        println!("Spending resumed: grants pay as they allow.");
    }
    Ok(())
}

//! `purser pause` / `purser resume`: the "pause all spending" switch from a script. Through the
//! running daemon's (or desktop app's) control API when one serves the data dir, so it takes
//! effect at once; otherwise stored in the ledger for the next start.

use anyhow::Result;
use std::path::Path;

pub async fn set(dir: &Path, pause: bool, json: bool) -> Result<()> {
    let paused = match crate::remote::daemon(dir) {
        Some(c) => {
            let v = crate::remote::call(&c, reqwest::Method::POST, if pause { "spending/pause" } else { "spending/resume" }, None).await?;
            v["paused"].as_bool().unwrap_or(pause)
        }
        None => {
            let engine = purser_core::engine::Engine::new(crate::ledger(dir)?, None)?;
            engine.set_paused(pause)?
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

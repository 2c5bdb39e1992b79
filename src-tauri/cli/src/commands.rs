//! `purser grant` and `purser receipts`: each a call into the core and a print (`purser wallet`
//! is `wallet.rs`).

use crate::args::{GrantCmd, GrantCreate, ReceiptsCmd};
use anyhow::{bail, Result};
use purser_core::engine::Engine;
use purser_core::grants::GrantView;
use serde_json::json;
use std::path::Path;

fn engine(dir: &Path) -> Result<Engine> {
    Ok(Engine::new(crate::ledger(dir)?, None)?)
}

fn print_grant(g: &GrantView) {
    let tiers = format!(
        "auto below ${}, ask below {}, max {} per request",
        purser_core::money::micros_decimal(g.auto_below_atomic.parse().unwrap_or(0)),
        g.ask_below_atomic.as_deref().map(|v| format!("${}", purser_core::money::micros_decimal(v.parse().unwrap_or(0)))).unwrap_or_else(|| "(no limit)".into()),
        g.per_request_max_atomic.as_deref().map(|v| format!("${}", purser_core::money::micros_decimal(v.parse().unwrap_or(0)))).unwrap_or_else(|| "(no limit)".into()),
    );
    println!("{}  {:<20} {:?}  spent ${} of ${} (${} left)  expires {}", g.id, g.label, g.state, g.spent_usd, g.budget_usd, g.remaining_usd, g.expires_at.format("%Y-%m-%d %H:%M UTC"));
    println!("    hosts: {}; {}", g.hosts.join(", "), tiers);
}

pub async fn grant(dir: &Path, cmd: GrantCmd) -> Result<()> {
    let e = engine(dir)?;
    match cmd {
        GrantCmd::Create(c) => create(dir, &e, c),
        GrantCmd::List { json } => {
            let list = e.list_grants()?;
            if json {
                return crate::print_json(&list);
            }
            if list.is_empty() {
                println!("No grants yet. Create one: purser grant create --label research --budget 5.00 --expires 2h --host api.example.com");
            }
            list.iter().for_each(print_grant);
            Ok(())
        }
        GrantCmd::Show { id, json } => {
            let g = e.grant(&id)?;
            if json {
                crate::print_json(&g)
            } else {
                print_grant(&g);
                Ok(())
            }
        }
        GrantCmd::TopUp { id, amount, json } => {
            e.grant(&id)?;
            let presence = crate::presence::prove(dir, "topping up a grant")?;
            let g = e.top_up(&id, &amount, Some(&presence)).map_err(crate::presence::engine)?;
            if json {
                crate::print_json(&g)
            } else {
                print_grant(&g);
                Ok(())
            }
        }
        GrantCmd::Revoke { id, json } => {
            // A running daemon revokes and denies what it holds under the grant, at once.
            let g: GrantView = match crate::remote::daemon(dir) {
                Some(c) => {
                    let v = crate::remote::call(&c, reqwest::Method::POST, &format!("grants/{id}/revoke"), None).await?;
                    let mut local = e.grant(&id)?;
                    local.state = serde_json::from_value(v["state"].clone()).unwrap_or(local.state);
                    local
                }
                None => e.revoke_grant(&id)?,
            };
            if json {
                crate::print_json(&g)
            } else {
                println!("Revoked {} ({}).", g.id, g.label);
                Ok(())
            }
        }
        GrantCmd::Env { id, token, json } => crate::ca::grant_env(dir, &e, &id, token, json),
    }
}

fn create(dir: &Path, e: &Engine, c: GrantCreate) -> Result<()> {
    let spec = c.limits.spec(c.label, c.budget, c.expires, c.hosts, c.only_run);
    spec.validate(chrono::Utc::now()).map_err(|err| crate::presence::Coded::error(err.code().as_str(), err.to_string()))?;
    let presence = crate::presence::prove(dir, "creating a grant")?;
    let created = e.create_grant(&spec, Some(&presence)).map_err(crate::presence::engine)?;
    let url = crate::proxy_url(dir);
    let exports = vec![format!("export PURSER_PROXY={url}"), format!("export PURSER_GRANT={}", created.token)];
    if c.json {
        let mut v = serde_json::to_value(&created)?;
        v["exports"] = json!(exports);
        v["example"] = json!(format!("curl -H \"Proxy-Authorization: Bearer $PURSER_GRANT\" \"$PURSER_PROXY/https://{}/\"", created.grant.hosts[0].trim_start_matches("*.")));
        return crate::print_json(&v);
    }
    print_grant(&created.grant);
    println!("\nToken (shown once; Purser keeps only its hash):\n    {}\n\nFor the agent's shell:", created.token);
    for l in &exports {
        println!("    {l}");
    }
    println!("    curl -H \"Proxy-Authorization: Bearer $PURSER_GRANT\" \"$PURSER_PROXY/https://{}/\"", created.grant.hosts[0].trim_start_matches("*."));
    Ok(())
}

pub fn receipts(dir: &Path, cmd: ReceiptsCmd) -> Result<()> {
    let ledger = crate::ledger(dir)?;
    match cmd {
        ReceiptsCmd::List { limit, json } => {
            let list = ledger.list_receipts(limit)?;
            if json {
                return crate::print_json(&list);
            }
            if list.is_empty() {
                println!("No receipts yet.");
            }
            for r in list {
                let amount = r.amount_usd.as_deref().map(|a| format!("${a}")).unwrap_or_else(|| "-".into());
                println!("{}  {:<11} {:<22} {:>10}  {} {}  [{}]", r.time.format("%Y-%m-%d %H:%M:%S"), r.outcome.as_str(), r.reason, amount, r.method, r.url, r.id);
            }
            Ok(())
        }
        ReceiptsCmd::Timeline(cmd) => crate::timeline::receipts(dir, &ledger, cmd),
        ReceiptsCmd::Show { id } => match ledger.receipt(&id)? {
            // With what the chain said of it (`purser wallet reconcile`), kept beside the receipt.
            Some(r) => {
                let mut v = serde_json::to_value(&r)?;
                v["reconciliation"] = serde_json::to_value(ledger.reconciliation(&id)?)?;
                crate::print_json(&v)
            }
            None => bail!("no receipt {id}"),
        },
        ReceiptsCmd::Verify { json, expect_head, offline } => crate::verify::verify(dir, &ledger, json, expect_head.as_deref(), offline),
        ReceiptsCmd::Head { json } => crate::verify::head(&ledger, json),
    }
}

//! `purser rules` and `purser payee`: the grant's standing rules and payee names, straight on
//! the ledger (a running daemon reads rules from it on every payment, so no daemon is needed).

use crate::args::{PayeeCmd, RulesCmd};
use anyhow::Result;
use purser_core::engine::Engine;
use purser_core::rules::{RuleKind, RuleSpec, RuleView};

fn engine(dir: &std::path::Path) -> Result<Engine> {
    Ok(Engine::new(crate::ledger(dir)?, None)?)
}

fn fail(e: purser_core::engine::EngineError) -> anyhow::Error {
    crate::presence::engine(e)
}

fn print_rule(r: &RuleView) {
    let state = match (r.removed_at, r.active) {
        (Some(_), _) => "removed",
        (None, true) => "active",
        (None, false) => "expired",
    };
    let until = r.expires_at.map(|t| format!(" until {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
    println!("{}  {:<8} grant {}  {}{until}", r.id, state, r.grant_id, r.description);
}

pub fn rules(dir: &std::path::Path, cmd: RulesCmd) -> Result<()> {
    let e = engine(dir)?;
    match cmd {
        RulesCmd::List { grant, all, json } => {
            let list = e.rules(grant.as_deref(), all).map_err(fail)?;
            if json {
                return crate::print_json(&list);
            }
            if list.is_empty() {
                println!("No rules. Approve with --allow-for 10m or deny with --block-host to make one, or: purser rules add GRANT --block HOST");
            }
            list.iter().for_each(print_rule);
            Ok(())
        }
        RulesCmd::Add { grant, allow, block, up_to, duration, json } => {
            let spec = match (allow, block) {
                (Some(host), None) => RuleSpec { kind: Some(RuleKind::Allow), host, up_to, duration },
                (None, Some(host)) => RuleSpec { kind: Some(RuleKind::Block), host, up_to, duration },
                _ => anyhow::bail!("give --allow HOST (with --up-to and --for) or --block HOST"),
            };
            let presence = match spec.kind {
                Some(RuleKind::Allow) => Some(crate::presence::prove(dir, "adding an allow rule")?),
                _ => None,
            };
            let r = e.add_rule(&grant, &spec, presence.as_ref()).map_err(fail)?;
            if json {
                crate::print_json(&r)
            } else {
                print_rule(&r);
                Ok(())
            }
        }
        RulesCmd::Remove { id, json } => {
            let r = e.remove_rule(&id).map_err(fail)?;
            if json {
                crate::print_json(&r)
            } else {
                println!("Removed rule {} ({}).", r.id, r.description);
                Ok(())
            }
        }
    }
}

pub fn payee(dir: &std::path::Path, cmd: PayeeCmd) -> Result<()> {
    let e = engine(dir)?;
    match cmd {
        PayeeCmd::Label { address, name, json } => {
            let l = e.label_payee(&address, &name).map_err(fail)?;
            if json {
                return crate::print_json(&l);
            }
            match &l.label {
                Some(n) => println!("{} is now “{n}”.", l.address),
                None => println!("{} has no name now.", l.address),
            }
            Ok(())
        }
        PayeeCmd::List { json } => {
            let list = e.payee_labels().map_err(fail)?;
            if json {
                return crate::print_json(&list);
            }
            if list.is_empty() {
                println!("No named payees. Name one: purser payee label 0x… \"Acme API\"");
            }
            for l in list {
                println!("{}  {}", l.address, l.label.unwrap_or_default());
            }
            Ok(())
        }
    }
}

//! `purser wallet`: create, import, export, lock, unlock and show the wallet, and how
//! `purser serve` unlocks it at start (the OS keychain, else `PURSER_PASSPHRASE`, else a prompt
//! on the terminal, else it starts locked). Lock and unlock go to the running daemon through its
//! control API; with none running they manage the keychain for the next start.

use crate::args::WalletCmd;
use anyhow::{bail, Context, Result};
use purser_core::engine::Engine;
use purser_core::wallet::custody::KeychainUnlock;
use purser_core::wallet::{keychain, Wallet, WalletError};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Printed (on stderr) before any export.
const EXPORT_WARNING: &str = "WARNING: whoever holds this private key can spend everything in this wallet, from anywhere, \
without Purser. Never paste it into a chat, an agent, a website or a shared terminal, and never store it unencrypted.";

/// How long `purser serve` waits for the OS keychain at start before using the passphrase.
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A core error with its code, as the CLI prints it.
fn coded(e: WalletError) -> anyhow::Error {
    anyhow::anyhow!("{e} ({})", e.code())
}

fn keystore_passphrase() -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("PURSER_KEYSTORE_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    Ok(Zeroizing::new(rpassword::prompt_password("Keystore passphrase: ").context("no PURSER_KEYSTORE_PASSPHRASE and no terminal to ask on")?))
}

/// Prints a checksummed address (`{"address": ...}` with `--json`).
fn print_address(address: String, json: bool) -> Result<()> {
    if json {
        crate::print_json(&json!({"address": address}))
    } else {
        println!("{address}");
        Ok(())
    }
}

pub async fn wallet(dir: &Path, cmd: WalletCmd) -> Result<()> {
    match cmd {
        WalletCmd::New { json } => print_address(Wallet::create(dir, &crate::passphrase(true)?).map_err(coded)?.to_checksum(None), json),
        WalletCmd::Import { key_file, keystore, json } => {
            let address = match (key_file, keystore) {
                (_, Some(ks)) => {
                    let ks_pass = keystore_passphrase()?;
                    Wallet::import_keystore(dir, &ks, &ks_pass, &crate::passphrase(true)?).map_err(coded)?
                }
                (Some(key_file), None) => {
                    let key = Zeroizing::new(std::fs::read_to_string(&key_file).with_context(|| format!("reading {}", key_file.display()))?);
                    Wallet::import(dir, &key, &crate::passphrase(true)?).map_err(coded)?
                }
                (None, None) => bail!("give --key-file FILE or --keystore FILE"),
            };
            print_address(address.to_checksum(None), json)
        }
        cmd @ (WalletCmd::Balance { .. } | WalletCmd::Fund { .. } | WalletCmd::Reconcile { .. }) => crate::chain::wallet(dir, cmd).await,
        WalletCmd::Address { json } => print_address(Wallet::address_of(dir).map_err(coded)?.to_checksum(None), json),
        WalletCmd::Export { keystore, yes_i_understand } => export(dir, keystore.as_deref(), yes_i_understand),
        WalletCmd::Unlock { remember, json } => unlock(dir, remember, json).await,
        WalletCmd::Lock { forget, json } => lock(dir, forget, json).await,
        WalletCmd::Status { json } => {
            let v = match crate::remote::daemon(dir) {
                Some(c) => crate::remote::call(&c, reqwest::Method::GET, "wallet", None).await?,
                None => local_status(dir),
            };
            print_status(&v, json)
        }
    }
}

fn export(dir: &Path, keystore: Option<&Path>, yes: bool) -> Result<()> {
    eprintln!("{EXPORT_WARNING}");
    if let Some(out) = keystore {
        let pass = crate::presence::typed(dir, "exporting the wallet's key")?;
        let address = Wallet::export_keystore(dir, &pass, out).map_err(coded)?;
        eprintln!("Wrote the key of {} to {} (a standard encrypted keystore; its passphrase is the wallet's).", address.to_checksum(None), out.display());
        return Ok(());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to print the private key: pass --yes-i-understand (or run it on a terminal and confirm)");
        }
        eprint!("Type \"export\" to print the private key: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "export" {
            bail!("not confirmed; nothing was printed");
        }
    }
    let pass = crate::presence::typed(dir, "exporting the wallet's key")?;
    let key = Wallet::export_key(dir, &pass).map_err(coded)?;
    println!("{}", key.as_str());
    Ok(())
}

/// The status when no daemon runs: locked, and whether the keychain remembers the wallet.
fn local_status(dir: &Path) -> Value {
    let address = Wallet::address_of(dir).ok();
    let (remembered, keychain, message) = match address.map(|a| keychain::load(dir, a)) {
        Some(Ok(found)) => (found.is_some(), "available", None),
        Some(Err(e)) => (false, "unavailable", Some(e.to_string())),
        None => (false, "unknown", None),
    };
    json!({"address": address.map(|a| a.to_checksum(None)), "locked": true, "remembered": remembered, "keychain": keychain, "keychain_message": message})
}

fn print_status(v: &Value, json: bool) -> Result<()> {
    if json {
        return crate::print_json(v);
    }
    let Some(address) = v["address"].as_str() else {
        println!("No wallet yet: run `purser wallet new` or `purser wallet import`.");
        return Ok(());
    };
    let state = if v["locked"].as_bool().unwrap_or(true) { "locked (payments are refused)" } else { "unlocked" };
    let remembered = if v["remembered"].as_bool().unwrap_or(false) { "; remembered on this computer" } else { "" };
    println!("{address}: {state}{remembered}");
    if let Some(m) = v["keychain_message"].as_str() {
        eprintln!("purser: {m}");
    }
    Ok(())
}

async fn unlock(dir: &Path, remember: bool, json: bool) -> Result<()> {
    let address = Wallet::address_of(dir).map_err(coded)?;
    let pass = crate::presence::typed(dir, "unlocking the wallet")?;
    if let Some(c) = crate::remote::daemon(dir) {
        let v = crate::remote::call(&c, reqwest::Method::POST, "wallet/unlock", Some(json!({"passphrase": pass.as_str(), "remember": remember}))).await?;
        return print_status(&v, json);
    }
    // No daemon: check the passphrase, and remember the unlocking secret for the next start.
    let (_wallet, kek) = Wallet::open(dir, &pass).map_err(coded)?;
    if remember {
        keychain::store(dir, address, &kek).map_err(coded)?;
    }
    let v = local_status(dir);
    if json {
        return crate::print_json(&v);
    }
    if remember {
        println!("The passphrase is right; the OS keychain now remembers this wallet, so `purser serve` starts unlocked.");
    } else {
        println!("The passphrase is right. No purser daemon is running: `purser serve` asks for it at start (--remember keeps it in the OS keychain).");
    }
    Ok(())
}

async fn lock(dir: &Path, forget: bool, json: bool) -> Result<()> {
    if let Some(c) = crate::remote::daemon(dir) {
        let v = crate::remote::call(&c, reqwest::Method::POST, "wallet/lock", Some(json!({"forget": forget}))).await?;
        return print_status(&v, json);
    }
    let address = Wallet::address_of(dir).map_err(coded)?;
    let forgot = if forget { Some(keychain::forget(dir, address).map_err(coded)?) } else { None };
    if json {
        return crate::print_json(&local_status(dir));
    }
    match forgot {
        Some(true) => println!("The OS keychain no longer remembers this wallet; `purser serve` will need the passphrase."),
        Some(false) => println!("The OS keychain did not remember this wallet; nothing to forget."),
        None => println!("No purser daemon is running, so no key is in memory: the wallet is locked."),
    }
    Ok(())
}

/// `purser serve`'s unlock at start: the keychain's remembered secret, else `PURSER_PASSPHRASE`,
/// else a prompt when stdin is a terminal, else the daemon starts locked (and says so).
pub async fn unlock_at_start(engine: &Arc<Engine>, dir: &Path) -> Result<()> {
    engine.set_data_dir(dir);
    if !Wallet::exists(dir) {
        eprintln!("purser: no wallet in {} yet; payments will be refused (run `purser wallet new` or `wallet import`)", dir.display());
        return Ok(());
    }
    let e = engine.clone();
    match tokio::time::timeout(KEYCHAIN_TIMEOUT, tokio::task::spawn_blocking(move || e.unlock_from_keychain())).await {
        Ok(Ok(KeychainUnlock::Unlocked)) => {
            eprintln!("purser: wallet unlocked with the secret the OS keychain remembers");
            return Ok(());
        }
        Ok(Ok(KeychainUnlock::Unavailable(m))) => eprintln!("purser: {m}; using the passphrase instead"),
        Ok(Ok(KeychainUnlock::Stale(m))) => eprintln!("purser: the OS keychain's remembered secret no longer opens this wallet ({m}); using the passphrase instead"),
        Ok(Ok(KeychainUnlock::NotRemembered | KeychainUnlock::NoWallet)) => {}
        Ok(Err(join)) => eprintln!("purser: the keychain lookup failed ({join}); using the passphrase instead"),
        Err(_) => eprintln!("purser: the OS keychain did not answer within {} s; using the passphrase instead", KEYCHAIN_TIMEOUT.as_secs()),
    }
    let pass = if purser_core::secrets::env_passphrase().is_some() || std::io::stdin().is_terminal() {
        crate::passphrase(false)?
    } else {
        eprintln!("purser: the wallet is locked (nothing remembered in the OS keychain, no PURSER_PASSPHRASE, no terminal): payments are refused (wallet_locked) until `purser wallet unlock`");
        return Ok(());
    };
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.unlock_wallet(&pass, false)).await?.map_err(|err| anyhow::anyhow!("unlocking the wallet: {err} ({})", err.code()))?;
    Ok(())
}

//! The `purser` binary: a thin command line and headless daemon over `purser-core`. It parses
//! arguments, finds the data dir and passphrase, calls core operations and prints the results
//! (human text, or JSON with `--json`). No logic of its own.

mod args;
mod ca;
mod chain;
mod commands;
mod demo;
mod limits;
mod presence;
mod remote;
mod rules;
mod run;
mod sandbox;
mod serve;
mod spending;
mod timeline;
mod verify;
mod wallet;

use anyhow::{Context, Result};
use args::{Cli, Command};
use clap::Parser;
use std::path::Path;

fn main() {
    // Everything Purser writes is the user's alone.
    sandbox::remember_umask(unsafe { libc::umask(0o077) });
    // Before any thread starts: the passphrase leaves the environment (and /proc/<pid>/environ).
    purser_core::secrets::take_from_env();
    let cli = Cli::parse();
    // A one-shot command piped into `head` should end quietly when the pipe closes, as other
    // command-line tools do, not panic on a failed print. The daemon keeps ignoring SIGPIPE so a
    // client hanging up never kills it.
    if !matches!(cli.command, Command::Serve { .. }) {
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    init_tracing(cli.verbose);
    if matches!(cli.command, Command::Serve { .. }) {
        // A thousand concurrent agents need about two thousand sockets.
        limits::raise_and_log();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail(anyhow::anyhow!("could not start the runtime: {e}")),
    };
    if let Err(e) = rt.block_on(run(cli)) {
        fail(e);
    }
}

fn fail(e: anyhow::Error) -> ! {
    // A coded error is `{code, message}` on stdout under --json (scripts read it there).
    if let Some(c) = e.downcast_ref::<presence::Coded>() {
        if std::env::args().any(|a| a == "--json") {
            println!("{}", serde_json::json!({"code": c.code, "message": c.message}));
        }
        eprintln!("purser: {} ({})", c.message, c.code);
    } else {
        eprintln!("purser: {e:#}");
    }
    std::process::exit(1);
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PURSER_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn run(cli: Cli) -> Result<()> {
    let dir = cli.data_dir.clone().unwrap_or_else(purser_core::datadir::default_dir);
    // Not in the sandbox: there the host is read-only and Purser's dirs are hidden.
    if !matches!(cli.command, Command::Sandbox(_)) {
        purser_core::datadir::ensure_private_dir(&dir).with_context(|| format!("data dir {}", dir.display()))?;
    }
    match cli.command {
        Command::Serve { port, grace_secs, no_notify, upstream_ca } => serve::run(&dir, port, grace_secs, !no_notify, cli.data_dir.is_some(), upstream_ca.as_deref()).await,
        Command::Ca(cmd) => ca::ca(&dir, cmd),
        Command::Wallet(cmd) => wallet::wallet(&dir, cmd).await,
        Command::Grant(cmd) => commands::grant(&dir, cmd).await,
        Command::Network(cmd) => chain::network(&dir, cmd),
        Command::Approvals(cmd) => remote::approvals(&dir, cmd).await,
        Command::Receipts(cmd) => commands::receipts(&dir, cmd),
        Command::Dev(cmd) => timeline::dev(&dir, cmd),
        Command::Rules(cmd) => rules::rules(&dir, cmd),
        Command::Payee(cmd) => rules::payee(&dir, cmd),
        Command::Pause { json } => spending::set(&dir, true, json).await,
        Command::Resume { json } => spending::set(&dir, false, json).await,
        Command::Demo(args) => demo::command(&dir, args).await,
        Command::Sandbox(cmd) => sandbox::command(cmd).await,
        Command::Run(args) => run::run(&dir, args).await,
    }
}

/// The passphrase for an unattended start or a new wallet: `PURSER_PASSPHRASE`, else a prompt
/// on the terminal (twice when `confirm`). Widening actions never use this: see `presence`.
pub fn passphrase(confirm: bool) -> Result<zeroize::Zeroizing<String>> {
    if let Some(p) = purser_core::secrets::env_passphrase() {
        return Ok(p);
    }
    let first = zeroize::Zeroizing::new(rpassword::prompt_password("Wallet passphrase: ").context("no PURSER_PASSPHRASE and no terminal to ask on")?);
    if confirm {
        let again = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat passphrase: ")?);
        anyhow::ensure!(*first == *again, "the passphrases differ");
    }
    Ok(first)
}

/// Opens the ledger in the data dir.
pub fn ledger(dir: &Path) -> Result<purser_core::ledger::Ledger> {
    purser_core::ledger::Ledger::open_in(dir).with_context(|| format!("opening the ledger in {}", dir.display()))
}

/// Prints JSON (pretty) on stdout.
pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// The proxy URL agents should use: the running daemon's, else the default port.
pub fn proxy_url(dir: &Path) -> String {
    purser_core::control::ControlFile::read(dir).map(|c| c.url).unwrap_or_else(|| "http://127.0.0.1:4020".into())
}

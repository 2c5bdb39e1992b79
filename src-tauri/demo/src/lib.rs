//! Owns the demo (`purser demo` and the desktop app's "Try it"): a whole Purser on 127.0.0.1 with nothing real at stake — a local test
//! chain and real x402 paywall (the reference peers, [`peers`]), a fresh demo wallet funded on
//! that chain, the demo grant, the proxy, and a sample agent ([`agent`]) whose calls cover every
//! kind of decision. It prints one line per decision from the ledger ([`lines`]) and a summary,
//! and stops everything it started. Its data lives in its own dir (`<data dir>/demo`, marked
//! `DEMO`), wiped at each start; the real wallet and ledger are never opened.
//!
//! Front ends call [`run`] (a line callback and a stop signal in, a typed [`Summary`] out), or
//! [`run_with`] to also get the demo's engine and proxy URL once it is up ([`Ready`]): the desktop
//! app shows the demo engine's data and answers its prompts itself (no `auto_answer`).

#![forbid(unsafe_code)]

pub mod agent;
pub mod lines;
pub mod peers;

use crate::lines::{summary_lines, usd6};
pub use crate::lines::{Summary, Tally};
use purser_core::control::ControlFile;
use purser_core::datadir::{self, DirLock, LockError, Owner};
use purser_core::decisions::Decision;
use purser_core::engine::{Engine, EngineError};
use purser_core::events::Event;
use purser_core::grants::GrantSpec;
use purser_core::ledger::{ChainReport, LedgerError};
use purser_core::presence::Presence;
use purser_core::wallet::Wallet;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The marker file that says a dir holds demo data (and may be wiped by the next demo).
pub const MARKER: &str = "DEMO";
/// The ledger setting that labels a demo ledger (`"1"`), for front ends to show "demo".
pub const DEMO_SETTING: &str = "demo";
/// The demo grant's label.
pub const GRANT_LABEL: &str = "demo agent";
/// Test USDC minted to the demo wallet at start (10 USDC, 6 decimals).
pub const FUND_ATOMIC: u128 = 10_000_000;
/// How long an approval in the demo waits for an answer.
const APPROVAL_TIMEOUT: &str = "2m";
/// How long the agent's call in flight may take to be decided after Ctrl-C.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// What `--auto-answer approve` adds to its approval: the rest of the run pays this host
/// without asking, within the grant (so the budget runs out on a single prompt).
const ALLOW_FOR: &str = "10m";

/// How `--auto-answer` answers each prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoAnswer {
    /// Approve, and let the grant pay this host up to that price for 10 minutes without asking.
    Approve,
    /// Deny.
    Deny,
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The demo dir (wiped and recreated).
    pub dir: PathBuf,
    /// The user's real data dir: never used as the demo dir, never opened.
    pub real_data_dir: PathBuf,
    pub peers_dir: Option<PathBuf>,
    pub auto_answer: Option<AutoAnswer>,
    /// How long the auto-answer waits before answering (so the prompt is seen).
    pub answer_delay: Duration,
    /// Raise desktop notifications for prompts (only without `auto_answer`).
    pub notify: bool,
    /// After the summary, keep everything up until `stop`.
    pub keep_running: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo needs the x402 reference peers (peers.mjs), not found at {0}: run it from a Purser source checkout, or point --peers-dir / PURSER_PEERS_DIR at its tests/peers (then `bash tests/peers/setup.sh`; Node.js >= 20)")]
    NeedsPeers(PathBuf),
    #[error("the x402 reference peers at {0} are not installed: run `bash {0}/setup.sh` once (npm, from the lock files; Node.js >= 20)")]
    PeersNotInstalled(PathBuf),
    #[error("the demo needs Node.js >= 20 for the x402 reference peers: {0}")]
    NeedsNode(String),
    #[error("the demo's chain and paywall did not start: {0}")]
    PeersFailed(String),
    #[error("{0} is not a demo dir (not empty and no DEMO file); the demo wipes its dir, so pick an empty or new one with --dir")]
    NotADemoDir(PathBuf),
    #[error("demo I/O failed: {0}")]
    Io(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Network(#[from] purser_core::networks::NetworkError),
    #[error("the demo was interrupted; everything it started was stopped")]
    Interrupted,
}

impl DemoError {
    pub fn code(&self) -> purser_core::api::ErrorCode {
        match self {
            DemoError::NeedsPeers(_) => purser_core::api::ErrorCode::DemoNeedsPeers,
            DemoError::PeersNotInstalled(_) => purser_core::api::ErrorCode::DemoPeersNotInstalled,
            DemoError::NeedsNode(_) => purser_core::api::ErrorCode::DemoNeedsNode,
            DemoError::PeersFailed(_) => purser_core::api::ErrorCode::DemoPeersFailed,
            DemoError::NotADemoDir(_) => purser_core::api::ErrorCode::DemoDirNotDemo,
            DemoError::Io(_) => purser_core::api::ErrorCode::DemoIo,
            DemoError::Lock(e) => e.code(),
            DemoError::Engine(e) => e.code(),
            DemoError::Ledger(e) => e.code(),
            DemoError::Network(e) => e.code(),
            DemoError::Interrupted => purser_core::api::ErrorCode::DemoInterrupted,
        }
    }
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> DemoError + '_ {
    move |e| DemoError::Io(format!("{}: {e}", what.display()))
}

/// Empties `dir` for a new demo (refusing a dir that is not a demo's) and takes it.
fn prepare_dir(dir: &Path, real: &Path) -> Result<DirLock, DemoError> {
    let same = |a: &Path, b: &Path| a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
    if same(dir, real) {
        return Err(DemoError::NotADemoDir(dir.to_path_buf()));
    }
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?.flatten().map(|e| e.file_name());
        let empty = entries.all(|n| n == datadir::LOCK_FILE);
        if !empty && !dir.join(MARKER).is_file() {
            return Err(DemoError::NotADemoDir(dir.to_path_buf()));
        }
    }
    datadir::ensure_private_dir(dir).map_err(io(dir))?;
    let lock = datadir::lock_exclusive(dir, Owner::Daemon)?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        if entry.file_name() == datadir::LOCK_FILE {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        gone.map_err(io(&path))?;
    }
    let note = "Purser demo data: a local test chain's wallet and receipts, no real money.\nRecreated (wiped) by every `purser demo`; safe to delete.\n";
    datadir::write_private(&dir.join(MARKER), note.as_bytes()).map_err(io(dir))?;
    Ok(lock)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a front end gets once the demo is up (chain, paywall, wallet unlocked, proxy listening),
/// before the grant is created and the agent starts.
#[derive(Clone)]
pub struct Ready {
    /// The demo's engine (its own ledger and wallet in the demo dir): read it, and answer its
    /// prompts (`Engine::decide`) when no `auto_answer` is set.
    pub engine: Arc<Engine>,
    /// The demo proxy, `http://127.0.0.1:PORT`.
    pub proxy_url: String,
    /// The demo chain's JSON-RPC URL.
    pub rpc: String,
    /// The demo paywall (x402 v2 reference server).
    pub paywall: String,
    /// The demo wallet's address (checksummed).
    pub wallet: String,
}

/// Runs the demo: every line goes to `on_line` as it happens; `stop` turning true (Ctrl-C)
/// ends it early, cleaning up all the same.
pub async fn run(opts: &Options, on_line: impl FnMut(&str) + Send, stop: watch::Receiver<bool>) -> Result<Summary, DemoError> {
    run_with(opts, |_| {}, on_line, stop).await
}

/// The milestones [`run_with`] reports besides the lines.
pub enum Progress<'a> {
    /// The demo's engine and proxy are up.
    Ready(Ready),
    /// The agent is done; with `keep_running` the demo stays up until `stop`.
    Summary(&'a Summary),
}

/// [`run`], also reporting [`Progress`]: the demo's engine and proxy once they are up, the
/// summary as soon as the agent is done. Everything the demo started has stopped when this
/// returns, whatever the outcome.
pub async fn run_with(opts: &Options, mut on_progress: impl FnMut(Progress<'_>) + Send, mut on_line: impl FnMut(&str) + Send, stop: watch::Receiver<bool>) -> Result<Summary, DemoError> {
    let peers_dir = peers::locate(opts.peers_dir.as_deref())?;
    peers::check_node().await?;
    let _lock = prepare_dir(&opts.dir, &opts.real_data_dir)?;
    on_line(&format!("demo      data in {} (its own ledger and wallet, marked DEMO; wiped at each demo)", opts.dir.display()));

    // The demo wallet: a fresh random key sealed in the demo dir with a random passphrase that
    // only this process ever holds.
    let passphrase = zeroize::Zeroizing::new(purser_core::auth::new_token("demo-"));
    let (dir, pass) = (opts.dir.clone(), passphrase.clone());
    let address = tokio::task::spawn_blocking(move || Wallet::create(&dir, &pass)).await.map_err(|e| DemoError::Io(e.to_string()))?.map_err(EngineError::from)?;
    let wallet = address.to_checksum(None);

    let logs = opts.dir.join("peers");
    let peers = tokio::select! {
        p = peers::start(&peers_dir, (&wallet, FUND_ATOMIC), &logs) => p?,
        _ = stopped(stop.clone()) => return Err(DemoError::Interrupted),
    };
    let ep = peers.endpoints.clone();
    on_line(&format!("chain     {} (local anvil, chain id {}, test USDC {}; logs in {})", ep.rpc, ep.chain_id, ep.token, logs.display()));
    on_line(&format!("paywall   {} (x402 v2 reference server: /cheap $0.001, /mid $0.05, /pricey $2.00)", ep.paywall));
    on_line(&format!("wallet    {wallet} (demo wallet, funded with {} test USDC)", usd6(FUND_ATOMIC as u64).trim_start_matches('$')));
    // Approving at a terminal needs the wallet's passphrase (user presence): the demo wallet's
    // own, which holds only local test money, is shown so the printed commands work.
    on_line(&format!("wallet    passphrase {} (asked by `approvals approve`; test money on a local chain only)", passphrase.as_str()));
    let result = with_peers(opts, &ep, &wallet, &passphrase, &mut on_progress, &mut on_line, stop).await;
    peers.stop().await;
    on_line("stopped   proxy, paywall, facilitator and chain: nothing the demo started is running");
    result
}

/// Everything between the peers' start and stop.
#[allow(clippy::too_many_arguments)]
async fn with_peers(
    opts: &Options,
    ep: &peers::Endpoints,
    wallet: &str,
    passphrase: &str,
    on_progress: &mut (impl FnMut(Progress<'_>) + Send),
    on_line: &mut (impl FnMut(&str) + Send),
    stop: watch::Receiver<bool>,
) -> Result<Summary, DemoError> {
    let dir = &opts.dir;
    // Balances and reconciliation in the demo dir read the demo chain, never a public RPC.
    purser_core::networks::NetworkConfig::set_rpc(dir, "base-sepolia", Some(&ep.rpc))?;
    let ledger = purser_core::ledger::Ledger::open_in(dir)?;
    let engine = Arc::new(Engine::new(ledger, None)?);
    engine.set_setting(DEMO_SETTING, "1")?;
    engine.set_data_dir(dir);
    // The demo's own wallet, its passphrase made by the demo: the person who started the demo
    // is its user, so opening it is also the presence the demo's grant and auto-answers carry.
    let (e, pass) = (engine.clone(), zeroize::Zeroizing::new(passphrase.to_string()));
    let (_, presence) = tokio::task::spawn_blocking(move || e.unlock_wallet_present(&pass, false)).await.map_err(|e| DemoError::Io(e.to_string()))??;

    let proxy = purser_core::proxy::start(engine.clone(), 0, Duration::from_secs(5)).await.map_err(|e| DemoError::Io(e.to_string()))?;
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let runs = purser_core::runs::Runs::new(None);
    let _control = purser_core::control::socket::publish(engine.clone(), runs, dir, &proxy_url).await.map_err(io(dir))?;
    let prompter = (opts.auto_answer.is_none() && opts.notify).then(|| {
        let opener = purser_core::notify::PrintCommand::new(Some(dir.clone()));
        purser_core::notify::spawn(engine.clone(), Arc::new(purser_core::notify::desktop::DesktopNotifier::new()), Arc::new(opener))
    });
    on_line(&format!("proxy     {proxy_url} (Purser, in this process)"));
    on_progress(Progress::Ready(Ready { engine: engine.clone(), proxy_url: proxy_url.clone(), rpc: ep.rpc.clone(), paywall: ep.paywall.clone(), wallet: wallet.to_string() }));

    let result = session(&engine, presence, opts, ep, wallet, &proxy_url, on_progress, on_line, stop).await;
    let _ = std::fs::remove_file(ControlFile::path(dir));
    proxy.shutdown().await;
    if let Some(p) = prompter {
        p.shutdown().await;
    }
    engine.lock_wallet(false);
    result
}

/// The demo grant, the agent's run with its lines, and the summary.
#[allow(clippy::too_many_arguments)]
async fn session(
    engine: &Arc<Engine>,
    presence: Presence,
    opts: &Options,
    ep: &peers::Endpoints,
    wallet: &str,
    proxy_url: &str,
    on_progress: &mut (impl FnMut(Progress<'_>) + Send),
    on_line: &mut (impl FnMut(&str) + Send),
    stop: watch::Receiver<bool>,
) -> Result<Summary, DemoError> {
    let host = reqwest::Url::parse(&ep.paywall)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .ok_or_else(|| DemoError::PeersFailed(format!("paywall URL {}", ep.paywall)))?;
    let spec = GrantSpec {
        label: GRANT_LABEL.into(),
        budget: "1.00".into(),
        expires: "30m".into(),
        hosts: vec![host.clone()],
        networks: vec!["base-sepolia".into()],
        auto_below: Some("0.01".into()),
        ask_below: Some("0.25".into()),
        approval_timeout: Some(APPROVAL_TIMEOUT.into()),
        ..Default::default()
    };
    let grant = engine.create_grant(&spec, Some(&presence))?;
    on_line(&format!("grant     \"{GRANT_LABEL}\": $1.00 for 30 minutes on {host}, auto below $0.01, ask below $0.25 (id {})", grant.grant.id));
    on_line("agent     3x /cheap, 1x /mid (asks you), 1x /pricey, then /mid until Purser refuses (only if the first /mid was approved)");
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().map_err(|e| DemoError::Io(e.to_string()))?;
    let payee_before = peers::usdc_balance(&http, ep, &ep.pay_to).await?;
    let agent = agent::Agent::new(proxy_url, &grant.token, &ep.paywall).map_err(|e| DemoError::Io(e.to_string()))?;
    let (requests, interrupted) = drive(engine, presence, opts, &agent, on_line, stop.clone()).await?;
    if interrupted {
        return Err(DemoError::Interrupted);
    }
    let payee_after = peers::usdc_balance(&http, ep, &ep.pay_to).await?;
    let summary = summarize(engine, opts, &grant.grant.id, wallet, ep, payee_after.saturating_sub(payee_before), requests).await?;
    for l in summary_lines(&summary) {
        on_line(&l);
    }
    on_progress(Progress::Summary(&summary));
    if opts.keep_running {
        on_line("running   the chain, paywall and proxy stay up until Ctrl-C (or SIGTERM)");
        stopped(stop.clone()).await;
    }
    Ok(summary)
}

/// Runs the agent while printing each decision from the ledger as it is recorded, and answering
/// prompts when asked to. Returns how many requests the agent made, and whether `stop` cut the
/// run short: then held prompts are refused (`shutting_down`, with receipts), the agent makes no
/// new call, and its call in flight gets up to [`STOP_GRACE`] to be decided and recorded.
async fn drive(
    engine: &Arc<Engine>,
    presence: Presence,
    opts: &Options,
    agent: &agent::Agent,
    on_line: &mut (impl FnMut(&str) + Send),
    stop: watch::Receiver<bool>,
) -> Result<(usize, bool), DemoError> {
    let mut events = engine.subscribe();
    let mut printed = HashSet::new();
    let mut answers = tokio::task::JoinSet::new();
    let run = agent.run(stop.clone());
    tokio::pin!(run);
    let stop_signal = stopped(stop.clone());
    tokio::pin!(stop_signal);
    let grace = tokio::time::sleep(Duration::from_secs(365 * 86_400));
    tokio::pin!(grace);
    let mut interrupted = false;
    let agent_run = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = &mut stop_signal, if !interrupted => {
                interrupted = true;
                answers.abort_all();
                engine.close_approvals();
                grace.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
            }
            _ = &mut grace, if interrupted => break agent::AgentRun::default(),
            ev = events.recv() => match ev {
                Ok(Event::ReceiptAdded { .. }) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => print_new(engine, &mut printed, on_line).await?,
                Ok(Event::ApprovalPending { id }) => {
                    let Some(a) = engine.approval(&id) else { continue };
                    let path = reqwest::Url::parse(&a.url).map(|u| u.path().to_string()).unwrap_or_else(|_| a.url.clone());
                    let price = purser_core::money::parse_usd(&a.amount_usd).map(usd6).unwrap_or_else(|_| a.amount_usd.clone());
                    match opts.auto_answer {
                        Some(answer) => {
                            let what = match answer {
                                AutoAnswer::Approve => format!("approve (and let this host be paid up to ${} for {ALLOW_FOR} without asking)", a.amount_usd),
                                AutoAnswer::Deny => "deny".into(),
                            };
                            on_line(&format!("prompt    {price}  {} {path} is waiting for an answer; auto-answer: {what} in {} ms", a.method, opts.answer_delay.as_millis()));
                            let (e, delay) = (engine.clone(), opts.answer_delay);
                            answers.spawn(async move {
                                tokio::time::sleep(delay).await;
                                let d = match answer {
                                    AutoAnswer::Approve => Decision { approve: true, allow_for: Some(ALLOW_FOR.into()), ..Default::default() },
                                    AutoAnswer::Deny => Decision { approve: false, ..Default::default() },
                                };
                                if let Err(err) = e.decide(&id, &d, presence) {
                                    tracing::warn!(error = %err, approval = %id, "the demo's auto-answer failed");
                                }
                            });
                        }
                        None => {
                            let p = format!("purser --data-dir {}", opts.dir.display());
                            on_line(&format!("prompt    {price}  {} {path} is waiting for you (desktop notification, or type):", a.method));
                            on_line(&format!("              {p} approvals approve {id} --allow-for {ALLOW_FOR}"));
                            on_line(&format!("              {p} approvals deny {id}"));
                        }
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
            },
        }
    };
    answers.abort_all();
    // Decisions recorded after the agent's last answer arrived.
    print_new(engine, &mut printed, on_line).await?;
    Ok((agent_run.requests, interrupted))
}

/// Prints the receipts not printed yet, in chain order.
async fn print_new(engine: &Engine, printed: &mut HashSet<String>, on_line: &mut (impl FnMut(&str) + Send)) -> Result<(), DemoError> {
    let mut list = engine.receipts(1000).await?;
    list.reverse();
    for r in list {
        if printed.insert(r.id.clone()) {
            on_line(&lines::decision_line(&r));
        }
    }
    Ok(())
}

async fn summarize(engine: &Engine, opts: &Options, grant_id: &str, wallet: &str, ep: &peers::Endpoints, received: u128, agent_requests: usize) -> Result<Summary, DemoError> {
    let gid = grant_id.to_string();
    // Every paid receipt checked against the chain, as the app's background task does.
    let reconciled = match engine.reconcile_once(&opts.dir).await {
        Ok(r) if r.errors.is_empty() => r.checked.iter().fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.state.clone()).or_insert(0usize) += 1;
            m
        }),
        Ok(r) => BTreeMap::from([(format!("error: {}", r.errors[0].error.message), 1)]),
        Err(e) => BTreeMap::from([(format!("error: {e}"), 1)]),
    };
    let (receipts, grant, report) = (engine.receipts(1000).await?, engine.grant_record(&gid).await?, engine.verify_chain().await?);
    let mut tally = Tally::default();
    receipts.iter().rev().for_each(|r| tally.add(r));
    Ok(Summary {
        dir: opts.dir.clone(),
        auto_answer: opts.auto_answer,
        grant_id: grant_id.to_string(),
        tally,
        budget_micros: grant.limits.budget,
        spent_micros: grant.spent,
        remaining_micros: grant.remaining(),
        wallet: wallet.to_string(),
        pay_to: ep.pay_to.clone(),
        payee_received_atomic: received,
        receipts_verified: match report {
            ChainReport::Intact { count, .. } => Some(count),
            _ => None,
        },
        agent_requests,
        reconciled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_dir_is_wiped_only_when_it_is_a_demo_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("data");
        std::fs::create_dir_all(&real).unwrap();
        assert_eq!(prepare_dir(&real, &real).unwrap_err().code(), "demo_dir_not_demo");

        let other = tmp.path().join("notes");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("keep.txt"), "mine").unwrap();
        assert_eq!(prepare_dir(&other, &real).unwrap_err().code(), "demo_dir_not_demo");
        assert_eq!(std::fs::read_to_string(other.join("keep.txt")).unwrap(), "mine");

        let demo = real.join("demo");
        let lock = prepare_dir(&demo, &real).unwrap();
        assert!(demo.join(MARKER).is_file());
        assert_eq!(prepare_dir(&demo, &real).unwrap_err().code(), "already_running", "one demo per dir at a time");
        drop(lock);
        std::fs::create_dir_all(demo.join("peers")).unwrap();
        std::fs::write(demo.join("purser.db"), "old").unwrap();
        let _lock = prepare_dir(&demo, &real).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&demo).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [MARKER, datadir::LOCK_FILE], "a previous demo's data is wiped");
    }
}

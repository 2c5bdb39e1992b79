//! Owns the demo's local world: finding the x402 reference peers (`tests/peers/peers.mjs`:
//! anvil with a test USDC, the reference facilitator and paywall servers), starting them on
//! 127.0.0.1 with the demo wallet funded, reading their one JSON line, and stopping them so that
//! nothing survives (stdin EOF, then a kill on timeout; peers.mjs kills its own children).

use crate::DemoError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The peers directory of the source tree this binary was built from.
const SOURCE_TREE_PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/peers");
/// How long the peers get to print their JSON line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the peers get to stop after their stdin closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the peers are: `--peers-dir`, else `PURSER_PEERS_DIR` (clap fills both into `explicit`),
/// else the source tree known at compile time.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, DemoError> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(SOURCE_TREE_PEERS),
    };
    if !dir.join("peers.mjs").is_file() {
        return Err(DemoError::NeedsPeers(dir));
    }
    let dir = dir.canonicalize().map_err(|e| DemoError::Io(format!("{}: {e}", dir.display())))?;
    // setup.sh installs both package dirs; either one missing means it has not run.
    if !dir.join("node_modules").is_dir() || !dir.join("v1/node_modules").is_dir() {
        return Err(DemoError::PeersNotInstalled(dir));
    }
    Ok(dir)
}

/// Node.js >= 20 on the PATH, or a named error.
pub async fn check_node() -> Result<(), DemoError> {
    let out = Command::new("node").arg("--version").stdin(Stdio::null()).output().await.map_err(|e| DemoError::NeedsNode(format!("node could not be started ({e})")))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 20 => Ok(()),
        _ => Err(DemoError::NeedsNode(format!("found node {version:?}"))),
    }
}

/// The endpoints the peers reported.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub rpc: String,
    pub chain_id: u64,
    /// The reference v2 paywall server (no trailing slash).
    pub paywall: String,
    pub token: String,
    pub pay_to: String,
}

/// The running peers. Dropping this kills `peers.mjs` (its children die with it: pdeathsig).
pub struct Peers {
    child: Child,
    stdin: Option<ChildStdin>,
    pub endpoints: Endpoints,
}

/// Starts `node peers.mjs --facilitator real --fund ADDR:ATOMIC --log-dir LOGS` and waits for
/// its JSON line. Its stderr goes to `LOGS/peers.stderr` (quoted in the error when it fails).
pub async fn start(dir: &Path, fund: (&str, u128), logs: &Path) -> Result<Peers, DemoError> {
    purser_core::datadir::ensure_private_dir(logs).map_err(|e| DemoError::Io(format!("{}: {e}", logs.display())))?;
    let stderr_path = logs.join("peers.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| DemoError::Io(format!("{}: {e}", stderr_path.display())))?;
    let mut child = Command::new("node")
        .arg(dir.join("peers.mjs"))
        .args(["--facilitator", "real", "--fund", &format!("{}:{}", fund.0, fund.1), "--log-dir"])
        .arg(logs)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DemoError::NeedsNode(format!("node could not be started ({e})")))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or_else(|| DemoError::Io("no stdout pipe to the peers".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let failed = |why: String| DemoError::PeersFailed(format!("{why}; {}:\n{}", stderr_path.display(), tail(&stderr_path, 20)));
    let line = match tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            match lines.next_line().await {
                Ok(Some(l)) if l.trim_start().starts_with('{') => return Ok(l),
                Ok(Some(_)) => continue,
                Ok(None) => return Err("the peers exited before they were ready".to_string()),
                Err(e) => return Err(format!("reading the peers' output: {e}")),
            }
        }
    })
    .await
    {
        Ok(Ok(l)) => l,
        Ok(Err(why)) => return Err(failed(why)),
        Err(_) => return Err(failed(format!("the peers were not ready within {} s", READY_TIMEOUT.as_secs()))),
    };
    // Keep draining stdout so peers.mjs never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let endpoints = parse(&line).map_err(|why| failed(format!("unexpected JSON line from the peers ({why}): {line}")))?;
    Ok(Peers { child, stdin, endpoints })
}

fn parse(line: &str) -> Result<Endpoints, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let s = |k: &str| v[k].as_str().map(|s| s.trim_end_matches('/').to_string()).ok_or_else(|| format!("no {k:?}"));
    Ok(Endpoints { rpc: s("rpc")?, chain_id: v["chainId"].as_u64().ok_or("no \"chainId\"")?, paywall: s("v2")?, token: s("token")?, pay_to: s("payTo")? })
}

impl Peers {
    /// Closes the peers' stdin (they stop every child and exit) and waits; kills on timeout.
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the peers did not stop within {} s; killing them", STOP_TIMEOUT.as_secs());
                let _ = self.child.kill().await;
            }
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The test USDC balance of `addr` on the demo chain, in atomic units (`balanceOf` over JSON-RPC).
pub async fn usdc_balance(http: &reqwest::Client, ep: &Endpoints, addr: &str) -> Result<u128, DemoError> {
    let data = format!("0x70a08231{:0>64}", addr.trim_start_matches("0x").to_ascii_lowercase());
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"to": ep.token, "data": data}, "latest"]});
    let bad = |why: String| DemoError::PeersFailed(format!("reading a balance on the demo chain: {why}"));
    let v: serde_json::Value = http.post(&ep.rpc).json(&body).send().await.map_err(|e| bad(e.to_string()))?.json().await.map_err(|e| bad(e.to_string()))?;
    let hex = v["result"].as_str().ok_or_else(|| bad(format!("no result in {v}")))?;
    let digits = hex.trim_start_matches("0x").trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    u128::from_str_radix(digits, 16).map_err(|e| bad(format!("{hex}: {e}")))
}

//! The real x402 peers: spawns `node tests/peers/peers.mjs` (anvil + reference facilitator +
//! reference v2/v1 paywall servers), reads its one JSON line, kills it on Drop.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Real,
    SigOnly,
    FailSettle,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::SigOnly => "sigonly",
            Mode::FailSettle => "failsettle",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Account {
    pub index: u64,
    pub address: String,
    pub private_key: String,
}

pub struct Peers {
    pub rpc: String,
    pub chain_id: u64,
    pub facilitator: String,
    /// Base URL of the reference v2 paywall server (no trailing slash).
    pub v2: String,
    /// Base URL of the reference v1 paywall server (no trailing slash).
    pub v1: String,
    pub token: String,
    pub pay_to: String,
    pub pay_to_alt: String,
    pub payer_address: String,
    pub payer_key: String,
    pub accounts: Vec<Account>,
    pub mode: String,
    /// The whole JSON line, for anything not lifted into a field.
    pub raw: Value,
    child: Child,
    _stdin: ChildStdin,
    log_dir: tempfile::TempDir,
}

static SETUP: OnceLock<Result<(), String>> = OnceLock::new();

/// Runs `bash tests/peers/setup.sh` once per test process (installs the peers' npm deps).
/// `PURSER_E2E_SKIP_PEERS_SETUP=1` skips it (deps already installed).
pub fn ensure_setup() {
    let res = SETUP.get_or_init(|| {
        if std::env::var_os("PURSER_E2E_SKIP_PEERS_SETUP").is_some_and(|v| v == "1") {
            return Ok(());
        }
        let root = crate::repo_root();
        let script = root.join("tests/peers/setup.sh");
        if !script.exists() {
            return Err(format!("{} does not exist", script.display()));
        }
        let mut cmd = Command::new("bash");
        cmd.arg(&script).current_dir(&root);
        let out = proc::run_with_timeout(cmd, Duration::from_secs(900));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("setup.sh failed ({}):\n--- stdout\n{}\n--- stderr\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
        }
    });
    if let Err(e) = res {
        panic!("peers setup: {e}");
    }
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("peers JSON has no string {key:?}: {v}")).trim_end_matches('/').to_string()
}

impl Peers {
    pub fn start(mode: Mode) -> Peers {
        Self::start_with(mode, &[])
    }

    /// `fund`: extra (address, atomic) balances minted at startup (`--fund 0xADDR:ATOMIC`).
    pub fn start_with(mode: Mode, fund: &[(&str, u128)]) -> Peers {
        ensure_setup();
        let root = crate::repo_root();
        let log_dir = tempfile::Builder::new().prefix("purser-peers-").tempdir().expect("tempdir");
        let mut cmd = Command::new("node");
        cmd.arg(root.join("tests/peers/peers.mjs")).arg("--facilitator").arg(mode.arg()).arg("--log-dir").arg(log_dir.path());
        for (addr, atomic) in fund {
            cmd.arg("--fund").arg(format!("{addr}:{atomic}"));
        }
        cmd.current_dir(&root).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(proc::log_stdio(&log_dir.path().join("peers.stderr")));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn node peers: {e}"));
        let stdin = child.stdin.take().unwrap();
        let lines = proc::line_reader(child.stdout.take().unwrap(), &log_dir.path().join("peers.stdout"));
        let deadline = Instant::now() + Duration::from_secs(120);
        let info: Value = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(500))) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v.get("rpc").is_some() {
                            break v;
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        panic!("peers exited ({st}) before printing their JSON line; stderr:\n{}", proc::tail(&log_dir.path().join("peers.stderr"), 60));
                    }
                    if Instant::now() >= deadline {
                        proc::terminate(&mut child, Duration::from_secs(5));
                        panic!("peers printed no JSON line within 120 s; stderr:\n{}", proc::tail(&log_dir.path().join("peers.stderr"), 60));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let st = proc::wait_timeout(&mut child, Duration::from_secs(5));
                    panic!("peers closed stdout ({st:?}) before printing their JSON line; stderr:\n{}", proc::tail(&log_dir.path().join("peers.stderr"), 60));
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let payer = &info["payer"];
        let accounts = info["accounts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| Account {
                        index: x["index"].as_u64().unwrap_or(0),
                        address: x["address"].as_str().unwrap_or_default().to_string(),
                        private_key: x["privateKey"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Peers {
            rpc: s(&info, "rpc"),
            chain_id: info["chainId"].as_u64().unwrap_or(0),
            facilitator: s(&info, "facilitator"),
            v2: s(&info, "v2"),
            v1: s(&info, "v1"),
            token: s(&info, "token"),
            pay_to: s(&info, "payTo"),
            pay_to_alt: s(&info, "payToAlt"),
            payer_address: s(payer, "address"),
            payer_key: s(payer, "privateKey"),
            accounts,
            mode: info["mode"].as_str().unwrap_or_default().to_string(),
            raw: info,
            child,
            _stdin: stdin,
            log_dir,
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.log_dir.path().to_path_buf()
    }

    /// The last lines of every log the peers wrote (for failure messages).
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.log_dir.path()) {
            let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.is_file() {
                    out.push_str(&format!("--- {} (tail)\n{}\n", p.display(), proc::tail(&p, n)));
                }
            }
        }
        out
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== peers logs at failure ===\n{}", self.log_tails(30));
        }
        proc::terminate(&mut self.child, Duration::from_secs(10));
    }
}

//! Owns the Node side: the x402 reference peers (`node tests/peers/peers.mjs --facilitator
//! sigonly`: anvil, the reference facilitator, the @x402/express v2 paywall) as a child that
//! dies with us, and runs of the reference client (`tests/bench/ref-client.mjs`).

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// Why the Node parts cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    let root = repo_root();
    if !root.join("tests/peers/peers.mjs").is_file() {
        return Some("tests/peers/peers.mjs is missing".into());
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("node is not on PATH (Node 20+ is needed for the reference peers)".into()),
    }
}

/// Installs the peers' npm packages if needed (`bash tests/peers/setup.sh`, bounded to 10 min).
pub fn setup() -> Result<()> {
    let root = repo_root();
    let mut child = Command::new("bash").arg(root.join("tests/peers/setup.sh")).current_dir(&root).stdin(Stdio::null()).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(st) = child.try_wait()? {
            return if st.success() { Ok(()) } else { Err(anyhow!("tests/peers/setup.sh failed: {st}")) };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("tests/peers/setup.sh took over 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The running peers; stopped (stdin closed, SIGTERM, then SIGKILL) on drop.
pub struct Peers {
    /// Base URL of the reference v2 paywall server.
    pub v2: String,
    pub facilitator: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub log_dir: tempfile::TempDir,
}

impl Peers {
    /// Starts the peers with the sigonly facilitator and waits (up to 120 s) for their JSON line.
    pub fn start() -> Result<Peers> {
        let root = repo_root();
        let log_dir = tempfile::Builder::new().prefix("purser-bench-peers-").tempdir()?;
        let stderr = std::fs::File::create(log_dir.path().join("peers.stderr"))?;
        let mut child = Command::new("node")
            .arg(root.join("tests/peers/peers.mjs"))
            .args(["--facilitator", "sigonly", "--log-dir"])
            .arg(log_dir.path())
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("cannot spawn node tests/peers/peers.mjs")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line); // after the first line nobody listens; keep draining
            }
        });
        let mut peers = Peers { v2: String::new(), facilitator: String::new(), child, stdin, log_dir };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v.get("v2").is_some() {
                            let s = |k: &str| v[k].as_str().unwrap_or_default().trim_end_matches('/').to_string();
                            peers.v2 = s("v2");
                            peers.facilitator = s("facilitator");
                            return Ok(peers);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(st)) = peers.child.try_wait() {
                        bail!("the peers exited ({st}) before they were ready: {}", peers.stderr_tail());
                    }
                }
                Err(_) => bail!("the peers printed no ready line within 120 s: {}", peers.stderr_tail()),
            }
        }
    }

    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_dir.path().join("peers.stderr")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `node tests/bench/ref-client.mjs --url URL --n N` (bounded by `max_secs`) and returns
/// its JSON result line: `{n, ok, failed, p50Ms, meanMs, ..., firstError}`.
pub fn run_ref_client(url: &str, n: usize, max_secs: u64) -> Result<Value> {
    let root = repo_root();
    let out_path = tempfile::Builder::new().prefix("purser-bench-ref-").suffix(".out").tempfile()?;
    let err_path = tempfile::Builder::new().prefix("purser-bench-ref-").suffix(".err").tempfile()?;
    let mut child = Command::new("node")
        .arg(root.join("tests/bench/ref-client.mjs"))
        .args(["--url", url, "--n", &n.to_string(), "--max-secs", &max_secs.to_string()])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(out_path.reopen()?)
        .stderr(err_path.reopen()?)
        .spawn()
        .context("cannot spawn node tests/bench/ref-client.mjs")?;
    let deadline = Instant::now() + Duration::from_secs(max_secs + 30);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("ref-client.mjs ran over {} s", max_secs + 30);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(out_path.path()).unwrap_or_default();
    let err = std::fs::read_to_string(err_path.path()).unwrap_or_default();
    let last = out.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok());
    match last {
        Some(v) if v.get("n").is_some() => Ok(v),
        _ => Err(anyhow!("ref-client.mjs ({status}) printed no result; stderr: {}", err.trim().chars().take(1500).collect::<String>())),
    }
}

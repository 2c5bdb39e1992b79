//! Owns Purser under test, in-process on a runtime of its own (as the daemon would have):
//! a fresh ledger in a temp dir (SQLite, WAL, synchronous=FULL, as Purser opens it), the anvil
//! account-1 key as the wallet, one auto-approving grant for 127.0.0.1, and the gateway listener.

use anyhow::{anyhow, Context, Result};
use purser_core::engine::Engine;
use purser_core::grants::GrantSpec;
use purser_core::ledger::Ledger;
use purser_core::proxy::{self, ProxyHandle};
use purser_core::wallet::Wallet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// anvil account 1: the Node peers fund it, so the reference facilitator accepts its signatures.
pub const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// /dev/shm when it is a tmpfs mount: where the diagnostic run puts its ledger so that fsync
/// costs nothing (to show what durability costs; Purser itself never runs like that).
pub fn tmpfs_dir() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let is_shm = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>() == ["tmpfs", "/dev/shm", "tmpfs"];
    mounts.lines().any(is_shm).then(|| "/dev/shm".into())
}

/// A running Purser gateway and the grant token agents use.
pub struct Purser {
    pub addr: SocketAddr,
    pub token: String,
    pub threads: usize,
    /// Held for the gateway's life.
    _engine: Arc<Engine>,
    handle: Option<ProxyHandle>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl Purser {
    /// Starts Purser on a multi-thread runtime with `threads` workers (call from outside any
    /// runtime). The ledger lives in a new temp dir under `ledger_parent`, by default the
    /// system temp dir (on the real disk here, so fsyncs are real).
    pub fn start(threads: usize, ledger_parent: Option<&std::path::Path>) -> Result<Purser> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name("purser").thread_keep_alive(Duration::from_secs(3600)).enable_all().build()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("purser-bench-ledger-");
        let dir = match ledger_parent {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        let ledger = Ledger::open_in(&dir.path().join("data")).map_err(|e| anyhow!("ledger: {e}"))?;
        let wallet = Wallet::from_key_hex(KEY).map_err(|e| anyhow!("wallet: {e}"))?;
        let engine = Arc::new(Engine::new(ledger, Some(wallet)).map_err(|e| anyhow!("engine: {e}"))?);
        let spec = GrantSpec {
            label: "purser-bench".into(),
            budget: "1000000".into(),
            expires: "1h".into(),
            hosts: vec!["127.0.0.1".into()],
            auto_below: Some("1".into()),
            ask_below: Some("2".into()),
            ..Default::default()
        };
        let token = engine.create_grant(&spec, Some(&purser_core::presence::Presence::app_click())).map_err(|e| anyhow!("grant: {e}"))?.token;
        let handle = runtime.block_on(proxy::start(engine.clone(), 0, Duration::from_secs(5))).map_err(|e| anyhow!("proxy: {e}")).context("starting the Purser gateway")?;
        Ok(Purser { addr: handle.addr(), token, threads, _engine: engine, handle: Some(handle), runtime: Some(runtime), _dir: dir })
    }

    /// The gateway path for `target` (an absolute http URL).
    pub fn path_for(&self, target: &str) -> String {
        format!("/{target}")
    }

    /// The `Proxy-Authorization` header value.
    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Receipts the ledger holds now, by outcome (a cross-check on the agents' counts).
    pub fn receipts_by_outcome(&self) -> Vec<(String, i64)> {
        // A reader of its own on the same file (the engine's ledger is its own business).
        let Ok(ledger) = Ledger::open_in(&self._dir.path().join("data")) else { return Vec::new() };
        let counted = ledger.with(|c| {
            let mut st = c.prepare("SELECT outcome, count(*) FROM receipts GROUP BY outcome ORDER BY outcome")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        });
        counted.unwrap_or_default()
    }

    /// Stops the gateway (bounded) and its runtime. Call from outside any runtime.
    pub fn stop(&mut self) {
        if let (Some(handle), Some(rt)) = (self.handle.take(), self.runtime.as_ref()) {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await;
            });
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Purser {
    fn drop(&mut self) {
        self.stop();
    }
}

//! purser-testkit: the end-to-end harness for Purser (real x402 peers, the real binary, a hostile 402 server).
//!
//! * [`peers`]: the node reference peers (anvil + facilitator + v2/v1 paywall servers).
//! * [`purser`]: one `purser serve` daemon in a fresh data dir, plus its CLI.
//! * [`agent`]: the agent side (reqwest) and raw-TCP requests for Host/Origin tests.
//! * [`chain`]: JSON-RPC helpers (USDC balances, transfers of a tx) and facilitator stats.
//! * [`onchain`]: anvil time travel, submitting a captured authorization, a paywall whose paid answer a test picks.
//! * [`hostile`]: a 402 server answering configured raw responses, counting paid retries; raw-TCP upstreams that stall, trickle or flood.
//! * [`challenge`]: good x402 v1/v2 challenge templates to mutate.
//! * [`proc`]: child-process plumbing (timeouts, SIGTERM, log tails).
//! * [`desktop`]: a private D-Bus session bus and a test notification server on it.
//! * [`keyring`]: a real gnome-keyring (Secret Service) on that bus, in a throwaway data dir.
//! * [`pty`]: running a command on a real pseudo-terminal and answering its prompts, or with no terminal at all.

pub mod agent;
pub mod chain;
pub mod challenge;
pub mod desktop;
pub mod hostile;
pub mod keyring;
pub mod onchain;
pub mod peers;
pub mod proc;
pub mod pty;
pub mod purser;
pub mod tls;

pub use agent::{agent, raw_http, send, RawReply, Reply};
pub use chain::{facilitator_count, facilitator_stats, tx_transfer, usdc_balance};
pub use challenge::{good_v1_body, good_v2_required, v1_response, v1_response_raw, v2_response, v2_response_header};
pub use desktop::{NotifyServer, SessionBus};
pub use hostile::{Hostile402, Misbehave, RawResponse, RawServer};
pub use keyring::Keyring;
pub use peers::{Mode, Peers};
pub use purser::{Purser, ServeOptions};
pub use rusqlite;
pub use tls::{TestCa, TlsFront};

/// The real Base Sepolia USDC address (the peers install their token there too).
pub const USDC_BASE_SEPOLIA: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/// anvil account 1 (the peers' payer), usable as a wallet when no chain is needed.
pub const ANVIL_PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const ANVIL_PAYER_ADDR: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// anvil account 2 (the peers' default payee).
pub const ANVIL_PAYEE_ADDR: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Repository root (two levels above this crate's manifest dir).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Runs `f` with the `receipts` table's triggers (the append-only guards) dropped, then puts
/// them back: what someone who can write the ledger file can do.
pub fn without_receipt_triggers<T>(c: &rusqlite::Connection, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
    let triggers: Vec<(String, String)> = {
        let mut st = c.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'receipts'").unwrap();
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(Result::unwrap).collect()
    };
    for (name, _) in &triggers {
        c.execute_batch(&format!("DROP TRIGGER \"{name}\"")).unwrap();
    }
    let out = f(c);
    for (_, sql) in &triggers {
        c.execute_batch(sql).unwrap();
    }
    out
}

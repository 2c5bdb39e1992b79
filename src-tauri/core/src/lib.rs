//! Purser's core: everything that decides, signs, records and serves, with no Tauri dependency.
//! The `purser` CLI/daemon and the desktop app are thin layers over this crate.

pub mod datadir;
pub mod money;
pub mod networks;
pub mod wallet;
pub mod x402;

/// The version shown by the CLI and the app.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod grants;
pub mod policy;
pub mod auth;
pub mod ledger;
pub mod receipt;

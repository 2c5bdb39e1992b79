//! Purser's core: everything that decides, signs, records and serves, with no Tauri dependency.
//! The `purser` CLI/daemon and the desktop app are thin layers over this crate.
//!
//! The payment road is [`pipeline`]; each step is a call into the module that owns it.

pub mod agent;
pub mod anchor;
pub mod api;
pub mod app_ops;
pub mod approvals;
pub mod auth;
pub mod background;
pub mod ca;
pub mod chain;
pub mod client;
pub mod clock;
pub mod config;
pub mod control;
pub mod custody;
pub mod datadir;
pub mod decisions;
pub mod engine;
pub mod events;
pub mod first_run;
pub mod folding;
/// Fuzz targets (the `fuzz/` crate and the corpus replay test call them); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod grant_edit;
pub mod grants;
pub mod ipc;
pub mod ledger;
pub mod money;
pub mod networks;
pub mod notify;
pub mod pause;
pub mod pipeline;
pub mod policy;
pub mod presence;
pub mod prompt;
pub mod proxy;
pub mod query;
pub mod receipt;
pub mod redact;
pub mod rules;
pub mod runs;
pub mod search;
pub mod secrets;
pub mod text;
pub mod upstream;
pub mod wallet;
pub mod x402;

/// The version shown by the CLI and the app.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

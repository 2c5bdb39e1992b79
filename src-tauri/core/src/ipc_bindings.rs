//! Writes the TypeScript bindings of every type the desktop app's IPC carries into
//! `ui/src/bindings/` (or `$PURSER_BINDINGS_DIR`), plus an `index.ts` re-exporting them all.
//! `.ci/bindings.sh` runs this into a temp dir and fails when the committed files drift.
//!
//!     cargo test -p purser-core --features ts export_bindings

use ts_rs::{Config, TS};

/// Every root type crossing IPC (their dependencies are exported with them).
fn export_all(cfg: &Config) -> Result<(), ts_rs::ExportError> {
    use crate::*;
    engine::ApiError::export_all(cfg)?;
    api::ErrorCode::export_all(cfg)?;
    receipt::Reason::export_all(cfg)?;
    events::Event::export_all(cfg)?;
    grants::GrantView::export_all(cfg)?;
    approvals::PendingApproval::export_all(cfg)?;
    decisions::Decided::export_all(cfg)?;
    decisions::Missed::export_all(cfg)?;
    rules::RuleView::export_all(cfg)?;
    search::Stats::export_all(cfg)?;
    ipc::AppInfo::export_all(cfg)?;
    ipc::GrantSpecInput::export_all(cfg)?;
    ipc::GrantPatch::export_all(cfg)?;
    ipc::GrantCreated::export_all(cfg)?;
    ipc::ExportResult::export_all(cfg)?;
    ipc::ReceiptDetail::export_all(cfg)?;
    ipc::TimelinePage::export_all(cfg)?;
    ipc::QueryHelp::export_all(cfg)?;
    wallet::custody::WalletStatus::export_all(cfg)?;
    first_run::WelcomeState::export_all(cfg)?;
    first_run::DemoStatus::export_all(cfg)?;
    chain::funds::Funds::export_all(cfg)?;
    ledger::Reconciliation::export_all(cfg)?;
    runs::RunView::export_all(cfg)?;
    runs::launch::RunLaunched::export_all(cfg)?;
    Ok(())
}

const HEADER: &str = "// Generated from Purser's Rust types by `cargo test -p purser-core --features ts export_bindings`.
// Do not edit: CI (.ci/bindings.sh) fails when these files differ from what the Rust types generate.
//
// Money is never a JS number: `*_atomic` fields are decimal strings of atomic units (micro-USD for
// grant limits and spend; the asset's own units for a payment), `*_usd` fields exact decimal
// strings. Plain `number`s are counts, seconds and sequence numbers. Errors from every command
// reject with an `ApiError` ({code, message}).
";

fn ts_files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            ts_files(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "ts") {
            let rel = p.strip_prefix(base).unwrap().with_extension("");
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel != "index" {
                out.push(rel);
            }
        }
    }
}

#[test]
fn export_bindings() {
    let dir = std::env::var_os("PURSER_BINDINGS_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings"));
    // Generated files only: start clean so a removed type leaves no stale file behind.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    // JSON numbers: u64/i64 fields are counts and seconds (money is always a string).
    let cfg = Config::new().with_out_dir(&dir).with_large_int("number");
    export_all(&cfg).unwrap();
    let mut files = vec![];
    ts_files(&dir, &dir, &mut files);
    files.sort();
    assert!(files.iter().any(|f| f == "GrantView") && files.iter().any(|f| f == "CreatedGrant"), "{files:?}");
    let mut index = HEADER.to_string();
    for f in &files {
        index.push_str(&format!("export type * from \"./{f}\";\n"));
    }
    std::fs::write(dir.join("index.ts"), index).unwrap();
}

//! Tauri build step: embeds tauri.conf.json and resolves the ACL from ./capabilities.

/// Every command the UI may invoke (src/commands). Each gets an `allow-<command>` permission
/// generated here; capabilities/default.json grants exactly these, nothing else of the app's.
const COMMANDS: &[&str] = &[
    "app_info",
    "spending_pause",
    "spending_resume",
    "grants_list",
    "grant_get",
    "grant_create",
    "grant_update",
    "grant_top_up",
    "grant_revoke",
    "grant_unrevoke",
    "grants_revoke_all",
    "approvals_list",
    "approval_approve",
    "approval_deny",
    "approval_rule",
    "approval_view",
    "approval_unview",
    "rules_list",
    "rule_delete",
    "receipts_search",
    "receipt_get",
    "receipts_stats",
    "receipts_export",
    "query_help",
    "wallet_status",
    "wallet_unlock",
    "wallet_lock",
    "wallet_funds",
    "welcome_state",
    "welcome_dismiss",
    "wallet_create",
    "wallet_import_key",
    "demo_status",
    "demo_start",
    "demo_stop",
    "run_start",
    "runs_list",
];

fn main() {
    // Declaring an app manifest turns on access control for Purser's own commands too: a command
    // is callable only when a capability grants its permission.
    let attributes = tauri_build::Attributes::new().capabilities_path_pattern("./capabilities/*.json").app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    // With an explicit pattern tauri-build does not watch the folder itself.
    println!("cargo:rerun-if-changed=capabilities");
    tauri_build::try_build(attributes).expect("tauri-build failed");
}

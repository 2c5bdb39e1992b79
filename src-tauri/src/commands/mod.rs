//! Owns the commands the UI may invoke: one per operation, each a validation of its arguments
//! (`purser_core::ipc`) and one engine call, answering `Result<T, ApiError>`. Every name here is
//! also in build.rs (its `allow-*` permission) and in capabilities/default.json.

pub mod app;
pub mod approvals;
pub mod first_run;
pub mod grants;
pub mod runs;
pub mod timeline;
pub mod wallet;

/// Every command, for `tauri::generate_handler!` (names are the contract with ui/src/api.ts).
#[macro_export]
macro_rules! handlers {
    () => {
        tauri::generate_handler![
            $crate::commands::app::app_info,
            $crate::commands::app::spending_pause,
            $crate::commands::app::spending_resume,
            $crate::commands::grants::grants_list,
            $crate::commands::grants::grant_get,
            $crate::commands::grants::grant_create,
            $crate::commands::grants::grant_update,
            $crate::commands::grants::grant_top_up,
            $crate::commands::grants::grant_revoke,
            $crate::commands::grants::grant_unrevoke,
            $crate::commands::grants::grants_revoke_all,
            $crate::commands::approvals::approvals_list,
            $crate::commands::approvals::approval_approve,
            $crate::commands::approvals::approval_deny,
            $crate::commands::approvals::approval_rule,
            $crate::commands::approvals::approval_view,
            $crate::commands::approvals::approval_unview,
            $crate::commands::approvals::rules_list,
            $crate::commands::approvals::rule_delete,
            $crate::commands::timeline::receipts_search,
            $crate::commands::timeline::receipt_get,
            $crate::commands::timeline::receipts_stats,
            $crate::commands::timeline::receipts_export,
            $crate::commands::timeline::query_help,
            $crate::commands::wallet::wallet_status,
            $crate::commands::wallet::wallet_unlock,
            $crate::commands::wallet::wallet_lock,
            $crate::commands::wallet::wallet_funds,
            $crate::commands::first_run::welcome_state,
            $crate::commands::first_run::welcome_dismiss,
            $crate::commands::first_run::wallet_create,
            $crate::commands::first_run::wallet_import_key,
            $crate::commands::first_run::demo_status,
            $crate::commands::first_run::demo_start,
            $crate::commands::first_run::demo_stop,
            $crate::commands::runs::run_start,
            $crate::commands::runs::runs_list,
        ]
    };
}

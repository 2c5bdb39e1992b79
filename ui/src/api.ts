/**
 * Owns every call from the UI into the Rust shell: one typed function per Tauri command (the
 * contract in src-tauri), with camelCase argument keys, and the normalisation of whatever a
 * failed call rejects with into an `ApiError` ({code, message}) the screens can show in words.
 */
import { invoke } from "@tauri-apps/api/core";
import type {
  ApiError,
  AppInfo,
  CreatedGrant,
  Decided,
  DemoStatus,
  ExportResult,
  Funds,
  GrantPatch,
  GrantSpecInput,
  GrantView,
  PendingApproval,
  QueryHelp,
  ReceiptDetail,
  RunLaunched,
  RunView,
  RuleView,
  TimelinePage,
  Stats,
  WalletStatus,
  WelcomeState,
  ErrorCode,
} from "./bindings";

/** Turns anything a rejected command (or a JS failure) produced into `{code, message}`. */
export function toApiError(err: unknown): ApiError {
  if (typeof err === "object" && err !== null) {
    const o = err as Record<string, unknown>;
    if (typeof o.code === "string" && typeof o.message === "string") {
      // The core sends only `ErrorCode`s (checked in Rust: src-tauri/core/tests/error_codes.rs).
      return { code: o.code as ErrorCode, message: o.message };
    }
    if (err instanceof Error) return { code: "ui_error", message: err.message };
    if (typeof o.message === "string") return { code: "unknown", message: o.message };
  }
  if (typeof err === "string" && err.length > 0) return { code: "unknown", message: err };
  return { code: "unknown", message: "Something went wrong (no details were given)." };
}

/** Calls one command; a rejection becomes a thrown `ApiError`. */
async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (err) {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- callers get the core's plain {code, message} ApiError, by design
    throw toApiError(err);
  }
}

// App
export const appInfo = () => call<AppInfo>("app_info");
export const spendingPause = () => call<AppInfo>("spending_pause");
export const spendingResume = () => call<AppInfo>("spending_resume");

// Grants
export const grantsList = () => call<GrantView[]>("grants_list");
export const grantGet = (id: string) => call<GrantView>("grant_get", { id });
export const grantCreate = (spec: GrantSpecInput) => call<CreatedGrant>("grant_create", { spec });
export const grantUpdate = (id: string, spec: GrantPatch) => call<GrantView>("grant_update", { id, spec });
export const grantTopUp = (id: string, usd: string) => call<GrantView>("grant_top_up", { id, usd });
export const grantRevoke = (id: string) => call<GrantView>("grant_revoke", { id });
export const grantUnrevoke = (id: string) => call<GrantView>("grant_unrevoke", { id });
export const grantsRevokeAll = () => call<GrantView[]>("grants_revoke_all");

// Runs: an agent started contained on a grant (as `purser run` starts it)
export const runStart = (grantId: string, command: string, cwd: string) => call<RunLaunched>("run_start", { grantId, command, cwd });
export const runsList = () => call<RunView[]>("runs_list");

// Approvals and rules
export const approvalsList = () => call<PendingApproval[]>("approvals_list");
export const approvalApprove = (id: string) => call<Decided>("approval_approve", { id });
export const approvalDeny = (id: string) => call<Decided>("approval_deny", { id });
export const approvalRule = (id: string, maxUsd: string, minutes: number) =>
  call<Decided>("approval_rule", { id, maxUsd, minutes });
/** The window shows this request: its countdown stands still (10 min at most) until unview. */
export const approvalView = (id: string) => call<PendingApproval>("approval_view", { id });
export const approvalUnview = (id: string) => call<PendingApproval>("approval_unview", { id });
export const rulesList = () => call<RuleView[]>("rules_list");
export const ruleDelete = (id: string) => call<RuleView>("rule_delete", { id });

// Timeline
export const receiptsSearch = (query: string, cursor: string | null, limit: number) =>
  call<TimelinePage>("receipts_search", { query, cursor, limit });
export const receiptGet = (id: string) => call<ReceiptDetail>("receipt_get", { id });
export const receiptsStats = (query: string, by: string) => call<Stats>("receipts_stats", { query, by });
export const receiptsExport = (query: string, format: "csv" | "jsonl") =>
  call<ExportResult>("receipts_export", { query, format });
export const queryHelp = () => call<QueryHelp>("query_help");

// Wallet
export const walletStatus = () => call<WalletStatus>("wallet_status");
export const walletUnlock = (passphrase: string, remember: boolean) =>
  call<WalletStatus>("wallet_unlock", { passphrase, remember });
export const walletLock = () => call<WalletStatus>("wallet_lock");
/** Balances per network (cached; `refresh` reads them again over RPC) and funding URIs. */
export const walletFunds = (refresh: boolean) => call<Funds>("wallet_funds", { refresh });

// First run: the welcome, setting up the wallet, the demo session
/** Whether to show the welcome (a first run, not dismissed). */
export const welcomeState = () => call<WelcomeState>("welcome_state");
/** "Not now": the welcome is not shown again. */
export const welcomeDismiss = () => call<WelcomeState>("welcome_dismiss");
/** A new wallet sealed with the passphrase (typed twice), unlocked at once. */
export const walletCreate = (passphrase: string, confirm: string, remember: boolean) =>
  call<WalletStatus>("wallet_create", { passphrase, confirm, remember });
/** Imports a 0x-hex private key sealed with the passphrase (typed twice), unlocked at once. */
export const walletImportKey = (key: string, passphrase: string, confirm: string, remember: boolean) =>
  call<WalletStatus>("wallet_import_key", { key, passphrase, confirm, remember });
export const demoStatus = () => call<DemoStatus>("demo_status");
/** Starts the demo on a local test network; every screen shows its data while it runs. */
export const demoStart = () => call<DemoStatus>("demo_start");
/** Stops the demo and everything it started; back to the real data. */
export const demoStop = () => call<DemoStatus>("demo_stop");

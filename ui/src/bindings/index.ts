// Generated from Purser's Rust types by `cargo test -p purser-core --features ts export_bindings`.
// Do not edit: CI (.ci/bindings.sh) fails when these files differ from what the Rust types generate.
//
// Money is never a JS number: `*_atomic` fields are decimal strings of atomic units (micro-USD for
// grant limits and spend; the asset's own units for a payment), `*_usd` fields exact decimal
// strings. Plain `number`s are counts, seconds and sequence numbers. Errors from every command
// reject with an `ApiError` ({code, message}).
export type * from "./AgentInfo";
export type * from "./AgentKind";
export type * from "./ApiError";
export type * from "./AppInfo";
export type * from "./CreatedGrant";
export type * from "./Decided";
export type * from "./DecidedBy";
export type * from "./DemoOutcome";
export type * from "./DemoPhase";
export type * from "./DemoStatus";
export type * from "./ErrorCode";
export type * from "./Event";
export type * from "./ExportResult";
export type * from "./FoldedSummary";
export type * from "./Funds";
export type * from "./GrantPatch";
export type * from "./GrantSnapshot";
export type * from "./GrantSpecInput";
export type * from "./GrantState";
export type * from "./GrantView";
export type * from "./KeychainState";
export type * from "./LedgerAfter";
export type * from "./Missed";
export type * from "./NetworkFunds";
export type * from "./Outcome";
export type * from "./ParentProcess";
export type * from "./PendingApproval";
export type * from "./QueryHelp";
export type * from "./QueryKey";
export type * from "./Reason";
export type * from "./Receipt";
export type * from "./ReceiptDetail";
export type * from "./Reconciliation";
export type * from "./RuleKind";
export type * from "./RuleView";
export type * from "./RunLaunched";
export type * from "./RunView";
export type * from "./Stats";
export type * from "./TimelinePage";
export type * from "./TimelineRow";
export type * from "./Via";
export type * from "./WalletStatus";
export type * from "./WelcomeState";
export type * from "./serde_json/JsonValue";

// Test data shaped exactly like the generated bindings (the types make drift a compile error).
import type { Funds, GrantView, NetworkFunds, PendingApproval, Receipt, TimelineRow, WalletStatus } from "../bindings";

export function grant(over: Partial<GrantView> = {}): GrantView {
  return {
    id: "0193a1b2-0000-7000-8000-000000000001",
    label: "research",
    state: "active",
    budget_atomic: "5000000",
    spent_atomic: "1200000",
    reserved_atomic: "50000",
    remaining_atomic: "3750000",
    budget_usd: "5",
    spent_usd: "1.2",
    remaining_usd: "3.75",
    per_request_max_atomic: "500000",
    auto_below_atomic: "50000",
    ask_below_atomic: "1000000",
    hosts: ["api.weather.com", "*.maps.io"],
    payees: [],
    networks: [],
    expires_at: new Date(Date.now() + 2 * 3600_000).toISOString(),
    approval_timeout_secs: 60,
    only_listed_hosts: false,
    only_run: false,
    only_exe: null,
    created_at: new Date().toISOString(),
    revoked_at: null,
    ...over,
  };
}

export function approval(over: Partial<PendingApproval> = {}): PendingApproval {
  return {
    id: "appr-1",
    grant_id: "g-1",
    grant_label: "research",
    method: "GET",
    url: "https://api.weather.com/v1/forecast?city=paris",
    host: "api.weather.com",
    amount_atomic: "120000",
    amount_usd: "0.12",
    network: "eip155:84532",
    asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    requirement_hash: "ab".repeat(32),
    amount_asset: "0.12 USDC",
    network_name: "base-sepolia",
    payee_label: "Weather Co",
    intent: "checking the forecast for the trip",
    description: "7-day forecast",
    agent: "trip-planner/1.0",
    who: {
      kind: "process",
      pid: 4242,
      exe: "/usr/bin/curl",
      cmdline: "curl -s https://api.weather.com/v1/forecast",
      parents: [{ pid: 4241, exe: "/usr/bin/node", name: "node" }, { pid: 4240, exe: null, name: "claude" }],
      run_label: null,
    },
    remaining_before_atomic: "3750000",
    remaining_after_atomic: "3630000",
    created_at: new Date().toISOString(),
    expires_at: new Date(Date.now() + 45_000).toISOString(),
    paused: false,
    ...over,
  };
}

export function item(over: Partial<TimelineRow> = {}): TimelineRow {
  return {
    flags: [],
    id: "r-1",
    time: "2026-11-25T10:00:00Z",
    grant_label: null,
    url: "https://api.weather.com/v1/forecast",
    host: "api.weather.com",
    outcome: "paid",
    reason: "paid",
    decided_by: "auto",
    intent: null,
    amount_usd: "0.05",
    ...over,
  };
}

export function wallet(over: Partial<WalletStatus> = {}): WalletStatus {
  return {
    address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    locked: true,
    remembered: false,
    keychain: "available",
    keychain_message: null,
    ...over,
  };
}

export function networkFunds(over: Partial<NetworkFunds> = {}): NetworkFunds {
  return {
    network: "eip155:84532",
    network_name: "base-sepolia",
    chain_id: 84532,
    testnet: true,
    asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    symbol: "USDC",
    decimals: 6,
    rpc: "https://sepolia.base.org",
    balance_atomic: "12500000",
    balance: "12.5",
    read_at: "2026-11-25T10:00:00Z",
    refresh_error: null,
    allocated_atomic: "3750000",
    allocated: "3.75",
    over_allocated: false,
    warning: null,
    fund_uri: "ethereum:0x036CbD53842c5426634e7929541eC2318f3dCF7e@84532/transfer?address=0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    instructions: "Send USDC on Base Sepolia to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8.",
    ...over,
  };
}

export function funds(networks: NetworkFunds[] = [networkFunds()]): Funds {
  return { address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", networks };
}

/** A whole receipt (what `receipt_get` returns for the drawer). */
export function receipt(over: Partial<Receipt> = {}): Receipt {
  return {
    id: "r-1",
    time: "2026-11-25T10:00:00Z",
    grant_id: "g-1",
    grant: null,
    method: "GET",
    url: "https://api.weather.com/v1/forecast",
    host: "api.weather.com",
    outcome: "paid",
    reason: "paid",
    detail: null,
    message: "paid",
    decided_by: "auto",
    rule_id: null,
    decided_via: null,
    intent: null,
    x402_version: 2,
    challenge: null,
    requirement: null,
    requirement_hash: null,
    amount_atomic: "50000",
    amount_usd: "0.05",
    network: "eip155:84532",
    asset: null,
    pay_to: null,
    reservation_id: null,
    payload_hash: null,
    valid_before: null,
    settlement: null,
    tx: null,
    payer: null,
    upstream_status: 200,
    ledger_after: null,
    prev_hash: "00",
    hash: "11",
    ...over,
  };
}

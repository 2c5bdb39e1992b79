/**
 * Owns the TanStack Query keys and hooks for what the ledger holds (the truth): every screen
 * reads through these, and the live-update layer invalidates them by key.
 */
import { QueryClient, useQuery } from "@tanstack/react-query";
import * as api from "./api";

export const keys = {
  app: ["app"] as const,
  grants: ["grants"] as const,
  approvals: ["approvals"] as const,
  rules: ["rules"] as const,
  /** Prefix of every timeline search (["receipts", "search", query]). */
  receipts: ["receipts"] as const,
  /** Prefix of the timeline searches alone. */
  searches: ["receipts", "search"] as const,
  search: (query: string) => ["receipts", "search", query] as const,
  receipt: (id: string) => ["receipt", id] as const,
  stats: (query: string, by: string) => ["stats", query, by] as const,
  help: ["query_help"] as const,
  wallet: ["wallet"] as const,
  funds: ["funds"] as const,
  welcome: ["welcome"] as const,
  demo: ["demo"] as const,
};

export function newQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // The ledger changes only when an event says so; no polling, no refetch on focus storms.
        staleTime: 30_000,
        refetchOnWindowFocus: false,
        retry: false,
      },
      mutations: { retry: false },
    },
  });
}

export const useAppInfo = () => useQuery({ queryKey: keys.app, queryFn: api.appInfo });
export const useGrants = () => useQuery({ queryKey: keys.grants, queryFn: api.grantsList });
export const useApprovals = () => useQuery({ queryKey: keys.approvals, queryFn: api.approvalsList });
export const useRules = () => useQuery({ queryKey: keys.rules, queryFn: api.rulesList });
export const useQueryHelp = () =>
  useQuery({ queryKey: keys.help, queryFn: api.queryHelp, staleTime: 60_000 });
export const useWallet = () => useQuery({ queryKey: keys.wallet, queryFn: api.walletStatus });
export const useWelcome = () => useQuery({ queryKey: keys.welcome, queryFn: api.welcomeState });
export const useDemo = () => useQuery({ queryKey: keys.demo, queryFn: api.demoStatus });

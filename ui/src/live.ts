/**
 * Owns live updates: the shell emits `purser://changed` ({kind, id}) whenever the ledger
 * changes; this maps each kind to the queries it makes stale (events carry nothing to render:
 * the ledger stays the truth). Bursts are coalesced so a thousand receipts a second cost a few
 * refetches. The timeline's own result list is only marked stale here; the Timeline screen
 * decides when to refetch it (at the top of the list at once, else it offers "N new").
 * Also `purser://open` ({screen, id}) from a notification's Open action.
 */
import { useEffect } from "react";
import type { QueryClient, QueryKey } from "@tanstack/react-query";
import { listen } from "@tauri-apps/api/event";
import { keys } from "./queries";
import type { Event } from "./bindings";

/** Every kind the core and the shell emit (generated from the Rust `Event`). */
export type EventKind = Event["kind"];

export const CHANGED_EVENT = "purser://changed";
export const OPEN_EVENT = "purser://open";

/** What each event kind makes stale. A kind this build does not know (a newer shell) refreshes
 *  everything (never stale data); every kind it knows is handled, checked by the compiler. */
export function staleKeys(kind: string): QueryKey[] | "all" {
  const k = kind as EventKind;
  switch (k) {
    case "receipt_added":
      // The chart's aggregate (["stats"]) follows at most every STATS_EVERY_MS (see below).
      return [keys.grants, keys.funds, keys.welcome];
    case "approval_pending":
      return [keys.approvals, keys.grants];
    case "approval_resolved":
      return [keys.approvals, keys.grants, keys.rules];
    case "grant_changed":
      return [keys.grants, keys.rules, keys.help, keys.funds, keys.welcome];
    case "pause_changed":
      return [keys.app];
    case "wallet_changed":
      return [keys.wallet, keys.funds, keys.app, keys.welcome];
    case "demo_line":
      // the demo's progress text
      return [keys.demo];
    case "funds_changed":
      return [keys.funds];
    case "reconciled":
      // a settlement checked on chain: reservations may be released, balances move
      return [["receipt"], keys.grants, keys.funds];
    case "demo_changed": // the screens switch to or from the demo's data
    case "resync": // the UI fell behind a burst of events
      return "all";
    default: {
      const unknown: never = k;
      void unknown;
      return "all";
    }
  }
}

let receiptsChanged = 0;

/** When an event last told of a new or resolved receipt (ms since the epoch; 0: never). A screen
 *  mounted after it (so its listener missed it) compares this with its data's age. */
export function receiptsChangedAt(): number {
  return receiptsChanged;
}

type Listener = (kind: string, id: string | null) => void;
const listeners = new Set<Listener>();

/** Lets a screen hear change events too (the timeline counts new receipts). */
export function onChanged(l: Listener): () => void {
  listeners.add(l);
  return () => {
    listeners.delete(l);
  };
}

/** How long events are gathered before the queries they touch are invalidated. */
export const COALESCE_MS = 250;

/**
 * The spend chart is refreshed by new receipts at most this often: an aggregate over a large
 * ledger can take a few hundred ms, and the ledger answers one query at a time (the proxy's
 * own writes included), so a flood of receipts must not become a flood of aggregates.
 */
export const STATS_EVERY_MS = 5000;

/** Handles one event payload: returns the kind it understood (exported for tests). */
export function makeDispatcher(client: QueryClient): (payload: unknown) => void {
  let pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let statsAt = -Infinity;
  let statsTimer: ReturnType<typeof setTimeout> | null = null;
  const refreshStats = () => {
    statsTimer = null;
    statsAt = Date.now();
    void client.invalidateQueries({ queryKey: ["stats"] });
  };
  const statsSoon = () => {
    if (statsTimer !== null) return;
    const wait = statsAt + STATS_EVERY_MS - Date.now();
    if (wait <= 0) refreshStats();
    else statsTimer = setTimeout(refreshStats, wait);
  };
  const flush = () => {
    timer = null;
    const kinds = pending;
    pending = new Set();
    const all = [...kinds].some((k) => staleKeys(k) === "all");
    if (all) {
      void client.invalidateQueries();
      return;
    }
    const seen = new Set<string>();
    for (const k of kinds) {
      for (const key of staleKeys(k) as QueryKey[]) {
        const s = JSON.stringify(key);
        if (seen.has(s)) continue;
        seen.add(s);
        void client.invalidateQueries({ queryKey: key });
      }
    }
    if (kinds.has("receipt_added") || kinds.has("approval_resolved")) {
      void client.invalidateQueries({ queryKey: keys.receipts, refetchType: "none" });
    }
    if (kinds.has("receipt_added")) statsSoon();
  };
  return (payload: unknown) => {
    const p = (typeof payload === "object" && payload !== null ? payload : {}) as Record<string, unknown>;
    const kind = typeof p.kind === "string" ? p.kind : "unknown";
    const id = typeof p.id === "string" ? p.id : null;
    pending.add(kind);
    if (kind === "receipt_added" || kind === "approval_resolved") receiptsChanged = Date.now();
    for (const l of listeners) l(kind, id);
    if (timer === null) timer = setTimeout(flush, COALESCE_MS);
  };
}

/** Subscribes to the shell's events for the app's lifetime. */
export function useLiveUpdates(client: QueryClient, onOpen: (screen: string, id: string | null) => void): void {
  useEffect(() => {
    const dispatch = makeDispatcher(client);
    const offs: Array<() => void> = [];
    let dead = false;
    const sub = (name: string, fn: (payload: unknown) => void) =>
      listen(name, (e) => fn(e.payload))
        .then((off) => (dead ? off() : offs.push(off)))
        .catch(() => {
          // Outside the Tauri shell (vite dev in a browser) there is no event bus.
        });
    void sub(CHANGED_EVENT, dispatch);
    void sub(OPEN_EVENT, (payload) => {
      const p = (typeof payload === "object" && payload !== null ? payload : {}) as Record<string, unknown>;
      onOpen(typeof p.screen === "string" ? p.screen : "approvals", typeof p.id === "string" ? p.id : null);
    });
    return () => {
      dead = true;
      offs.forEach((off) => off());
    };
  }, [client, onOpen]);
}

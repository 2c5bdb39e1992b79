import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { QueryClient } from "@tanstack/react-query";
import { COALESCE_MS, STATS_EVERY_MS, makeDispatcher, onChanged, staleKeys } from "./live";
import { keys } from "./queries";

describe("live updates", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("maps each event kind to the queries it makes stale", () => {
    expect(staleKeys("approval_pending")).toEqual([keys.approvals, keys.grants]);
    expect(staleKeys("pause_changed")).toEqual([keys.app]);
    expect(staleKeys("wallet_changed")).toContainEqual(keys.wallet);
    expect(staleKeys("grant_changed")).toContainEqual(keys.grants);
    expect(staleKeys("something_new")).toBe("all");
  });

  it("coalesces a burst of events into one invalidation per query", () => {
    const client = new QueryClient();
    const inv = vi.spyOn(client, "invalidateQueries").mockResolvedValue();
    const dispatch = makeDispatcher(client);
    for (let i = 0; i < 500; i++) dispatch({ kind: "receipt_added", id: `r${i}` });
    dispatch({ kind: "approval_pending", id: "a1" });
    expect(inv).not.toHaveBeenCalled();
    vi.advanceTimersByTime(COALESCE_MS);
    const calls = inv.mock.calls.map((c) => JSON.stringify(c[0]));
    expect(calls.filter((c) => c.includes('["grants"]'))).toHaveLength(1);
    expect(calls).toContain(JSON.stringify({ queryKey: keys.approvals }));
    // the timeline list is only marked stale; the screen decides when to refetch it
    expect(calls).toContain(JSON.stringify({ queryKey: keys.receipts, refetchType: "none" }));
  });

  it("refreshes the spend chart at most every few seconds under a flood of receipts", () => {
    const client = new QueryClient();
    const inv = vi.spyOn(client, "invalidateQueries").mockResolvedValue();
    const dispatch = makeDispatcher(client);
    const statsCalls = () => inv.mock.calls.filter((c) => JSON.stringify(c[0]) === JSON.stringify({ queryKey: ["stats"] })).length;
    // 10 s of 100 receipts a second
    for (let t = 0; t < 10_000; t += 10) {
      dispatch({ kind: "receipt_added", id: `r${t}` });
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(STATS_EVERY_MS);
    expect(statsCalls()).toBeGreaterThanOrEqual(2);
    expect(statsCalls()).toBeLessThanOrEqual(1 + Math.ceil(15_000 / STATS_EVERY_MS));
    const grantsCalls = inv.mock.calls.filter((c) => JSON.stringify(c[0]) === JSON.stringify({ queryKey: ["grants"] })).length;
    expect(grantsCalls).toBeLessThanOrEqual(Math.ceil(10_000 / COALESCE_MS) + 1);
  });

  it("tells screens about every event, and an unknown kind refreshes everything", () => {
    const client = new QueryClient();
    const inv = vi.spyOn(client, "invalidateQueries").mockResolvedValue();
    const heard: string[] = [];
    const off = onChanged((k, id) => heard.push(`${k}:${id}`));
    const dispatch = makeDispatcher(client);
    dispatch({ kind: "receipt_added", id: "r1" });
    dispatch({ kind: "funds_refreshed" });
    dispatch("garbage");
    off();
    expect(heard).toEqual(["receipt_added:r1", "funds_refreshed:null", "unknown:null"]);
    vi.advanceTimersByTime(COALESCE_MS);
    expect(inv).toHaveBeenCalledWith();
  });
});

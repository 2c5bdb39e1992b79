import { beforeEach, describe, expect, it, vi } from "vitest";
import { invoke } from "@tauri-apps/api/core";
import * as api from "./api";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
const inv = vi.mocked(invoke);

describe("api", () => {
  beforeEach(() => inv.mockResolvedValue(undefined));

  it("calls each command by its contract name with camelCase arguments", async () => {
    await api.receiptsSearch("grant:research", null, 200);
    expect(inv).toHaveBeenLastCalledWith("receipts_search", { query: "grant:research", cursor: null, limit: 200 });
    await api.approvalRule("a-1", "0.10", 10);
    expect(inv).toHaveBeenLastCalledWith("approval_rule", { id: "a-1", maxUsd: "0.10", minutes: 10 });
    await api.grantTopUp("g", "5");
    expect(inv).toHaveBeenLastCalledWith("grant_top_up", { id: "g", usd: "5" });
    await api.walletUnlock("pw", true);
    expect(inv).toHaveBeenLastCalledWith("wallet_unlock", { passphrase: "pw", remember: true });
    await api.receiptsExport("", "jsonl");
    expect(inv).toHaveBeenLastCalledWith("receipts_export", { query: "", format: "jsonl" });
    await api.grantsRevokeAll();
    expect(inv).toHaveBeenLastCalledWith("grants_revoke_all", undefined);
  });

  it("rejections become {code, message}", async () => {
    inv.mockRejectedValueOnce({ code: "no_such_grant", message: "no grant g1" });
    await expect(api.grantGet("g1")).rejects.toEqual({ code: "no_such_grant", message: "no grant g1" });
    inv.mockRejectedValueOnce("command grant_get not allowed");
    await expect(api.grantGet("g1")).rejects.toEqual({ code: "unknown", message: "command grant_get not allowed" });
    inv.mockRejectedValueOnce(new TypeError("window.__TAURI_INTERNALS__ is undefined"));
    await expect(api.grantGet("g1")).rejects.toEqual({ code: "ui_error", message: "window.__TAURI_INTERNALS__ is undefined" });
    inv.mockRejectedValueOnce(undefined);
    await expect(api.grantGet("g1")).rejects.toMatchObject({ code: "unknown" });
  });

  it("toApiError never yields [object Object]", () => {
    for (const e of [{}, { code: 3 }, null, 42, [], { message: { nested: true } }]) {
      expect(api.toApiError(e).message).not.toContain("[object");
    }
  });
});

import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import { grant } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { keys } from "../queries";
import { Grants, UNDO_MS } from "./Grants";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return {
    ...real,
    grantsList: vi.fn(),
    grantCreate: vi.fn(),
    grantUpdate: vi.fn(),
    grantRevoke: vi.fn(),
    grantUnrevoke: vi.fn(),
    grantsRevokeAll: vi.fn(),
    grantTopUp: vi.fn(),
    runStart: vi.fn(),
    queryHelp: vi.fn(),
  };
});
const m = vi.mocked(api);

describe("Grants", () => {
  beforeEach(() => {
    m.grantsList.mockResolvedValue([grant()]);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("shows the budget split, hosts and value at risk", async () => {
    m.grantsList.mockResolvedValue([grant(), grant({ id: "g2", label: "old", state: "revoked", reserved_atomic: "10000", remaining_atomic: "900000" })]);
    renderScreen(<Grants />);
    const row = await screen.findByTestId("grant-row-0193a1b2-0000-7000-8000-000000000001");
    expect(row).toHaveTextContent("$1.20 spent");
    expect(row).toHaveTextContent("$0.05 reserved");
    expect(row).toHaveTextContent("$3.75 left of $5.00");
    expect(within(row).getByTestId("grant-hosts")).toHaveTextContent("api.weather.com*.maps.io");
    expect(within(row).getByTestId("grant-expiry").textContent).toMatch(/^expires in (1h 59m|2h 0m)$/);
    // active: remaining 3.75 + reserved 0.05; revoked: only its 0.01 in flight.
    expect(within(row).getByTestId("grant-risk")).toHaveTextContent("$3.80");
    expect(screen.getByTestId("value-at-risk")).toHaveTextContent("$3.81");
  });

  it("explains what to do when there are no grants", async () => {
    m.grantsList.mockResolvedValue([]);
    renderScreen(<Grants />);
    expect(await screen.findByTestId("grants-empty")).toHaveTextContent("Create a grant for your agent — it gets a token and a budget");
  });

  it("validates the form with clear messages and sends nothing while invalid", async () => {
    const user = userEvent.setup();
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("grant-new"));
    await user.click(screen.getByTestId("grant-save"));
    expect(screen.getByTestId("form-error-label")).toHaveTextContent("Give the grant a name");
    expect(screen.getByTestId("form-error-budget")).toHaveTextContent("Set a budget");
    expect(screen.getByTestId("form-error-expires")).toHaveTextContent("Set how long the grant lasts");
    expect(screen.getByTestId("form-error-hosts")).toHaveTextContent("List at least one host");

    await user.type(screen.getByTestId("form-budget"), "5.1234567");
    expect(screen.getByTestId("form-error-budget")).toHaveTextContent("at most 6 decimals");
    await user.clear(screen.getByTestId("form-budget"));
    await user.type(screen.getByTestId("form-budget"), "1e3");
    expect(screen.getByTestId("form-error-budget")).toHaveTextContent("Budget must be dollars like 5 or 0.05");
    await user.type(screen.getByTestId("form-expires"), "2 hours");
    expect(screen.getByTestId("form-error-expires")).toHaveTextContent("Write a duration like 90s, 30m, 2h or 7d");
    await user.type(screen.getByTestId("form-hosts"), "https://api.x.com/");
    expect(screen.getByTestId("form-error-hosts")).toHaveTextContent("https://api.x.com/ is not a host");
    await user.type(screen.getByTestId("form-autoBelow"), "1");
    await user.type(screen.getByTestId("form-askBelow"), "0.5");
    expect(screen.getByTestId("form-error-askBelow")).toHaveTextContent("cannot be below the pay-without-asking limit");
    expect(m.grantCreate).not.toHaveBeenCalled();
  });

  it("a preset fills the form; a valid form creates the grant and shows its set-up lines once", async () => {
    const user = userEvent.setup();
    m.grantCreate.mockResolvedValue({ grant: grant(), token: "pgt_secret", setupLines: "export PURSER_GRANT=pgt_secret" });
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("grant-new"));
    await user.click(screen.getByTestId("preset-research"));
    expect(screen.getByTestId("form-label")).toHaveValue("research");
    expect(screen.getByTestId("form-budget")).toHaveValue("5");
    expect(screen.getByTestId("form-expires")).toHaveValue("2h");
    expect(screen.getByTestId("form-autoBelow")).toHaveValue("0.05");
    await user.type(screen.getByTestId("form-hosts"), "api.weather.com, *.maps.io");
    await user.click(screen.getByTestId("grant-save"));
    await waitFor(() => expect(m.grantCreate).toHaveBeenCalledTimes(1));
    expect(m.grantCreate.mock.calls[0]![0]).toEqual({
      label: "research",
      budget: "5",
      expires: "2h",
      hosts: ["api.weather.com", "*.maps.io"],
      payees: [],
      networks: [],
      perRequestMax: "0.50",
      autoBelow: "0.05",
      askBelow: "1",
      approvalTimeout: null,
      onlyListedHosts: false,
      onlyRun: false,
      onlyExe: null,
    });
    expect(await screen.findByTestId("setup-lines")).toHaveTextContent("export PURSER_GRANT=pgt_secret");
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await user.click(screen.getByTestId("copy-setup"));
    expect(writeText).toHaveBeenCalledWith("export PURSER_GRANT=pgt_secret");
    expect(screen.getByTestId("copy-status")).toHaveTextContent("Copied");
    await user.click(screen.getByTestId("created-done"));
    expect(screen.queryByTestId("setup-lines")).toBeNull();
  });

  it("shows a server refusal in words, not [object Object]", async () => {
    const user = userEvent.setup();
    m.grantCreate.mockRejectedValue({ code: "invalid_host", message: "host pattern \"*.\" is not valid" });
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("grant-new"));
    await user.click(screen.getByTestId("preset-lookup"));
    await user.type(screen.getByTestId("form-hosts"), "api.x.com");
    await user.click(screen.getByTestId("grant-save"));
    const err = await screen.findByTestId("grant-form-error");
    expect(err).toHaveTextContent('host pattern "*." is not valid');
    expect(err).toHaveAttribute("data-code", "invalid_host");
    expect(document.body.textContent).not.toContain("[object Object]");
  });

  it("revoke offers Undo for a few seconds, then not", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const g = grant();
    const revoked = { ...g, state: "revoked" as const, revoked_at: new Date().toISOString() };
    m.grantRevoke.mockResolvedValue(revoked);
    renderScreen(<Grants />);
    fireEvent.click(await screen.findByTestId("grant-revoke"));
    m.grantsList.mockResolvedValue([revoked]);
    expect(await screen.findByTestId("grant-undo")).toBeInTheDocument();
    expect(m.grantRevoke).toHaveBeenCalledWith(g.id);
    await act(async () => {
      vi.advanceTimersByTime(UNDO_MS - 1000);
    });
    expect(screen.getByTestId("grant-undo")).toBeInTheDocument();
    await act(async () => {
      vi.advanceTimersByTime(1500);
    });
    expect(screen.queryByTestId("grant-undo")).toBeNull();
  });

  it("undo brings the grant back", async () => {
    const user = userEvent.setup();
    const g = grant();
    const revoked = { ...g, state: "revoked" as const };
    m.grantRevoke.mockResolvedValue(revoked);
    m.grantUnrevoke.mockResolvedValue(g);
    renderScreen(<Grants />);
    const revoke = await screen.findByTestId("grant-revoke");
    m.grantsList.mockResolvedValue([revoked]);
    await user.click(revoke);
    await user.click(await screen.findByTestId("grant-undo"));
    expect(m.grantUnrevoke).toHaveBeenCalledWith(g.id);
    expect(await screen.findByTestId("toast-info")).toHaveTextContent("“research” is active again");
  });

  it("hides Undo when something was spent under the grant meanwhile", async () => {
    const user = userEvent.setup();
    const g = grant();
    const revoked = { ...g, state: "revoked" as const };
    m.grantRevoke.mockResolvedValue(revoked);
    const { client } = renderScreen(<Grants />);
    m.grantsList.mockResolvedValue([revoked]);
    await user.click(await screen.findByTestId("grant-revoke"));
    expect(await screen.findByTestId("grant-undo")).toBeInTheDocument();
    // An in-flight payment settled after the revoke: spent moved (the event refetches grants).
    m.grantsList.mockResolvedValue([{ ...revoked, spent_atomic: "1250000", reserved_atomic: "0" }]);
    await act(() => client.invalidateQueries({ queryKey: keys.grants }));
    await waitFor(() => expect(screen.queryByTestId("grant-undo")).toBeNull());
  });

  it("revoke all asks once, then revokes every grant", async () => {
    const user = userEvent.setup();
    m.grantsRevokeAll.mockResolvedValue([grant({ state: "revoked" })]);
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("revoke-all"));
    expect(m.grantsRevokeAll).not.toHaveBeenCalled();
    await user.click(screen.getByTestId("revoke-all-confirm"));
    expect(m.grantsRevokeAll).toHaveBeenCalledTimes(1);
    expect(await screen.findByTestId("toast-info")).toHaveTextContent("Revoked 1 grant");
  });

  it("top-up checks the amount and sends it as a string", async () => {
    const user = userEvent.setup();
    m.grantTopUp.mockResolvedValue(grant({ remaining_atomic: "8750000" }));
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("grant-topup"));
    await user.type(screen.getByTestId("topup-usd"), "5.");
    await user.click(screen.getByTestId("topup-save"));
    expect(screen.getByTestId("topup-error")).toHaveTextContent("Enter dollars to add");
    await user.clear(screen.getByTestId("topup-usd"));
    await user.type(screen.getByTestId("topup-usd"), "5");
    await user.click(screen.getByTestId("topup-save"));
    expect(m.grantTopUp).toHaveBeenCalledWith(grant().id, "5");
  });

  it("runs an agent contained on a grant: a command and an absolute working dir", async () => {
    const user = userEvent.setup();
    m.runStart.mockResolvedValue({ run_id: "r1", grant_id: grant().id, label: "research", pid: 4242, log: "/d/runs/r1.log" });
    renderScreen(<Grants />);
    await user.click(await screen.findByTestId("grant-run"));
    await user.click(screen.getByTestId("run-start"));
    expect(screen.getByTestId("run-error")).toHaveTextContent("Give the agent's command");
    await user.type(screen.getByTestId("run-command"), "  python3 agent.py ");
    await user.type(screen.getByTestId("run-cwd"), "project");
    await user.click(screen.getByTestId("run-start"));
    expect(screen.getByTestId("run-error")).toHaveTextContent("absolute path");
    expect(m.runStart).not.toHaveBeenCalled();
    await user.clear(screen.getByTestId("run-cwd"));
    await user.type(screen.getByTestId("run-cwd"), "/home/me/project");
    await user.click(screen.getByTestId("run-start"));
    expect(m.runStart).toHaveBeenCalledWith(grant().id, "python3 agent.py", "/home/me/project");
    expect(await screen.findByTestId("toast-info")).toHaveTextContent("running contained (pid 4242); its output goes to /d/runs/r1.log");
  });
});

import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import type { Decided, RuleView } from "../bindings";
import { approval } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { Approvals } from "./Approvals";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return { ...real, approvalsList: vi.fn(), approvalApprove: vi.fn(), approvalDeny: vi.fn(), approvalRule: vi.fn(), rulesList: vi.fn(), ruleDelete: vi.fn(), approvalView: vi.fn(), approvalUnview: vi.fn() };
});
const m = vi.mocked(api);

const a1 = approval({ id: "a-1" });
const a2 = approval({ id: "a-2", host: "api.maps.io", url: "https://api.maps.io/tiles/3", amount_usd: "0.3", intent: null, payee_label: null });
const a3 = approval({ id: "a-3", host: "news.example.org", url: "https://news.example.org/a" });
const decided = { rule: null, ...a1 } as Decided;

describe("Approvals", () => {
  beforeEach(() => {
    m.approvalsList.mockResolvedValue([a1, a2, a3]);
    m.approvalApprove.mockResolvedValue(decided);
    m.approvalDeny.mockResolvedValue(decided);
    m.approvalRule.mockResolvedValue(decided);
    m.rulesList.mockResolvedValue([]);
    m.approvalView.mockImplementation(async (id) => approval({ id, paused: true }));
    m.approvalUnview.mockImplementation(async (id) => approval({ id }));
  });

  it("shows the facts of the prompt, with the agent's words marked as such", async () => {
    renderScreen(<Approvals focusId={null} />);
    const card = await screen.findByTestId("approval-detail");
    expect(within(card).getByTestId("approval-who")).toHaveTextContent("curl, pid 4242 (from claude → node)");
    expect(within(card).getByTestId("approval-who")).toHaveAttribute("title", "claude → node → curl, pid 4242");
    const facts = within(card).getAllByRole("definition");
    expect(facts[0]).toBe(within(card).getByTestId("approval-who"));
    expect(within(card).getByTestId("approval-usd")).toHaveTextContent("$0.12");
    expect(within(card).getByTestId("approval-asset")).toHaveTextContent("0.12 USDC on base-sepolia");
    expect(within(card).getByTestId("approval-request")).toHaveTextContent("GET api.weather.com/v1/forecast?city=paris");
    expect(within(card).getByTestId("approval-payee")).toHaveTextContent("Weather Co 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    expect(within(card).getByTestId("approval-budget")).toHaveTextContent("research: $3.75 left → $3.63 after");
    expect(within(card).getByTestId("approval-intent").parentElement).toHaveTextContent("the agent's words — not checked");
    expect(within(card).getByTestId("approval-countdown").textContent).toMatch(/denied by default in 4\ds/);
  });

  it("A approves the selected request; arrows move the selection; D denies", async () => {
    const user = userEvent.setup();
    renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    await user.keyboard("{ArrowDown}");
    expect(screen.getByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-2");
    await user.keyboard("{ArrowDown}{ArrowDown}"); // stops at the last
    expect(screen.getByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-3");
    await user.keyboard("{ArrowUp}");
    await user.keyboard("a");
    await waitFor(() => expect(m.approvalApprove).toHaveBeenCalledWith("a-2"));
    expect(m.approvalDeny).not.toHaveBeenCalled();
    m.approvalsList.mockResolvedValue([a1, a3]);
    await waitFor(() => expect(screen.getByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-3"));
    await user.keyboard("D");
    await waitFor(() => expect(m.approvalDeny).toHaveBeenCalledWith("a-3"));
    expect(m.approvalApprove).toHaveBeenCalledTimes(1);
  });

  it("keys typed into the rule form are not shortcuts", async () => {
    const user = userEvent.setup();
    renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    await user.keyboard("r"); // R focuses the rule
    expect(screen.getByTestId("rule-max-usd")).toHaveFocus();
    await user.keyboard("ad");
    expect(m.approvalApprove).not.toHaveBeenCalled();
    expect(m.approvalDeny).not.toHaveBeenCalled();
  });

  it("a notification's Open lands on that request", async () => {
    renderScreen(<Approvals focusId="a-3" />);
    expect(await screen.findByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-3");
    expect(screen.getByTestId("approval-item-a-3")).toHaveAttribute("aria-selected", "true");
  });

  it("the rule approves with a price cap and minutes, checked first", async () => {
    const user = userEvent.setup();
    renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    const max = screen.getByTestId("rule-max-usd");
    await user.clear(max);
    await user.type(max, "0.1.0");
    await user.click(screen.getByTestId("rule-save"));
    expect(screen.getByTestId("rule-error")).toHaveTextContent("Enter a price like 0.10");
    await user.clear(max);
    await user.type(max, "0.20");
    await user.clear(screen.getByTestId("rule-minutes"));
    await user.type(screen.getByTestId("rule-minutes"), "30");
    await user.click(screen.getByTestId("rule-save"));
    await waitFor(() => expect(m.approvalRule).toHaveBeenCalledWith("a-1", "0.20", 30));
  });

  it("an error from Rust is shown in words", async () => {
    const user = userEvent.setup();
    m.approvalApprove.mockRejectedValue({ code: "approval_gone", message: "this request was already decided" });
    renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    await user.click(screen.getByTestId("approval-approve"));
    const t = await screen.findByTestId("toast-error");
    expect(t).toHaveTextContent("Could not approve: this request was already decided");
    expect(t).toHaveTextContent("approval_gone");
  });

  it("lists active rules and removes one", async () => {
    const user = userEvent.setup();
    const rule: RuleView = {
      id: "rule-1",
      grant_id: "g-1",
      kind: "allow",
      host: "api.weather.com",
      max_usd: "0.2",
      max_atomic: "200000",
      expires_at: new Date(Date.now() + 600_000).toISOString(),
      created_at: new Date().toISOString(),
      from_approval: "a-0",
      removed_at: null,
      active: true,
      description: "auto-approve api.weather.com up to $0.20",
    };
    m.rulesList.mockResolvedValue([rule, { ...rule, id: "rule-old", active: false }]);
    m.ruleDelete.mockResolvedValue({ ...rule, active: false });
    renderScreen(<Approvals focusId={null} />);
    const row = await screen.findByTestId("rule-rule-1");
    expect(row).toHaveTextContent("auto-approve api.weather.com up to $0.20");
    expect(row.textContent).toMatch(/ends in (9m 59s|10m 00s)/);
    expect(screen.queryByTestId("rule-rule-old")).toBeNull();
    await user.click(within(row).getByTestId("rule-delete"));
    expect(m.ruleDelete).toHaveBeenCalledWith("rule-1");
  });

  it("the request on screen has its countdown paused; moving on resumes it", async () => {
    const user = userEvent.setup();
    const { unmount } = renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    await waitFor(() => expect(m.approvalView).toHaveBeenCalledWith("a-1"));
    await user.keyboard("{ArrowDown}");
    await waitFor(() => expect(m.approvalUnview).toHaveBeenCalledWith("a-1"));
    expect(m.approvalView).toHaveBeenLastCalledWith("a-2");
    unmount();
    expect(m.approvalUnview).toHaveBeenLastCalledWith("a-2");
  });

  it("a view that fails (already decided) is not an error", async () => {
    m.approvalView.mockRejectedValue({ code: "no_such_approval", message: "gone" });
    renderScreen(<Approvals focusId={null} />);
    await screen.findByTestId("approval-detail");
    await waitFor(() => expect(m.approvalView).toHaveBeenCalled());
    expect(screen.queryByTestId("toast-error")).toBeNull();
  });

  it("says what the queue is for when it is empty", async () => {
    m.approvalsList.mockResolvedValue([]);
    renderScreen(<Approvals focusId={null} />);
    expect(await screen.findByTestId("approvals-empty")).toHaveTextContent("Nothing is waiting for you");
  });
});

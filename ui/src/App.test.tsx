import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { listen } from "@tauri-apps/api/event";
import * as api from "./api";
import { App, parseHash } from "./App";
import { approval, funds, grant, wallet } from "./test/fixtures";

vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));
vi.mock("./api", async (orig) => {
  const real = await orig<typeof import("./api")>();
  return {
    ...real,
    appInfo: vi.fn(),
    spendingPause: vi.fn(),
    spendingResume: vi.fn(),
    walletStatus: vi.fn(),
    grantsList: vi.fn(),
    approvalsList: vi.fn(),
    queryHelp: vi.fn(),
    walletFunds: vi.fn(),
    welcomeState: vi.fn(),
    demoStatus: vi.fn(),
  };
});
const m = vi.mocked(api);
const handlers = new Map<string, (e: { payload: unknown }) => void>();

const idle = { phase: "idle" as const, showingDemo: false, dir: "/d/demo", progress: "", lines: [], error: null, outcome: null };
const info = { version: "0.1.0", dataDir: "/d", proxyUrl: "http://127.0.0.1:4020", paused: false, setupHint: "" };

describe("App", () => {
  beforeEach(() => {
    handlers.clear();
    vi.mocked(listen).mockImplementation(async (name, cb) => {
      handlers.set(name, cb as (e: { payload: unknown }) => void);
      return () => {};
    });
    m.appInfo.mockResolvedValue(info);
    m.walletStatus.mockResolvedValue(wallet({ locked: true }));
    m.grantsList.mockResolvedValue([grant()]);
    m.approvalsList.mockResolvedValue([approval({ id: "a-1" }), approval({ id: "a-2" })]);
    m.walletFunds.mockResolvedValue(funds([]));
    m.welcomeState.mockResolvedValue({ show: false, hasWallet: true, hasGrants: true, hasReceipts: false, dismissed: false });
    m.demoStatus.mockResolvedValue(idle);
    window.location.hash = "";
  });

  it("a first run shows the welcome in place of the screen until a screen is picked", async () => {
    m.welcomeState.mockResolvedValue({ show: true, hasWallet: false, hasGrants: false, hasReceipts: false, dismissed: false });
    render(<App />);
    expect(await screen.findByTestId("welcome")).toBeInTheDocument();
    expect(screen.queryByTestId("screen-grants")).toBeNull();
    await userEvent.setup().click(screen.getByTestId("nav-timeline"));
    expect(screen.queryByTestId("welcome")).toBeNull();
  });

  it("while a demo runs the banner is shown, not the welcome", async () => {
    m.welcomeState.mockResolvedValue({ show: true, hasWallet: false, hasGrants: false, hasReceipts: false, dismissed: false });
    m.demoStatus.mockResolvedValue({ ...idle, phase: "running", showingDemo: true, progress: "agent     3x /cheap" });
    render(<App />);
    expect(await screen.findByTestId("demo-banner")).toHaveTextContent("Demo — local test network");
    expect(screen.queryByTestId("welcome")).toBeNull();
  });

  it("header shows the proxy URL and the wallet's lock state; the sidebar counts approvals", async () => {
    render(<App />);
    await waitFor(() => expect(screen.getByTestId("proxy-url")).toHaveTextContent("http://127.0.0.1:4020"));
    await waitFor(() => expect(screen.getByTestId("header-wallet")).toHaveTextContent("wallet locked"));
    expect(await screen.findByTestId("nav-approvals-count")).toHaveTextContent("2");
    expect(screen.queryByTestId("paused-banner")).toBeNull();
  });

  it("shows the paused banner and resumes", async () => {
    const user = userEvent.setup();
    m.appInfo.mockResolvedValue({ ...info, paused: true });
    m.spendingResume.mockResolvedValue(info);
    render(<App />);
    expect(await screen.findByTestId("paused-banner")).toHaveTextContent("All spending paused");
    await user.click(screen.getByTestId("resume"));
    expect(m.spendingResume).toHaveBeenCalledTimes(1);
    await waitFor(() => expect(screen.queryByTestId("paused-banner")).toBeNull());
  });

  it("navigates with the keyboard: arrows in the sidebar, Alt+number anywhere", async () => {
    const user = userEvent.setup();
    render(<App />);
    expect(await screen.findByTestId("screen-grants")).toBeInTheDocument();
    screen.getByTestId("nav-grants").focus();
    await user.keyboard("{ArrowDown}");
    expect(screen.getByTestId("screen-approvals")).toBeInTheDocument();
    expect(screen.getByTestId("nav-approvals")).toHaveFocus();
    expect(screen.getByTestId("nav-approvals")).toHaveAttribute("aria-current", "page");
    await user.keyboard("{Alt>}4{/Alt}");
    expect(screen.getByTestId("screen-wallet")).toBeInTheDocument();
  });

  it("a change event refetches what it touches, and an Open event lands on that approval", async () => {
    render(<App />);
    await screen.findByTestId("screen-grants");
    await waitFor(() => expect(handlers.has("purser://changed")).toBe(true));
    const before = m.approvalsList.mock.calls.length;
    m.approvalsList.mockResolvedValue([approval({ id: "a-1" }), approval({ id: "a-2" }), approval({ id: "a-3" })]);
    await act(async () => handlers.get("purser://changed")!({ payload: { kind: "approval_pending", id: "a-3" } }));
    await waitFor(() => expect(m.approvalsList.mock.calls.length).toBeGreaterThan(before));
    await waitFor(() => expect(screen.getByTestId("nav-approvals-count")).toHaveTextContent("3"));
    await act(async () => handlers.get("purser://open")!({ payload: { screen: "approvals", id: "a-3" } }));
    expect(await screen.findByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-3");
    // the user moves on; the same notification's Open again lands on it again
    await userEvent.setup().keyboard("{ArrowUp}");
    expect(screen.getByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-2");
    await act(async () => handlers.get("purser://open")!({ payload: { screen: "approvals", id: "a-3" } }));
    expect(screen.getByTestId("approval-detail")).toHaveAttribute("data-approval-id", "a-3");
  });

  it("reads #/approvals/<id> links", () => {
    expect(parseHash("#/approvals/0193a1b2-c3d4")).toEqual({ screen: "approvals", id: "0193a1b2-c3d4" });
    expect(parseHash("#timeline")).toEqual({ screen: "timeline", id: null });
    expect(parseHash("#/nowhere")).toBeNull();
    expect(parseHash("#/approvals/<script>")).toBeNull();
  });
});

import { act, fireEvent, renderHook, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import type { TimelinePage, Stats } from "../bindings";
import { item, receipt } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { DEBOUNCE_MS, FIRST_PAGE, PAGE, Timeline, useSearchText } from "./Timeline";
import { layout, toBars } from "./SpendChart";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return {
    ...real,
    receiptsSearch: vi.fn(),
    receiptsStats: vi.fn(),
    receiptGet: vi.fn(),
    receiptsExport: vi.fn(),
    queryHelp: vi.fn(),
    appInfo: vi.fn(),
  };
});
const m = vi.mocked(api);

const XSS = "<img src=x onerror=alert(1)>";
const page = (items: TimelinePage["items"], next: string | null = null, total = items.length): TimelinePage => ({ items, total, next_cursor: next });
const stats: Stats = {
  query: "",
  by: ["day", "grant"],
  groups: [
    { day: "2026-11-24", grant_id: "g-1", grant_label: "research", receipts: 3, spend_atomic: "150000", spend_usd: "0.15" },
    { day: "2026-11-25", grant_id: "g-1", grant_label: "research", receipts: 1, spend_atomic: "50000", spend_usd: "0.05" },
    { day: "2026-11-25", grant_id: "g-2", grant_label: "batch", receipts: 2, spend_atomic: "20000", spend_usd: "0.02" },
  ],
  total: { receipts: 6, spend_atomic: "220000", spend_usd: "0.22" },
  source: "rollup",
};

// jsdom does no layout: give elements a window-sized box so the virtualiser has rows to show.
const box = Object.getOwnPropertyDescriptors(HTMLElement.prototype);
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 600 });
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 800 });
});
afterAll(() => {
  for (const k of ["clientHeight", "clientWidth"] as const) {
    if (box[k]) Object.defineProperty(HTMLElement.prototype, k, box[k]);
    else delete (HTMLElement.prototype as unknown as Record<string, unknown>)[k];
  }
});

describe("Timeline", () => {
  beforeEach(() => {
    m.receiptsStats.mockResolvedValue(stats);
    m.queryHelp.mockResolvedValue({
      keys: [{ key: "grant", description: "a grant", values: ["research", "batch"], example: "grant:research" }],
    });
    m.appInfo.mockResolvedValue({ version: "0.1.0", dataDir: "/d", proxyUrl: "http://127.0.0.1:4020", paused: false, setupHint: "export PURSER_PROXY=http://127.0.0.1:4020" });
    m.receiptsSearch.mockResolvedValue(
      page(
        [
          item({ id: "r-2", outcome: "refused", reason: "over_budget", amount_usd: "2.5", flags: ["price_spike", "new_payee"], host: "api.maps.io", url: "https://api.maps.io/tiles" }),
          item({ id: "r-1", intent: XSS, url: `https://api.weather.com/${XSS}` }),
        ],
        null,
        2,
      ),
    );
  });

  it("renders receipts newest first with outcome, amount and flags", async () => {
    renderScreen(<Timeline />);
    const rows = await screen.findAllByTestId("receipt-row");
    expect(rows.map((r) => r.getAttribute("data-id"))).toEqual(["r-2", "r-1"]);
    expect(rows[0]).toHaveTextContent("refused");
    expect(rows[0]).toHaveTextContent("$2.50");
    expect(rows[0]).toHaveTextContent("over budget");
    expect(within(rows[0]!).getByTestId("flag-price_spike")).toHaveTextContent("price spike");
    expect(within(rows[0]!).getByTestId("flag-new_payee")).toHaveTextContent("new payee");
    expect(screen.getByTestId("timeline-total")).toHaveTextContent("2 receipts");
    expect(m.receiptsSearch).toHaveBeenCalledWith("", null, FIRST_PAGE);
  });

  it("renders text from agents and servers as text, never as markup", async () => {
    renderScreen(<Timeline />);
    const rows = await screen.findAllByTestId("receipt-row");
    expect(within(rows[1]!).getByTestId("row-intent").textContent).toBe(XSS);
    expect(document.querySelector("img")).toBeNull();
    m.receiptGet.mockResolvedValue({ receipt: receipt({ id: "r-1", intent: XSS, url: `https://api.weather.com/${XSS}`, challenge: { description: XSS } }), flags: [], seq: 7 });
    await userEvent.setup().click(rows[1]!);
    const drawer = await screen.findByTestId("receipt-drawer");
    await waitFor(() => expect(within(drawer).getByTestId("drawer-intent").textContent).toBe(XSS));
    expect(within(drawer).getByTestId("drawer-challenge").textContent).toContain(XSS);
    expect(document.querySelector("img")).toBeNull();
    expect(document.querySelector("[onerror]")).toBeNull();
  });

  it("the drawer shows every part of the receipt", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    const rows = await screen.findAllByTestId("receipt-row");
    m.receiptGet.mockResolvedValue({
      receipt: receipt({
        id: "r-2",
        challenge: { x402Version: 2, accepts: [] },
        requirement: { scheme: "exact", amount: "50000" },
        settlement: { success: true },
        tx: "0xfeed",
        hash: "abc123",
        prev_hash: "def456",
      }),
      flags: ["price_spike"],
      seq: 42,
    });
    await user.click(rows[0]!);
    const d = await screen.findByTestId("receipt-drawer");
    await waitFor(() => expect(within(d).getByTestId("drawer-hash")).toHaveTextContent("abc123"));
    expect(m.receiptGet).toHaveBeenCalledWith("r-2");
    expect(d).toHaveTextContent("#42");
    expect(d).toHaveTextContent("def456");
    expect(within(d).getByTestId("drawer-tx")).toHaveTextContent("0xfeed");
    expect(within(d).getByTestId("drawer-requirement")).toHaveTextContent('"scheme": "exact"');
    expect(within(d).getByTestId("drawer-settlement")).toHaveTextContent('"success": true');
    expect(within(d).getByTestId("flag-price_spike")).toBeInTheDocument();
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("receipt-drawer")).toBeNull();
  });

  it("arrow keys move between rows", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    const rows = await screen.findAllByTestId("receipt-row");
    rows[0]!.focus();
    await user.keyboard("{ArrowDown}");
    await waitFor(() => expect(screen.getAllByTestId("receipt-row")[1]).toHaveFocus());
    await user.keyboard("{ArrowUp}");
    await waitFor(() => expect(screen.getAllByTestId("receipt-row")[0]).toHaveFocus());
    await user.keyboard("{Enter}");
    expect(await screen.findByTestId("receipt-drawer")).toBeInTheDocument();
  });

  it("suggests keys and values while typing, and Enter inserts one", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    const input = screen.getByTestId("search-input");
    await user.type(input, "gr");
    let options = screen.getAllByTestId("suggestion");
    expect(options.map((o) => o.textContent)).toEqual(["grant:a grant"]);
    await user.keyboard("{Enter}");
    expect(input).toHaveValue("grant:");
    await waitFor(() => expect(screen.getAllByTestId("suggestion").map((o) => o.querySelector("code")!.textContent)).toEqual(["research", "batch"]));
    await user.keyboard("{ArrowDown}{Enter}");
    expect(input).toHaveValue("grant:batch ");
    await waitFor(() => expect(m.receiptsSearch).toHaveBeenCalledWith("grant:batch", null, FIRST_PAGE));
    await user.keyboard("{Escape}");
    expect(screen.getByTestId("suggestions")).not.toBeVisible();
    options = screen.queryAllByTestId("suggestion");
    expect(options).toHaveLength(0);
  });

  it("a wheel over the results closes the suggestions and keeps the focus; one over the suggestions leaves them open", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    const input = screen.getByTestId("search-input");
    await user.click(input);
    expect(screen.getByTestId("suggestions")).toBeVisible();
    fireEvent.wheel(screen.getByTestId("suggestions"), { deltaY: 40 });
    expect(screen.getByTestId("suggestions")).toBeVisible();
    fireEvent.wheel(screen.getByTestId("receipt-list"), { deltaY: 40 });
    await waitFor(() => expect(screen.getByTestId("suggestions")).not.toBeVisible());
    expect(input).toHaveFocus();
    await user.type(input, "gr");
    expect(screen.getByTestId("suggestions")).toBeVisible();
  });

  it("a bad query says what is wrong and keeps the last results", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    m.receiptsSearch.mockRejectedValue({ code: "invalid_query", message: "bad query token `outcome:won`: outcome must be one of paid, refused, failed, not_payable" });
    await user.type(screen.getByTestId("search-input"), "outcome:won");
    const err = await screen.findByTestId("search-error");
    expect(err).toHaveTextContent("bad query token `outcome:won`");
    expect(err).toHaveAttribute("data-code", "invalid_query");
    expect(screen.getAllByTestId("receipt-row")).toHaveLength(2);
  });

  it("filter chips add and remove their token", async () => {
    const user = userEvent.setup();
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    await user.click(screen.getByTestId("chip-outcome:refused"));
    expect(screen.getByTestId("search-input")).toHaveValue("outcome:refused");
    await waitFor(() => expect(m.receiptsSearch).toHaveBeenCalledWith("outcome:refused", null, FIRST_PAGE));
    await user.click(screen.getByTestId("chip-flag:any"));
    expect(screen.getByTestId("search-input")).toHaveValue("outcome:refused flag:any");
    await user.click(screen.getByTestId("chip-outcome:refused"));
    expect(screen.getByTestId("search-input")).toHaveValue("flag:any");
  });

  it("loads the next page with the cursor when scrolled near the end", async () => {
    const first = Array.from({ length: 5 }, (_, i) => item({ id: `p1-${i}` }));
    m.receiptsSearch.mockImplementation(async (_q, cursor) => (cursor === null ? page(first, "c2", 7) : page([item({ id: "p2-0" }), item({ id: "p2-1" })], null, 7)));
    renderScreen(<Timeline />);
    await waitFor(() => expect(m.receiptsSearch).toHaveBeenCalledWith("", "c2", PAGE));
    await waitFor(() => expect(screen.getAllByTestId("receipt-row")).toHaveLength(7));
  });

  it("explains how to point an agent at the proxy when there are no receipts", async () => {
    m.receiptsSearch.mockResolvedValue(page([]));
    renderScreen(<Timeline />);
    const empty = await screen.findByTestId("timeline-empty");
    await waitFor(() => expect(empty).toHaveTextContent("export PURSER_PROXY=http://127.0.0.1:4020"));
  });

  it("exports the current result set and says where it went", async () => {
    const user = userEvent.setup();
    m.receiptsExport.mockResolvedValue({ path: "/home/u/Downloads/purser-receipts.csv", rows: 2, bytes: 512 });
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    await user.click(screen.getByTestId("export-csv"));
    expect(m.receiptsExport).toHaveBeenCalledWith("", "csv");
    expect(await screen.findByTestId("toast-info")).toHaveTextContent("Exported 2 receipts to /home/u/Downloads/purser-receipts.csv");
  });

  it("asks for the chart of a new query only after its search has answered", async () => {
    const user = userEvent.setup();
    let answer: (p: TimelinePage) => void = () => {};
    renderScreen(<Timeline />);
    await screen.findAllByTestId("receipt-row");
    m.receiptsSearch.mockImplementation(() => new Promise((r) => (answer = r)));
    await user.type(screen.getByTestId("search-input"), "weather");
    await waitFor(() => expect(m.receiptsSearch).toHaveBeenCalledWith("weather", null, FIRST_PAGE));
    expect(m.receiptsStats).not.toHaveBeenCalledWith("weather since:30d", "day,grant");
    answer(page([item({ id: "w-1" })]));
    await waitFor(() => expect(m.receiptsStats).toHaveBeenCalledWith("weather since:30d", "day,grant"));
  });

  it("draws the spend chart per day and grant", async () => {
    renderScreen(<Timeline />);
    const chart = await screen.findByTestId("spend-chart");
    await waitFor(() => expect(chart.querySelectorAll("rect")).toHaveLength(3));
    expect(chart).toHaveTextContent("$0.22");
    expect(m.receiptsStats).toHaveBeenCalledWith("since:30d", "day,grant");
    await userEvent.setup().click(screen.getByTestId("chart-by-host"));
    await waitFor(() => expect(m.receiptsStats).toHaveBeenCalledWith("since:30d", "day,host"));
  });
});

describe("toBars", () => {
  it("groups per day, keeps the top five series and folds the rest into other", () => {
    const groups = Array.from({ length: 7 }, (_, i) => ({ day: "2026-11-25", grant_label: `g${i}`, spend_atomic: String((i + 1) * 1000) }));
    const { bars, names } = toBars(groups, "grant");
    expect(names).toEqual(["g6", "g5", "g4", "g3", "g2", "other"]);
    expect(bars).toHaveLength(1);
    expect(bars[0]!.total).toBe(28000n);
    expect(bars[0]!.parts.find((p) => p.name === "other")!.micros).toBe(3000n);
  });
});

describe("layout", () => {
  const bar = (day: string) => ({ day, parts: [], total: 0n });
  it("puts one day of spend in the last of 30 slots, not across the chart", () => {
    expect(layout([bar("2026-11-25")])).toEqual({ slots: 30, slot: [29] });
  });
  it("places days by date, leaving days without spend empty", () => {
    expect(layout([bar("2026-11-01"), bar("2026-11-20"), bar("2026-11-25")])).toEqual({ slots: 30, slot: [5, 24, 29] });
  });
  it("widens past 30 days when the query spans more", () => {
    expect(layout([bar("2026-09-01"), bar("2026-11-25")])).toEqual({ slots: 86, slot: [0, 85] });
  });
});

describe("useSearchText", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends a keystroke at once when no search is running", () => {
    const { result, rerender } = renderHook(({ text, busy }) => useSearchText(text, busy, DEBOUNCE_MS), { initialProps: { text: "", busy: false } });
    rerender({ text: "a", busy: false });
    expect(result.current).toBe("a");
    rerender({ text: "ap", busy: false });
    expect(result.current).toBe("ap");
  });

  it("while a search runs, waits for its answer or the debounce, whichever is first", () => {
    const { result, rerender } = renderHook(({ text, busy }) => useSearchText(text, busy, DEBOUNCE_MS), { initialProps: { text: "a", busy: true } });
    // A burst while "a" runs: nothing new is sent before the answer…
    rerender({ text: "ap", busy: true });
    act(() => void vi.advanceTimersByTime(DEBOUNCE_MS - 1));
    rerender({ text: "api", busy: true });
    act(() => void vi.advanceTimersByTime(DEBOUNCE_MS - 1));
    expect(result.current).toBe("a");
    // …then the answer comes: the latest text goes at once, the ones typed between never.
    rerender({ text: "api", busy: false });
    expect(result.current).toBe("api");
    // A slow search: the latest text goes DEBOUNCE_MS after its keystroke.
    rerender({ text: "api x", busy: true });
    act(() => void vi.advanceTimersByTime(DEBOUNCE_MS - 1));
    expect(result.current).toBe("api");
    act(() => void vi.advanceTimersByTime(1));
    expect(result.current).toBe("api x");
  });
});

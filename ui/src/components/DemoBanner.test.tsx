import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import type { DemoStatus } from "../bindings";
import { renderScreen } from "../test/util";
import { DemoBanner } from "./DemoBanner";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return { ...real, demoStatus: vi.fn(), demoStop: vi.fn() };
});
const m = vi.mocked(api);

function status(over: Partial<DemoStatus> = {}): DemoStatus {
  return { phase: "running", showingDemo: true, dir: "/d/demo", progress: "paid        $0.001000  GET /cheap  (auto: below $0.01)", lines: [], error: null, outcome: null, ...over };
}

describe("DemoBanner", () => {
  beforeEach(() => {
    m.demoStatus.mockReset();
    m.demoStop.mockReset();
  });

  it("is not shown without a demo", async () => {
    m.demoStatus.mockResolvedValue(status({ phase: "idle", showingDemo: false, progress: "" }));
    renderScreen(<DemoBanner />);
    await waitFor(() => expect(m.demoStatus).toHaveBeenCalled());
    expect(screen.queryByTestId("demo-banner")).toBeNull();
  });

  it("labels the demo, shows its progress and counts, and stops it", async () => {
    m.demoStatus.mockResolvedValue(status({ phase: "finished", outcome: { paid: 22, refused: 2, spentUsd: "$0.953", budgetUsd: "$1.00" } }));
    m.demoStop.mockResolvedValue(status({ phase: "idle", showingDemo: false }));
    renderScreen(<DemoBanner />);
    const banner = await screen.findByTestId("demo-banner");
    expect(banner).toHaveTextContent("Demo — local test network, test USDC");
    expect(screen.getByTestId("demo-progress")).toHaveTextContent("GET /cheap");
    expect(screen.getByTestId("demo-outcome")).toHaveTextContent("22 paid, 2 refused, $0.953 of $1.00 spent");
    m.demoStatus.mockResolvedValue(status({ phase: "idle", showingDemo: false }));
    await userEvent.setup().click(screen.getByTestId("demo-stop"));
    await waitFor(() => expect(m.demoStop).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.queryByTestId("demo-banner")).toBeNull());
  });

  it("a failed demo says why until closed", async () => {
    m.demoStatus.mockResolvedValue(status({ phase: "idle", showingDemo: false, error: { code: "demo_peers_failed", message: "the demo's chain and paywall did not start" } }));
    renderScreen(<DemoBanner />);
    const err = await screen.findByTestId("demo-error");
    expect(err).toHaveAttribute("data-code", "demo_peers_failed");
    await userEvent.setup().click(screen.getByTestId("demo-error-close"));
    expect(screen.queryByTestId("demo-failed")).toBeNull();
  });
});

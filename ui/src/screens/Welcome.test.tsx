import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import type { DemoStatus } from "../bindings";
import { wallet } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { Welcome } from "./Welcome";
import { setupProblem } from "./WalletSetup";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return { ...real, demoStart: vi.fn(), welcomeDismiss: vi.fn(), walletCreate: vi.fn(), walletImportKey: vi.fn() };
});
const m = vi.mocked(api);

const starting: DemoStatus = { phase: "starting", showingDemo: false, dir: "/d/demo", progress: "", lines: [], error: null, outcome: null };
const KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

describe("Welcome", () => {
  const onWalletReady = vi.fn();
  const onDemoStarted = vi.fn();
  beforeEach(() => {
    onWalletReady.mockReset();
    onDemoStarted.mockReset();
  });

  it("offers the demo, the wallet set-up and Not now", async () => {
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    expect(screen.getByTestId("welcome-try")).toHaveTextContent("Try it with a local test network");
    expect(screen.getByTestId("welcome-wallet")).toHaveTextContent("Set up my wallet");
    expect(screen.getByTestId("welcome-dismiss")).toHaveTextContent("Not now");
  });

  it("Try it starts the demo", async () => {
    m.demoStart.mockResolvedValue(starting);
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    await userEvent.setup().click(screen.getByTestId("welcome-try"));
    await waitFor(() => expect(onDemoStarted).toHaveBeenCalledTimes(1));
    expect(m.demoStart).toHaveBeenCalledTimes(1);
  });

  it("a missing peers install is said with its code and the fix", async () => {
    m.demoStart.mockRejectedValue({ code: "demo_peers_not_installed", message: "run `bash /src/tests/peers/setup.sh` once" });
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    await userEvent.setup().click(screen.getByTestId("welcome-try"));
    const err = await screen.findByTestId("welcome-try-error");
    expect(err).toHaveTextContent("bash /src/tests/peers/setup.sh");
    expect(err).toHaveAttribute("data-code", "demo_peers_not_installed");
    expect(onDemoStarted).not.toHaveBeenCalled();
  });

  it("Not now dismisses it", async () => {
    m.welcomeDismiss.mockResolvedValue({ show: false, hasWallet: false, hasGrants: false, hasReceipts: false, dismissed: true });
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    await userEvent.setup().click(screen.getByTestId("welcome-dismiss"));
    await waitFor(() => expect(m.welcomeDismiss).toHaveBeenCalledTimes(1));
  });

  it("creates a wallet: the passphrase twice, matching, then unlocked", async () => {
    const user = userEvent.setup();
    const created = wallet({ locked: false });
    m.walletCreate.mockResolvedValue(created);
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    await user.click(screen.getByTestId("welcome-wallet"));
    await user.click(screen.getByTestId("setup-submit"));
    expect(screen.getByTestId("setup-problem")).toHaveTextContent("Choose a passphrase");
    await user.type(screen.getByTestId("setup-passphrase"), "correct horse");
    await user.type(screen.getByTestId("setup-confirm"), "correct hose");
    await user.click(screen.getByTestId("setup-submit"));
    expect(screen.getByTestId("setup-problem")).toHaveTextContent("The two passphrases differ");
    expect(m.walletCreate).not.toHaveBeenCalled();
    await user.clear(screen.getByTestId("setup-confirm"));
    await user.type(screen.getByTestId("setup-confirm"), "correct horse");
    await user.click(screen.getByTestId("setup-remember"));
    await user.click(screen.getByTestId("setup-submit"));
    await waitFor(() => expect(onWalletReady).toHaveBeenCalledWith(created));
    expect(m.walletCreate).toHaveBeenCalledWith("correct horse", "correct horse", true);
    // the secrets left the form
    expect(screen.getByTestId("setup-passphrase")).toHaveValue("");
    expect(screen.getByTestId("setup-confirm")).toHaveValue("");
  });

  it("imports a key; a bad key never reaches the shell, a refusal is shown in words", async () => {
    const user = userEvent.setup();
    m.walletImportKey.mockRejectedValueOnce({ code: "wallet_exists", message: "a wallet already exists" });
    renderScreen(<Welcome onWalletReady={onWalletReady} onDemoStarted={onDemoStarted} />);
    await user.click(screen.getByTestId("welcome-wallet"));
    await user.click(screen.getByTestId("setup-tab-import"));
    await user.type(screen.getByTestId("setup-key"), "0x1234");
    await user.type(screen.getByTestId("setup-passphrase"), "pw");
    await user.type(screen.getByTestId("setup-confirm"), "pw");
    await user.click(screen.getByTestId("setup-submit"));
    expect(screen.getByTestId("setup-problem")).toHaveTextContent("64 hex digits");
    expect(m.walletImportKey).not.toHaveBeenCalled();
    await user.clear(screen.getByTestId("setup-key"));
    await user.type(screen.getByTestId("setup-key"), KEY);
    await user.click(screen.getByTestId("setup-submit"));
    expect(await screen.findByTestId("setup-error")).toHaveTextContent("a wallet already exists");
    expect(m.walletImportKey).toHaveBeenCalledWith(KEY, "pw", "pw", false);
    expect(screen.getByTestId("setup-key")).toHaveValue("");
    expect(onWalletReady).not.toHaveBeenCalled();
  });

  it("names each form problem", () => {
    expect(setupProblem("create", "", "a", "a")).toBe("");
    expect(setupProblem("import", KEY.slice(2), "a", "a")).toBe("");
    expect(setupProblem("import", KEY + "0", "a", "a")).toMatch(/64 hex digits/);
    expect(setupProblem("create", "", "a", "b")).toMatch(/differ/);
  });
});

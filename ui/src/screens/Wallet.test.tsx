import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import { funds, networkFunds, wallet } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { Wallet } from "./Wallet";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return { ...real, walletStatus: vi.fn(), walletUnlock: vi.fn(), walletLock: vi.fn(), walletFunds: vi.fn() };
});
const m = vi.mocked(api);

describe("Wallet", () => {
  beforeEach(() => {
    m.walletStatus.mockResolvedValue(wallet());
    m.walletFunds.mockResolvedValue(funds());
  });

  it("shows address, network, balance and a locally drawn QR code of the funding URI", async () => {
    renderScreen(<Wallet />);
    expect(await screen.findByTestId("wallet-address")).toHaveTextContent("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    await waitFor(() => expect(screen.getByTestId("wallet-balance")).toHaveTextContent("12.5 USDC"));
    expect(screen.getByTestId("wallet-network")).toHaveTextContent("base-sepolia");
    expect(screen.getByTestId("fund-uri")).toHaveTextContent(networkFunds().fund_uri);
    expect(screen.getByTestId("wallet-allocated")).toHaveTextContent("3.75 USDC");
    expect(screen.getByTestId("fund-instructions")).toHaveTextContent("Send USDC on Base Sepolia");
    const qr = await screen.findByTestId("fund-qr");
    expect(qr.getAttribute("src")).toMatch(/^data:image\/png;base64,/);
    expect(m.walletFunds).toHaveBeenCalledWith(false);
  });

  it("unlock needs a passphrase, then sends it with the remember choice", async () => {
    const user = userEvent.setup();
    m.walletUnlock.mockResolvedValue(wallet({ locked: false, remembered: true }));
    renderScreen(<Wallet />);
    await user.click(await screen.findByTestId("wallet-unlock"));
    expect(screen.getByTestId("passphrase-error")).toHaveTextContent("Enter the wallet's passphrase");
    expect(m.walletUnlock).not.toHaveBeenCalled();
    await user.type(screen.getByTestId("wallet-passphrase"), "correct horse");
    await user.click(screen.getByTestId("wallet-remember"));
    m.walletStatus.mockResolvedValue(wallet({ locked: false, remembered: true }));
    await user.click(screen.getByTestId("wallet-unlock"));
    expect(m.walletUnlock).toHaveBeenCalledWith("correct horse", true);
    expect(await screen.findByTestId("wallet-lock")).toBeInTheDocument();
    expect(screen.getByTestId("wallet-state")).toHaveTextContent("unlocked");
  });

  it("a wrong passphrase is said in words and nothing else changes", async () => {
    const user = userEvent.setup();
    m.walletUnlock.mockRejectedValue({ code: "wrong_passphrase", message: "the passphrase does not open this wallet" });
    renderScreen(<Wallet />);
    await user.type(await screen.findByTestId("wallet-passphrase"), "nope");
    await user.click(screen.getByTestId("wallet-unlock"));
    const err = await screen.findByTestId("unlock-error");
    expect(err).toHaveTextContent("the passphrase does not open this wallet");
    expect(screen.getByTestId("wallet-state")).toHaveTextContent("locked");
    expect(m.walletUnlock).toHaveBeenCalledWith("nope", false);
  });

  it("lock sends wallet_lock and shows the unlock form again", async () => {
    const user = userEvent.setup();
    m.walletStatus.mockResolvedValue(wallet({ locked: false }));
    m.walletLock.mockResolvedValue(wallet({ locked: true }));
    renderScreen(<Wallet />);
    m.walletStatus.mockResolvedValue(wallet({ locked: true }));
    await user.click(await screen.findByTestId("wallet-lock"));
    expect(m.walletLock).toHaveBeenCalledTimes(1);
    expect(await screen.findByTestId("unlock-form")).toBeInTheDocument();
  });

  it("says how to create a wallet when there is none", async () => {
    m.walletStatus.mockResolvedValue(wallet({ address: null }));
    renderScreen(<Wallet />);
    expect(await screen.findByTestId("wallet-none")).toHaveTextContent("purser wallet new");
    expect(m.walletFunds).not.toHaveBeenCalled();
  });

  it("tells when the keychain cannot remember", async () => {
    m.walletStatus.mockResolvedValue(wallet({ keychain: "unavailable", keychain_message: "no Secret Service" }));
    renderScreen(<Wallet />);
    expect(await screen.findByTestId("keychain-unavailable")).toHaveTextContent("no Secret Service");
  });
});

describe("Wallet funds", () => {
  beforeEach(() => {
    m.walletStatus.mockResolvedValue(wallet({ locked: false }));
  });

  it("warns when grants could spend more than the wallet holds, and says why a refresh failed", async () => {
    m.walletFunds.mockResolvedValue(
      funds([
        networkFunds({
          over_allocated: true,
          warning: "grants could spend 20 USDC; the wallet holds 12.5",
          refresh_error: { code: "rpc_unreachable", message: "https://sepolia.base.org did not answer" },
        }),
      ]),
    );
    renderScreen(<Wallet />);
    expect(await screen.findByTestId("wallet-warning")).toHaveTextContent("grants could spend 20 USDC; the wallet holds 12.5");
    expect(screen.getByTestId("wallet-refresh-error")).toHaveTextContent("Could not read the balance: https://sepolia.base.org did not answer");
  });

  it("refresh asks for a fresh read; a network switch changes the QR's URI", async () => {
    const user = userEvent.setup();
    const base = networkFunds({ network: "eip155:8453", network_name: "base", testnet: false, fund_uri: "ethereum:0xusdc@8453/transfer?address=0x7099", balance: null, read_at: null });
    m.walletFunds.mockResolvedValue(funds([networkFunds(), base]));
    renderScreen(<Wallet />);
    await waitFor(() => expect(screen.getByTestId("wallet-network")).toHaveTextContent("base-sepolia (testnet)"));
    await user.click(screen.getByTestId("wallet-net-base"));
    expect(screen.getByTestId("fund-uri")).toHaveTextContent("ethereum:0xusdc@8453/transfer?address=0x7099");
    expect(screen.getByTestId("wallet-balance")).toHaveTextContent("not read yet");
    await user.click(screen.getByTestId("wallet-refresh"));
    expect(m.walletFunds).toHaveBeenLastCalledWith(true);
  });
});

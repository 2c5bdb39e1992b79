import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as api from "../api";
import { wallet } from "../test/fixtures";
import { renderScreen } from "../test/util";
import { Wallet, readFunds } from "./Wallet";

vi.mock("../api", async (orig) => {
  const real = await orig<typeof import("../api")>();
  return { ...real, walletStatus: vi.fn(), walletUnlock: vi.fn(), walletLock: vi.fn(), walletFunds: vi.fn() };
});
const m = vi.mocked(api);

const funds = {
  address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  balances: [{ network: "base-sepolia", asset: "USDC", balance: "12.5", read_at: "2026-11-25T10:00:00Z" }],
  fund_uri: "ethereum:0x036CbD53842c5426634e7929541eC2318f3dCF7e@84532/transfer?address=0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
};

describe("Wallet", () => {
  beforeEach(() => {
    m.walletStatus.mockResolvedValue(wallet());
    m.walletFunds.mockResolvedValue(funds);
  });

  it("shows address, network, balance and a locally drawn QR code of the funding URI", async () => {
    renderScreen(<Wallet />);
    expect(await screen.findByTestId("wallet-address")).toHaveTextContent("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    await waitFor(() => expect(screen.getByTestId("wallet-balance")).toHaveTextContent("12.5 USDC"));
    expect(screen.getByTestId("wallet-network")).toHaveTextContent("base-sepolia");
    expect(screen.getByTestId("fund-uri")).toHaveTextContent(funds.fund_uri);
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

describe("readFunds", () => {
  it("reads the first balance and the URI, and tolerates missing parts", () => {
    expect(readFunds(funds)).toMatchObject({ network: "base-sepolia", asset: "USDC", balance: "12.5", uri: funds.fund_uri });
    expect(readFunds(null)).toEqual({ network: null, asset: null, balance: null, readAt: null, uri: null, instructions: null, warning: null });
    expect(readFunds({ network: "base", balance: 3, warnings: ["grants could spend $9 more than the wallet holds"] })).toMatchObject({
      network: "base",
      balance: "3",
      warning: "grants could spend $9 more than the wallet holds",
    });
  });
});

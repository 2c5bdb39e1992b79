/**
 * Owns the Wallet screen: address, balance per network (with what grants could spend there and
 * a warning when that is more than the wallet holds), funding instructions with a QR code of
 * the funding URI (drawn locally by `qrcode` into a data URL: no remote content), and
 * lock/unlock (passphrase + "remember on this computer"); without a wallet, the set-up form.
 */
import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import QRCode from "qrcode";
import * as api from "../api";
import type { NetworkFunds } from "../bindings";
import { InlineError, Skeleton } from "../components/bits";
import { useToast } from "../components/toasts";
import { keys, useWallet } from "../queries";
import { whenFull } from "../format";
import { WalletSetup } from "./WalletSetup";

function Qr({ text }: { text: string }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    QRCode.toDataURL(text, { margin: 1, width: 192, errorCorrectionLevel: "M" })
      .then((url) => live && setSrc(url))
      .catch(() => live && setSrc(null));
    return () => {
      live = false;
    };
  }, [text]);
  return (
    <div className="qr" style={{ width: 192, height: 192 }}>
      {src && <img src={src} width={192} height={192} alt={`QR code of ${text}`} data-testid="fund-qr" />}
    </div>
  );
}

export function Wallet() {
  const wallet = useWallet();
  const qc = useQueryClient();
  const toast = useToast();
  const w = wallet.data;
  const funds = useQuery({
    queryKey: keys.funds,
    queryFn: () => api.walletFunds(false),
    enabled: Boolean(w?.address),
  });
  const refresh = useMutation({
    mutationFn: () => api.walletFunds(true),
    onSuccess: (f) => qc.setQueryData(keys.funds, f),
    onError: (e) => toast.error(e, "Could not read the balance"),
  });
  const nets = funds.data?.networks ?? [];
  const [netName, setNetName] = useState<string | null>(null);
  const net: NetworkFunds | null = nets.find((n) => n.network === netName) ?? nets[0] ?? null;

  const [pass, setPass] = useState("");
  const [remember, setRemember] = useState(false);
  const [passErr, setPassErr] = useState("");
  const changed = () => {
    void qc.invalidateQueries({ queryKey: keys.wallet });
    void qc.invalidateQueries({ queryKey: keys.funds });
  };
  const unlock = useMutation({
    mutationFn: () => api.walletUnlock(pass, remember),
    onSuccess: () => {
      setPass("");
      toast.info("Wallet unlocked: payments can be signed");
      changed();
    },
  });
  const lock = useMutation({
    mutationFn: api.walletLock,
    onSuccess: () => {
      toast.info("Wallet locked: every payment is refused until you unlock it");
      changed();
    },
    onError: (e) => toast.error(e, "Could not lock"),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (pass === "") {
      setPassErr("Enter the wallet's passphrase");
      return;
    }
    setPassErr("");
    unlock.mutate();
  };

  return (
    <section className="screen" aria-labelledby="wallet-title" data-testid="screen-wallet">
      <header className="screen-head">
        <h1 id="wallet-title">Wallet</h1>
        {w && (
          <span className={`badge ${w.locked ? "state-revoked" : "state-active"}`} data-testid="wallet-state">
            {w.address === null ? "no wallet" : w.locked ? "locked" : "unlocked"}
          </span>
        )}
      </header>
      <InlineError error={wallet.error} />
      {wallet.isPending ? (
        <Skeleton rows={2} height={80} />
      ) : w && w.address === null ? (
        <div className="empty" data-testid="wallet-none">
          <h2>No wallet yet</h2>
          <p>Purser pays from a wallet it keeps encrypted on this computer. Create or import one here:</p>
          <WalletSetup />
          <p className="muted">
            Or in a terminal: <code>purser wallet new</code> / <code>purser wallet import --key-file key.hex</code>
          </p>
        </div>
      ) : w ? (
        <div className="wallet-grid">
          <article className="panel">
            <h2>Address</h2>
            <code className="addr big-addr" data-testid="wallet-address">
              {w.address}
            </code>
            {nets.length > 1 && (
              <div className="chips" role="group" aria-label="Network">
                {nets.map((n) => (
                  <button
                    key={n.network}
                    className={`chip small ${n.network === net?.network ? "on" : ""}`}
                    aria-pressed={n.network === net?.network}
                    onClick={() => setNetName(n.network)}
                    data-testid={`wallet-net-${n.network_name}`}
                  >
                    {n.network_name}
                  </button>
                ))}
              </div>
            )}
            <dl className="facts">
              <dt>Network</dt>
              <dd data-testid="wallet-network">
                {net ? `${net.network_name}${net.testnet ? " (testnet)" : ""}` : "—"}
              </dd>
              <dt>Balance</dt>
              <dd data-testid="wallet-balance">
                {funds.isPending ? (
                  <span className="muted">reading…</span>
                ) : net?.balance ? (
                  `${net.balance} ${net.symbol}`
                ) : (
                  "not read yet"
                )}
                {net?.read_at && <span className="muted"> · read {whenFull(net.read_at)}</span>}
              </dd>
              <dt>Grants could spend</dt>
              <dd data-testid="wallet-allocated">{net ? `${net.allocated} ${net.symbol}` : "—"}</dd>
            </dl>
            {net?.over_allocated && (
              <p className="warning" data-testid="wallet-warning">
                {net.warning ?? "Your grants could spend more than the wallet holds."}
              </p>
            )}
            {net?.refresh_error && (
              <p className="inline-error" data-testid="wallet-refresh-error" data-code={net.refresh_error.code}>
                Could not read the balance: {net.refresh_error.message}
              </p>
            )}
            <InlineError error={funds.error} testid="funds-error" />
            <button onClick={() => refresh.mutate()} disabled={refresh.isPending} data-testid="wallet-refresh">
              {refresh.isPending ? "Reading…" : "Refresh balance"}
            </button>
          </article>

          <article className="panel">
            <h2>Add funds</h2>
            <p className="fund-instructions" data-testid="fund-instructions">
              {net?.instructions ?? "Send USDC to the address above — from an exchange or another wallet."}
            </p>
            {net ? (
              <>
                <Qr text={net.fund_uri} />
                <code className="uri" data-testid="fund-uri">
                  {net.fund_uri}
                </code>
              </>
            ) : (
              <div className="qr placeholder" style={{ width: 192, height: 192 }} aria-hidden="true" />
            )}
          </article>

          <article className="panel">
            <h2>{w.locked ? "Locked" : "Unlocked"}</h2>
            {!w.locked ? (
              <>
                <p>The key is in memory, so Purser can sign the payments your grants allow. Locking wipes it; every payment is refused until you unlock.</p>
                {w.remembered && <p className="muted" data-testid="wallet-remembered">Remembered on this computer: Purser unlocks it at start.</p>}
                <button className="danger-outline" onClick={() => lock.mutate()} disabled={lock.isPending} data-testid="wallet-lock">
                  Lock wallet
                </button>
              </>
            ) : (
              <form onSubmit={submit} noValidate data-testid="unlock-form">
                <p>While locked, every payment is refused (“wallet locked”). Unlock to let grants pay.</p>
                <label className={`field ${passErr ? "invalid" : ""}`}>
                  <span className="field-label">Passphrase</span>
                  <input
                    type="password"
                    value={pass}
                    autoComplete="current-password"
                    onChange={(e) => setPass(e.target.value)}
                    aria-invalid={Boolean(passErr)}
                    data-testid="wallet-passphrase"
                  />
                  {passErr && (
                    <span className="field-error" data-testid="passphrase-error">
                      {passErr}
                    </span>
                  )}
                </label>
                <label className="check">
                  <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} data-testid="wallet-remember" />
                  Remember on this computer (kept in the system keychain)
                </label>
                {w.keychain === "unavailable" && (
                  <p className="muted" data-testid="keychain-unavailable">
                    The system keychain is not available{w.keychain_message ? ` (${w.keychain_message})` : ""}: you will be asked for the passphrase at each start.
                  </p>
                )}
                <InlineError error={unlock.error} testid="unlock-error" />
                <button type="submit" className="primary" disabled={unlock.isPending} data-testid="wallet-unlock">
                  {unlock.isPending ? "Unlocking…" : "Unlock"}
                </button>
              </form>
            )}
          </article>
        </div>
      ) : null}
    </section>
  );
}

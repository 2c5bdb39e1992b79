/**
 * Owns the Wallet screen: address, balance and network, funding instructions with a QR code of
 * the funding URI (drawn locally by `qrcode` into a data URL: no remote content), and
 * lock/unlock (passphrase + "remember on this computer").
 */
import { useEffect, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import QRCode from "qrcode";
import * as api from "../api";
import type { JsonValue } from "../bindings";
import { InlineError, Skeleton } from "../components/bits";
import { useToast } from "../components/toasts";
import { keys, useWallet } from "../queries";
import { whenFull } from "../format";

type Obj = { [k: string]: JsonValue };

function obj(v: JsonValue | undefined): Obj | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v : null;
}

function pick(o: Obj | null, names: string[]): string | null {
  for (const n of names) {
    const v = o?.[n];
    if (typeof v === "string" && v !== "") return v;
    if (typeof v === "number") return String(v);
  }
  return null;
}

/** The facts the screen shows, read from `wallet_funds` (a shape still settling in the core). */
export interface FundsView {
  network: string | null;
  asset: string | null;
  balance: string | null;
  readAt: string | null;
  uri: string | null;
  instructions: string | null;
  warning: string | null;
}

export function readFunds(v: JsonValue | undefined): FundsView {
  const top = obj(v);
  const list = top?.balances ?? top?.networks;
  const first = Array.isArray(list) ? obj(list[0]) : null;
  const at = (names: string[]) => pick(first, names) ?? pick(top, names);
  const warnings = top?.warnings;
  return {
    network: at(["network_name", "network"]),
    asset: at(["asset_symbol", "symbol", "asset"]),
    balance: at(["balance", "balance_decimal", "balance_usd"]),
    readAt: at(["read_at", "readAt"]),
    uri: at(["fund_uri", "uri", "funding_uri", "eip681"]),
    instructions: at(["instructions"]),
    warning: pick(top, ["warning", "over_allocated_warning"]) ?? (Array.isArray(warnings) && typeof warnings[0] === "string" ? warnings[0] : null),
  };
}

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
  const f = readFunds(funds.data);

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
          <p>Purser pays from a wallet it keeps encrypted on this computer. Create or import one in a terminal:</p>
          <pre className="setup">{"purser wallet new\n# or: purser wallet import --key-file key.hex"}</pre>
        </div>
      ) : w ? (
        <div className="wallet-grid">
          <article className="panel">
            <h2>Address</h2>
            <code className="addr big-addr" data-testid="wallet-address">
              {w.address}
            </code>
            <dl className="facts">
              <dt>Network</dt>
              <dd data-testid="wallet-network">{f.network ?? "—"}</dd>
              <dt>Balance</dt>
              <dd data-testid="wallet-balance">
                {funds.isPending ? <span className="muted">reading…</span> : f.balance ? `${f.balance} ${f.asset ?? ""}` : "unknown"}
                {f.readAt && <span className="muted"> · read {whenFull(f.readAt)}</span>}
              </dd>
            </dl>
            {f.warning && (
              <p className="warning" data-testid="wallet-warning">
                {f.warning}
              </p>
            )}
            <InlineError error={funds.error} testid="funds-error" />
            <button onClick={() => refresh.mutate()} disabled={refresh.isPending} data-testid="wallet-refresh">
              {refresh.isPending ? "Reading…" : "Refresh balance"}
            </button>
          </article>

          <article className="panel">
            <h2>Add funds</h2>
            <p>
              {f.instructions ??
                `Send USDC on ${f.network ?? "the grant's network"} to the address above — from an exchange or another wallet. Scan the code with a mobile wallet:`}
            </p>
            {f.uri ? (
              <>
                <Qr text={f.uri} />
                <code className="uri" data-testid="fund-uri">
                  {f.uri}
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

/**
 * Owns "Set up my wallet": create a new wallet (a passphrase typed twice, optionally remembered
 * by the OS keychain) or import one from a private key, through the same core code as
 * `purser wallet new|import`; the wallet is unlocked at once. The key and passphrases live only
 * in this form's state, are cleared once sent, and are never shown back or logged.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { WalletStatus } from "../bindings";
import { InlineError } from "../components/bits";
import { useToast } from "../components/toasts";
import { keys } from "../queries";

type Mode = "create" | "import";

/** The key as `purser wallet import` takes it: 64 hex digits, `0x` optional. */
export const KEY_RE = /^(0x)?[0-9a-fA-F]{64}$/;

/** What is wrong with the form, in words (empty: nothing). */
export function setupProblem(mode: Mode, key: string, pass: string, confirm: string): string {
  if (mode === "import" && !KEY_RE.test(key.trim())) return "The private key is 64 hex digits (0x optional)";
  if (pass === "") return "Choose a passphrase: it encrypts the wallet on this computer";
  if (pass !== confirm) return "The two passphrases differ";
  return "";
}

export function WalletSetup({ onDone }: { onDone?: (w: WalletStatus) => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const [mode, setMode] = useState<Mode>("create");
  const [key, setKey] = useState("");
  const [pass, setPass] = useState("");
  const [confirm, setConfirm] = useState("");
  const [remember, setRemember] = useState(false);
  const [problem, setProblem] = useState("");
  const setup = useMutation({
    mutationFn: () =>
      mode === "create" ? api.walletCreate(pass, confirm, remember) : api.walletImportKey(key.trim(), pass, confirm, remember),
    onSettled: () => {
      // Secrets leave the form's state whatever happened.
      setKey("");
      setPass("");
      setConfirm("");
    },
    onSuccess: (w) => {
      qc.setQueryData(keys.wallet, w);
      void qc.invalidateQueries({ queryKey: keys.wallet });
      void qc.invalidateQueries({ queryKey: keys.funds });
      void qc.invalidateQueries({ queryKey: keys.welcome });
      toast.info(mode === "create" ? "Wallet created and unlocked" : "Wallet imported and unlocked");
      onDone?.(w);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const p = setupProblem(mode, key, pass, confirm);
    setProblem(p);
    if (p === "") setup.mutate();
  };
  const pick = (m: Mode) => {
    setMode(m);
    setProblem("");
    setup.reset();
  };
  return (
    <form className="panel wallet-setup" onSubmit={submit} noValidate data-testid="wallet-setup" aria-label="Set up my wallet">
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={mode === "create"} className={mode === "create" ? "current" : ""} onClick={() => pick("create")} data-testid="setup-tab-create">
          Create a new wallet
        </button>
        <button type="button" role="tab" aria-selected={mode === "import"} className={mode === "import" ? "current" : ""} onClick={() => pick("import")} data-testid="setup-tab-import">
          Import a private key
        </button>
      </div>
      {mode === "import" && (
        <label>
          Private key (0x + 64 hex digits)
          <input type="password" autoComplete="off" spellCheck={false} value={key} onChange={(e) => setKey(e.target.value)} data-testid="setup-key" />
        </label>
      )}
      <label>
        Passphrase (encrypts the key on this computer)
        <input type="password" autoComplete="new-password" value={pass} onChange={(e) => setPass(e.target.value)} data-testid="setup-passphrase" />
      </label>
      <label>
        Passphrase again
        <input type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} data-testid="setup-confirm" />
      </label>
      <label className="check">
        <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} data-testid="setup-remember" />
        Remember on this computer (the OS keychain unlocks it at start)
      </label>
      {problem && (
        <p className="field-error" data-testid="setup-problem">
          {problem}
        </p>
      )}
      <InlineError error={setup.error} testid="setup-error" />
      <button type="submit" className="primary" disabled={setup.isPending} data-testid="setup-submit">
        {setup.isPending ? "Sealing…" : mode === "create" ? "Create wallet" : "Import wallet"}
      </button>
    </form>
  );
}

/**
 * Owns the first-run welcome: shown while nothing is set up (no wallet, no grant, no receipt)
 * until dismissed. "Try it with a local test network" starts the demo (every screen then shows
 * the demo's data), "Set up my wallet" opens the create/import form, "Not now" hides it for good.
 */
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { WalletStatus } from "../bindings";
import { InlineError } from "../components/bits";
import { keys } from "../queries";
import { WalletSetup } from "./WalletSetup";

export function Welcome({ onWalletReady, onDemoStarted }: { onWalletReady: (w: WalletStatus) => void; onDemoStarted: () => void }) {
  const qc = useQueryClient();
  const [settingUp, setSettingUp] = useState(false);
  const demo = useMutation({
    mutationFn: api.demoStart,
    onSuccess: (s) => {
      qc.setQueryData(keys.demo, s);
      onDemoStarted();
    },
  });
  const dismiss = useMutation({
    mutationFn: api.welcomeDismiss,
    onSuccess: (w) => qc.setQueryData(keys.welcome, w),
  });
  return (
    <section className="screen welcome" aria-labelledby="welcome-title" data-testid="welcome">
      <h1 id="welcome-title">Welcome to Purser</h1>
      <p>
        Purser holds the purse strings for your AI agents: they send their requests through it, and when an API asks to be
        paid (HTTP 402) Purser pays silently within the grant you gave, asks you, or refuses — and keeps a receipt of
        every decision.
      </p>
      {settingUp ? (
        <>
          <WalletSetup onDone={onWalletReady} />
          <button className="ghost" onClick={() => setSettingUp(false)} data-testid="setup-back">
            Back
          </button>
        </>
      ) : (
        <>
          <div className="welcome-actions">
            <article className="panel">
              <h2>Try it with a local test network</h2>
              <p className="muted">
                A test chain, test USDC and a real x402 paywalled API on this computer, a demo wallet and a sample agent. You
                answer its prompt and watch the timeline fill. Nothing real is used; the demo keeps its own data.
              </p>
              <button className="primary" onClick={() => demo.mutate()} disabled={demo.isPending} data-testid="welcome-try">
                {demo.isPending ? "Starting…" : "Try it with a local test network"}
              </button>
              <InlineError error={demo.error} testid="welcome-try-error" />
            </article>
            <article className="panel">
              <h2>Set up my wallet</h2>
              <p className="muted">Create a new wallet, or import one from its private key. It is encrypted on this computer.</p>
              <button className="primary" onClick={() => setSettingUp(true)} data-testid="welcome-wallet">
                Set up my wallet
              </button>
            </article>
          </div>
          <button className="ghost" onClick={() => dismiss.mutate()} disabled={dismiss.isPending} data-testid="welcome-dismiss">
            Not now
          </button>
          <InlineError error={dismiss.error} />
        </>
      )}
    </section>
  );
}

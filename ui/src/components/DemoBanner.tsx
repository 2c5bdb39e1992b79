/**
 * Owns the demo banner: while a demo session runs, every screen shows the demo's data, and this
 * says so ("Demo — local test network, test USDC"), with the demo's latest progress line, its
 * counts once the agent is done, and "Stop demo" (which ends everything the demo started and
 * returns to the real data). A failed demo's error stays until dismissed.
 */
import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { DemoStatus } from "../bindings";
import { useDemo, keys } from "../queries";
import { InlineError } from "./bits";

const PHASE_TEXT: Record<DemoStatus["phase"], string> = {
  idle: "",
  starting: "starting the test chain, paywall and proxy…",
  running: "the sample agent is running",
  finished: "the sample agent is done",
  stopping: "stopping everything the demo started…",
};

export function DemoBanner() {
  const qc = useQueryClient();
  const demo = useDemo();
  const [hiddenError, setHiddenError] = useState<string | null>(null);
  const stop = useMutation({
    mutationFn: api.demoStop,
    onSuccess: (s) => {
      qc.setQueryData(keys.demo, s);
      void qc.invalidateQueries();
    },
  });
  const s = demo.data;
  if (!s) return null;
  if (s.phase === "idle") {
    const err = s.error;
    if (!err || hiddenError === err.message) return null;
    return (
      <div className="banner demo failed" role="alert" data-testid="demo-failed">
        <strong>The demo stopped</strong>
        <InlineError error={err} testid="demo-error" />
        <button className="ghost small" onClick={() => setHiddenError(err.message)} data-testid="demo-error-close">
          Close
        </button>
      </div>
    );
  }
  return (
    <div className="banner demo" role="status" data-testid="demo-banner" data-phase={s.phase}>
      <div className="demo-text">
        <strong>Demo — local test network, test USDC</strong> <span className="muted">{PHASE_TEXT[s.phase]}</span>
        {s.outcome && (
          <span className="demo-outcome" data-testid="demo-outcome">
            {" "}
            · {s.outcome.paid} paid, {s.outcome.refused} refused, {s.outcome.spentUsd} of {s.outcome.budgetUsd} spent
          </span>
        )}
        <code className="demo-progress" data-testid="demo-progress" title={s.lines.join("\n")}>
          {s.progress}
        </code>
      </div>
      <button className="danger-outline small" onClick={() => stop.mutate()} disabled={stop.isPending || s.phase === "stopping"} data-testid="demo-stop">
        {stop.isPending || s.phase === "stopping" ? "Stopping…" : "Stop demo"}
      </button>
      <InlineError error={stop.error} testid="demo-stop-error" />
    </div>
  );
}

/**
 * Owns small shared pieces: empty states, skeleton rows, inline errors, a ticking clock hook
 * and outcome/flag badges.
 */
import { useEffect, useState, type ReactNode } from "react";
import { toApiError } from "../api";
import { words } from "../format";

/** The current time, re-rendering every `everyMs` (countdowns). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export function Empty({ title, children, testid }: { title: string; children?: ReactNode; testid: string }) {
  return (
    <div className="empty" data-testid={testid}>
      <h2>{title}</h2>
      {children}
    </div>
  );
}

/** Placeholder rows of the final height, so nothing jumps when data arrives. */
export function Skeleton({ rows = 3, height = 56 }: { rows?: number; height?: number }) {
  return (
    <div className="skeleton" aria-busy="true" aria-label="Loading" data-testid="skeleton">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="skeleton-row" style={{ height }} />
      ))}
    </div>
  );
}

export function InlineError({ error, testid = "inline-error" }: { error: unknown; testid?: string }) {
  if (!error) return null;
  const e = toApiError(error);
  return (
    <p className="inline-error" role="alert" data-testid={testid} data-code={e.code}>
      {e.message} <code>{e.code}</code>
    </p>
  );
}

export function OutcomeBadge({ outcome }: { outcome: string }) {
  return (
    <span className={`badge outcome-${outcome}`} data-testid="outcome">
      {words(outcome)}
    </span>
  );
}

const FLAG_TEXT: Record<string, string> = { price_spike: "price spike", new_payee: "new payee" };

export function Flags({ flags }: { flags: readonly string[] }) {
  if (flags.length === 0) return null;
  return (
    <span className="flags">
      {flags.map((f) => (
        <span key={f} className={`badge flag flag-${f}`} data-testid={`flag-${f}`} title={f}>
          ⚑ {FLAG_TEXT[f] ?? words(f)}
        </span>
      ))}
    </span>
  );
}

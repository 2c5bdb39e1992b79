/**
 * Owns how the UI turns ledger values into words: micro-USD strings to dollars (exact, BigInt,
 * never a float), shares for bars, countdowns, times and short addresses.
 */

import type { AgentInfo } from "./bindings/AgentInfo";

const MICROS = 1_000_000n;

/** Parses a non-negative integer string (atomic units); anything else is `null`. */
export function atomic(s: string | null | undefined): bigint | null {
  if (s == null || !/^(0|[1-9][0-9]*)$/.test(s)) return null;
  return BigInt(s);
}

/** `1234567` micro-USD → `$1.234567`, trimmed to at least two decimals (`$1.23`). */
export function usdFromMicros(m: bigint | string | null | undefined): string {
  const v = typeof m === "bigint" ? m : atomic(m ?? null);
  if (v === null) return "—";
  const neg = v < 0n;
  const a = neg ? -v : v;
  const whole = a / MICROS;
  let frac = (a % MICROS).toString().padStart(6, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${neg ? "-" : ""}$${groupThousands(whole.toString())}.${frac}`;
}

/** A decimal USD string from the backend (`0.05`, `12`) shown as `$0.05`, `$12.00`. */
export function usdText(s: string | null | undefined): string {
  if (s == null || !/^-?[0-9]+(\.[0-9]+)?$/.test(s)) return "—";
  const [i = "0", f = ""] = s.split(".");
  const frac = f.replace(/0+$/, "").padEnd(2, "0");
  return `$${groupThousands(i)}.${frac}`;
}

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Strict USD input, as the core parses it: `5`, `0.05`, at most 6 decimals. */
export const USD_RE = /^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$/;
/** A duration as the core parses it: `90s`, `30m`, `2h`, `7d`. */
export const DURATION_RE = /^[1-9][0-9]*[smhd]$/;

/** USD string → micro-USD (only for input already matching `USD_RE`). */
export function microsFromUsd(s: string): bigint | null {
  if (!USD_RE.test(s)) return null;
  const [i = "0", f = ""] = s.split(".");
  return BigInt(i) * MICROS + BigInt(f.padEnd(6, "0"));
}

/** `part / whole` as a percentage for a bar's width (display only), clamped to 0..100. */
export function share(part: bigint, whole: bigint): number {
  if (whole <= 0n || part <= 0n) return 0;
  if (part >= whole) return 100;
  return Number((part * 10_000n) / whole) / 100;
}

/** Seconds left until `iso` from `nowMs` (negative when past). */
export function secondsUntil(iso: string, nowMs: number): number {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 0;
  return Math.floor((t - nowMs) / 1000);
}

/** `3725` → `1h 2m`, `59` → `59s`, `90061` → `1d 1h`. */
export function countdown(secs: number): string {
  if (secs <= 0) return "0s";
  const d = Math.floor(secs / 86_400);
  const h = Math.floor((secs % 86_400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s.toString().padStart(2, "0")}s`;
  return `${s}s`;
}

const TIME = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A receipt time in the user's locale, to the second, without the year (rows; one shared formatter). */
export function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : TIME.format(t);
}

const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A time with its date and year (the drawer, the wallet). */
export function whenFull(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : FULL.format(t);
}

/** `1234567` → `1,234,567` (counts). */
export function count(n: number): string {
  return groupThousands(String(n));
}

/** `0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC` → `0x3C44…93BC`. */
export function shortAddr(a: string | null | undefined): string {
  if (!a) return "—";
  return a.length > 12 ? `${a.slice(0, 6)}…${a.slice(-4)}` : a;
}

/** Reason and flag codes in words: `over_budget` → `over budget`. */
export function words(code: string): string {
  return code.replace(/_/g, " ");
}

/** A process name from an executable path: `/usr/bin/python3.11` → `python3.11`. */
function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * Who is asking, as the OS said it, in one line (the same words as the native prompt's first
 * line): the run and its command, else the process with its parents root first
 * (`claude → node → curl`), else that nobody could be identified (never a guess).
 */
export function askedBy(who: AgentInfo | null | undefined): string {
  const pid = who?.pid != null ? `, pid ${who.pid}` : "";
  if (!who || who.kind === "unknown") return "an unidentified process";
  if (who.kind === "run") return `run “${who.run_label ?? "unlabelled"}”: ${who.cmdline ?? "?"}${pid}`;
  const me = who.exe ? baseName(who.exe) : (who.cmdline?.split(" ")[0] ?? `pid ${who.pid}`);
  const chain = [...who.parents].reverse().map((p) => p.name);
  return `${[...chain, me].join(" → ")}${pid}`;
}

/**
 * [`askedBy`] for a narrow line: the asking process first (`curl, pid 42 (from claude → node)`),
 * so cutting the line keeps what matters; runs and unknowns as `askedBy` says them.
 */
export function askedByFirst(who: AgentInfo | null | undefined): string {
  if (!who || who.kind !== "process") return askedBy(who);
  const me = who.exe ? baseName(who.exe) : (who.cmdline?.split(" ")[0] ?? `pid ${who.pid}`);
  const pid = who.pid != null ? `, pid ${who.pid}` : "";
  const from = [...who.parents].reverse().map((p) => p.name);
  return from.length ? `${me}${pid} (from ${from.join(" → ")})` : `${me}${pid}`;
}

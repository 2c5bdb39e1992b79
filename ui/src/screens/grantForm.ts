/**
 * Owns the grant form's data: presets, field validation with plain-words messages (mirroring
 * what core/src/grants.rs accepts, so most mistakes are caught before a round trip), and the
 * conversion to the `GrantSpecInput` / `GrantPatch` the commands take.
 */
import type { GrantPatch, GrantSpecInput, GrantView } from "../bindings";
import { DURATION_RE, USD_RE, microsFromUsd, usdFromMicros } from "../format";

export interface FormValues {
  label: string;
  budget: string;
  expires: string;
  hosts: string;
  payees: string;
  networks: string;
  perRequestMax: string;
  autoBelow: string;
  askBelow: string;
  approvalTimeout: string;
  onlyListedHosts: boolean;
  /** The token works only inside `purser run` (new grants only). */
  onlyRun: boolean;
  /** The token works only for this executable, an absolute path (new grants only). */
  onlyExe: string;
}

export type Field = keyof FormValues;
export type Errors = Partial<Record<Field, string>>;

export const EMPTY: FormValues = {
  label: "",
  budget: "",
  expires: "",
  hosts: "",
  payees: "",
  networks: "",
  perRequestMax: "",
  autoBelow: "",
  askBelow: "",
  approvalTimeout: "",
  onlyListedHosts: false,
  onlyRun: false,
  onlyExe: "",
};

export interface Preset {
  id: string;
  name: string;
  summary: string;
  values: Partial<FormValues>;
}

export const PRESETS: Preset[] = [
  {
    id: "research",
    name: "Research",
    summary: "$5, 2 h, ask above $0.05",
    values: { label: "research", budget: "5", expires: "2h", autoBelow: "0.05", askBelow: "1", perRequestMax: "0.50" },
  },
  {
    id: "lookup",
    name: "Quick lookup",
    summary: "$1, 30 min, ask above $0.01",
    values: { label: "lookup", budget: "1", expires: "30m", autoBelow: "0.01", askBelow: "0.25", perRequestMax: "0.10" },
  },
  {
    id: "batch",
    name: "Overnight batch",
    summary: "$20, 12 h, never asks, nothing over $0.25",
    values: { label: "batch", budget: "20", expires: "12h", autoBelow: "0.25", askBelow: "0.25", perRequestMax: "0.25" },
  },
];

/** Splits a list field (commas, spaces or lines). */
export function list(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

const HOST_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/i;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;

function usdError(v: string, name: string, positive = false): string | undefined {
  if (!USD_RE.test(v)) return `${name} must be dollars like 5 or 0.05 (at most 6 decimals, no $ or commas)`;
  if (positive && microsFromUsd(v) === 0n) return `${name} must be more than $0`;
  return undefined;
}

/** Checks the form; `mode` edit skips what an edit cannot change. */
export function validate(v: FormValues, mode: "create" | "edit"): Errors {
  const e: Errors = {};
  if (v.label.trim() === "") e.label = "Give the grant a name, e.g. research";
  else if (v.label.trim().length > 100) e.label = "Keep the name under 100 characters";
  if (mode === "create") {
    if (v.budget.trim() === "") e.budget = "Set a budget: the most this task may spend, e.g. 5";
    else e.budget = usdError(v.budget.trim(), "Budget", true);
    if (v.expires.trim() === "") e.expires = "Set how long the grant lasts, e.g. 2h";
    else if (!DURATION_RE.test(v.expires.trim())) e.expires = "Write a duration like 90s, 30m, 2h or 7d";
    const badPayee = list(v.payees).find((p) => !ADDRESS_RE.test(p));
    if (badPayee) e.payees = `${badPayee} is not a 0x address (40 hex digits)`;
  } else if (v.expires.trim() !== "" && !DURATION_RE.test(v.expires.trim())) {
    e.expires = "Extend by a duration like 30m, 2h or 7d (or leave empty)";
  }
  const hosts = list(v.hosts);
  if (hosts.length === 0) e.hosts = "List at least one host the agent may pay, e.g. api.example.com or *.example.org";
  else {
    const bad = hosts.find((h) => !HOST_RE.test(h));
    if (bad) e.hosts = `${bad} is not a host (api.example.com, 127.0.0.1:8080 or *.example.org)`;
  }
  if (mode === "create" && v.onlyExe.trim() && !v.onlyExe.trim().startsWith("/")) e.onlyExe = "Give the program's absolute path, e.g. /usr/bin/python3.11";
  if (v.perRequestMax.trim()) e.perRequestMax = usdError(v.perRequestMax.trim(), "Per-request cap", true);
  if (v.autoBelow.trim()) e.autoBelow = usdError(v.autoBelow.trim(), "Pay-without-asking limit");
  if (v.askBelow.trim()) e.askBelow = usdError(v.askBelow.trim(), "Refuse-from limit", true);
  if (!e.autoBelow && !e.askBelow && v.autoBelow.trim() && v.askBelow.trim()) {
    if (microsFromUsd(v.askBelow.trim())! < microsFromUsd(v.autoBelow.trim())!) {
      e.askBelow = "The refuse-from limit cannot be below the pay-without-asking limit";
    }
  }
  if (mode === "create" && !e.budget && !e.perRequestMax && v.perRequestMax.trim()) {
    if (microsFromUsd(v.perRequestMax.trim())! > microsFromUsd(v.budget.trim())!) {
      e.perRequestMax = "The per-request cap is larger than the whole budget";
    }
  }
  if (v.approvalTimeout.trim() && !DURATION_RE.test(v.approvalTimeout.trim())) {
    e.approvalTimeout = "Write a duration like 60s or 5m";
  }
  for (const k of Object.keys(e) as Field[]) if (e[k] === undefined) delete e[k];
  return e;
}

const opt = (s: string) => (s.trim() === "" ? null : s.trim());

export function toSpec(v: FormValues): GrantSpecInput {
  return {
    label: v.label.trim(),
    budget: v.budget.trim(),
    expires: v.expires.trim(),
    hosts: list(v.hosts),
    payees: list(v.payees),
    networks: list(v.networks),
    perRequestMax: opt(v.perRequestMax),
    autoBelow: opt(v.autoBelow),
    askBelow: opt(v.askBelow),
    approvalTimeout: opt(v.approvalTimeout),
    onlyListedHosts: v.onlyListedHosts,
    onlyRun: v.onlyRun,
    onlyExe: opt(v.onlyExe),
  };
}

/** An edit: only what changed; an emptied cap or ask limit is `""` (removed). */
export function toPatch(v: FormValues, was: FormValues): GrantPatch {
  const p: GrantPatch = {};
  if (v.label.trim() !== was.label) p.label = v.label.trim();
  if (list(v.hosts).join(",") !== list(was.hosts).join(",")) p.hosts = list(v.hosts);
  if (v.perRequestMax.trim() !== was.perRequestMax) p.perRequestMax = v.perRequestMax.trim();
  if (v.autoBelow.trim() !== was.autoBelow && v.autoBelow.trim() !== "") p.autoBelow = v.autoBelow.trim();
  if (v.askBelow.trim() !== was.askBelow) p.askBelow = v.askBelow.trim();
  if (v.approvalTimeout.trim() !== was.approvalTimeout && v.approvalTimeout.trim() !== "")
    p.approvalTimeout = v.approvalTimeout.trim();
  if (v.expires.trim() !== "") p.extendBy = v.expires.trim();
  if (v.onlyListedHosts !== was.onlyListedHosts) p.onlyListedHosts = v.onlyListedHosts;
  return p;
}

/** micro-USD string → the plain decimal the form shows (`50000` → `0.05`). */
function plain(m: string | null): string {
  if (m === null) return "";
  return usdFromMicros(m).replace(/^\$/, "").replace(/,/g, "").replace(/\.00$/, "");
}

/** The form's values for editing `g` (`expires` is the extension, empty = unchanged). */
export function fromGrant(g: GrantView): FormValues {
  return {
    label: g.label,
    budget: plain(g.budget_atomic),
    expires: "",
    hosts: g.hosts.join(", "),
    payees: g.payees.join(", "),
    networks: g.networks.join(", "),
    perRequestMax: plain(g.per_request_max_atomic),
    autoBelow: plain(g.auto_below_atomic),
    askBelow: plain(g.ask_below_atomic),
    approvalTimeout: `${g.approval_timeout_secs}s`,
    onlyListedHosts: g.only_listed_hosts,
    onlyRun: g.only_run,
    onlyExe: g.only_exe ?? "",
  };
}

/**
 * Owns the search box's suggestions for the timeline query language (core/src/search/query.rs):
 * given the text, the caret and the facets `query_help` reported, it says which part of the
 * text the caret is in and what could go there — a filter key (`grant:`, `outcome:` …) or a
 * value for the key being typed (outcome codes, grant labels, hosts, amount operators, ages).
 * Pure: no React, no IPC.
 */
import type { QueryHelp } from "../bindings";

export interface Suggestion {
  /** What the list shows. */
  label: string;
  /** A short explanation shown beside it. */
  detail: string;
  /** The text that replaces `[from, to)` of the input. */
  insert: string;
}

export interface Suggestions {
  from: number;
  to: number;
  items: Suggestion[];
}

/** The language's filter keys (aliases map onto one of them), in the order they are offered. */
export const KEYS: ReadonlyArray<{ key: string; detail: string }> = [
  { key: "grant", detail: "a grant, by label or id" },
  { key: "outcome", detail: "paid, refused, failed, not_payable" },
  { key: "host", detail: "a host, or *.domain for its subdomains" },
  { key: "payee", detail: "a payee address (0x…)" },
  { key: "network", detail: "a network name or CAIP-2 id" },
  { key: "amount", detail: "price in USD: >0.10, <=1, 0.01..0.05" },
  { key: "since", detail: "from a date or an age: 2026-11-01, 7d" },
  { key: "until", detail: "before a date: 2026-11-02" },
  { key: "decider", detail: "who decided: auto, user, timeout, policy, rule" },
  { key: "reason", detail: "a reason code: over_budget …" },
  { key: "flag", detail: "price_spike, new_payee, any" },
];

const ALIASES: Record<string, string> = { by: "decider", decided_by: "decider", pay_to: "payee" };

/** Values the language itself defines (the backend adds grant labels, hosts, payees …). */
const BUILTIN: Record<string, ReadonlyArray<[string, string]>> = {
  outcome: [
    ["paid", "paid and settled"],
    ["refused", "refused by a limit, a rule or you"],
    ["failed", "payment attempted, not settled"],
    ["not_payable", "a 402 Purser could not pay"],
  ],
  decider: [
    ["auto", "under the auto-approve tier"],
    ["user", "you approved or denied"],
    ["timeout", "nobody answered in time"],
    ["policy", "a grant limit decided"],
    ["rule", "one of your rules decided"],
  ],
  flag: [
    ["price_spike", "over 3× the endpoint's usual price"],
    ["new_payee", "a payee not seen before for the host"],
    ["any", "any flag"],
  ],
  amount: [
    [">0.10", "more than $0.10"],
    ["<=1", "at most $1"],
    ["0.01..0.05", "from $0.01 to $0.05"],
    [">=", "at least …"],
  ],
  since: [
    ["24h", "the last 24 hours"],
    ["7d", "the last 7 days"],
    ["30d", "the last 30 days"],
  ],
  until: [],
};

const MAX_ITEMS = 12;

/** The token around the caret: where it starts, where it ends, and whether it is negated. */
function tokenAt(text: string, caret: number): { start: number; end: number } {
  const c = Math.max(0, Math.min(caret, text.length));
  // Whitespace inside an open double quote belongs to the token.
  let start = 0;
  let inQuote = false;
  for (let i = 0; i < c; i++) {
    const ch = text[i]!;
    if (ch === '"') inQuote = !inQuote;
    else if (!inQuote && /\s/.test(ch)) start = i + 1;
  }
  let end = c;
  while (end < text.length && (inQuote ? text[end] !== '"' : !/\s/.test(text[end]!))) end++;
  if (inQuote && end < text.length) end++;
  return { start, end };
}

function quoteIfNeeded(v: string): string {
  return /[\s,"]/.test(v) ? `"${v.replace(/"/g, "")}"` : v;
}

/** Prefix matches first; then (for values, from 3 typed characters) substring matches. */
function rank(candidates: Array<[string, string]>, typed: string, substring: boolean): Array<[string, string]> {
  const t = typed.toLowerCase();
  const seen = new Set<string>();
  const pre: Array<[string, string]> = [];
  const mid: Array<[string, string]> = [];
  for (const c of candidates) {
    const v = c[0].toLowerCase();
    if (seen.has(v)) continue;
    seen.add(v);
    if (v === t) continue; // already typed in full
    if (v.startsWith(t)) pre.push(c);
    else if (substring && t.length >= 3 && v.includes(t)) mid.push(c);
  }
  return [...pre, ...mid].slice(0, MAX_ITEMS);
}

/**
 * What could go at `caret` in `text`. `help` is what `query_help` returned (may be null while
 * loading); `today` (YYYY-MM-DD) lets `since:`/`until:` offer today's date.
 */
export function suggest(text: string, caret: number, help: QueryHelp | null, today?: string): Suggestions {
  const { start, end } = tokenAt(text, caret);
  const token = text.slice(start, Math.max(start, Math.min(caret, end)));
  const neg = token.startsWith("-") ? "-" : "";
  const body = token.slice(neg.length);
  const m = /^([A-Za-z_]+):(.*)$/s.exec(body);

  if (!m) {
    // A key being typed (or a plain word): offer keys that start with it.
    if (body.includes('"') || body.includes(":")) return { from: start, to: end, items: [] };
    // query_help may name a key by an alias (`by` for `decider`): one entry per key.
    const fromHelp = new Map((help?.keys ?? []).map((k) => [ALIASES[k.key] ?? k.key, k.description]));
    const keys: Array<[string, string]> = KEYS.map((k) => [k.key, fromHelp.get(k.key) ?? k.detail]);
    for (const [k, d] of fromHelp) if (!keys.some(([n]) => n === k)) keys.push([k, d]);
    const items = rank(keys, body, false).map(([k, d]) => ({ label: `${k}:`, detail: d, insert: `${neg}${k}:` }));
    return { from: start, to: end, items };
  }

  const typedKey = m[1]!.toLowerCase();
  const key = ALIASES[typedKey] ?? typedKey;
  let value = m[2]!;
  // A comma list: only the part after the last comma is being typed.
  const quoted = value.startsWith('"');
  const lastComma = quoted ? -1 : value.lastIndexOf(",");
  const chosen = lastComma >= 0 ? value.slice(0, lastComma).split(",").map((v) => v.toLowerCase()) : [];
  const listPrefix = lastComma >= 0 ? value.slice(0, lastComma + 1) : "";
  value = (lastComma >= 0 ? value.slice(lastComma + 1) : value).replace(/^"/, "").replace(/"$/, "");

  const candidates: Array<[string, string]> = [];
  if (key === "amount") {
    for (const c of BUILTIN.amount!) candidates.push(c);
  } else {
    for (const c of BUILTIN[key] ?? []) candidates.push(c);
    if ((key === "since" || key === "until") && today) candidates.unshift([today, "today (UTC)"]);
    const help_ = help?.keys.find((k) => (ALIASES[k.key] ?? k.key) === key);
    for (const v of help_?.values ?? []) candidates.push([v, key === "grant" ? "grant" : key]);
  }
  const items = rank(
    candidates.filter(([v]) => !chosen.includes(v.toLowerCase())),
    value,
    true,
  ).map(([v, d]) => {
    const open = key === "amount" && /^[<>]=?$/.test(v); // an operator: the user types the number
    return {
      label: v,
      detail: d,
      insert: `${neg}${typedKey}:${listPrefix}${open ? v : quoteIfNeeded(v)}${open ? "" : " "}`,
    };
  });
  return { from: start, to: end, items };
}

/** The text after choosing `item`, and where the caret goes. */
export function apply(text: string, s: Suggestions, item: Suggestion): { text: string; caret: number } {
  const before = text.slice(0, s.from);
  let after = text.slice(s.to);
  if (item.insert.endsWith(" ") && after.startsWith(" ")) after = after.slice(1);
  return { text: before + item.insert + after, caret: before.length + item.insert.length };
}

/**
 * Owns the spend chart above the timeline: spend per day, stacked per grant or per host, drawn
 * as plain SVG from `receipts_stats` (by `day,grant` or `day,host`) for the current query.
 */
import { memo, useMemo } from "react";
import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { JsonValue } from "../bindings";
import { atomic, usdFromMicros } from "../format";
import { keys } from "../queries";

export type Split = "grant" | "host";

const TOP = 5;
const DAYS = 30;
const H = 96;
const BAR = 10;
const GAP = 4;

interface Bar {
  day: string;
  parts: Array<{ name: string; micros: bigint }>;
  total: bigint;
}

function str(o: { [k: string]: JsonValue } | null, k: string): string | null {
  const v = o?.[k];
  return typeof v === "string" ? v : null;
}

/** Groups from `receipts_stats` → bars per day with the top groups named and the rest "other". */
export function toBars(groups: JsonValue[], split: Split): { bars: Bar[]; names: string[] } {
  const rows = groups
    .filter((g): g is { [k: string]: JsonValue } => typeof g === "object" && g !== null && !Array.isArray(g))
    .map((g) => ({
      day: str(g, "day") ?? "",
      name: (split === "grant" ? (str(g, "grant_label") ?? str(g, "grant_id")) : str(g, "host")) ?? "(none)",
      micros: atomic(str(g, "spend_atomic")) ?? 0n,
    }))
    .filter((r) => r.day !== "");
  const totals = new Map<string, bigint>();
  for (const r of rows) totals.set(r.name, (totals.get(r.name) ?? 0n) + r.micros);
  const names = [...totals.entries()]
    .filter(([, v]) => v > 0n)
    .sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : a[0].localeCompare(b[0])))
    .map(([n]) => n);
  const top = names.slice(0, TOP);
  const byDay = new Map<string, Map<string, bigint>>();
  for (const r of rows) {
    const name = top.includes(r.name) ? r.name : "other";
    const m = byDay.get(r.day) ?? new Map<string, bigint>();
    m.set(name, (m.get(name) ?? 0n) + r.micros);
    byDay.set(r.day, m);
  }
  const days = [...byDay.keys()].sort().slice(-DAYS);
  const bars = days.map((day) => {
    const m = byDay.get(day)!;
    const parts = [...top, "other"].filter((n) => m.has(n)).map((n) => ({ name: n, micros: m.get(n)! }));
    return { day, parts, total: parts.reduce((s, p) => s + p.micros, 0n) };
  });
  return { bars, names: names.length > TOP ? [...top, "other"] : top };
}

const dayNumber = (day: string): number => Math.round(Date.parse(`${day}T00:00:00Z`) / 86_400_000);

/**
 * Where each bar goes on a fixed axis of at least `DAYS` day slots ending at the latest day: a
 * day is placed by its date (days without spend stay empty), so one day of data is one thin bar,
 * not a bar stretched across the chart. Unparseable days fall back to their order.
 */
export function layout(bars: Bar[]): { slots: number; slot: number[] } {
  const nums = bars.map((b) => dayNumber(b.day));
  if (bars.length === 0 || nums.some((n) => !Number.isFinite(n))) {
    return { slots: Math.max(DAYS, bars.length), slot: bars.map((_, i) => Math.max(DAYS, bars.length) - bars.length + i) };
  }
  const last = nums[nums.length - 1]!;
  const slots = Math.max(DAYS, last - nums[0]! + 1);
  return { slots, slot: nums.map((n) => slots - 1 - (last - n)) };
}

/** The chart's query: the timeline's, limited to recent days unless it names its own time. */
export function chartQuery(q: string): string {
  return /(^|\s)(since|until):/.test(q) ? q : `${q} since:${DAYS}d`.trim();
}

export const SpendChart = memo(function SpendChart({ query, split, onSplit }: { query: string; split: Split; onSplit: (s: Split) => void }) {
  const cq = chartQuery(query);
  const by = `day,${split}`;
  const stats = useQuery({
    queryKey: keys.stats(cq, by),
    queryFn: () => api.receiptsStats(cq, by),
    placeholderData: (prev) => prev,
  });
  const groups = stats.data?.groups;
  const { bars, names } = useMemo(() => toBars(groups ?? [], split), [groups, split]);
  const max = bars.reduce((m, b) => (b.total > m ? b.total : m), 0n);
  const { slots, slot } = useMemo(() => layout(bars), [bars]);
  const width = slots * (BAR + GAP);
  const total = bars.reduce((s, b) => s + b.total, 0n);
  return (
    <figure className="chart" data-testid="spend-chart" aria-label="Spend per day">
      <figcaption>
        <span>
          Spend per day <strong className="money">{usdFromMicros(total)}</strong>
          <span className="muted"> {cq === query ? "" : `· last ${DAYS} days`}</span>
        </span>
        <span className="seg-toggle" role="group" aria-label="Split by">
          {(["grant", "host"] as const).map((s) => (
            <button key={s} className={`chip small ${split === s ? "on" : ""}`} aria-pressed={split === s} onClick={() => onSplit(s)} data-testid={`chart-by-${s}`}>
              per {s}
            </button>
          ))}
        </span>
      </figcaption>
      <div className="chart-body">
        {bars.length === 0 ? (
          <p className="muted chart-empty">No spend in this range.</p>
        ) : (
          <svg viewBox={`0 0 ${width} ${H}`} preserveAspectRatio="none" className="chart-svg" role="img" aria-label={`Spend over ${bars.length} days`}>
            {bars.map((b, i) => {
              let y = H;
              return (
                <g key={b.day} transform={`translate(${slot[i]! * (BAR + GAP)},0)`}>
                  {b.parts.map((p) => {
                    const h = max > 0n ? Number((p.micros * BigInt(H * 100)) / max) / 100 : 0;
                    y -= h;
                    return (
                      <rect key={p.name} x={0} y={y} width={BAR} height={h} className={`series s${names.indexOf(p.name)}`}>
                        <title>{`${b.day} · ${p.name}: ${usdFromMicros(p.micros)}`}</title>
                      </rect>
                    );
                  })}
                </g>
              );
            })}
          </svg>
        )}
      </div>
      <ul className="legend">
        {names.map((n, i) => (
          <li key={n}>
            <i className={`swatch s${i}`} />
            {n}
          </li>
        ))}
      </ul>
    </figure>
  );
});

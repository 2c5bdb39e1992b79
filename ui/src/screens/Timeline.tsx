/**
 * Owns the Timeline screen: receipts newest first for the current query (search box with
 * suggestions, filter chips), a spend chart above, a virtualised list (fixed-height rows,
 * keyset pages via `cursor`, loaded as you scroll), a detail drawer, export of the result
 * set, and live updates (new receipts appear at the top, or as "N new" while you read below).
 */
import { memo, useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type RefObject } from "react";
import { keepPreviousData, useInfiniteQuery, useIsFetching, useMutation, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import * as api from "../api";
import type { TimelinePage, TimelineRow } from "../bindings";
import { Empty, Flags, InlineError, OutcomeBadge } from "../components/bits";
import { useToast } from "../components/toasts";
import { onChanged, receiptsChangedAt } from "../live";
import { rowsRendered, searchRendered, searchStarted } from "../perf";
import { keys, useAppInfo } from "../queries";
import { count, usdText, when, words } from "../format";
import { ReceiptDrawer } from "./ReceiptDrawer";
import { SearchBox } from "./SearchBox";
import { SpendChart, type Split } from "./SpendChart";

/** Rows per page after the first (the backend allows up to 1000). */
export const PAGE = 200;
/** Rows in the first page: a couple of screenfuls, so a search answers with less to load,
 * send and render; the rest follows in PAGE-sized pages as you scroll. */
export const FIRST_PAGE = 60;
/** Fixed row height: the list never measures rows. */
export const ROW = 44;
/** While a search is running, the longest a keystroke waits before its own search is sent
 * (when none is running, it is sent at once). */
export const DEBOUNCE_MS = 40;
/** The chart's aggregate waits this long after the list has settled. */
export const CHART_DELAY_MS = 350;

const CHIPS: Array<{ token: string; label: string }> = [
  { token: "outcome:paid", label: "Paid" },
  { token: "outcome:refused", label: "Refused" },
  { token: "outcome:failed", label: "Failed" },
  { token: "by:user", label: "Asked you" },
  { token: "flag:any", label: "Flagged" },
  { token: "since:24h", label: "Last 24 h" },
  { token: "since:7d", label: "Last 7 days" },
];

function hasToken(q: string, t: string): boolean {
  return q.split(/\s+/).includes(t);
}

function toggleToken(q: string, t: string): string {
  const parts = q.split(/\s+/).filter(Boolean);
  return (hasToken(q, t) ? parts.filter((p) => p !== t) : [...parts, t]).join(" ");
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/**
 * The text to search for. When no search is running, the text at once: a keystroke never waits
 * for a timer. While one runs, the latest text once it is answered, or `ms` after the last
 * keystroke, whichever comes first: a burst of typing sends a search per answer or per `ms`, not
 * one per keystroke, and a slow answer never holds the next one back longer than a debounce would.
 */
export function useSearchText(text: string, busy: boolean, ms: number): string {
  const [q, setQ] = useState(text);
  // Idle: take the text while rendering (React's pattern for state that follows a prop), so
  // the new query goes out in this very render rather than after an effect and a second commit.
  if (!busy && q !== text) setQ(text);
  useEffect(() => {
    if (q === text || !busy) return;
    const t = setTimeout(() => setQ(text), ms);
    return () => clearTimeout(t);
  }, [text, busy, q, ms]);
  return q;
}

export function Timeline() {
  const [text, setText] = useState("");
  const searching = useIsFetching({ queryKey: keys.searches }) > 0;
  const query = useSearchText(text.trim(), searching, DEBOUNCE_MS);
  const [split, setSplit] = useState<Split>("grant");
  const [openId, setOpenId] = useState<string | null>(null);
  const [fresh, setFresh] = useState(0);
  const qc = useQueryClient();
  const toast = useToast();
  const info = useAppInfo();
  const scroller = useRef<HTMLDivElement>(null);

  const search = useInfiniteQuery({
    queryKey: keys.search(query),
    queryFn: ({ pageParam }) => api.receiptsSearch(query, pageParam, pageParam === null ? FIRST_PAGE : PAGE),
    initialPageParam: null as string | null,
    getNextPageParam: (last: TimelinePage) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  // A bad query keeps the last good results on screen (with the error above them): kept as
  // state adjusted while rendering, since a ref must not be written during render.
  const [lastGood, setLastGood] = useState<{ items: TimelineRow[]; total: number }>({ items: [], total: 0 });
  const data = search.data;
  const fresh_ = useMemo(() => (data ? { items: data.pages.flatMap((p) => p.items), total: data.pages[0]?.total ?? 0 } : null), [data]);
  if (fresh_ && fresh_ !== lastGood) setLastGood(fresh_);
  const { items, total } = fresh_ ?? (search.error ? lastGood : { items: [], total: 0 });
  const showingQuery = search.isPlaceholderData ? null : query;

  // Keystroke → results on screen.
  const textRef = useRef(text);
  const onText = useCallback((t: string) => {
    if (t.trim() !== textRef.current.trim()) searchStarted(t.trim());
    textRef.current = t;
    setText(t);
  }, []);
  // The chart follows once the list has its results: the ledger answers one query at a time,
  // so a slow aggregate must never sit in front of the search the user is waiting for.
  const settled = showingQuery !== null && !search.isFetching && !search.error;
  const [chartFor, setChartFor] = useState(query);
  if (settled && chartFor !== showingQuery) setChartFor(showingQuery);
  useEffect(() => {
    if (settled) searchRendered(showingQuery);
  }, [settled, showingQuery, search.dataUpdatedAt]);
  // …and once typing has paused (the delay starts when the list is committed), so an aggregate
  // does not queue in front of the next keystroke.
  const chartQuery = useDebounced(chartFor, CHART_DELAY_MS);

  // A new query starts with no "N new" (reset while rendering, not in an effect).
  const [freshFor, setFreshFor] = useState(query);
  if (freshFor !== query) {
    setFreshFor(query);
    setFresh(0);
  }

  // Only the first page is refetched on news: trim, then invalidate.
  const refreshTop = useCallback(() => {
    const key = keys.search(query);
    qc.setQueryData<InfiniteData<TimelinePage, string | null>>(key, (d) =>
      d ? { pages: d.pages.slice(0, 1), pageParams: d.pageParams.slice(0, 1) } : d,
    );
    void qc.invalidateQueries({ queryKey: key });
    setFresh(0);
  }, [qc, query]);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    return onChanged((kind) => {
      if (kind !== "receipt_added" && kind !== "approval_resolved") return;
      const atTop = (scroller.current?.scrollTop ?? 0) < ROW;
      if (!atTop) {
        if (kind === "receipt_added") setFresh((n) => n + 1);
        return;
      }
      if (timer === null)
        timer = setTimeout(() => {
          timer = null;
          refreshTop();
        }, 250);
    });
  }, [refreshTop]);
  // News that came while this screen was not shown (the listener above was not there to hear it).
  const atMount = useRef({ dataAt: search.dataUpdatedAt, refreshTop });
  useEffect(() => {
    const { dataAt, refreshTop } = atMount.current;
    if (dataAt > 0 && receiptsChangedAt() >= dataAt) refreshTop();
  }, []);

  const fetchNext = useCallback(() => void search.fetchNextPage(), [search]);

  const exportIt = useMutation({
    mutationFn: (format: "csv" | "jsonl") => api.receiptsExport(query, format),
    onSuccess: (r) => toast.info(`Exported ${count(r.rows)} receipts to ${r.path}`),
    onError: (e) => toast.error(e, "Export failed"),
  });

  return (
    <section className="screen timeline" aria-labelledby="timeline-title" data-testid="screen-timeline">
      <header className="screen-head">
        <h1 id="timeline-title">Timeline</h1>
        <div className="actions">
          <span className="muted" data-testid="timeline-total">
            {count(total)} receipt{total === 1 ? "" : "s"}
          </span>
          <button onClick={() => exportIt.mutate("csv")} disabled={exportIt.isPending || total === 0} data-testid="export-csv">
            Export CSV
          </button>
          <button onClick={() => exportIt.mutate("jsonl")} disabled={exportIt.isPending || total === 0} data-testid="export-jsonl">
            Export JSONL
          </button>
        </div>
      </header>
      <SearchBox value={text} onChange={onText} />
      <div className="chips" role="group" aria-label="Filters">
        {CHIPS.map((c) => {
          const on = hasToken(text, c.token);
          return (
            <button
              key={c.token}
              className={`chip ${on ? "on" : ""}`}
              aria-pressed={on}
              onClick={() => onText(toggleToken(text, c.token))}
              data-testid={`chip-${c.token}`}
            >
              {c.label}
            </button>
          );
        })}
      </div>
      {search.error ? <InlineError error={search.error} testid="search-error" /> : <p className="inline-error-space" />}
      <SpendChart query={chartQuery} split={split} onSplit={setSplit} />
      {fresh > 0 && (
        <button
          className="fresh"
          onClick={() => {
            scroller.current?.scrollTo({ top: 0 });
            refreshTop();
          }}
          data-testid="fresh-receipts"
        >
          ↑ {fresh} new receipt{fresh === 1 ? "" : "s"}
        </button>
      )}
      <div className="list-head" aria-hidden="true">
        <span>Time</span>
        <span>Outcome</span>
        <span>Amount</span>
        <span>Request</span>
        <span>Grant</span>
        <span>Decided</span>
        <span>Notes</span>
      </div>
      <div className="list" ref={scroller} data-testid="receipt-list" role="list" aria-label="Receipts" aria-busy={search.isFetching}>
        {search.isPending ? (
          <div className="skeleton">
            {Array.from({ length: 8 }, (_, i) => (
              <div key={i} className="skeleton-row" style={{ height: ROW - 4, marginBottom: 4 }} />
            ))}
          </div>
        ) : items.length === 0 && !search.error ? (
          query === "" ? (
            <Empty title="No receipts yet" testid="timeline-empty">
              <p>Every payment decision an agent's request leads to is recorded here. Point an agent at the proxy:</p>
              <pre className="setup">{info.data?.setupHint ?? "export PURSER_PROXY=http://127.0.0.1:4020 PURSER_GRANT=pgt_…"}</pre>
              <p className="muted">Create a grant first (Grants) — it gives you the token and these lines.</p>
            </Empty>
          ) : (
            <Empty title="Nothing matches" testid="timeline-nomatch">
              <p>
                No receipt matches <code>{query}</code>. Remove a filter, or try a word prefix like <code>weath*</code>.
              </p>
            </Empty>
          )
        ) : (
          <VirtualRows
            scroller={scroller}
            items={items}
            hasNext={search.hasNextPage}
            fetchingNext={search.isFetchingNextPage}
            fetchNext={fetchNext}
            openId={openId}
            onOpen={setOpenId}
          />
        )}
      </div>
      {openId && <ReceiptDrawer id={openId} onClose={() => setOpenId(null)} />}
    </section>
  );
}

function pathOf(url: string): string {
  const i = url.indexOf("://");
  const rest = i >= 0 ? url.slice(i + 3) : url;
  const slash = rest.indexOf("/");
  return slash >= 0 ? rest.slice(slash) : "/";
}

interface RowsProps {
  scroller: RefObject<HTMLDivElement | null>;
  items: TimelineRow[];
  hasNext: boolean;
  fetchingNext: boolean;
  fetchNext: () => void;
  openId: string | null;
  onOpen: (id: string) => void;
}

/** The virtualised rows: only this re-renders while scrolling (a screenful of fixed rows). */
function VirtualRows({ scroller, items, hasNext, fetchingNext, fetchNext, openId, onOpen }: RowsProps) {
  const virt = useVirtualizer({
    count: items.length + (hasNext ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 12,
    initialRect: { width: 800, height: 600 },
  });
  const rows = virt.getVirtualItems();
  const lastIndex = rows.length > 0 ? rows[rows.length - 1]!.index : -1;
  useEffect(() => {
    rowsRendered(rows.length);
    // Keyset paging: the next page is asked for while 20 rows are still ahead.
    if (lastIndex >= items.length - 20 && hasNext && !fetchingNext) fetchNext();
  }, [lastIndex, items.length, hasNext, fetchingNext, fetchNext, rows.length]);
  // ↑/↓ on a focused row move to the previous/next one (scrolled into view), Home/End to the ends.
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const slot = (e.target as HTMLElement).closest<HTMLElement>("[data-index]");
    if (!slot) return;
    const i = Number(slot.dataset.index);
    const next = e.key === "ArrowDown" ? i + 1 : e.key === "ArrowUp" ? i - 1 : e.key === "Home" ? 0 : e.key === "End" ? items.length - 1 : -2;
    if (next === -2) return;
    e.preventDefault();
    if (next < 0 || next >= items.length) return;
    virt.scrollToIndex(next, { align: "auto" });
    requestAnimationFrame(() => scroller.current?.querySelector<HTMLElement>(`[data-index="${next}"] button`)?.focus({ preventScroll: true }));
  };
  return (
    <div style={{ height: virt.getTotalSize(), position: "relative" }} onKeyDown={onKeyDown}>
      {rows.map((v) => {
        const r = items[v.index];
        return (
          <div key={v.key} data-index={v.index} className="row-slot" style={{ transform: `translateY(${v.start}px)`, height: ROW }}>
            {r ? <ReceiptRow r={r} onOpen={onOpen} selected={openId === r.id} /> : <div className="row loading">Loading more…</div>}
          </div>
        );
      })}
    </div>
  );
}

const ReceiptRow = memo(function ReceiptRow({ r, onOpen, selected }: { r: TimelineRow; onOpen: (id: string) => void; selected: boolean }) {
  return (
    <button
      className={`row ${selected ? "selected" : ""}`}
      onClick={() => onOpen(r.id)}
      role="listitem"
      data-testid="receipt-row"
      data-id={r.id}
      data-outcome={r.outcome}
    >
      <span className="time">{when(r.time)}</span>
      <span>
        <OutcomeBadge outcome={r.outcome} />
      </span>
      <span className="money">{r.amount_usd ? usdText(r.amount_usd) : "—"}</span>
      <span className="req" title={r.url}>
        <strong>{r.host}</strong>
        <span className="muted">{pathOf(r.url)}</span>
      </span>
      <span className="grant">{r.grant_label ?? "—"}</span>
      <span className="muted">{words(r.decided_by)}</span>
      <span className="notes">
        <Flags flags={r.flags} />
        {r.outcome !== "paid" && <span className="muted reason">{words(r.reason)}</span>}
        {r.intent && (
          <q className="agent-words" title="the agent's words" data-testid="row-intent">
            {r.intent}
          </q>
        )}
      </span>
    </button>
  );
});
